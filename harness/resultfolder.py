"""A result folder on disk (docs/contracts.md §3): find it, read it, write its reports again.

In: a folder path (a run folder, a scenario folder with a ``latest`` link,
a comparison's or a suite's folder, or ``latest`` for the newest of any of
them under a results root: ``compare`` and ``suite`` link
``<root>/compare/latest`` and ``<root>/suites/latest``) and its files —
``results.json``, ``history.jsonl``, ``scenario.yaml``, ``nodes/``. Out:
:class:`RunFolder` (result, scenario, history path), and
:func:`regenerate`, which writes ``summary.md``, ``plots/`` and
``report.html`` (and ``results.json`` when a crashed run left none, by
checking its history with the checkers its scenario's workload names).
Unusable input raises :class:`BadInput` with one line. The views themselves
are pure functions of the result (``checkers.report``); this module is the
harness side that reads files and scenarios for them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import pandas as pd
import yaml

from checkers import files
from harness import results, yamlfile
from harness.checkspec import CHECKS
from harness.errors import BadInput, HarnessError

if TYPE_CHECKING:  # the scenario's models (pydantic, every workload and fault): on demand
    from harness.scenario import Scenario


@dataclass
class RunFolder:
    """What a result folder holds: ``scenario_data`` is its ``scenario.yaml`` as the run
    wrote it (None when missing or no mapping); ``scenario`` validates it on first use."""

    path: Path
    result: dict[str, Any] | None
    scenario_data: dict[str, Any] | None
    history: Path | None

    @cached_property
    def scenario(self) -> Scenario | None:
        """The validated scenario; None when there is none or it no longer validates.

        Only a crashed run (its nodes) or a result older than ``expectation``
        needs it: validating imports every workload's and fault's model.
        """
        if self.scenario_data is None:
            return None
        from harness.scenario import load_scenario

        try:
            return load_scenario(self.path / "scenario.yaml")
        except HarnessError:  # written by another version: only its data is shown
            return None

    @property
    def workload(self) -> str:
        """The name of the workload that wrote the history (``queue`` when unknown)."""
        named = (self.scenario_data or {}).get("workload")
        name = named.get("name") if isinstance(named, dict) else None
        return name if name in CHECKS else "queue"


RUN, COMPARE, SUITE = "run", "compare", "suite"


def kind(path: Path) -> str | None:
    """What folder ``path`` is: a run's, a comparison's or a suite's result folder, or None."""
    if (path / "results.json").is_file() or (path / "history.jsonl").is_file():
        return RUN
    if (path / "compare.md").is_file() or (path / "compare.csv").is_file():
        return COMPARE
    if (path / "summary.json").is_file() and (path / "junit.xml").is_file():
        return SUITE
    return None


def newest_run(root: Path) -> Path:
    """The folder the newest ``<root>/<name>/latest`` link points at (by the link's mtime):
    a run's, or a comparison's (``compare/latest``) or a suite's (``suites/latest``)."""
    links = [p for p in root.glob("*/latest") if p.is_symlink() and p.exists()]
    if not links:
        raise BadInput(f"{root}: no runs found (no <scenario>/latest link); run a scenario first")
    newest = max(links, key=lambda p: p.lstat().st_mtime)
    return newest.resolve()


def resolve(target: str | None, root: Path) -> Path:
    """A result folder from ``target``: None/"latest" (the newest run, comparison or suite),
    a run, comparison or suite folder, or a folder with a ``latest`` link."""
    if target in (None, "latest"):
        return newest_run(root)
    path = Path(str(target))
    if not path.is_dir():
        raise BadInput(f"{path}: not a result folder (no such directory)")
    if kind(path) is not None:
        return path
    if (path / "latest").exists():
        return (path / "latest").resolve()
    raise BadInput(
        f"{path}: not a result folder (no results.json or history.jsonl, "
        "and no compare.md or suite summary.json)"
    )


def require_run(path: Path, what: str) -> Path:
    """``path`` if it is a run's folder; else BadInput saying what it is instead."""
    found = kind(path)
    if found in (COMPARE, SUITE):
        raise BadInput(
            f"{path}: a {found} folder, not one run's; {what} takes a run folder "
            f"(those of this {found} are under {path / 'runs'})"
        )
    return path


def overview(path: Path) -> str:
    """What ``show`` prints for a comparison or suite folder: its markdown summary, then
    where its files and its runs' folders are."""
    found = kind(path)
    summary = path / ("compare.md" if found == COMPARE else "summary.md")
    if not summary.is_file():
        raise BadInput(f"{path}: a {found} folder without {summary.name} (it was cut short)")
    text = summary.read_text(errors="replace").rstrip("\n")
    return f"{text}\n\n{found}: {path}\nruns: {path / 'runs'}\n"


