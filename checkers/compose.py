"""Composing checkers by name: run several, crash-safe, and merge their verdicts.

A checker is a pure function ``(ops, context) -> dict`` (docs/contracts.md §2);
:data:`REGISTRY` names every one. Whoever composes chooses the names (the
harness takes them from the workload: ``wellformed``, the workload's
``checkers``, and ``logs`` when there is a ``nodes/`` folder); nothing here
knows any workload.

In (:func:`check_history`): the ops DataFrame of a history
(:mod:`checkers.schema`), a context dict and the checker names, optionally
the name of the headline checker. The context keys the checkers read:
``nodes`` (every cluster node, queue), ``nodes_dir`` (the run's ``nodes/``
folder, logs), ``cut_off`` (the history was cut short, wellformed),
``writes`` (the client op names that are writes, availability).

Out: ``{"valid", "anomalies", "checkers": {name: result}, "headline_checker"}``
where ``valid`` is the worst of the checkers' (False > "unknown" > True) and
``anomalies`` the union of their anomaly names in order. A checker that
raises yields ``{"valid": "unknown", "error": ...}`` instead of crashing
the run. While they run, :func:`checkers.schema.shared_columns` lets them share
the typed views of ``ops`` (client mask, column codes, ops grouped by process)
instead of each deriving its own.

The headline checker's result carries a ``summary`` block, which
:func:`checkers.verdict.headline` turns into the verdict line and every
view's counts and rows (another checker may carry one too; the verdict uses
its ``headline`` to explain an "unknown")::

    "summary": {
      "headline": str,        # the checker's finding as a phrase, e.g.
                              # "LOST 12 of 5,432 acknowledged writes (0.22%)"
      "counts": [{"name": str, "value": int | None, "bad": bool, "meaning": str}, ...],
      "row": {name: number},  # the few figures a one-line row (compare, suite) shows
      "rate": {"name": str, "label": str},   # the row figure a comparison charts
      "unread_nodes": [node, ...],           # nodes the checker could not read
      "nodes": [{"node", "status", "note", "counts": [count, ...]}, ...],
      "notes": [sentence, ...],
      "over_time": {"label", "ylabel", "caption", "overall": HIST, "per_node": {node: HIST}},
      "examples": [{"title": str, "note": str, "head": [str, ...], "rows": [[cell, ...], ...]}],
    }

Every key but ``headline`` is optional; ``examples`` are the first cases
of each anomaly with the ops involved (the report shows up to 10 rows
each); ``bad`` marks a count that shows something wrong; HIST is
``{"bucket_s", "start_s", "counts"}`` (:func:`checkers.queue.ack_histogram`).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

import pandas as pd

from checkers.availability import check_availability
from checkers.batch import check_batch
from checkers.cas import check_cas
from checkers.consumer import check_consumer
from checkers.counter import check_counter
from checkers.dedup import check_dedup
from checkers.kv import check_kv
from checkers.linear import linear_checker
from checkers.logs import check_logs
from checkers.queue import check_queue
from checkers.schema import MalformedHistory, shared_columns
from checkers.stats import check_stats
from checkers.wellformed import check_wellformed

Checker = Callable[[pd.DataFrame, dict[str, Any]], dict[str, Any]]
Valid = bool | str

REGISTRY: dict[str, Checker] = {
    "wellformed": check_wellformed,
    "stats": check_stats,
    "availability": check_availability,
    "queue": check_queue,
    "consumer": check_consumer,
    "logs": check_logs,
    "dedup": check_dedup,
    "linear-register": linear_checker("register"),
    "linear-cas-register": linear_checker("cas-register"),
    "linear-kv": linear_checker("kv"),
    "counter": check_counter,
    "batch": check_batch,
    "kv": check_kv,
    "cas": check_cas,
}

_RANK = {True: 0, "unknown": 1, False: 2}


def merge_valid(*vs: Valid) -> Valid:
    """The worst verdict: False > "unknown" > True; no verdicts at all is True."""
    for v in vs:
        if v not in (True, False, "unknown"):
            raise ValueError(f'valid must be True, False or "unknown", not {v!r}')
    return max(vs, key=lambda v: _RANK[v], default=True)


def check_safe(name: str, fn: Checker, ops: Any, context: dict[str, Any]) -> dict[str, Any]:
    """Run one checker; an exception becomes ``{"valid": "unknown", "error": ...}``.

    Except :class:`~checkers.schema.MalformedHistory`: a history that breaks
    the contract is bad input, raised to the caller.
    """
    try:
        result = fn(ops, context)
    except MalformedHistory:  # bad input, not a crashed checker: the caller reports it
        raise
    except Exception as e:
        return {"valid": "unknown", "error": f"checker {name} raised {type(e).__name__}: {e}"}
    if not isinstance(result, dict) or result.get("valid") not in (True, False, "unknown"):
        return {"valid": "unknown", "error": f"checker {name} returned no valid verdict"}
    return result


def checkers_named(names: Iterable[str]) -> dict[str, Checker]:
    """The registered checkers of ``names``, in order; an unknown name is a ValueError."""
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        known = ", ".join(sorted(REGISTRY))
        raise ValueError(f"no checker named {', '.join(unknown)} (known: {known})")
    return {n: REGISTRY[n] for n in names}


def merge(results: dict[str, dict[str, Any]], headline: str | None = None) -> dict[str, Any]:
    """Composed form of per-checker ``results``: worst verdict, anomalies in order."""
    anomalies: list[str] = []
    for r in results.values():
        anomalies += [a for a in r.get("anomalies") or [] if a not in anomalies]
    return {
        "valid": merge_valid(*(r["valid"] for r in results.values())),
        "anomalies": anomalies,
        "checkers": results,
        "headline_checker": headline,
    }


def check_history(
    ops: pd.DataFrame,
    context: dict[str, Any],
    names: Iterable[str],
    headline: str | None = None,
    seed: Mapping[Hashable, Any] | None = None,
) -> dict[str, Any]:
    """Run the checkers ``names`` on ``ops`` and merge them; see the module docstring.
    ``seed``: typed views of ``ops`` its loader made (``LoadedHistory.views``)."""
    chosen = checkers_named(names)
    if headline is not None and headline not in chosen:
        raise ValueError(f"headline checker {headline!r} is not among {', '.join(chosen)}")
    with shared_columns(ops, seed):  # each typed view of ops is derived once, for every checker
        results = {name: check_safe(name, fn, ops, context) for name, fn in chosen.items()}
    return merge(results, headline)
