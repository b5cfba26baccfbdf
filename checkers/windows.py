"""Fault windows: a history's nemesis ops paired into start–stop intervals.

In: the ops DataFrame of a history (docs/contracts.md §1; only nemesis ops
are looked at). Out: :class:`FaultWindow` objects in seconds since the run
started, sorted by start. A fault's window begins at its start op's
``began`` (when it started acting) and ends at its stop op; settling actions
of the recovery wait (``{"settle": …}`` values: step-downs, the recovery
wait itself) are windows too, with ``settle`` in their ``detail``. The
report shades these windows and the availability checker measures against
them, so both read the same intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from checkers.schema import client_mask, column

NS = 1e9


@dataclass(frozen=True)
class FaultWindow:
    """One fault from its start op to its stop op (seconds since the run started)."""

    kind: str
    start: float
    stop: float
    stopped: bool  # False: no stop op; ``stop`` is then the end of the history
    nodes: tuple[str, ...] = ()
    detail: dict[str, Any] = field(default_factory=dict)


def _nodes(value: dict[str, Any]) -> tuple[str, ...]:
    nodes = value.get("nodes") or ()
    if isinstance(nodes, list | tuple | dict):  # a dict: per-node state, keyed by node
        return tuple(str(n) for n in nodes)
    return (str(nodes),)


def fault_windows(ops: pd.DataFrame) -> list[FaultWindow]:
    """Nemesis start ops paired with their stop ops: the same ``window`` if they name one,
    else the same kind (and the same nodes if the stop names any).

    A nemesis op that is neither a start nor a stop (a settling action of the
    recovery wait) becomes a window from its ``began`` (if it has one) to
    the op; a start without a stop lasts until the last op of the history.
    """
    nem = ops[~client_mask(ops)]
    end = float(ops["time"].max()) / NS if len(ops) else 0.0
    open_: list[tuple[float, str, tuple[str, ...], dict[str, Any]]] = []
    done: list[FaultWindow] = []
    for t, f, value in zip(nem["time"].to_numpy() / NS, nem["f"], nem["value"], strict=True):
        v = value if isinstance(value, dict) else {"value": value}
        if "start" in v:
            rest = {k: x for k, x in v.items() if k not in ("start", "nodes", "began")}
            began = v.get("began")  # when the fault began to act (the op comes once in effect)
            t0 = float(began) / NS if isinstance(began, int | float) else float(t)
            open_.append((t0, str(v["start"]), _nodes(v), rest))
        elif "stop" in v:
            kind, nodes = str(v["stop"]), _nodes(v)
            window = v.get("window")  # the window both ops name, when the nemesis wrote it
            match = [i for i, o in enumerate(open_) if window and o[3].get("window") == window]
            match = match or [
                i for i, o in enumerate(open_) if o[1] == kind and (not nodes or o[2] == nodes)
            ]
            match = match or [i for i, o in enumerate(open_) if o[1] == kind]
            if match:
                t0, _, started_on, rest = open_.pop(match[0])
                done.append(FaultWindow(kind, t0, float(t), True, started_on or nodes, rest))
        else:  # a settling action (a step-down, the recovery wait): from ``began`` if it says
            began = v.get("began")
            t0 = min(float(began) / NS, float(t)) if isinstance(began, int | float) else float(t)
            done.append(FaultWindow(str(f), t0, float(t), True, _nodes(v), v))
    done += [FaultWindow(k, t0, max(end, t0), False, n, r) for t0, k, n, r in open_]
    return sorted(done, key=lambda w: (w.start, w.kind))


def faults_only(windows: list[FaultWindow]) -> list[FaultWindow]:
    """The windows of injected faults (without the settling actions of the recovery wait)."""
    return [w for w in windows if "settle" not in w.detail]


def recovery_record(ops: pd.DataFrame) -> dict[str, Any] | None:
    """The value of the last ``{"settle": "recovery", …}`` nemesis op (the runner writes it
    after the recovery wait: ``converged``, ``seconds``, ``bound``, ``nudges``, ``nodes``), or
    None for a history without one."""
    nem = np.flatnonzero(~client_mask(ops))
    for value in column(ops, "value")[nem][::-1]:
        if isinstance(value, dict) and value.get("settle") == "recovery":
            return value
    return None
