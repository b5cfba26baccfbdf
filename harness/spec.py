"""Building blocks of every spec model: frozen, strict pydantic models and durations.

Imported by :mod:`harness.scenario` and by the workload and fault modules
that own their specs, so none of them imports another to get these.

- :class:`_Model`: ``extra="forbid"`` (an unknown field is an error) and frozen;
- :data:`Seconds`: seconds as a number or a string with a unit (``500ms``,
  ``10s``, ``2m``, ``1h``), at least 0 (:func:`parse_seconds`);
- :data:`TargetName`: which nodes a fault hits.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")


def parse_seconds(v: Any) -> Any:
    """``10`` / ``"10s"`` / ``"2m"`` / ``"500ms"`` -> seconds as float; other input unchanged."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        return float(v)
    if isinstance(v, str):
        m = _DURATION.match(v)
        if not m:
            raise ValueError(f"{v!r} is not a duration (e.g. 10, 10s, 2m, 500ms)")
        return float(m.group(1)) * _UNITS[m.group(2) or "s"]
    return v


Seconds = Annotated[float, BeforeValidator(parse_seconds), Field(ge=0)]

TargetName = Literal["one", "minority", "majority", "all", "leader", "follower"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
