"""Scenarios: what one run does, as validated, frozen data.

A scenario is a YAML file (see ``scenarios/``) loaded into :class:`Scenario`.
``--set dotted.key=value`` overrides are applied to the raw mapping before
validation, with each value parsed as YAML (``--set nodes=5``,
``--set server.sync_interval=always``); a mapping value is merged into the
mapping it overrides, at every depth (``--set 'server={sync_interval:
always}'`` keeps the scenario's ``server.version``), lists and scalars
replace. Anything invalid raises
:class:`ScenarioError` with one line: the file, the field path and what is
wrong, e.g. ``scenarios/x.yaml: stream.replicas: must be at most nodes (3)``.

An unknown field is answered with the nearest valid name (``server.sync_intervl:
unknown field; did you mean 'sync_interval'?``).

Files are read within bounds (size, UTF-8, YAML depth and aliases:
:mod:`harness.yamlfile`). Durations accept seconds as a number or a Go
duration (``500ms``, ``10s``, ``2m``, ``1h``, ``1m30s``), from 0 to 24h;
``time_limit`` is at least 1s. ``server.sync_interval`` is ``always``, a
duration of 1ms or more (``0`` would be read by nats-server as its default),
written as nats-server parses it, or ``default`` for nats-server's own
default (2 minutes). ``server.config`` may not override what the harness
sets itself (:func:`harness.config.reserved`). ``nodes`` is at least 3, or 2
with ``stream.replicas: 1`` written out; ``name`` is one folder name.

Faults: each fault's spec lives in its own module under ``harness.faults``;
``faults`` here is the union the fault registry builds from them
(``harness.faults.FaultSpec``), discriminated by ``kind``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union

import yaml
from pydantic import BeforeValidator, Field, ValidationError, field_validator, model_validator

from harness import config, yamlfile
from harness import faults as _faults
from harness.backends.base import POWER
from harness.errors import ScenarioError
from harness.faults import FaultSpec, StepSpec
from harness.faults.compose import ComposeSpec
from harness.faults.corrupt import CorruptFileType, CorruptSpec
from harness.faults.kill import KillSpec
from harness.faults.netem import DelaySpec, LossSpec
from harness.faults.partition import PartitionShape, PartitionSpec
from harness.faults.pause import PauseSpec
from harness.faults.power import PowerLossSpec
from harness.faults.stepdown import StepDownSpec
from harness.spec import (
    Seconds,
    TargetName,
    _Model,
    field_names,
    human,
    parse_seconds,
    within_bounds,
)
from harness.suggest import hint
from harness.workloads import REGISTRY as WORKLOADS
from harness.workloads import WorkloadSpecBase
from harness.workloads.queue import QueueWorkload

# Fault specs live in their fault modules (harness.faults.*); these names are
# re-exported for the modules and tests that import them from here.
__all__ = [
    "ComposeSpec",
    "CorruptFileType",
    "CorruptSpec",
    "DelaySpec",
    "FaultSpec",
    "KillSpec",
    "LossSpec",
    "PartitionShape",
    "PartitionSpec",
    "PauseSpec",
    "PowerLossSpec",
    "Seconds",
    "StepDownSpec",
    "StepSpec",
    "TargetName",
    "parse_seconds",
]


MIN_TIME_LIMIT = 1.0  # seconds: a shorter main phase has nothing to check


class ServerSpec(_Model):
    """Which nats-server runs and how it is configured."""

    version: str = "2.14.0"
    binary: str | None = None
    image: str | None = Field(
        default=None, description="docker backend: a node image on the local engine"
    )
    sync_interval: str = "default"
    config: dict[str, Any] = Field(default_factory=dict)

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, v: Any) -> str:
        if not isinstance(v, str) or not re.fullmatch(r"\d+\.\d+\.\d+\S*", v):
            raise ValueError(
                f"{v!r} is no nats-server version: write all three parts, quoted in YAML "
                '(e.g. "2.10.25"; nats-chaos server list --available)'
            )
        return v

    @field_validator("sync_interval", mode="before")
    @classmethod
    def _sync(cls, v: Any) -> str:
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise ValueError("must be 'always', 'default' or a duration like 2m or 10s")
        if v in ("always", "default"):
            return str(v)
        seconds = within_bounds(parse_seconds(v))
        if seconds < 0.001:
            raise ValueError(
                f"{v!r} is not a positive interval (nats-server would read it as its 2-minute "
                "default); give always to sync every write, or 1ms or more"
            )
        if isinstance(v, str):  # as written, in the form nats-server parses: 10s, not "10 s"
            return "".join(v.split()) + ("" if v.strip()[-1].isalpha() else "s")
        return human(seconds)

    @field_validator("config")
    @classmethod
    def _config(cls, v: dict[str, Any]) -> dict[str, Any]:
        why = config.reserved(v)
        if why is not None:
            raise ValueError(why)
        return v


class StreamSpec(_Model):
    """The JetStream stream the workload writes to."""

    name: str = Field(default="chaos", pattern=r"^[A-Za-z0-9_-]+$")
    replicas: int = Field(default=3, ge=1, le=5)
    storage: Literal["file", "memory"] = "file"


def _workload_union() -> Any:
    """The ``workload`` field's type: every registered workload's spec, by ``name``."""
    specs = tuple(w.Spec for w in WORKLOADS.values())
    if len(specs) == 1:
        return specs[0]
    return Annotated[Union[specs], Field(discriminator="name")]  # noqa: UP007


def _default_name(v: Any) -> Any:
    """A ``workload`` mapping without ``name`` is the queue workload (as before names existed)."""
    if isinstance(v, dict) and "name" not in v:
        return {"name": "queue", **v}
    return v


if TYPE_CHECKING:
    WorkloadSpec = WorkloadSpecBase
else:
    WorkloadSpec = Annotated[_workload_union(), BeforeValidator(_default_name)]


class StorageSpec(_Model):
    """Where node data lives: a plain directory, or lazyfs (needed by power-loss faults)."""

    lazyfs: bool | None = Field(
        default=None, description="None: on when a planned fault needs power (power-loss)"
    )
    writeback_after: Seconds | None = Field(
        default=None,
        description="writeback model: persist data older than this (counted from the write: "
        "lazyfs then runs without the kernel's page cache in front of it)",
    )
    cache_bytes: int | None = Field(
        default=None,
        gt=0,
        description="hold at most this many un-fsynced bytes per node; past that, write the "
        "files dirty longest through (a disk cache of bounded size)",
    )


class ScheduleSpec(_Model):
    """When faults start and stop during the main phase."""

    quiet: Seconds = 5.0
    interval: Seconds = 10.0
    duration: Seconds = 5.0
    order: Literal["random", "cycle"] = Field(
        default="random", description="draw fault kinds at random (seeded) or in listed order"
    )
    stable_every: int | None = Field(
        default=None, ge=1, description="after every N fault windows, a stable period"
    )
    stable_for: Seconds = Field(default=0.0, description="length of each stable period")


class PackageSpec(_Model):
    """More faults on their own schedule, run beside the scenario's own (Jepsen's combined
    nemesis): their windows may overlap the others'."""

    faults: tuple[FaultSpec, ...] = Field(min_length=1)
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)


