"""The fault registry, and everything derived from it.

A fault is ONE module (its spec, its fault class, its ``NEEDS``, and when
the defaults will not do its ``label`` and ``check``, all gathered in the
module's :class:`~harness.faults.base.FaultKind`, ``KIND``) plus ONE line
in :data:`REGISTRY`, which maps the scenario's ``kind`` to it.
From the registry come:

- :data:`FaultSpec`, the scenario's fault union (discriminated by ``kind``),
  and :data:`StepSpec`, the same minus ``compose`` and ``program`` (what a
  composed fault may chain and a program may start);
- :func:`make` (a fault object for one window), :func:`label` (a spec in a
  few words, for ``run --plan`` and the harness log);
- :func:`walk`, the one walker of composed faults and programs, and on it :func:`kinds`,
  :func:`needs` (the abilities a spec needs, steps included), :func:`check`
  (what the scenario makes impossible, e.g. a ring of 3 nodes: exit 2) and
  :func:`preflight` (what the backend cannot offer here: exit 3, one line);
- ``doctor``'s per-fault rows and ``Scenario.uses_lazyfs`` (a planned fault
  needs ``power``).

A test registers a toy fault from its own module by adding a line to the
registry (``monkeypatch.setitem(REGISTRY, "boom", FaultKind(...))``) and
handing the nemesis or the runner a spec of it (the union itself is built
once, at import, so a scenario file cannot name a kind added later).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Annotated, Any, TypeAlias, Union, get_args

from pydantic import Field

from harness.backends.base import ABILITIES
from harness.errors import ScenarioError, Unsupported
from harness.faults import (
    compose,
    corrupt,
    kill,
    netem,
    partition,
    pause,
    power,
    program,
    stepdown,
)
from harness.faults.base import Fault, FaultContext, FaultKind, FaultSpecBase

if TYPE_CHECKING:
    from harness.scenario import Scenario


REGISTRY: dict[str, FaultKind] = {
    "kill": kill.KIND,
    "pause": pause.KIND,
    "power-loss": power.KIND,
    "partition": partition.KIND,
    "step-down": stepdown.KIND,
    "corrupt": corrupt.KIND,
    "delay": netem.DELAY,
    "loss": netem.LOSS,
    # a composed fault makes and labels its steps through the registry itself
    "compose": compose.kind(lambda s: make(s), lambda s: label(s)),
    # a program is expanded into its steps' windows by the planner (faults.schedule)
    "program": program.kind(lambda s: label(s)),
}
NESTING = ("compose", "program")  # kinds that hold steps: never a step themselves


def _kind_of(spec: type[FaultSpecBase]) -> str:
    (kind,) = get_args(spec.model_fields["kind"].annotation)
    return str(kind)


def _union(specs: Iterable[type[FaultSpecBase]]) -> Any:
    """A pydantic union of ``specs`` that picks the model by ``kind``."""
    return Annotated[Union[tuple(specs)], Field(discriminator="kind")]  # noqa: UP007 - built at run time


def _build() -> tuple[Any, Any]:
    """(StepSpec, FaultSpec) from the registry; checks each key matches its spec's kind."""
    for key, fk in REGISTRY.items():
        if _kind_of(fk.spec) != key:
            raise ValueError(f"REGISTRY[{key!r}] holds the spec of {_kind_of(fk.spec)!r}")
    steps = _union(fk.spec for k, fk in REGISTRY.items() if k not in NESTING)
    for model in (compose.ComposeSpec, program.ProgramStep, program.ProgramSpec):
        model.model_rebuild(force=True, _types_namespace={"StepSpec": steps})
    return steps, _union(fk.spec for fk in REGISTRY.values())


if TYPE_CHECKING:  # built from the registry at run time; to a type checker, any fault spec
    StepSpec: TypeAlias = FaultSpecBase
    FaultSpec: TypeAlias = FaultSpecBase
else:
    StepSpec, FaultSpec = _build()


def make(spec: FaultSpecBase) -> Fault:
    """The fault object for one window of ``spec``."""
    return REGISTRY[spec.kind].make(spec)


def label(spec: FaultSpecBase) -> str:
    """``spec`` in a few words: ``partition shape=stream-leader``, ``compose(…)``."""
    return REGISTRY[spec.kind].label(spec)


def walk(specs: Iterable[FaultSpecBase], where: str = "faults") -> Iterator[tuple[str, Any]]:
    """Every spec in ``specs`` and, inside a composed one, each step, with its path
    (``faults.0``, ``faults.0.steps.1``), parents before their steps."""
    for i, spec in enumerate(specs):
        path = f"{where}.{i}"
        yield path, spec
        if isinstance(spec, compose.ComposeSpec):
            yield from walk(spec.steps, f"{path}.steps")
        elif isinstance(spec, program.ProgramSpec):
            for j, step in enumerate(spec.steps):
                if step.fault is not None:  # never a compose or program itself
                    yield f"{path}.steps.{j}.fault", step.fault


def walk_scenario(scenario: Scenario) -> Iterator[tuple[str, Any]]:
    """:func:`walk` over the scenario's faults, then each package's (``packages.0.faults.1``)."""
    yield from walk(scenario.faults)
    for i, package in enumerate(scenario.packages):
        yield from walk(package.faults, f"packages.{i}.faults")


def kinds(specs: Iterable[FaultSpecBase]) -> set[str]:
    """Every fault kind in ``specs``, composed steps included."""
    return {s.kind for _, s in walk(specs)}


def needs(specs: Iterable[FaultSpecBase]) -> frozenset[str]:
    """The abilities ``specs`` need, composed steps included."""
    return frozenset().union(*(REGISTRY[s.kind].needs for _, s in walk(specs)))


def check(scenario: Scenario) -> None:
    """Raise ScenarioError (one line, with the path) for a fault the scenario makes impossible."""
    for path, spec in walk_scenario(scenario):
        fk = REGISTRY[spec.kind]
        why = fk.check(spec, scenario) if fk.check is not None else None
        if why:
            raise ScenarioError(f"{path}: {why}")
        named = getattr(spec, "targets", None)
        if isinstance(named, tuple) and set(named) - set(scenario.node_names):
            unknown = ", ".join(sorted(set(named) - set(scenario.node_names)))
            nodes = f"n1 … n{scenario.nodes}"
            raise ScenarioError(f"{path}.targets: no node {unknown} (the nodes are {nodes})")


def preflight(scenario: Scenario, lacks: Callable[[str], str | None]) -> None:
    """Raise Unsupported (exit 3, one line) if the backend cannot do a planned fault.

    ``lacks(ability)`` is None when the backend offers it here, else why not,
    as a clause (:func:`harness.backends.lacks`): "the docker backend cannot
    do fault delay: it needs netem, which this kernel lacks (…)".
    """
    for ability in ABILITIES:
        kinds_needing = sorted(
            s.kind for _, s in walk_scenario(scenario) if ability in REGISTRY[s.kind].needs
        )
        if not kinds_needing:
            continue
        why = lacks(ability)
        if why is None:
            continue
        names = ", ".join(dict.fromkeys(kinds_needing))
        which = (
            f"fault {names}: it needs"
            if len(set(kinds_needing)) == 1
            else (f"faults {names}: they need")
        )
        raise Unsupported(f"the {scenario.backend} backend cannot do {which} {ability}, {why}")


__all__ = [
    "REGISTRY",
    "Fault",
    "FaultContext",
    "FaultKind",
    "FaultSpec",
    "StepSpec",
    "check",
    "kinds",
    "label",
    "make",
    "needs",
    "preflight",
    "walk",
    "walk_scenario",
]
