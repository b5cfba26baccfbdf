"""Linearizability models: a sequential object as a few pure functions.

After Porcupine's ``model.go``. A :class:`Model` says what one object does
when operations are applied one at a time; :mod:`checkers.linear` searches
for an order of a history's operations that the model accepts. A model is
data plus pure functions:

- ``init() -> state``: the state before any operation; states must be
  hashable (the search memoises on them) and compare by value;
- ``step(state, input, output) -> (ok, new_state)``: apply one operation.
  ``input`` is ``(f, argument)``; ``output`` is what the operation returned
  (the completion's argument, followed by the model's ``fields`` when it
  has any), or :data:`UNKNOWN` for an ``info`` op, whose outcome nobody saw:
  the step then says what the op does if it took effect. ``ok`` False means
  the op cannot have returned ``output`` in ``state``;
- ``partition(ops) -> groups``: P-compositionality: groups of ops checked
  independently (here always by key: the object is one register per key);
- ``prune(ops) -> ops`` (optional): one key's ops without ``info`` ops that
  provably change no verdict, so a key with many unknown writes does not
  spend the search budget on them (:func:`unobserved_writes`).

How a history maps onto a model (Jepsen's independent-key convention,
docs/contracts.md §1): the op's ``f`` is the model's operation name
(``fs``); the invoke's ``value`` is ``[key, argument]``; the ``ok``
completion's ``value`` is ``[key, result]`` and the model's ``fields``
(e.g. ``revision``) are read from the completion's extra fields. An
``info`` op's output is :data:`UNKNOWN`; a ``fail`` op did not happen and is
dropped; an ``info`` op of a ``readonly`` f is dropped too (it changed
nothing and returned nothing). JSON lists are turned into tuples
(:func:`freeze`) so keys, arguments and states hash.

The models (:data:`MODELS`):

=============  =========  ====================  ==================================
model          f          invoke argument       ok completion (result, fields)
=============  =========  ====================  ==================================
register       read       null                  the value read (null: never written)
               write      value                 anything (ignored)
cas-register   read       null                  the value read
               write      value                 anything (ignored)
               cas        [expected, new]       anything: ok means it swapped;
                                                a refused cas is ``fail``
kv             get        null                  the value, or null when absent or
                                                deleted; ``revision`` optional
               put        value                 anything; ``revision`` optional
               create     value                 anything; ``revision`` optional;
                                                fails (``fail``) if the key exists
               update     [value, last]         anything; ``revision`` optional;
                                                fails unless the key's revision
                                                is ``last``
               delete     null                  anything; ``revision`` optional
=============  =========  ====================  ==================================

The kv state is ``(value, revision)``: ``value`` None when absent (never
written, or deleted), ``revision`` 0 before any write (so ``update(last=0)``
is a create, as with NATS' expected last subject sequence) and None when an
``info`` write left it unknown. Revisions only grow: a write whose
``revision`` is not above the current one cannot follow it. A get that
reports a revision must match the state's (an unknown one is learnt).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

State = Hashable
Input = tuple[str, Any]
Step = Callable[[Any, Input, Any], tuple[bool, Any]]


class _Unknown:
    """The output of an op whose outcome is unknown (``info``)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


class Op(NamedTuple):
    """One operation of a history, as the search sees it.

    ``invoke_pos`` and ``complete_pos`` order it in real time (``complete_pos`` is None for
    an ``info`` op, which may take effect any time after its invoke);
    ``input``/``output`` go to the model's ``step``; the rest is for reports.
    """

    key: Any
    input: Input
    output: Any
    type: str  # ok | info
    process: Any
    invoke_pos: int
    complete_pos: int | None
    invoke_time: int
    complete_time: int | None
    invoke_value: Any
    complete_value: Any
    line: int  # 1-based history line of the invoke


ATOMS = frozenset({int, str, bool, type(None)})


def freeze(v: Any) -> Any:
    """``v`` with lists as tuples and dicts as sorted item tuples (hashable); NaN is None."""
    if type(v) in ATOMS:
        return v
    if isinstance(v, list | tuple):
        return tuple([freeze(x) for x in v])
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(x)) for k, x in v.items()))
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


