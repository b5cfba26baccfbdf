"""``nats-chaos suite``: many scenarios, and matrices of their settings, run in sequence.

In: PATHs — a scenario file; a suite file (a YAML mapping with
``scenarios:``); or a directory (its ``suite.yaml`` if it has one, else
every ``*.yaml`` in it, in name order). Out: ``<results>/suites/<stamp>/``
with ``runs/`` (each run's normal result folder), ``summary.md``,
``summary.json`` and ``junit.xml`` (one test case per run; a row's verdict
and ``counts`` come from ``checkers.verdict.headline``), rewritten after
every run so a killed suite still leaves its table. A suite matches when
every run matches its expectation (``harness.expect``).

A suite file::

    name: nightly
    scenarios:
      - ../kill.yaml                       # a bare path: the scenario as it is
      - file: ../pause.yaml                # paths are relative to the suite file
        set: {time_limit: 25}              # overrides, as with --set (mappings merge)
        expect: {valid: true}              # replaces the scenario's own expect:
      - file: ../power-loss-coordinated.yaml
        matrix:                            # one run per combination (Jepsen's test-all)
          server.sync_interval: [default, always]
          faults:                          # a mapping names its values
            all: [{kind: power-loss, targets: all, coordinated: true}]
        expect_by:                         # the first entry whose conditions all hold
          server.sync_interval=default: {anomalies: [lost]}
          "server.sync_interval=always, faults=all": {valid: true}

Overrides apply in this order: the entry's ``set``, the matrix combination,
its expectation (``expect_by`` match, else ``expect``, else the scenario's),
the command line (``--time-limit``, ``--backend``), and for repeat k (from 0)
``seed`` + k. A list value of a matrix axis is labelled by itself when it is
a scalar, else ``#1``, ``#2`` … Every case is validated before anything runs.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from checkers import files
from checkers.verdict import headline
from harness import yamlfile
from harness.dirs import require_writable, stamped_dir
from harness.errors import EXIT_RUN_BROKEN, BadInput, HarnessError, Stopped
from harness.expect import describe, match
from harness.junit import write_junit
from harness.runner import RunOutcome
from harness.scenario import Scenario, load_scenario
from harness.spec import field_names
from harness.suggest import hint

SUITE_FILE = "suite.yaml"

RunOne = Callable[[Scenario, Path], RunOutcome]
"""Run one scenario with its result folder under the given directory (``runner.execute``)."""


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    file: str
    overrides: dict[str, Any] = Field(default_factory=dict, alias="set")
    expect: dict[str, Any] | None = None
    matrix: dict[str, list[Any] | dict[str, Any]] = Field(default_factory=dict)
    expect_by: dict[str, dict[str, Any]] = Field(default_factory=dict)


class _SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    description: str = ""
    scenarios: list[_Entry | str] = Field(min_length=1)


@dataclass(frozen=True)
class Case:
    """One run of the suite, before its repeats: a scenario file, overrides and a variant label."""

    file: Path
    overrides: tuple[str, ...]
    variant: str
    scenario: Scenario  # validated, with every override (the seed of repeat 1)

    def label(self, repeat: int) -> str:
        """``scenario[variant]#k``: the JUnit test case name."""
        variant = f"[{self.variant}]" if self.variant else ""
        return f"{self.scenario.name}{variant}#{repeat}"

    def for_repeat(self, k: int) -> Scenario:
        """The scenario of repeat ``k`` (from 0): seed + k."""
        if k == 0:
            return self.scenario
        return load_scenario(self.file, [*self.overrides, f"seed={self.scenario.seed + k}"])


@dataclass
class SuiteOutcome:
    """What ``suite`` prints and exits with."""

    out: Path
    name: str
    rows: list[dict[str, Any]]
    interrupted: str | None = None

    @property
    def exit_code(self) -> int:
        """0 all matched, 1 a mismatch, else the highest exit code of a run's error (2, 3, 4)."""
        errors = [r["error_code"] for r in self.rows if r.get("error_code")]
        if errors:
            return max(errors)
        return 0 if self.rows and all(r["matched"] for r in self.rows) else 1


