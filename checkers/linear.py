"""The linearizability checker: is there one order of each key's ops that the model accepts?

In: the ops DataFrame of a history (docs/contracts.md §1) and a
:class:`~checkers.linear_models.Model` (how the history's ops map onto it
is in :mod:`checkers.linear_models`). Client ops whose ``f`` the model
knows are paired invoke → completion; ``fail`` ops are dropped (they did
not happen), ``info`` ops (and invokes a cut-off history never completed)
may take effect at any time after their invoke, or never; other ``f`` are
ignored (counted). The model's ``partition`` splits the ops into keys, and
each key is searched on its own (P-compositionality).

The search is Wing & Gong's, with Lowe's memoisation (as in Porcupine's
``checkSingle``): the ops' invoke and completion entries in real-time order
form a linked list; the search linearizes the first call it can, lifts it
out of the list and starts over from the head; reaching the completion of
an op not yet linearized means backtracking. A configuration (the set of
linearized ops as a bitset, the model state) already seen is never
explored again. A search that uses up its budget (``max_steps`` loop
steps — by default :data:`MAX_STEPS`, or :data:`STEPS_PER_OP` per op of a
bigger key — ``max_seconds``, or :data:`MAX_MEMO_BYTES` of memoised
configurations, per key) leaves the key ``unknown`` — never valid; its
``reason`` says which.

For a key that is not linearizable, the *window* shows where the search
failed: at the deepest configuration it reached (the longest linearizable
prefix), the op whose completion it hit unplaced (``failed``), the other
ops not yet placed that were invoked before that completion
(``concurrent``), and the prefix's ops from the last one completed before
the window's first invoke on (``linearized``, each with the model state
after it); ``start_state`` is the state before the window;
``tried_state_count`` counts the states the search tried the failed op in,
``tried_states`` shows the first :data:`TRIED`.

Out (docs/contracts.md §2): ``valid``, ``anomalies`` (``non-linearizable``),
``model``, ``key_count``, ``invalid_key_count``, ``unknown_key_count``,
``op_count`` (ops of the model's ``f``), ``info_count``, ``pruned_count``
(``info`` ops the model's ``prune`` left out before the search: for the
register models, unknown writes of a value no op observed), ``fail_count`` (dropped),
``info_dropped_count`` (``info`` ops of a read-only ``f``: dropped),
``ignored_count`` (ops of other ``f``), ``steps``, ``keys`` (per key:
``key``, ``valid``, ``op_count``, ``steps``, and ``reason`` when
``unknown``), ``windows`` (of the first :data:`WINDOWS` invalid keys) and
``summary`` with one ``examples`` table per window for the first
:data:`EXAMPLES` (shape in :mod:`checkers.compose`).

One registry name per model (:func:`linear_checker`: ``linear-register``,
``linear-cas-register``, ``linear-kv`` in :data:`checkers.compose.REGISTRY`),
since a checker's context carries no workload settings: a workload names
one in its ``checkers`` like any other checker.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from checkers.linear_models import ATOMS, MODELS, UNKNOWN, Model, Op, freeze
from checkers.schema import client_mask, column, line_numbers
from checkers.stats import paired_ops

MAX_STEPS = 1_000_000  # search steps per key before the key is "unknown"…
STEPS_PER_OP = 200  # …or this many per op, for a key with more than 5,000 ops
MAX_MEMO_BYTES = 512 * 1024 * 1024  # about this much memo per key, at most
WINDOWS = 20  # windows kept in the result
EXAMPLES = 5  # of them shown as example tables
TRIED = 10  # states listed per window
ANOMALY = "non-linearizable"
SEC = 1e9


@dataclass
class KeyResult:
    """The search's verdict on one key's ops."""

    key: Any
    valid: bool | str
    op_count: int
    steps: int
    window: dict[str, Any] | None = None
    reason: str | None = None  # why an "unknown" search stopped


@dataclass
class _Fail:
    """The deepest configuration of a failed search: the stack, state and the unplaced entry."""

    depth: int = -1
    stack: Any = None
    state: Any = None
    slot: int = 0
    cache: set[tuple[int, Any]] = field(default_factory=set)


def history_ops(ops: pd.DataFrame, model: Model) -> tuple[list[Op], dict[str, int]]:
    """The model's ops of ``ops`` (see the module docstring) and the counts of what was left out."""
    pairs = paired_ops(ops)
    pairs = pairs[pairs["f"].isin(model.fs).to_numpy()]
    f, types = column(ops, "f"), column(ops, "type")
    wanted = client_mask(ops) & np.isin(f, list(model.fs))
    ignored = int((client_mask(ops) & ~wanted & (types == "invoke")).sum())
    invokes = np.flatnonzero(wanted & (types == "invoke"))
    unfinished = np.setdiff1d(invokes, pairs["invoke_row"].to_numpy())
    t = column(ops, "time")
    t = t if t.dtype == np.int64 else np.zeros(len(ops), dtype=np.int64)
    rank = np.empty(len(ops), dtype=np.int64)  # real-time order: by time, then file order
    rank[np.lexsort((np.arange(len(ops)), t))] = np.arange(len(ops))
    pos, times, names = rank.tolist(), t.tolist(), f.tolist()
    values, procs, lines = column(ops, "value"), column(ops, "process").tolist(), line_numbers(ops)
    lines = lines.tolist()
    extra = [column(ops, k) for k in model.fields]
    inv = np.concatenate([pairs["invoke_row"].to_numpy(), unfinished]).astype(np.int64)
    done = np.concatenate([pairs["complete_row"].to_numpy(), np.full(len(unfinished), -1)])
    kinds = np.concatenate([pairs["type"].to_numpy(dtype=object), np.full(len(unfinished), "info")])
    out: list[Op] = []
    skipped = {"fail_count": 0, "info_dropped_count": 0}
    for i, c, kind in zip(inv.tolist(), done.tolist(), kinds.tolist(), strict=True):
        name = names[i]
        if kind == "fail":
            skipped["fail_count"] += 1
            continue
        ok = kind == "ok"
        if not ok and name in model.readonly:
            skipped["info_dropped_count"] += 1
            continue
        key, arg = _key_arg(values[i], lines[i])
        if ok:
            result = _key_arg(values[c], lines[c])[1]
            output = (result, *(_field(x[c]) for x in extra)) if extra else result
        else:
            output = UNKNOWN
        out.append(
            Op(
                key,
                (name, arg),
                output,
                "ok" if ok else "info",
                procs[i],
                pos[i],
                pos[c] if ok else None,
                times[i],
                times[c] if c >= 0 else None,
                values[i],
                values[c] if c >= 0 else None,
                lines[i],
            )
        )
    skipped["ignored_count"] = ignored
    return out, skipped