class RecoverySpec(_Model):
    """Bounds of the run's phases (docs/contracts.md §4).

    ``timeout`` bounds the recovery wait (replicas not agreeing by then is
    data, not an error) and ``read_timeout`` each node's final read by
    progress: a read ends ``info`` after ``read_timeout`` seconds without a
    message, and the reads' deadline counts from the last batch received. Every
    phase also has a hard deadline: the fields below, or for the recovery
    wait, the reads, the cluster coming up, the workload setup and the
    isolation for reads their bound (the field) plus ``grace``. A phase past its deadline
    is recorded in results.json, the run tears down and checks what it has,
    and exits 4 (docs/contracts.md §5).
    """

    timeout: Seconds = 30.0
    read_timeout: Seconds = 60.0
    grace: Seconds = 15.0
    cluster_up: Seconds = Field(default=60.0, gt=0)
    setup: Seconds = Field(default=60.0, gt=0)
    heal: Seconds = Field(default=90.0, gt=0)
    isolation: Seconds = Field(default=30.0, gt=0)
    collect: Seconds = Field(default=120.0, gt=0)
    teardown: Seconds = Field(default=120.0, gt=0)

    def deadline(self, phase: str) -> float:
        """The hard deadline of ``phase`` in seconds."""
        bound = {"recovery": self.timeout, "reads": self.read_timeout}.get(phase)
        if bound is None:
            bound = float(getattr(self, phase))
            if phase not in ("cluster_up", "setup", "isolation"):
                return bound
        return bound + self.grace


# Every anomaly name a checker can report: the workloads' and the server logs' (checkers/logs.py).
LOG_ANOMALIES = ("panic", "orphaned")
if TYPE_CHECKING:
    AnomalyName = str
else:  # a Literal of every registered name, so a typo in `expect:` is refused
    AnomalyName = Literal[
        tuple(dict.fromkeys(a for w in WORKLOADS.values() for a in w.anomalies)) + LOG_ANOMALIES
    ]


