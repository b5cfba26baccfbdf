"""Building blocks of every spec model: frozen, strict pydantic models and durations.

Imported by :mod:`harness.scenario` and by the workload and fault modules
that own their specs, so none of them imports another to get these.

- :class:`_Model`: ``extra="forbid"`` (an unknown field is an error) and frozen;
- :data:`Seconds`: seconds as a number, or a Go duration as nats-server
  reads one (``500ms``, ``10s``, ``2m``, ``1h``, ``1m30s``, ``1.5h``,
  ``250us``: numbers with units ``ns``, ``us``/``µs``, ``ms``, ``s``, ``m``,
  ``h``, one after another), from 0 to :data:`MAX_SECONDS` (24h), finite
  (:func:`parse_seconds`, :func:`within_bounds`);
- :data:`TargetName`: which nodes a fault hits;
- :func:`field_names`: the fields valid where a validation error points, so
  an unknown field can be answered with the nearest valid name.
"""

from __future__ import annotations

import re
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

MAX_SECONDS = 86400.0  # 24h: no phase of a run is meant to last longer
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 0.001, "s": 1.0, "m": 60.0,
          "h": 3600.0}  # fmt: skip
_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PART = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h)")
_GO_DURATION = re.compile(rf"(?:{_NUMBER}(?:ns|us|µs|μs|ms|s|m|h))+")
_BARE = re.compile(_NUMBER)


def parse_seconds(v: Any) -> Any:
    """``10`` / ``"10s"`` / ``"1m30s"`` / ``"500ms"`` -> seconds as float; other input
    unchanged. Spaces are ignored (``"1m 30s"``); a bare number is seconds."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int | float):
        try:
            return float(v)
        except OverflowError:  # an integer beyond any float: too long, as within_bounds says
            return float("inf")
    if isinstance(v, str):
        text = "".join(v.split())
        if _BARE.fullmatch(text):
            return float(text)
        if not _GO_DURATION.fullmatch(text):
            raise ValueError(f"{v!r} is not a duration (e.g. 10, 10s, 2m, 1m30s, 500ms)")
        return sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(text))
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


def field_names(model: type[BaseModel], loc: tuple[int | str, ...]) -> list[str]:
    """The field names valid where pydantic's error ``loc`` points (its last part is the
    name written there), for "did you mean"; ``[]`` when the path cannot be followed.

    The path is followed through nested models, tuples and lists (an index),
    mappings (a key), optional fields and discriminated unions (pydantic puts
    the tag, e.g. a fault's ``kind``, in the path).
    """
    tp: Any = model
    for part in loc[:-1]:
        tp = _step(tp, part)
    tp = _members(tp)
    if len(tp) == 1 and isinstance(tp[0], type) and issubclass(tp[0], BaseModel):
        return [f.alias or name for name, f in tp[0].model_fields.items()]
    return []


def _members(tp: Any) -> list[Any]:
    """The types ``tp`` may be: itself, or a union's members, without Annotated and None."""
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    if get_origin(tp) not in (Union, UnionType):
        return [tp]
    members = [m for a in get_args(tp) if a is not type(None) for m in _members(a)]
    models = [m for m in members if isinstance(m, type) and issubclass(m, BaseModel)]
    return models if len(models) == 1 else members  # `_Entry | str`: fields are the model's


def _tagged(model: Any, tag: int | str) -> bool:
    """True when ``model`` is a pydantic model with a Literal field that admits ``tag``."""
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return False
    literals = (f.annotation for f in model.model_fields.values())
    return any(get_origin(a) is Literal and tag in get_args(a) for a in literals)


def _step(tp: Any, part: int | str) -> Any:
    """The type one ``loc`` part further in than ``tp`` (None: cannot follow)."""
    members = _members(tp)
    if len(members) > 1:  # a discriminated union: pydantic's path names the member's tag
        return next((m for m in members if _tagged(m, part)), None)
    tp = members[0]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        fields = {f.alias or name: f for name, f in tp.model_fields.items()}
        field = fields.get(str(part))
        return field.annotation if field is not None else None
    origin, args = get_origin(tp), get_args(tp)
    if origin in (tuple, list) and isinstance(part, int) and args:
        return args[0]
    if origin is dict and len(args) == 2:
        return args[1]
    return None