def _field(v: Any) -> Any:
    """An extra field's value; the loader's float column (NaN where absent) back to ints."""
    v = freeze(v)
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _key_arg(value: Any, line: int) -> tuple[Any, Any]:
    if type(value) is list and len(value) == 2:
        k, a = value
        return (k if type(k) in ATOMS else freeze(k), a if type(a) in ATOMS else freeze(a))
    v = freeze(value)
    if not isinstance(v, tuple) or len(v) != 2:
        raise ValueError(f"line {line}: value must be [key, argument], not {value!r}")
    return v


def search(
    model: Model, ops: list[Op], max_steps: int | None = None, max_seconds: float | None = None
) -> KeyResult:
    """Search one key's ``ops`` for a linearization (see the module docstring)."""
    if max_steps is None:
        max_steps = max(MAX_STEPS, STEPS_PER_OP * len(ops))
    events = [(op.invoke_pos, 2 * i) for i, op in enumerate(ops)]
    events += [
        (op.complete_pos, 2 * i + 1) for i, op in enumerate(ops) if op.complete_pos is not None
    ]
    events.sort()
    m = len(events)
    code = [0] + [e for _, e in events] + [1]  # slot 0 is the head, slot m+1 the end (a return)
    nxt = list(range(1, m + 3))
    prv = list(range(-1, m + 1))
    ret = [-1] * len(ops)
    for s in range(1, m + 1):
        if code[s] & 1:
            ret[code[s] >> 1] = s
    inputs = [op.input for op in ops]
    outputs = [op.output for op in ops]
    bits = [1 << i for i in range(len(ops))]
    step = model.step
    state = model.init()
    lin = 0
    cache = {(0, state)}
    stack: Any = None  # (slot, state before, parent): a linked stack, so snapshots are free
    depth = 0
    fail = _Fail()
    remaining = sum(1 for r in ret if r >= 0)
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    max_memo = MAX_MEMO_BYTES // (len(ops) // 8 + 160)  # a bitset, a tuple, a set slot
    slot = nxt[0]
    steps = 0
    while remaining:
        steps += 1
        if steps > max_steps:
            return KeyResult(ops[0].key, "unknown", len(ops), steps, None, f"{max_steps:,} steps")
        if deadline is not None and not steps & 1023 and time.monotonic() > deadline:
            return KeyResult(ops[0].key, "unknown", len(ops), steps, None, f"{max_seconds:g} s")
        c = code[slot]
        if not c & 1:  # a call: linearize it here, unless it fails or leads nowhere new
            i = c >> 1
            ok, new = step(state, inputs[i], outputs[i])
            if ok:
                nl = lin | bits[i]
                k = (nl, new)
                if k not in cache:
                    if len(cache) > max_memo:
                        why = f"{MAX_MEMO_BYTES:,} bytes of memo"
                        return KeyResult(ops[0].key, "unknown", len(ops), steps, None, why)
                    cache.add(k)
                    stack = (slot, state, stack)
                    depth += 1
                    state, lin = new, nl
                    p, q = prv[slot], nxt[slot]
                    nxt[p], prv[q] = q, p
                    r = ret[i]
                    if r >= 0:
                        p, q = prv[r], nxt[r]
                        nxt[p], prv[q] = q, p
                        remaining -= 1
                    slot = nxt[0]
                    continue
            slot = nxt[slot]
            continue
        if depth > fail.depth:  # the completion of an unplaced op: backtrack
            fail.depth, fail.stack, fail.state, fail.slot = depth, stack, state, slot
        if stack is None:
            fail.cache = cache
            return KeyResult(ops[0].key, False, len(ops), steps, _window(model, ops, fail, code))
        slot, state, stack = stack
        depth -= 1
        i = code[slot] >> 1
        lin ^= bits[i]
        r = ret[i]
        if r >= 0:
            nxt[prv[r]] = r
            prv[nxt[r]] = r
            remaining += 1
        nxt[prv[slot]] = slot
        prv[nxt[slot]] = slot
        slot = nxt[slot]
    return KeyResult(ops[0].key if ops else None, True, len(ops), steps)