def _scenario_data(path: Path) -> dict[str, Any] | None:
    """``path/scenario.yaml`` as data (a run writes it fully resolved), or None."""
    file = path / "scenario.yaml"
    if not file.is_file():
        return None
    try:
        raw = yamlfile.load(file)  # bounded: size, UTF-8, depth, aliases
    except HarnessError:  # beyond those bounds: show what plain YAML makes of it
        try:
            raw = yaml.safe_load(file.read_text(errors="replace"))
        except yaml.YAMLError:
            return None
    return raw if isinstance(raw, dict) else None


def _result(file: Path) -> dict[str, Any]:
    """The result in ``file``; :class:`BadInput` naming why when it is no result object."""
    try:
        text = file.read_text()
        result = json.loads(text)
    except (OSError, ValueError) as e:
        why = "empty" if file.is_file() and file.stat().st_size == 0 else f"not readable JSON ({e})"
        raise BadInput(f"{file}: {why}") from None
    if not isinstance(result, dict):
        raise BadInput(f"{file}: not a result object")
    return result


def read(path: Path) -> RunFolder:
    """Read a run folder's result (None if missing), scenario and history path."""
    result = _result(path / "results.json") if (path / "results.json").is_file() else None
    history = path / "history.jsonl"
    return RunFolder(path, result, _scenario_data(path), history if history.is_file() else None)


def nemesis_ops(history: Path) -> pd.DataFrame:
    """Only the nemesis ops of a history (fast: other lines are not parsed)."""
    rows = []
    with history.open("rb") as fh:
        for line in fh:
            if b'"nemesis"' in line:
                try:
                    op = orjson.loads(line)
                except orjson.JSONDecodeError:
                    continue
                if op.get("process") == "nemesis":
                    rows.append(op)
    cols = ["time", "type", "process", "f", "value"]
    return pd.DataFrame([{c: r.get(c) for c in cols} for r in rows], columns=cols)


def write_all(
    out_dir: Path,
    result: dict[str, Any],
    ops: pd.DataFrame | None,
    scenario_data: dict[str, Any] | None,
    history: Path | None = None,
) -> Path:
    """Write ``summary.md`` and ``report.html`` (with ``plots/``) into ``out_dir``."""
    from checkers.report import write_report
    from checkers.report.markdown import summary_md

    out_dir.mkdir(parents=True, exist_ok=True)
    files.write_text(out_dir / "summary.md", summary_md(result, scenario_data))
    return write_report(out_dir, result, ops, scenario_data, history=history)


def regenerate(path: Path, warn: Callable[[str], Any] = print) -> tuple[dict[str, Any], Path]:
    """Write the report files of run folder ``path`` again; return (result, report path).

    A ``results.json`` that is missing, empty or broken is written again from
    the history (``warn`` says so in one line); without a history that is
    :class:`BadInput`.
    """
    try:
        run = read(path)
    except BadInput as e:
        if not (path / "history.jsonl").is_file():
            raise BadInput(f"{e}; and no history.jsonl to check again") from None
        warn(f"warning: {e}; checking history.jsonl again")
        run = RunFolder(path, None, _scenario_data(path), path / "history.jsonl")
    if run.result is None and run.history is None:
        raise BadInput(f"{path}: not a result folder (no results.json or history.jsonl)")
    workload = run.workload
    loaded = results.load(run.history, workload, keep=True) if run.history is not None else None
    result = run.result
    if result is None:  # a crashed run: check its history now; it may end mid-op
        assert loaded is not None
        if not (path / "results.json").exists():
            warn(f"warning: {path / 'results.json'}: missing; checking history.jsonl again")
        nodes = run.scenario.node_names if run.scenario else None
        nodes_dir = path / "nodes" if (path / "nodes").is_dir() else None
        result = results.check_loaded(loaded, nodes, workload, nodes_dir, cut_off=True)
        sc = run.scenario_data or {}
        result.update(scenario=sc.get("name"), seed=sc.get("seed"), run_dir=str(path))
        files.write_json(path / "results.json", result)
    if "expectation" not in result and run.scenario is not None:  # written by an older version
        results.record_expectation(result, run.scenario)
    ops = loaded.ops if loaded is not None else None
    report = write_all(path, result, ops, run.scenario_data)
    return result, report
