"""The result folder's verdict files: ``results.json``, ``summary.md`` and the ``latest`` link.

``write`` loads the run's ``history.jsonl`` (only the workload's
``pairs_fs`` ops become numpy), composes the checkers the workload names
(``harness.checkspec.CHECKS[name]``, which its workload class inherits:
``wellformed``, its ``checkers``, then ``logs`` over the run's ``nodes/``;
``checkers.compose``) and writes ``results.json`` (docs/contracts.md §3:
``valid``, ``anomalies``, ``checkers``, ``stats``, timings, versions), a
``summary.md`` for CI job summaries and, through ``checkers.report``,
``report.html`` with ``plots/``. The verdict
line is ``checkers.verdict.verdict_line`` (re-exported here). Nothing here
talks to a cluster, so a crashed run's history can be re-checked the same
way with ``nats-chaos check``.
"""

from __future__ import annotations

import logging
import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from checkers import files
from checkers.schema import MalformedHistory
from checkers.verdict import verdict_line
from harness.checkspec import CHECKS, CheckSpec
from harness.errors import BadInput, HistoryError

if TYPE_CHECKING:  # pandas, pydantic and the workloads: imported where they are used
    from harness.history import LoadedHistory
    from harness.scenario import ExpectSpec, Scenario
    from harness.workloads import Workload

__all__ = ["check_file", "check_loaded", "exit_code_for", "link_latest", "verdict_line", "write"]

log = logging.getLogger(__name__)