class ExpectSpec(_Model):
    """The outcome a run is known to have; ``harness.expect`` matches a result against it.

    ``valid: true``: valid and no anomaly at all. ``anomalies: [lost, …]``:
    invalid with exactly these anomalies (all of them, no others); an empty
    list means the same as ``valid: true``. ``valid: false`` alone: invalid
    with any anomalies. An ``unknown`` verdict never matches.
    """

    valid: bool | None = None
    anomalies: tuple[AnomalyName, ...] | None = None

    @model_validator(mode="after")
    def _says_something(self) -> ExpectSpec:
        if self.valid is None and self.anomalies is None:
            raise ValueError("give valid: true|false or anomalies: [...]")
        if self.valid is True and self.anomalies:
            raise ValueError("valid: true cannot list anomalies")
        if self.valid is False and self.anomalies == ():
            raise ValueError("valid: false needs at least one anomaly (or leave anomalies out)")
        return self


class Scenario(_Model):
    """One run: cluster shape, server settings, workload, faults and limits."""

    name: str = Field(max_length=100)
    description: str = ""
    nodes: int = Field(default=3, ge=1, le=9)
    backend: Literal["local", "docker", "ssh"] = "local"
    inventory: str | None = Field(
        default=None, description="backend ssh: the inventory file naming the hosts"
    )
    seed: int = 0
    time_limit: Seconds = 30.0
    server: ServerSpec = Field(default_factory=ServerSpec)
    stream: StreamSpec = Field(default_factory=StreamSpec)
    workload: WorkloadSpec = Field(default_factory=lambda: QueueWorkload.Spec(name="queue"))
    faults: tuple[FaultSpec, ...] = ()
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)
    packages: tuple[PackageSpec, ...] = Field(
        default=(), description="more faults, each package on its own schedule, concurrently"
    )
    recovery: RecoverySpec = Field(default_factory=RecoverySpec)
    storage: StorageSpec = Field(default_factory=StorageSpec)
    expect: ExpectSpec | None = Field(
        default=None, description="the known outcome: exit 0 when the run matches it"
    )
    hint: str = Field(
        default="", description="what to try next, shown on the report (e.g. another --set)"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        # the run folder is results/<name>/: a name must stay one folder inside it
        if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", v):
            raise ValueError(
                f"{v!r} is not a folder name: use letters, digits, _ . - "
                "(not starting with . or -), so results stay inside --results-dir"
            )
        return v

    @field_validator("time_limit")
    @classmethod
    def _long_enough(cls, v: float) -> float:
        if v < MIN_TIME_LIMIT:
            raise ValueError(
                f"{v:g}s is shorter than {MIN_TIME_LIMIT:g}s: the main phase would write "
                "nothing to check"
            )
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.nodes == 1:
            raise ValueError(
                "nodes: 1 node cannot form a JetStream cluster (no meta leader to wait for); "
                "use nodes: 3 or more (an R1 stream runs on 3 nodes too)"
            )
        if self.nodes < 3 and not (
            self.stream.replicas == 1 and "replicas" in self.stream.model_fields_set
        ):
            raise ValueError(
                f"nodes: {self.nodes} nodes are too few for a replicated stream (a quorum "
                "needs 3); use nodes: 3 or more, or write stream.replicas: 1"
            )
        if self.stream.replicas > self.nodes:
            raise ValueError(
                f"stream.replicas ({self.stream.replicas}) exceeds nodes ({self.nodes})"
            )
        if self.storage.lazyfs is False and POWER in _faults.needs(self.every_fault):
            power = sorted(k for k in self.fault_kinds if POWER in _faults.REGISTRY[k].needs)
            raise ValueError(f"{', '.join(power)} faults need storage.lazyfs (it is false)")
        if (self.backend == "ssh") != (self.inventory is not None):
            raise ValueError(
                "backend: ssh needs an inventory (--inventory FILE; `nats-chaos hosts up` "
                "makes one), and only it uses one"
            )
        processes = getattr(self.workload, "processes", None)
        if processes and processes > self.concurrency:
            raise ValueError(
                f"workload.processes ({processes}) exceeds the workers (concurrency "
                f"{self.concurrency}): each client process runs at least one worker"
            )
        if self.server.image and self.backend != "docker":
            raise ValueError("server.image needs backend: docker (the local backend runs binaries)")
        return self

    @property
    def uses_lazyfs(self) -> bool:
        """Node data on lazyfs: asked for, or implied by a planned fault that needs ``power``."""
        if self.storage.lazyfs is not None:
            return self.storage.lazyfs
        return POWER in _faults.needs(self.every_fault)

    @property
    def every_fault(self) -> tuple[FaultSpec, ...]:
        """The scenario's faults, then each package's."""
        return self.faults + tuple(f for p in self.packages for f in p.faults)

    @property
    def fault_kinds(self) -> set[str]:
        """Every fault kind the scenario may start, composed and program steps included."""
        return _faults.kinds(self.every_fault)

    @property
    def concurrency(self) -> int:
        """Client processes: the workload's setting, else 3 per node."""
        return self.workload.concurrency or 3 * self.nodes

    @property
    def node_names(self) -> list[str]:
        """``n1`` … ``nN``."""
        return [f"n{i}" for i in range(1, self.nodes + 1)]

    def to_yaml(self) -> str:
        """The fully resolved scenario, as written to a run's ``scenario.yaml``."""
        return yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"server.sync_interval=always"`` -> (["server", "sync_interval"], "always")."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip() or any(not p for p in key.strip().split(".")):
        raise ScenarioError(f"--set {text!r}: expected dotted.key=value")
    value = yamlfile.parse_value(raw, f"--set {key.strip()}") if raw.strip() else ""
    return key.strip().split("."), value


def merge(base: Any, value: Any) -> Any:
    """``value`` laid over ``base``: mappings merge key by key, at every depth
    (:func:`harness.config.deep_merge`); anything else (a list, a scalar, a mapping over
    a non-mapping) replaces what was there."""
    if isinstance(base, dict) and isinstance(value, dict):
        return config.deep_merge(base, _deep_copy(value))
    return _deep_copy(value)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``dotted.key=value`` applied.

    A mapping value is merged into the mapping already there (:func:`merge`):
    ``server={sync_interval: always}`` keeps ``server.version`` and
    ``server.config``; a list or a scalar replaces, and so does a new
    ``expect`` (one statement of the outcome, not a set of settings).
    """
    out: dict[str, Any] = _deep_copy(raw)
    for text in overrides:
        path, value = parse_override(text)
        node: Any = out
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if nxt is None:
                nxt = node[part] = {}
            if not isinstance(nxt, dict):
                where = ".".join(path[: i + 1])
                raise ScenarioError(f"--set {text!r}: {where} is not a mapping")
            node = nxt
        whole = path == ["expect"]
        node[path[-1]] = _deep_copy(value) if whole else merge(node.get(path[-1]), value)
    return out


def _deep_copy(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _deep_copy(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_deep_copy(x) for x in v]
    return v


def _loc_part(part: Any) -> str:
    """A field path part as written, or quoted when it is no plain name (``'\\n'``)."""
    text = str(part)
    return text if re.fullmatch(r"[\w-]+", text) else repr(part)


def _first_error(source: str, err: ValidationError) -> ScenarioError:
    e = err.errors()[0]
    loc = ".".join(_loc_part(p) for p in e["loc"]) or "(top level)"
    msg = e["msg"].removeprefix("Value error, ")
    if e["type"] == "extra_forbidden":
        msg = "unknown field" + hint(str(e["loc"][-1]), field_names(Scenario, e["loc"]))
    elif e["type"] in ("union_tag_invalid", "union_tag_not_found"):
        ctx = e.get("ctx", {})
        loc += f".{ctx.get('discriminator', 'kind').strip(chr(39))}"
        got = f"unknown kind {ctx['tag']!r}" if "tag" in ctx else "missing"
        msg = f"{got} (one of: {ctx.get('expected_tags', '')})"
    more = len(err.errors()) - 1
    tail = f" (+{more} more problem{'s' if more > 1 else ''})" if more else ""
    return ScenarioError(f"{source}: {loc}: {msg}{tail}")


def scenario_from_dict(raw: Any, source: str, overrides: list[str] | None = None) -> Scenario:
    """Validate a raw mapping (plus overrides) into a Scenario; ``source`` names it in errors."""
    if not isinstance(raw, dict):
        raise ScenarioError(f"{source}: a scenario must be a mapping of fields, not {raw!r:.40}")
    raw = apply_overrides(raw, overrides or [])
    try:
        return Scenario.model_validate(raw)
    except ValidationError as err:
        raise _first_error(source, err) from None


def load_scenario(path: Path | str, overrides: list[str] | None = None) -> Scenario:
    """Load and validate a scenario YAML file, applying ``--set`` overrides."""
    path = Path(path)
    raw = yamlfile.load(path)  # bounded: size, UTF-8, depth, aliases
    if isinstance(raw, dict) and "name" not in raw:
        raw["name"] = path.stem
    return scenario_from_dict(raw, str(path), overrides)
