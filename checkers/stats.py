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

from checkers.schema import OP_TYPES, client_mask


def _obj(ops: pd.DataFrame, name: str) -> np.ndarray:
    return ops[name].to_numpy(dtype=object)


def paired_ops(ops: pd.DataFrame) -> pd.DataFrame:
    """Each client invoke with its completion: one row per completed op.

    Columns: ``invoke_time``, ``complete_time`` (int ns), ``type`` (of the
    completion: ok/fail/info), ``f``, ``process``, ``node`` and ``value``
    (of the invoke), ``invoke_row`` and ``complete_row`` (the two ops' positions
    in ``ops``). Invokes without a completion (a run cut short) are left out.
    """
    rows = np.flatnonzero(client_mask(ops))
    procs = ops["process"].to_numpy()[rows].astype(np.int64)
    # rows are in history order, so a stable sort by process keeps each process's ops in order
    order = rows[np.argsort(procs, kind="stable")]
    procs = np.sort(procs, kind="stable")
    types = _obj(ops, "type")[order]
    is_pair = (types[:-1] == "invoke") & (types[1:] != "invoke") & (procs[:-1] == procs[1:])
    inv = order[:-1][is_pair]
    done = order[1:][is_pair]
    times = ops["time"].to_numpy()
    return pd.DataFrame(
        {
            "invoke_time": times[inv],
            "complete_time": times[done],
            "type": types[1:][is_pair],
            "f": _obj(ops, "f")[inv],
            "process": procs[:-1][is_pair],
            "node": _obj(ops, "node")[inv],
            "value": _obj(ops, "value")[inv],
            "invoke_row": inv,
            "complete_row": done,
        }
    )


def counts_by_f(ops: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{f: {invoke, ok, fail, info}} over every op."""
    f_codes, fs = pd.factorize(_obj(ops, "f"), use_na_sentinel=False)
    type_codes = pd.Index(OP_TYPES).get_indexer(_obj(ops, "type"))
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
        q = np.percentile(group.to_numpy(), [50, 90, 99, 100])
        out[str(f)] = {"count": len(group)} | dict(
            zip(("p50", "p90", "p99", "max"), (round(float(x), 3) for x in q), strict=True)
        )
    return out


def publish_rate(ops: pd.DataFrame, client: np.ndarray) -> float | None:
    """Acknowledged publishes per second between the first and last publish invoke."""
    pub = client & (_obj(ops, "f") == "publish")
    types = _obj(ops, "type")
    times = ops["time"].to_numpy()[pub & (types == "invoke")]
    if len(times) < 2 or times.max() == times.min():
        return None
    acked = int((pub & (types == "ok")).sum())
    return acked / ((times.max() - times.min()) / 1e9)


def check_stats(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Counts, publish rate and latency of a history; see the module docstring."""
    client = client_mask(ops)
    ok_client = int((client & (_obj(ops, "type") == "ok")).sum())
    return {
        "valid": True if ok_client else "unknown",
        "op_count": len(ops),
        "client_op_count": int(client.sum()),
        "nemesis_count": int((~client).sum()),
        "ok_client_count": ok_client,
        "by_f": counts_by_f(ops),
        "publish_rate": publish_rate(ops, client),
        "latency_ms": latency_ms(paired_ops(ops)),
    }