def _version(dist: str) -> str | None:
    from importlib import metadata  # only a run records versions

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, Any]:
    """Versions of everything that shaped the result."""
    return {
        "nats_chaos": _version("nats-chaos"),
        "nats_py": _version("nats-py"),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _server_versions(info: dict[str, Any]) -> dict[str, Any]:
    """The nats-server a run used: its version and its binary's sha256 (``server_info``)."""
    return {"nats_server": info.get("version"), "nats_server_sha256": info.get("sha256")}


def workload_spec(name: str) -> type[CheckSpec] | type[Workload]:
    """What histories of workload ``name`` are checked with: its :mod:`harness.checkspec`
    class (no workload imported), else the class registered in ``harness.workloads``."""
    if name in CHECKS:
        return CHECKS[name]
    from harness.workloads import REGISTRY  # one registered beside the built-in ones

    if name not in REGISTRY:
        raise BadInput(f"no workload {name!r} (known: {', '.join(sorted(REGISTRY))})")
    return REGISTRY[name]


def checker_names(workload: str, logs: bool) -> tuple[str, ...]:
    """What a history of ``workload`` is checked with: wellformed, its checkers, [logs]."""
    wanted = ("wellformed", *workload_spec(workload).checkers, *(("logs",) if logs else ()))
    return tuple(dict.fromkeys(wanted))


def load(history: Path, workload: str = "queue", keep: bool = False) -> LoadedHistory:
    """Load ``history``, turning into numpy only the pair-valued ops ``workload`` names.

    The columnar sidecar beside it (:mod:`harness.sidecar`) is used when it
    matches the file; else the JSONL is parsed, and with ``keep`` (a run, or
    ``report`` on a run's folder) a sidecar is written for the next load.
    """
    from harness import sidecar  # numpy/pandas: only where a history is loaded
    from harness.history import load_history

    pairs_fs = frozenset(workload_spec(workload).pairs_fs)
    cached = sidecar.read(history, pairs_fs)
    if cached is not None:
        return cached
    loaded = load_history(history, pairs_fs=pairs_fs)
    if keep:
        sidecar.write(loaded, history, pairs_fs)
    return loaded


def check_file(
    history: Path,
    nodes: list[str] | None,
    workload: str = "queue",
    nodes_dir: Path | None = None,
    cut_off: bool = False,
) -> dict[str, Any]:
    """Load and check one history file (see :func:`check_loaded`)."""
    return check_loaded(load(history, workload), nodes, workload, nodes_dir, cut_off)


def check_loaded(
    loaded: LoadedHistory,
    nodes: list[str] | None,
    workload: str = "queue",
    nodes_dir: Path | None = None,
    cut_off: bool = False,
) -> dict[str, Any]:
    """Check a loaded history with the checkers ``workload`` names.

    ``nodes`` defaults to every node the history read; ``nodes_dir`` (a run's
    ``nodes/``) adds the logs checker; ``cut_off`` (or a cut-off last line)
    says the history ended early, so invokes still in flight are warnings.
    """
    from checkers.compose import check_history  # checkers import numpy/pandas: load on use
    from checkers.reads import how_read

    ops = loaded.ops
    if nodes is None:  # the nodes that were read: a node without a replica is never read
        reads = ops["f"].to_numpy(dtype=object) == "read"  # as objects: faster than the column ==
        read_nodes = set(ops["node"].to_numpy(dtype=object)[reads])
        nodes = sorted((n for n in read_nodes if isinstance(n, str)), key=_node_key)
    spec = workload_spec(workload)
    context = {
        "nodes": nodes,
        "nodes_dir": nodes_dir,
        "cut_off": cut_off or loaded.cut_off,
        "writes": tuple(getattr(spec, "writes", ())),
    }
    names = checker_names(workload, logs=nodes_dir is not None)
    try:
        result = check_history(ops, context, names, spec.headline_checker, loaded.views)
    except MalformedHistory as e:  # a value that breaks the workload's contract: exit 2
        raise HistoryError(f"{loaded.path or 'history'}:{e.line}: {e.why}") from None
    except ValueError as e:  # a workload naming a checker that does not exist
        raise BadInput(f"workload {workload}: {e}") from None
    result["history_warnings"] = loaded.warnings
    result["history_source"] = loaded.source
    # per node, how its final read was made (the workload's per-node read fs: offline_fs)
    result["final_reads"] = how_read(ops, getattr(spec, "offline_fs", ()))
    return result


def _node_key(n: str) -> tuple[int, str]:
    digits = "".join(c for c in n if c.isdigit())
    return (int(digits) if digits else 0, n)


def _without_history(nodes_dir: Path) -> dict[str, Any]:
    """The result of a run that left no history: unknown, with what the server logs say."""
    from checkers.compose import check_safe, merge, merge_valid
    from checkers.logs import check_logs

    result = merge({"logs": check_safe("logs", check_logs, None, {"nodes_dir": nodes_dir})})
    result["valid"] = merge_valid("unknown", result["valid"])
    return result


def write(
    run_dir: Path,
    scenario: Scenario,
    extra: dict[str, Any],
    timings: dict[str, float],
    interrupted: str | None = None,
    error: str | None = None,
) -> dict[str, Any]:
    """Check the run's history; write results.json, summary.md, report.html; return the result."""
    history = run_dir / "history.jsonl"
    ops = None
    log.info("phase: check")
    if history.exists():
        nodes = extra.get("replica_nodes") or scenario.node_names
        wl = scenario.workload.name
        loaded = load(history, wl, keep=True)  # once: the checkers and the report's plots share it
        ops = loaded.ops
        cut = bool(interrupted or error)
        result = check_loaded(loaded, nodes, wl, nodes_dir=run_dir / "nodes", cut_off=cut)
    else:
        result = _without_history(run_dir / "nodes")
    if interrupted or error:
        result["valid"] = False if result["valid"] is False else "unknown"
    result.update(
        scenario=scenario.name,
        seed=scenario.seed,
        run_dir=str(run_dir),
        interrupted=interrupted,
        error=error,
        timings=timings,
        versions={**versions(), **_server_versions(extra.get("nats_server") or {})},
        **{k: v for k, v in extra.items() if k != "nats_server"},
    )
    result["stats"] = result.get("checkers", {}).get("stats", {})
    record_expectation(result, scenario)
    data = scenario.model_dump(mode="json")
    files.write_json(run_dir / "results.json", result)
    _write_views(run_dir, result, ops, data)
    return result


def record_expectation(result: dict[str, Any], scenario: Scenario | None) -> None:
    """Put the outcome of the scenario's ``expect:`` into ``result["expectation"]`` (and its
    hint of what to try next into ``result["hint"]``), so every view of the result can say
    "as expected" without the scenario (``harness.expect.outcome``)."""
    from harness.expect import outcome

    if scenario is None:
        return
    result["expectation"] = outcome(result, scenario.expect)
    if result.get("error"):  # a broken run matches nothing (exit 4), whatever it recorded
        result["expectation"].update(matched=False, why=f"the run broke: {result['error']}")
    if scenario.hint:
        result["hint"] = scenario.hint


def _write_views(run_dir: Path, result: dict[str, Any], ops: Any, data: dict | None) -> None:
    """``summary.md``, then ``report.html`` and ``plots/``; a report failure is logged and
    never costs ``results.json`` or ``summary.md``."""
    from checkers.report.markdown import summary_md

    log.info("phase: report")
    files.write_text(run_dir / "summary.md", summary_md(result, data))
    try:
        from checkers.report import write_report

        write_report(run_dir, result, ops, data)
    except Exception:
        log.exception("report.html could not be written (results.json and summary.md are)")


def link_latest(run_dir: Path) -> None:
    """Point ``<scenario>/latest`` at ``run_dir`` (replacing an older link)."""
    files.link(run_dir.parent / "latest", run_dir.name)


def exit_code_for(result: dict[str, Any], expect: ExpectSpec | None = None) -> int:
    """0 when the outcome matches ``expect`` (None: the run is valid), else 1 (contracts §5)."""
    from harness.expect import match

    return 0 if match(result, expect).matched else 1
