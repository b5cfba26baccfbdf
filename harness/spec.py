"""Pydantic building blocks shared by the scenario and the fault modules.

A scenario (:mod:`harness.scenario`) and each fault's spec (in its own
module under :mod:`harness.faults`) are frozen pydantic models that forbid
unknown fields. They share what is here, so a fault module needs nothing
from :mod:`harness.scenario` (which itself builds its fault union from the
fault registry): :class:`_Model`, :data:`Seconds` (a duration: a number of
seconds or ``"500ms"``/``"10s"``/``"2m"``/``"1h"``, parsed by
:func:`parse_seconds`) and :data:`TargetName` (which nodes a fault hits,
resolved by :mod:`harness.faults.targets`).
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
    """Frozen, and an unknown field is an error (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
