"""Building blocks of every spec model: frozen, strict pydantic models and durations.

Imported by :mod:`harness.scenario` and by the workload and fault modules
that own their specs, so none of them imports another to get these.

- :class:`_Model`: ``extra="forbid"`` (an unknown field is an error) and frozen;
- :data:`Seconds`: seconds as a number or a string with a unit (``500ms``,
  ``10s``, ``2m``, ``1h``), from 0 to :data:`MAX_SECONDS` (24h), finite
  (:func:`parse_seconds`, :func:`within_bounds`);
- :data:`TargetName`: which nodes a fault hits.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

MAX_SECONDS = 86400.0  # 24h: no phase of a run is meant to last longer
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_seconds(v: Any) -> Any:
    """``10`` / ``"10s"`` / ``"2m"`` / ``"500ms"`` -> seconds as float; other input unchanged."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        try:
            return float(v)
        except OverflowError:  # an integer beyond any float: too long, as within_bounds says
            return float("inf")
    if isinstance(v, str):
        m = _DURATION.match(v)
        if not m:
            raise ValueError(f"{v!r} is not a duration (e.g. 10, 10s, 2m, 500ms)")
        return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    return v


def human(seconds: float) -> str:
    """``86400`` -> ``"24h"``, ``90`` -> ``"90s"``, ``0.5`` -> ``"500ms"``."""
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms" if seconds < 1 else f"{seconds:g}s"


def within_bounds(v: float) -> float:
    """``v`` if it is a finite duration from 0 to :data:`MAX_SECONDS`; else a ValueError."""
    bounds = f"give a duration from 0 to {human(MAX_SECONDS)}"
    if v != v:  # NaN
        raise ValueError(f"not a number; {bounds}")
    if v < 0:
        raise ValueError(f"{v:g}s is negative; {bounds}")
    if v > MAX_SECONDS:
        shown = "infinity" if v == float("inf") else f"{v:g}s"
        raise ValueError(f"{shown} is longer than {human(MAX_SECONDS)}; {bounds}")
    return v


Seconds = Annotated[float, BeforeValidator(parse_seconds), AfterValidator(within_bounds)]

TargetName = Literal["one", "minority", "majority", "all", "leader", "follower"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