def _override(key: str, value: Any) -> str:
    """A ``--set`` string for any YAML value: JSON is YAML, so lists and mappings survive."""
    return f"{key}={json.dumps(value)}"


def _axis(key: str, values: list[Any] | dict[str, Any], where: str) -> list[tuple[str, Any]]:
    """``(label, value)`` pairs of one matrix axis."""
    if isinstance(values, dict):
        pairs = [(str(k), v) for k, v in values.items()]
    else:
        pairs = [
            (json.dumps(v) if isinstance(v, bool) or v is None else str(v), v)
            if not isinstance(v, list | dict)
            else (f"#{i + 1}", v)
            for i, v in enumerate(values)
        ]
    if not pairs:
        raise BadInput(f"{where}: matrix.{key}: needs at least one value")
    return pairs


def _conditions(key: str, axes: dict[str, list[str]], where: str) -> dict[str, str]:
    """``"a=x, b=y"`` -> ``{"a": "x", "b": "y"}``, every axis and label checked."""
    out: dict[str, str] = {}
    for part in key.split(","):
        axis, sep, label = (s.strip() for s in part.partition("="))
        if not sep or axis not in axes or label not in axes[axis]:
            known = "; ".join(f"{a}: {', '.join(ls)}" for a, ls in axes.items())
            bad = part.strip()
            raise BadInput(f"{where}: expect_by {key!r}: {bad!r} is no matrix value ({known})")
        out[axis] = label
    return out


def _entry_cases(entry: _Entry, base: Path, where: str, cli: list[str]) -> list[Case]:
    file = (base / entry.file).resolve() if not Path(entry.file).is_absolute() else Path(entry.file)
    fixed = [_override(k, v) for k, v in entry.overrides.items()]
    axes = {k: _axis(k, v, where) for k, v in entry.matrix.items()}
    if entry.expect_by and not axes:
        raise BadInput(f"{where}: {entry.file}: expect_by needs a matrix")
    labels = {k: [label for label, _ in pairs] for k, pairs in axes.items()}
    rules = [(_conditions(k, labels, where), v) for k, v in entry.expect_by.items()]
    cases = []
    for combo in itertools.product(*axes.values()) if axes else [()]:
        chosen = {k: label for k, (label, _) in zip(axes, combo, strict=True)}
        overrides = fixed + [_override(k, v) for k, (_, v) in zip(axes, combo, strict=True)]
        expect = next(
            (e for cond, e in rules if all(chosen[a] == lb for a, lb in cond.items())),
            entry.expect,
        )
        if expect is not None:
            overrides.append(_override("expect", expect))
        overrides += cli
        variant = ", ".join(f"{k}={label}" for k, label in chosen.items())
        cases.append(Case(file, tuple(overrides), variant, load_scenario(file, overrides)))
    return cases


def _read_yaml(path: Path) -> Any:
    return yamlfile.load(path, "scenario or suite")


def _suite_file(path: Path, raw: dict[str, Any], cli: list[str]) -> tuple[str | None, list[Case]]:
    try:
        spec = _SuiteFile.model_validate(raw)
    except ValidationError as err:
        e = err.errors()[0]
        loc = ".".join(str(p) for p in e["loc"] if p not in ("_Entry", "str")) or "(top level)"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            where = tuple(p for p in e["loc"] if p not in ("_Entry", "str"))
            msg = "unknown field" + hint(str(e["loc"][-1]), field_names(_SuiteFile, where))
        raise BadInput(f"{path}: {loc}: {msg}") from None
    cases: list[Case] = []
    for entry in spec.scenarios:
        entry = _Entry(file=entry) if isinstance(entry, str) else entry
        cases += _entry_cases(entry, path.parent, str(path), cli)
    return spec.name, cases


