"""Composing checkers: run several by name, crash-safe, and merge their verdicts.

In: the ops DataFrame of a history, a context dict (``nodes``, …) and a
workload name. Out (:func:`check_history`): ``{"valid", "anomalies",
"checkers": {name: result}}`` where ``valid`` is the worst of the checkers'
(False > "unknown" > True, DESIGN §3.2) and ``anomalies`` the union of their
anomaly names. A checker that raises yields ``{"valid": "unknown", "error":
...}`` instead of crashing the run. A new workload adds one line to
:data:`WORKLOAD_CHECKERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from checkers.queue import check_queue
from checkers.stats import check_stats

Checker = Callable[[pd.DataFrame, dict[str, Any]], dict[str, Any]]
Valid = bool | str

WORKLOAD_CHECKERS: dict[str, dict[str, Checker]] = {
    "queue": {"stats": check_stats, "queue": check_queue},
}

_RANK = {True: 0, "unknown": 1, False: 2}


def merge_valid(*vs: Valid) -> Valid:
    """The worst verdict: False > "unknown" > True; no verdicts at all is True."""
    for v in vs:
        if v not in (True, False, "unknown"):
            raise ValueError(f'valid must be True, False or "unknown", not {v!r}')
    return max(vs, key=lambda v: _RANK[v], default=True)


def check_safe(name: str, fn: Checker, ops: pd.DataFrame, context: dict[str, Any]) -> dict:
    """Run one checker; an exception becomes ``{"valid": "unknown", "error": ...}``."""
    try:
        result = fn(ops, context)
    except Exception as e:
        return {"valid": "unknown", "error": f"checker {name} raised {type(e).__name__}: {e}"}
    if not isinstance(result, dict) or "valid" not in result:
        return {"valid": "unknown", "error": f"checker {name} returned no 'valid' verdict"}
    return result


def check_history(
    ops: pd.DataFrame, context: dict[str, Any], workload: str = "queue"
) -> dict[str, Any]:
    """Run every checker the workload registers and merge their verdicts and anomalies."""
    if workload not in WORKLOAD_CHECKERS:
        known = ", ".join(sorted(WORKLOAD_CHECKERS))
        raise ValueError(f"no checkers for workload {workload!r} (known: {known})")
    results = {
        name: check_safe(name, fn, ops, context) for name, fn in WORKLOAD_CHECKERS[workload].items()
    }
    anomalies: list[str] = []
    for r in results.values():
        anomalies += [a for a in r.get("anomalies", []) if a not in anomalies]
    return {
        "valid": merge_valid(*(r["valid"] for r in results.values())),
        "anomalies": anomalies,
        "checkers": results,
    }
