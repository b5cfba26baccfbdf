"""Write a synthetic queue-workload ``history.jsonl`` for checker benchmarks.

In: the number of publishes ``N``, client processes ``P``, a seed, how many
acknowledged values to "lose" and how many kill windows to add. Out: a
well-formed history following docs/contracts.md §1 (``checkers.wellformed`` holds)
— ``N`` publish invoke/completion pairs from ``P`` concurrent processes
(about 1 % ``fail``, 0.5 % ``info``; a process whose op ended ``info`` is
replaced by a new process id), ``faults`` kill windows (nemesis start/stop
ops in time order among the publishes), a few nemesis ops, then one full
final read per node (``n1``..``n3``) holding every acknowledged value
except the planted lost ones, plus half of the ``info`` values (they
become "recovered").

Run: ``python benchmarks/synth_history.py --publishes 1000000 --out /tmp/h.jsonl``
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

NODES = ("n1", "n2", "n3")
MS = 1_000_000


@dataclass(frozen=True)
class Planted:
    """What the generator put in the history, so a benchmark can sanity-check results."""

    publishes: int
    acknowledged: int
    lost: int
    recovered: int


def _outcomes(n: int, rng: np.random.Generator) -> np.ndarray:
    """One completion type per publish: 0 ok, 1 fail, 2 info."""
    draw = rng.random(n)
    return np.where(draw < 0.985, 0, np.where(draw < 0.995, 1, 2)).astype(np.int8)


def _fault_rounds(rounds: int, faults: int) -> dict[int, list[dict]]:
    """Nemesis values by the publish round before which they happen: ``faults`` kill windows,
    evenly spread, each lasting a twentieth of the run."""
    out: dict[int, list[dict]] = {}
    for i in range(faults):
        start = rounds * (2 * i + 1) // (2 * faults + 1)
        nodes = [NODES[i % 3]]
        out.setdefault(start, []).append({"start": "kill", "nodes": nodes})
        out.setdefault(start + max(1, rounds // 20), []).append({"stop": "kill", "nodes": nodes})
    return out


def _write_publishes(
    fh, n: int, procs: int, outcomes: np.ndarray, rng, faults: int = 0
) -> tuple[np.ndarray, int, int]:
    """Write publish ops in rounds of ``procs`` clients (kill windows between rounds);
    return stream seqs (0 = none), the next index and the last time."""
    kinds = ("ok", "fail", "info")
    proc_ids = list(range(procs))
    next_proc = procs
    seqs = np.zeros(n, dtype=np.int64)
    seq = 0
    t = 0
    idx = 0
    nemesis = _fault_rounds(-(-n // procs), faults)
    for r, start in enumerate(range(0, n, procs)):
        batch = range(start, min(start + procs, n))
        lines: list[tuple | dict] = []
        for value in nemesis.get(r, []):
            t += 1000
            lines.append({"index": idx, "time": t, "type": "info", "process": "nemesis",
                          "f": "kill", "value": value})  # fmt: skip
            idx += 1
        for slot, value in enumerate(batch):
            t += 1000
            lines.append((idx, t, "invoke", proc_ids[slot], value))
            idx += 1
        for slot in rng.permutation(len(batch)):
            value = batch[slot]
            t += int(rng.integers(200_000, 2 * MS))
            kind = kinds[outcomes[value]]
            rec = {"index": idx, "time": t, "type": kind, "process": proc_ids[slot]}
            rec.update({"f": "publish", "value": value, "node": NODES[slot % 3]})
            if kind == "ok":
                seq += 1
                seqs[value] = seq
                rec["seq"] = seq
            else:
                rec["error"] = "timeout" if kind == "info" else "no responders"
            lines.append(rec)
            idx += 1
            if kind == "info":
                proc_ids[slot] = next_proc
                next_proc += 1
        fh.write(b"".join(_line(x) for x in lines))
    return seqs, idx, t


def _line(x: tuple | dict) -> bytes:
    if isinstance(x, dict):
        return orjson.dumps(x) + b"\n"
    idx, t, _, proc, value = x
    node = NODES[proc % 3]
    return (
        f'{{"index":{idx},"time":{t},"type":"invoke","process":{proc},'
        f'"f":"publish","value":{value},"node":"{node}"}}\n'
    ).encode()


def write_history(
    path: Path, publishes: int, procs: int = 10, lost: int = 5, seed: int = 1, faults: int = 0
):
    """Write the history to ``path``; return what was planted."""
    rng = np.random.default_rng(seed)
    outcomes = _outcomes(publishes, rng)
    with path.open("wb") as fh:
        seqs, index, last = _write_publishes(fh, publishes, procs, outcomes, rng, faults)
        acked = np.flatnonzero(outcomes == 0)
        infos = np.flatnonzero(outcomes == 2)
        lost_values = rng.choice(acked, size=min(lost, len(acked)), replace=False)
        recovered = infos[::2]
        # Recovered values landed in the stream after the acknowledged ones.
        extra_seqs = seqs.max(initial=0) + 1 + np.arange(len(recovered))
        in_stream = np.concatenate([acked, recovered])
        stream_seq = np.concatenate([seqs[acked], extra_seqs])
        keep = ~np.isin(in_stream, lost_values)
        pairs = np.column_stack([stream_seq[keep], in_stream[keep]])
        pairs = pairs[np.argsort(pairs[:, 0])]  # a read returns the stream in order
        _write_reads(fh, pairs, start_index=index, start_time=max(last, 10**13))
    return Planted(publishes, len(acked), len(lost_values), len(recovered))


def _write_reads(fh, pairs: np.ndarray, start_index: int, start_time: int) -> None:
    """A nemesis kill/restart, then one invoke + ok read of ``pairs`` per node."""
    t = start_time
    idx = start_index
    body = ("[" + ",".join(f"[{s},{v}]" for s, v in pairs.tolist()) + "]").encode()
    for f, val in (("kill", {"start": "kill", "nodes": ["n1"]}), ("kill", {"stop": "kill"})):
        rec = {"index": idx, "time": t, "type": "info", "process": "nemesis", "f": f, "value": val}
        fh.write(orjson.dumps(rec) + b"\n")
        idx += 1
        t += MS
    for proc, node in enumerate(NODES, start=10**6):
        head = {"index": idx, "time": t, "type": "invoke", "process": proc, "f": "read"}
        fh.write(orjson.dumps({**head, "value": None, "node": node}) + b"\n")
        t += 500 * MS
        prefix = f'{{"index":{idx + 1},"time":{t},"type":"ok","process":{proc},"f":"read",'
        fh.write(prefix.encode() + b'"value":' + body + f',"node":"{node}"}}\n'.encode())
        idx += 2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--publishes", type=int, default=1_000_000)
    ap.add_argument("--processes", type=int, default=10)
    ap.add_argument("--lost", type=int, default=5)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--faults", type=int, default=0, help="kill windows among the publishes")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    planted = write_history(
        args.out, args.publishes, args.processes, args.lost, args.seed, args.faults
    )
    print(planted)


if __name__ == "__main__":
    main()
