"""The results browser: ``results/index.html`` and ``nats-chaos serve``.

In: a results folder (``--results-dir``) as runs, comparisons and suites
leave it (docs/contracts.md §3): ``<scenario>/<stamp>/results.json``,
``compare/<stamp>/compare.json`` with its runs under ``runs/``, and
``suites/<stamp>/summary.json`` with its runs under ``runs/``. Out:
:func:`entries` (one :class:`~checkers.report.listing.Entry` per run,
comparison and suite, newest first), :func:`write_index`, which rewrites
``index.html`` in that folder atomically (``checkers.files``) — every
command that writes results calls it, so the page opens from a CI artifact
with relative links — and :func:`serve`, a local HTTP server on 127.0.0.1
that renders the same page afresh on every request and serves the folder's
files (reports, plots, logs) around it. A folder that cannot be read as a
result is listed as ``unknown`` with why, never a crash.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from checkers import files
from checkers.report.listing import Entry, page
from checkers.verdict import headline
from harness.errors import BadInput, CannotRun

log = logging.getLogger(__name__)
INDEX = "index.html"
NESTED = ("compare", "suites")  # folders of comparisons and suites, not scenarios


def _read(file: Path) -> Any:
    try:
        return json.loads(file.read_text())
    except (OSError, ValueError):
        return None


def _time(folder: Path) -> str:
    """When ``folder`` (``<stamp>`` or ``<stamp>-1``) was made, from its name or its mtime."""
    stamp = folder.name.split("-")[0]
    try:
        t = datetime.datetime.strptime(stamp, "%Y%m%dT%H%M%S")
    except ValueError:
        t = datetime.datetime.fromtimestamp(folder.stat().st_mtime)
    return t.strftime("%Y-%m-%d %H:%M:%S")


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _first(folder: Path, names: tuple[str, ...], root: Path) -> str | None:
    found = next((folder / n for n in names if (folder / n).is_file()), None)
    return _rel(found, root) if found is not None else None


def run_entry(folder: Path, root: Path, part_of: tuple[str, str] | None = None) -> Entry:
    """The row of one run folder."""
    result = _read(folder / "results.json")
    link = _first(folder, ("report.html", "summary.md", "results.json"), root)
    when = _time(folder)
    part, part_link = part_of or (None, None)
    if not isinstance(result, dict):
        return Entry("run", folder.parent.name, when, link, verdict="no readable results.json",
                     part_of=part, part_link=part_link)  # fmt: skip
    h = headline(result)
    said = result.get("expectation")
    e: dict[str, Any] = said if isinstance(said, dict) else {}
    timings = result.get("timings") or {}
    took = [v for v in timings.values() if isinstance(v, int | float)]
    return Entry(
        kind="run",
        name=str(result.get("scenario") or folder.parent.name),
        time=when,
        link=link,
        server=str((result.get("versions") or {}).get("nats_server") or "–"),
        status=h.status,
        verdict=h.line,
        expected=str(e.get("expected") or "–"),  # "–": written before runs recorded it
        matched=bool(e["matched"]) if "matched" in e else None,
        acknowledged=_int(h.row.get("acknowledged")),
        lost=_int(h.row.get("lost")),
        duration_s=round(sum(took), 1) if took else None,
        part_of=part,
        part_link=part_link,
    )


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _runs(folder: Path, skip: tuple[str, ...] = ()) -> Iterator[Path]:
    """The run folders under ``folder`` (``<scenario>/<stamp>/``; ``latest`` links and the
    ``skip`` folders left out)."""
    for scenario in sorted(folder.iterdir()):
        if scenario.name in skip or not scenario.is_dir() or scenario.is_symlink():
            continue
        for run in sorted(scenario.iterdir()):
            if (
                run.is_dir()
                and not run.is_symlink()
                and ((run / "results.json").is_file() or (run / "history.jsonl").is_file())
            ):
                yield run


def _nested(folder: Path, root: Path, label: str, link: str | None) -> list[Entry]:
    """The rows of the runs in a comparison's or a suite's ``runs/``."""
    runs = folder / "runs"
    return [run_entry(r, root, (label, link or "")) for r in _runs(runs)] if runs.is_dir() else []


def _worst(runs: list[Entry]) -> str:
    statuses = {r.status for r in runs}
    return next(
        (s for s in ("invalid", "unknown") if s in statuses), "valid" if runs else "unknown"
    )


def _servers(runs: list[Entry]) -> str:
    return ", ".join(dict.fromkeys(r.server for r in runs if r.server != "–")) or "–"


def _total(runs: list[Entry]) -> float | None:
    took = [r.duration_s for r in runs if r.duration_s is not None]
    return round(sum(took), 1) if took else None


def compare_entries(folder: Path, root: Path) -> list[Entry]:
    """The row of one comparison, then the rows of its runs."""
    data = _read(folder / "compare.json")
    link = _first(folder, ("compare.html", "compare.md"), root)
    label = f"compare {folder.name}"
    runs = _nested(folder, root, label, link)
    counts = {s: sum(1 for r in runs if r.status == s) for s in ("valid", "invalid", "unknown")}
    said = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    title = data.get("title") if isinstance(data, dict) else None
    head = Entry(
        kind="compare",
        name=str(title or folder.name),
        time=_time(folder),
        link=link,
        server=_servers(runs),
        status=_worst(runs),
        verdict=f"{len(runs)} run{'' if len(runs) == 1 else 's'}" + (f": {said}" if said else ""),
        duration_s=_total(runs),
    )
    return [head, *runs]


def suite_entries(folder: Path, root: Path) -> list[Entry]:
    """The row of one suite, then the rows of its runs."""
    data = _read(folder / "summary.json")
    data = data if isinstance(data, dict) else {}
    link = _first(folder, ("summary.md", "summary.json"), root)
    label = f"suite {data.get('suite') or folder.name}"
    runs = _nested(folder, root, label, link)
    ok, total = data.get("matched"), data.get("runs")
    verdict = f"{ok}/{total} matched their expectation" if total is not None else "no summary.json"
    all_ok = data.get("all_matched")
    head = Entry(
        kind="suite",
        name=str(data.get("suite") or folder.name),
        time=_time(folder),
        link=link,
        server=_servers(runs),
        status="valid" if all_ok else "invalid" if all_ok is False else "unknown",
        verdict=verdict,
        expected="every run as expected",
        matched=all_ok if isinstance(all_ok, bool) else None,
        duration_s=data.get("wall_s") if isinstance(data.get("wall_s"), int | float) else None,
    )
    return [head, *runs]


def entries(root: Path) -> list[Entry]:
    """Every run, comparison and suite under ``root``, newest first (a comparison's or a
    suite's runs right after it)."""
    groups: list[list[Entry]] = []
    if not root.is_dir():
        return []
    for run in _runs(root, skip=NESTED):
        groups.append([run_entry(run, root)])
    for kind, make in (("compare", compare_entries), ("suites", suite_entries)):
        base = root / kind
        if base.is_dir():
            groups += [make(f, root) for f in sorted(base.iterdir()) if f.is_dir()]
    groups.sort(key=lambda g: g[0].time, reverse=True)
    return [e for g in groups for e in g]


def render(root: Path) -> str:
    """The page for ``root`` as it is now."""
    return page(entries(root), str(root))


def write_index(root: Path) -> Path | None:
    """Rewrite ``root/index.html`` atomically; a folder that cannot take it is logged and
    skipped (the index never costs a run its exit code). A folder with nothing to list and
    no index yet is left as it is (a refused run creates nothing). Returns the path, or None."""
    try:
        if not root.is_dir():
            return None
        found = entries(root)
        if not found and not (root / INDEX).exists():
            return None
        return files.write_text(root / INDEX, page(found, str(root)))
    except OSError as e:
        log.warning("%s: the results index could not be written: %s", root / INDEX, e)
        return None


class _Handler(SimpleHTTPRequestHandler):
    """The folder's files, with ``/`` and ``/index.html`` rendered afresh."""

    def do_GET(self) -> None:
        if self.path.split("?")[0].split("#")[0] in ("/", "/" + INDEX):
            body = render(Path(self.directory)).encode("utf-8")
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("serve: " + format, *args)


class _Server(ThreadingHTTPServer):
    """A request that fails (a browser that hung up mid-answer: a broken pipe) is logged in
    one line, never printed as a traceback on the terminal."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        level = logging.DEBUG if isinstance(exc, ConnectionError) else logging.WARNING
        log.log(level, "serve: a request from %s failed: %s", client_address[0], exc)


def serve(root: Path, port: int, echo: Callable[[str], Any] = print) -> None:
    """Serve ``root`` on http://127.0.0.1:``port`` (0: any free port) until Ctrl-C."""
    if not root.is_dir():
        raise BadInput(f"{root}: no such results folder (run a scenario first, or name one)")
    handler = functools.partial(_Handler, directory=str(root))
    try:
        server = _Server(("127.0.0.1", port), handler)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise CannotRun(f"127.0.0.1:{port}: the port is in use (try --port 0)") from None
        raise
    with server:
        echo(f"serving {root} at http://127.0.0.1:{server.server_address[1]}/ (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()
    echo("stopped")