def by_key(ops: Sequence[Op]) -> list[list[Op]]:
    """Ops grouped by ``key``, each group in the given order (groups by first appearance)."""
    groups: dict[Any, list[Op]] = {}
    for op in ops:
        groups.setdefault(op.key, []).append(op)
    return list(groups.values())


def unobserved_writes(ops: Sequence[Op]) -> list[Op]:
    """``ops`` without the ``info`` writes and cas ops whose new value nothing observed.

    For the register models: a value is observed when an ``ok`` read returned it
    or a cas expects it. Dropping an unknown write of an unobserved value is
    sound: in any order that places it, no op after it until the next write can
    depend on the state it leaves (a read would return the value, a cas would
    expect it), so the same order without it is also valid; and an ``info`` op
    may take effect never.
    """
    seen = {op.output for op in ops if op.type == "ok" and op.input[0] == "read"}
    seen |= {_pair(op.input[1], "cas")[0] for op in ops if op.input[0] == "cas"}
    return [op for op in ops if op.type == "ok" or op.input[0] == "read" or _new(op) in seen]


def _new(op: Op) -> Any:
    return _pair(op.input[1], "cas")[1] if op.input[0] == "cas" else op.input[1]


def _show(state: Any) -> str:
    return "unwritten" if state is None else repr(state)


@dataclass(frozen=True)
class Model:
    """A sequential object (see the module docstring for each member)."""

    name: str
    fs: frozenset[str]
    readonly: frozenset[str]
    init: Callable[[], Any]
    step: Step
    partition: Callable[[Sequence[Op]], list[list[Op]]] = by_key
    prune: Callable[[Sequence[Op]], list[Op]] | None = None
    fields: tuple[str, ...] = ()
    show: Callable[[Any], str] = _show


def _pair(arg: Any, what: str) -> tuple[Any, Any]:
    if not isinstance(arg, tuple) or len(arg) != 2:
        raise ValueError(f"{what} argument must be a pair, not {arg!r}")
    return arg


def _register_step(state: Any, inp: Input, out: Any) -> tuple[bool, Any]:
    f, arg = inp
    if f == "read":
        return out is UNKNOWN or out == state, state
    if f == "write":
        return True, arg
    if f == "cas":
        expected, new = _pair(arg, "cas")
        return (True, new) if state == expected else (False, state)
    raise ValueError(f"register model: no operation {f!r}")


def _kv_step(state: tuple[Any, Any], inp: Input, out: Any) -> tuple[bool, Any]:
    f, arg = inp
    value, rev = state
    got, new_rev = (UNKNOWN, None) if out is UNKNOWN else out
    if f == "get":
        if got is UNKNOWN:
            return True, state
        if got != value:
            return False, state
        if new_rev is None or new_rev == rev:
            return True, state
        return (True, (value, new_rev)) if rev is None else (False, state)
    if new_rev is not None and rev is not None and new_rev <= rev:
        return False, state  # revisions are stream sequences: they only grow
    if f == "put":
        return True, (arg, new_rev)
    if f == "create":
        return (True, (arg, new_rev)) if value is None else (False, state)
    if f == "update":
        new, last = _pair(arg, "update")
        return (True, (new, new_rev)) if rev is None or rev == last else (False, state)
    if f == "delete":
        return True, (None, new_rev)
    raise ValueError(f"kv model: no operation {f!r}")


def _kv_show(state: tuple[Any, Any]) -> str:
    value, rev = state
    at = "unknown revision" if rev is None else f"revision {rev}"
    return f"absent ({at})" if value is None else f"{value!r} ({at})"


REGISTER = Model(
    name="register",
    fs=frozenset({"read", "write"}),
    readonly=frozenset({"read"}),
    init=lambda: None,
    step=_register_step,
    prune=unobserved_writes,
)
CAS_REGISTER = Model(
    name="cas-register",
    fs=frozenset({"read", "write", "cas"}),
    readonly=frozenset({"read"}),
    init=lambda: None,
    step=_register_step,
    prune=unobserved_writes,
)
KV = Model(
    name="kv",
    fs=frozenset({"get", "put", "create", "update", "delete"}),
    readonly=frozenset({"get"}),
    init=lambda: (None, 0),
    step=_kv_step,
    fields=("revision",),
    show=_kv_show,
)
MODELS: dict[str, Model] = {m.name: m for m in (REGISTER, CAS_REGISTER, KV)}