def load_cases(paths: list[str], cli: list[str]) -> tuple[str, list[Case]]:
    """The suite's name and every case of ``paths``, validated (bad input: BadInput, exit 2)."""
    names: list[str] = []
    cases: list[Case] = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            suite = path / SUITE_FILE
            files = [suite] if suite.is_file() else sorted(path.glob("*.yaml"))
            if not files:
                raise BadInput(f"{path}: no {SUITE_FILE} and no *.yaml scenarios in it")
            names.append(path.resolve().name)
        elif path.is_file():
            files = [path]
            names.append(path.stem)
        else:
            raise BadInput(f"{path}: no such scenario, suite file or directory")
        for f in files:
            raw = _read_yaml(f)
            if isinstance(raw, dict) and "scenarios" in raw:
                name, more = _suite_file(f, raw, cli)
                if name and len(files) == 1:  # else: the directory's or the file's name
                    names[-1] = name
                cases += more
            else:
                cases.append(Case(f.resolve(), tuple(cli), "", load_scenario(f, cli)))
    labels = [c.label(1) for c in cases]
    twice = sorted({x for x in labels if labels.count(x) > 1})
    if twice:
        raise BadInput(
            f"{', '.join(twice)}: more than one case with this name; "
            "give one its own with set: {name: …}"
        )
    return "+".join(names), cases


def _identity(case: Case, k: int, sc: Scenario) -> dict[str, Any]:
    """The columns that name a run: case, scenario, variant, repeat, seed."""
    return {
        "case": case.label(k),
        "scenario": sc.name,
        "variant": case.variant,
        "repeat": k,
        "seed": sc.seed,
    }


def row(
    case: Case, k: int, sc: Scenario, outcome: RunOutcome, out: Path, wall: float
) -> dict[str, Any]:
    """The summary row of one finished run (``k`` from 1)."""
    result = outcome.result
    h = headline(result)
    m = match(result, sc.expect)
    try:
        report = str((outcome.run_dir / "report.html").relative_to(out))
    except ValueError:
        report = str(outcome.run_dir / "report.html")
    broke = {"matched": False, "why": f"the run broke: {outcome.broken}"} if outcome.broken else {}
    return {
        **_identity(case, k, sc),
        "verdict": h.line,
        "valid": result.get("valid"),
        "anomalies": list(result.get("anomalies") or []),
        "expected": describe(sc.expect),
        "matched": m.matched,
        "why": m.why,
        "counts": h.row,
        "wall_s": round(wall, 1),
        "report": report,
        **broke,
        **({"error_code": EXIT_RUN_BROKEN} if outcome.broken else {}),
    }


def error_row(case: Case, k: int, sc: Scenario, err: HarnessError, wall: float) -> dict[str, Any]:
    """The row of a run that could not happen (``err``: its one-line reason and exit code)."""
    return {
        **_identity(case, k, sc),
        "verdict": f"ERROR: {err}",
        "valid": "unknown",
        "anomalies": [],
        "expected": describe(sc.expect),
        "matched": False,
        "why": f"the run could not happen (exit {err.exit_code})",
        "counts": {},
        "wall_s": round(wall, 1),
        "report": None,
        "error_code": err.exit_code,
    }


def not_run_row(case: Case, k: int, sc: Scenario, signal: str) -> dict[str, Any]:
    """The row of a run the suite did not start: it was interrupted by ``signal``."""
    return {
        **_identity(case, k, sc),
        "verdict": f"not run (interrupted by {signal})",
        "valid": "unknown",
        "anomalies": [],
        "expected": describe(sc.expect),
        "matched": False,
        "why": f"the suite was interrupted by {signal} before this run",
        "counts": {},
        "wall_s": 0.0,
        "report": None,
    }


def markdown(name: str, rows: list[dict[str, Any]], wall: float) -> str:
    """``summary.md``: a headline and one table row per run, with the runs' row figures."""
    ok = sum(1 for r in rows if r["matched"])
    icon = "✅" if rows and ok == len(rows) else "❌"
    figures = list(dict.fromkeys(k for r in rows for k in r.get("counts") or {}))
    lines = [
        f"## {icon} suite {_md(name)}: {ok}/{len(rows)} matched their expectation",
        "",
        f"Wall time {wall / 60:.1f} min.",
        "",
        "| scenario | variant | # | verdict | expected | matched | "
        + "".join(f"{_md(f)} | " for f in figures)
        + "wall s | report |",
        "|---|---|---:|---|---|---|" + "---:|" * len(figures) + "---:|---|",
    ]
    for r in rows:
        matched = "yes" if r["matched"] else f"**NO** — {_md(r['why'])}"
        report = f"[report]({r['report']})" if r["report"] else "–"
        counts = r.get("counts") or {}
        cells = [
            _md(r["scenario"]), _md(r["variant"] or "–"), str(r["repeat"]), _md(r["verdict"]),
            _md(r["expected"]), matched, *(_n(counts.get(f)) for f in figures),
            f"{r['wall_s']:.0f}", report,
        ]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _md(v: Any) -> str:
    return " ".join(str(v).split()).replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _n(v: Any) -> str:
    return "–" if v is None else f"{v:,}"