def _window(model: Model, ops: list[Op], fail: _Fail, code: list[int]) -> dict[str, Any]:
    """Where a failed search got stuck (see the module docstring)."""
    chain: list[tuple[int, Any]] = []  # (op number, state before it), bottom of the stack first
    node = fail.stack
    while node is not None:
        chain.append((code[node[0]] >> 1, node[1]))
        node = node[2]
    chain.reverse()
    after = [s for _, s in chain[1:]] + [fail.state] * bool(chain)
    placed = {i for i, _ in chain}
    x = code[fail.slot] >> 1
    end = ops[x].complete_pos
    assert end is not None  # the search only backtracks at a completion
    unplaced = [i for i, op in enumerate(ops) if i not in placed and op.invoke_pos < end]
    start = min(ops[i].invoke_pos for i in unplaced)
    first = next(
        (n for n, (i, _) in enumerate(chain) if (ops[i].complete_pos or 0) > start), len(chain)
    )
    first = max(first - 1, 0)
    before = 0  # the ops that completed before the failed op was invoked: placed in every try
    for i, op in enumerate(ops):
        if op.complete_pos is not None and op.complete_pos < ops[x].invoke_pos:
            before |= 1 << i
    bit = 1 << x
    raw = {s for lin, s in fail.cache if not lin & bit and lin & before == before}
    tried = sorted({model.show(s) for s in itertools.islice(raw, 100 * TRIED)})
    shown = zip(chain[first:], after[first:], strict=True)
    rows = [_op_row(ops[i], "linearized", model.show(s)) for (i, _), s in shown]
    rows += [_op_row(ops[i], "concurrent", None) for i in unplaced if i != x]
    rows.append(_op_row(ops[x], "failed", None))
    return {
        "key": ops[x].key,
        "prefix_length": len(chain),
        "op_count": len(ops),
        "start_state": model.show(chain[first][1] if chain else model.init()),
        "final_state": model.show(fail.state),
        "failed": rows[-1],
        "tried_states": tried[:TRIED],
        "tried_state_count": len(raw),
        "ops": rows,
    }


def _op_row(op: Op, role: str, state_after: str | None) -> dict[str, Any]:
    return {
        "role": role,
        "process": op.process,
        "f": op.input[0],
        "value": op.invoke_value,
        "result": op.complete_value,
        "type": op.type,
        "invoke_time": op.invoke_time,
        "complete_time": op.complete_time,
        "line": op.line,
        "state_after": state_after,
    }


