"""Linearizable register and KV histories from a simulated concurrent store.

In: a model name (``register``, ``cas-register``, ``kv``: the op mapping of
:mod:`checkers.linear_models`), the number of ops, keys and concurrent
worker slots, the share of ``info`` outcomes and a seed. Out: history
records (dicts, docs/contracts.md §1) in time order that are linearizable
by construction: every op gets a linearization point strictly inside its
real-time interval, the simulated store applies the ops in the order of
those points, and each ``ok`` completion reports what the store returned
there. A cas whose expected value (or an update whose ``last`` revision)
does not match at that point, and a create of an existing key, end
``fail``. An ``info`` op takes effect at a point after its invoke — possibly
after its completion was recorded — or not at all (one in two); its worker
then goes on under a new process id. Values written are unique integers;
kv revisions are one store-wide sequence, as NATS stream sequences are.

Used by ``tests/unit/test_linear_checker.py`` (hundreds of small histories
that must never be flagged) and ``benchmarks/bench_linear.py``.

Run: ``python benchmarks/synth_linear.py --ops 100000 --keys 100 --out /tmp/h.jsonl``
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

import orjson

NS = 1_000_000_000
MIXES = {  # f -> weight
    "register": {"read": 5, "write": 5},
    "cas-register": {"read": 4, "write": 2, "cas": 4},
    "kv": {"get": 4, "put": 2, "create": 1, "update": 3, "delete": 1},
}


class _Store:
    """The simulated object: applies one op at its linearization point; (type, result, extra)."""

    def __init__(self) -> None:
        self.values: dict[Any, Any] = {}
        self.revs: dict[Any, int] = {}
        self.rev = 0

    def apply(self, key: Any, f: str, arg: Any) -> tuple[str, Any, dict[str, Any]]:
        cur, rev = self.values.get(key), self.revs.get(key, 0)
        if f in ("read", "get"):
            return "ok", cur, ({"revision": rev} if f == "get" and cur is not None else {})
        if f == "cas" and cur != arg[0]:
            return "fail", None, {}
        if (f == "create" and cur is not None) or (f == "update" and rev != arg[1]):
            return "fail", None, {}
        new = None if f == "delete" else arg[1] if f == "cas" else arg[0] if f == "update" else arg
        self.values[key] = new
        if f in MIXES["kv"]:
            self.rev += 1
            self.revs[key] = self.rev
            return "ok", arg, {"revision": self.rev}
        return "ok", arg, {}


def simulate(
    model: str,
    ops: int,
    keys: int = 3,
    workers: int = 4,
    info: float = 0.05,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """A linearizable history of ``ops`` ops of ``model`` (see the module docstring)."""
    rng = random.Random(seed)
    fs, weights = zip(*MIXES[model].items(), strict=True)
    seen: dict[int, list[Any]] = {k: [None] for k in range(keys)}  # values and revisions written
    clock = [rng.random() * 0.01 for _ in range(workers)]
    procs = list(range(workers))
    next_proc = workers
    planned = []  # (lin point, invoke, complete, process, key, f, arg, info?, applies?)
    for counter in range(1, ops + 1):
        w = rng.randrange(workers)
        t0 = clock[w]
        dur = rng.expovariate(1 / 0.002)
        key = rng.randrange(keys)
        f = rng.choices(fs, weights)[0]
        arg: Any = None
        if f in ("write", "put", "create"):
            arg = counter
        elif f == "cas":
            arg = [rng.choice(seen[key][-3:]), counter]
        elif f == "update":
            arg = [counter, rng.choice([0, *seen[key][-3:]])]
        lost = rng.random() < info
        applies = not lost or rng.random() < 0.5
        lin = t0 + rng.random() * (dur * (3 if lost else 1))
        planned.append((lin, t0, t0 + dur, procs[w], key, f, arg, lost, applies))
        if f in ("write", "cas", "put", "create", "update"):
            seen[key].append(counter)
        clock[w] = t0 + dur + rng.expovariate(1 / 0.001)
        if lost:
            procs[w], next_proc = next_proc, next_proc + 1
    store = _Store()
    events = []
    revision_of: dict[int, int] = {}
    for _lin, t0, t1, proc, key, f, arg, lost, applies in sorted(planned):
        if f == "update" and isinstance(arg[1], int) and arg[1] in revision_of:
            arg = [arg[0], revision_of[arg[1]]]  # `last` names a value's revision: resolve it
        typ, result, extra = store.apply(key, f, arg) if applies else ("info", None, {})
        if lost:
            typ, result, extra = "info", None, {}
        elif f in ("put", "create", "update") and typ == "ok":
            revision_of[arg if f != "update" else arg[0]] = extra["revision"]
        inv = {"type": "invoke", "process": proc, "f": f, "value": [key, arg]}
        done: dict[str, Any] = {"type": typ, "process": proc, "f": f}
        done["value"] = [key, result] if f in ("read", "get") and typ == "ok" else [key, arg]
        if lost:
            done["error"] = "timeout"
        events += [(t0, inv), (t1, done | extra)]
    events.sort(key=lambda e: e[0])
    out = []
    for i, (t, rec) in enumerate(events):
        out.append({"index": i, "time": int(t * NS), **rec, "node": "n1"})
    return out


def write_jsonl(records: list[dict[str, Any]], path: Path) -> None:
    with path.open("wb") as fh:
        fh.writelines(orjson.dumps(r) + b"\n" for r in records)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="cas-register", choices=sorted(MIXES))
    ap.add_argument("--ops", type=int, default=100_000)
    ap.add_argument("--keys", type=int, default=100)
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--info", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    write_jsonl(simulate(a.model, a.ops, a.keys, a.workers, a.info, a.seed), a.out)


if __name__ == "__main__":
    main()
