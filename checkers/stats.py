"""The stats checker: how many ops of each kind, how fast, and how slow.

In: the ops DataFrame of any history (DESIGN §3.1) and a context dict (unused).
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

from checkers.queue import client_mask

OP_TYPES = ("invoke", "ok", "fail", "info")
PAIR_COLUMNS = ("invoke_time", "complete_time", "type", "f", "process", "node", "value")


def paired_ops(ops: pd.DataFrame) -> pd.DataFrame:
    """Each client invoke with its completion: one row per completed op.

    Columns: ``invoke_time``, ``complete_time`` (int ns), ``type`` (of the
    completion: ok/fail/info), ``f``, ``process``, ``node`` and ``value``
    (of the invoke). Invokes without a completion (a run cut short) are left out.
    """
    client = ops.loc[client_mask(ops), ["index", "time", "type", "f", "process", "node", "value"]]
    procs = client["process"].to_numpy(dtype=np.int64)
    order = np.lexsort((client["index"].to_numpy(), procs))
    types = client["type"].to_numpy(dtype=object)[order]
    procs = procs[order]
    is_pair = (types[:-1] == "invoke") & (types[1:] != "invoke") & (procs[:-1] == procs[1:])
    inv = order[:-1][is_pair]
    done = order[1:][is_pair]
    times = client["time"].to_numpy()
    return pd.DataFrame(
        {
            "invoke_time": times[inv],
            "complete_time": times[done],
            "type": client["type"].to_numpy(dtype=object)[done],
            "f": client["f"].to_numpy(dtype=object)[inv],
            "process": procs[:-1][is_pair],
            "node": client["node"].to_numpy(dtype=object)[inv],
            "value": client["value"].to_numpy(dtype=object)[inv],
        }
    )


def counts_by_f(ops: pd.DataFrame) -> dict[str, dict[str, int]]:
    """{f: {invoke, ok, fail, info}} over every op."""
    table = pd.crosstab(ops["f"].astype(object), ops["type"].astype(object))
    table = table.reindex(columns=list(OP_TYPES), fill_value=0)
    return {str(f): {t: int(n) for t, n in row.items()} for f, row in table.iterrows()}


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
    pub = client & (ops["f"] == "publish").to_numpy()
    times = ops["time"].to_numpy()[pub & (ops["type"] == "invoke").to_numpy()]
    if len(times) < 2 or times.max() == times.min():
        return None
    acked = int((pub & (ops["type"] == "ok").to_numpy()).sum())
    return acked / ((times.max() - times.min()) / 1e9)


def check_stats(ops: pd.DataFrame, context: dict[str, Any]) -> dict[str, Any]:
    """Counts, publish rate and latency of a history; see the module docstring."""
    client = client_mask(ops)
    ok_client = int((client & (ops["type"] == "ok").to_numpy()).sum())
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