def write(out: Path, name: str, rows: list[dict[str, Any]], started: float, wall: float) -> None:
    """Write ``summary.md``, ``summary.json`` and ``junit.xml`` into ``out``."""
    files.write_text(out / "summary.md", markdown(name, rows, wall))
    data = {
        "suite": name,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        "wall_s": round(wall, 1),
        "runs": len(rows),
        "matched": sum(1 for r in rows if r["matched"]),
        "all_matched": bool(rows) and all(r["matched"] for r in rows),
        "rows": rows,
    }
    files.write_json(out / "summary.json", data)
    write_junit(out / "junit.xml", name, rows, started)


def run_suite(
    name: str,
    cases: list[Case],
    repeat: int,
    results_dir: Path,
    run_one: RunOne,
    echo: Callable[[str], Any] = print,
    after_each: Callable[[], Any] | None = None,
) -> SuiteOutcome:
    """Run every case ``repeat`` times in sequence; write the suite folder after every run
    (then call ``after_each``: the CLI rewrites the results index there)."""
    if repeat < 1:
        raise BadInput("--repeat must be at least 1")
    if not cases:
        raise BadInput("the suite has no scenarios")
    todo = [(case, k) for k in range(repeat) for case in cases]
    scenarios = [case.for_repeat(k) for case, k in todo]  # validate every repeat first
    require_writable(results_dir, "the results dir")
    out = stamped_dir(results_dir / "suites")
    outcome = SuiteOutcome(out, name, [])
    started, t0 = time.time(), time.monotonic()
    for i, ((case, k), sc) in enumerate(zip(todo, scenarios, strict=True), 1):
        echo(f"== [{i}/{len(todo)}] {case.label(k + 1)} (seed {sc.seed})")
        t = time.monotonic()
        try:
            run = run_one(sc, out / "runs")
        except Stopped as err:  # a second signal: no more runs, and this one has no row
            echo(f"nats-chaos: {err}")
            outcome.interrupted = err.signal
        except HarnessError as err:
            outcome.rows.append(error_row(case, k + 1, sc, err, time.monotonic() - t))
            echo(f"nats-chaos: {err}")
        else:
            r = row(case, k + 1, sc, run, out, time.monotonic() - t)
            outcome.rows.append(r)
            echo(r["verdict"])
            status = "matched" if r["matched"] else "NOT MATCHED"
            echo(f"expected: {r['expected']} — {status}: {r['why']}")
            outcome.interrupted = run.interrupted
        if outcome.interrupted:  # what did not run is said, not left out
            first = i if len(outcome.rows) == i else i - 1  # a second signal left no row
            for (c, kk), s in zip(todo[first:], scenarios[first:], strict=True):
                outcome.rows.append(not_run_row(c, kk + 1, s, outcome.interrupted))
        write(out, name, outcome.rows, started, time.monotonic() - t0)
        if after_each is not None:
            after_each()
        if outcome.interrupted:
            break
    return outcome


def real_runner(nats_server: str | None, echo: Callable[[str], Any]) -> RunOne:
    """A :data:`RunOne` that makes real runs with ``runner.execute``."""
    from harness.runner import RunOptions, execute

    def run_one(scenario: Scenario, runs_dir: Path) -> RunOutcome:
        opts = RunOptions(results_dir=runs_dir, nats_server=nats_server, echo=echo)
        return execute(scenario, opts)

    return run_one
