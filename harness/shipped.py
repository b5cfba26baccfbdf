"""What ships inside the package: the scenarios and the node image's Dockerfile.

Both live in the repository at its top level (``scenarios/``, ``docker/``)
and are package data of ``harness`` (``harness/scenarios`` and
``harness/node-image`` link to them), so a wheel installed anywhere has them.

In: a scenario as given on the command line — a path, or the name of a
shipped one (``quick``, ``quick.yaml``, ``jepsen/part-kill``, ``nightly``
for a suite directory). Out: :func:`scenario_path` returns the path to load
(a path that exists wins over a shipped name), or raises
:class:`~harness.errors.BadInput` with one line naming the nearest shipped
name; :func:`catalogue` lists every shipped scenario and suite with its
description; :data:`DOCKERFILE` is the node image's Dockerfile.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import yamlfile
from harness.errors import BadInput, HarnessError
from harness.suggest import hint

HERE = Path(__file__).resolve().parent
SCENARIOS = HERE / "scenarios"
DOCKERFILE = HERE / "node-image" / "Dockerfile"
SUITE_FILE = "suite.yaml"


@dataclass(frozen=True)
class Shipped:
    """One shipped scenario or suite: the name ``run``/``suite`` accept, its file, what it does."""

    name: str
    path: Path
    kind: str  # "scenario" or "suite"
    description: str


def _name(path: Path) -> str:
    rel = path.relative_to(SCENARIOS)
    if rel.name == SUITE_FILE:  # a suite directory is named by its directory
        return rel.parent.as_posix()
    return rel.with_suffix("").as_posix()


def _describe(path: Path) -> tuple[str, str]:
    """(kind, description) of one YAML file; an unreadable one says so instead."""
    try:
        raw = yamlfile.load(path)
    except HarnessError as e:
        return "scenario", f"(unreadable: {e})"
    if not isinstance(raw, dict):
        return "scenario", ""
    kind = "suite" if "scenarios" in raw else "scenario"
    return kind, " ".join(str(raw.get("description") or "").split())


def catalogue(root: Path = SCENARIOS) -> list[Shipped]:
    """Every shipped scenario and suite, by name (``jepsen`` is the directory's suite)."""
    out = []
    for path in sorted(root.rglob("*.yaml")):
        kind, description = _describe(path)
        out.append(Shipped(_name(path), path, kind, description))
    return sorted(out, key=lambda s: s.name)


def scenario_path(text: str, what: str = "scenario file", suites: bool = False) -> Path:
    """The file (or suite directory) ``text`` names: an existing path, else a shipped name.

    Without ``suites`` a shipped suite is refused, naming the command that runs it.
    """
    given = Path(text)
    if given.exists():
        return given
    name = text.removesuffix(".yaml").removeprefix("scenarios/").strip("/")
    for candidate in (SCENARIOS / f"{name}.yaml", SCENARIOS / name):
        inside = candidate.resolve().is_relative_to(SCENARIOS.resolve())
        if name and inside and candidate.exists():
            if not suites and (candidate.is_dir() or _describe(candidate)[0] == "suite"):
                raise BadInput(f"{text}: a shipped suite; run it with `nats-chaos suite {name}`")
            return candidate
    names = [s.name for s in catalogue()]
    raise BadInput(
        f"{text}: no such {what}, and no shipped scenario of that name"
        f"{hint(name, names)} (`nats-chaos scenarios` lists them)"
    )