def check_linear(
    ops: pd.DataFrame,
    context: dict[str, Any],
    model: Model | str,
    max_steps: int | None = None,
    max_seconds: float | None = None,
) -> dict[str, Any]:
    """Check ``ops`` against ``model`` key by key; the result dict of the module docstring."""
    model = MODELS[model] if isinstance(model, str) else model
    found, skipped = history_ops(ops, model)
    groups = [g for g in model.partition(found) if g]
    kept = [model.prune(g) for g in groups] if model.prune else groups
    results = [search(model, g, max_steps, max_seconds) for g in kept]
    bad = [r for r in results if r.valid is False]
    undecided = [r for r in results if r.valid == "unknown"]
    valid: bool | str = False if bad else "unknown" if undecided else True
    out: dict[str, Any] = {
        "valid": valid,
        "anomalies": [ANOMALY] if bad else [],
        "model": model.name,
        "key_count": len(results),
        "invalid_key_count": len(bad),
        "unknown_key_count": len(undecided),
        "op_count": len(found),
        "info_count": sum(1 for op in found if op.type == "info"),
        "pruned_count": len(found) - sum(len(g) for g in kept),
        **skipped,
        "steps": sum(r.steps for r in results),
        "keys": [
            {"key": r.key, "valid": r.valid, "op_count": r.op_count, "steps": r.steps}
            | ({"reason": r.reason} if r.reason else {})
            for r in results
        ],
        "windows": [r.window for r in bad[:WINDOWS]],
    }
    out["summary"] = _summary(out, [r.reason for r in undecided])
    return out


def linear_checker(model: str, **budget: Any) -> Callable[[pd.DataFrame, dict[str, Any]], Any]:
    """A registry checker ``(ops, context) -> result`` for the model named ``model``."""
    chosen = MODELS[model]

    def check(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
        return check_linear(ops, context, chosen, **budget)

    check.__name__ = f"check_linear_{model.replace('-', '_')}"
    return check


def _s(t: int | None) -> str:
    return "–" if t is None else f"{t / SEC:.3f}"


def window_example(w: dict[str, Any]) -> dict[str, Any]:
    """One window (see the module docstring) as a ``summary.examples`` table."""
    head = ["role", "process", "f", "value", "result", "type", "invoked (s)", "completed (s)"]
    rows = [
        [
            o["role"],
            o["process"],
            o["f"],
            repr(o["value"]),
            repr(o["result"]) if o["type"] == "ok" else "–",
            o["type"],
            _s(o["invoke_time"]),
            _s(o["complete_time"]),
            o["state_after"] or "",
        ]
        for o in w["ops"]
    ]
    fo = w["failed"]
    tried = "; ".join(w["tried_states"])
    more = w["tried_state_count"] - len(w["tried_states"])
    note = (
        f"The longest linearizable order places {w['prefix_length']} of {w['op_count']} ops "
        f"and ends in state {w['final_state']}; the window starts in state {w['start_state']}. "
        f"{fo['f']} {fo['value']!r} → {fo['result']!r} by process {fo['process']} (line "
        f"{fo['line']}) could not be placed: it was tried in {tried}"
        f"{f' and {more} more' if more > 0 else ''}."
    )
    return {
        "title": f"Key {w['key']!r}: not linearizable",
        "note": note,
        "head": [*head, "state after"],
        "rows": rows,
    }


def _count(name: str, value: int, bad: bool, meaning: str) -> dict[str, Any]:
    return {"name": name, "value": value, "bad": bad, "meaning": meaning}


def _summary(r: dict[str, Any], reasons: list[Any]) -> dict[str, Any]:
    n, bad, unk = r["key_count"], r["invalid_key_count"], r["unknown_key_count"]
    if bad:
        first = r["windows"][0]["key"]
        text = f"{bad:,} of {n:,} keys not linearizable ({r['model']}; first: key {first!r})"
    elif unk:
        spent = ", ".join(dict.fromkeys(reasons))
        text = f"linearizability undecided on {unk:,} of {n:,} keys (search budget spent: {spent})"
    else:
        text = f"{n:,} keys linearizable ({r['op_count']:,} ops, {r['model']} model)"
    counts = [
        _count("keys", n, False, "keys checked independently"),
        _count("ops", r["op_count"], False, "ops searched"),
        _count("info", r["info_count"], False, "ops of unknown outcome"),
        _count("failed", r["fail_count"], False, "failed ops (did not happen: dropped)"),
        _count("unobserved", r["pruned_count"], False, "unknown writes nobody saw: left out"),
        _count("not linearizable", bad, bad > 0, "keys with no valid order"),
        _count("undecided", unk, unk > 0, "keys whose search ran out of budget"),
    ]
    return {
        "headline": text,
        "counts": counts,
        "row": {"keys": n, "keys_invalid": bad, "keys_unknown": unk, "ops": r["op_count"]},
        "rate": {"name": "keys_invalid", "label": "non-linearizable keys"},
        "examples": [window_example(w) for w in r["windows"][:EXAMPLES]],
    }
