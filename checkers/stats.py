"""The stats checker: how many ops of each kind, how fast, and how slow.

In: the ops DataFrame of any history (docs/contracts.md §1) and a context dict (unused).
Out: ``by_f`` ({f: {invoke, ok, fail, info}} counts over every op, nemesis
included), ``client_op_count``, ``nemesis_count``, ``publish_rate`` (acknowledged
publishes per second over the span from the first to the last publish
invoke), ``latency_ms`` ({f: {count, p50, p90, p99, max}} over completed
client ops) and ``valid`` (True, or "unknown" when no client op ended ok).

:func:`paired_ops` is the shared building block: each client invoke paired
with the next completion of the same process, as a DataFrame the report
plots latency and throughput from.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from checkers.schema import OP_TYPES, by_process, client_mask, equals, factorized, shared

GROUPS = 64  # latency_ms of more distinct fs than this goes through pandas' groupby
QUANTILES = ("p50", "p90", "p99", "max")


def _obj(ops: pd.DataFrame, name: str) -> np.ndarray:
    return ops[name].to_numpy(dtype=object)


def paired_ops(ops: pd.DataFrame) -> pd.DataFrame:
    """Each client invoke with its completion: one row per completed op.

    Columns: ``invoke_time``, ``complete_time`` (int ns), ``type`` (of the
    completion: ok/fail/info), ``f``, ``process``, ``node`` and ``value``
    (of the invoke), ``invoke_row`` and ``complete_row`` (the two ops' positions
    in ``ops``). Invokes without a completion (a run cut short) are left out.
    """
    inv, done, procs = pair_rows(ops)
    times = ops["time"].to_numpy()
    return pd.DataFrame(
        {
            "invoke_time": times[inv],
            "complete_time": times[done],
            "type": _obj(ops, "type")[done],
            "f": _obj(ops, "f")[inv],
            "process": procs,
            "node": _obj(ops, "node")[inv],
            "value": _obj(ops, "value")[inv],
            "invoke_row": inv,
            "complete_row": done,
        }
    )


def pair_rows(ops: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of :func:`paired_ops`: (invoke rows, completion rows, their process)."""
    return shared(ops, "pair_rows", lambda: _pair_rows(ops))


def _pair_rows(ops: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # grouped by process by a stable sort: each process's ops stay in history order
    order, procs = by_process(ops)
    invoke = equals(ops, "type", "invoke")[order]
    is_pair = invoke[:-1] & ~invoke[1:] & (procs[:-1] == procs[1:])
    return order[:-1][is_pair], order[1:][is_pair], procs[:-1][is_pair]


def counts_by_f(ops: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{f: {invoke, ok, fail, info}} over every op."""
    f_codes, fs = factorized(ops, "f")
    codes, types = factorized(ops, "type")
    type_codes = pd.Index(OP_TYPES).get_indexer(types)[codes]
    counts = np.bincount(
        f_codes * len(OP_TYPES) + type_codes, minlength=len(fs) * len(OP_TYPES)
    ).reshape(len(fs), len(OP_TYPES))
    return {
        str(f): dict(zip(OP_TYPES, map(int, row), strict=True))
        for f, row in zip(fs, counts, strict=True)
    }


def latency_ms(pairs: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """{f: {count, p50, p90, p99, max}} in milliseconds over completed ops."""
    ms = (pairs["complete_time"] - pairs["invoke_time"]) / 1e6
    out = {}
    for f, group in ms.groupby(pairs["f"].to_numpy()):
        out[str(f)] = _quantiles(group.to_numpy())
    return out


def _quantiles(ms: np.ndarray) -> dict[str, float | int]:
    q = np.percentile(ms, [50, 90, 99, 100])
    return {"count": len(ms)} | dict(zip(QUANTILES, (round(float(x), 3) for x in q), strict=True))


def op_latency_ms(ops: pd.DataFrame) -> dict[str, dict[str, float | int]]:
    """``latency_ms(paired_ops(ops))``, without building the pairs table: the groups are
    the fs' codes (:func:`checkers.schema.factorized`), in the order groupby sorts them."""
    inv, done, _ = pair_rows(ops)
    f_codes, fs = factorized(ops, "f")
    codes = f_codes[inv]
    present = np.flatnonzero(np.bincount(codes, minlength=len(fs)))
    if len(present) > GROUPS:
        return latency_ms(paired_ops(ops))
    times = ops["time"].to_numpy()
    ms = (times[done] - times[inv]) / 1e6
    # groupby's order: the distinct keys sorted (factorize sort=True), missing ones dropped
    rank, keys = pd.factorize(fs[present], sort=True)
    return {
        str(keys[r]): _quantiles(ms[codes == present[i]])
        for r, i in sorted((r, i) for i, r in enumerate(rank) if r >= 0)
    }


def publish_rate(ops: pd.DataFrame, client: np.ndarray) -> float | None:
    """Acknowledged publishes per second between the first and last publish invoke."""
    pub = client & equals(ops, "f", "publish")
    times = ops["time"].to_numpy()[pub & equals(ops, "type", "invoke")]
    if len(times) < 2 or times.max() == times.min():
        return None
    acked = int((pub & equals(ops, "type", "ok")).sum())
    return acked / ((times.max() - times.min()) / 1e9)


def check_stats(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Counts, publish rate and latency of a history; see the module docstring."""
    client = client_mask(ops)
    ok_client = int((client & equals(ops, "type", "ok")).sum())
    return {
        "valid": True if ok_client else "unknown",
        "op_count": len(ops),
        "client_op_count": int(client.sum()),
        "nemesis_count": int((~client).sum()),
        "ok_client_count": ok_client,
        "by_f": counts_by_f(ops),
        "publish_rate": publish_rate(ops, client),
        "latency_ms": op_latency_ms(ops),
    }
