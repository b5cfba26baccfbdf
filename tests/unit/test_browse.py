"""The results browser: index.html and ``nats-chaos serve``, loaded in headless Chromium.

The results folder holds one real run on the fake cluster (``harness.runner`` wrote
it), a planted run whose scenario name is ``<script>…</script>``, a comparison with
one run of its own and a suite; the page must list all of them, escape the planted
name (and run no script but its own: no console message at all), and filter in the
page through the URL fragment.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import headless
import pytest
from fakerun import run, scenario

from harness.browse import entries, write_index

ROOT = Path(__file__).resolve().parents[2]
PLANTED = "<script>alert('planted')</script>"


def _planted(folder: Path, name: str, valid: Any, expectation: dict[str, Any] | None) -> None:
    folder.mkdir(parents=True)
    result = {
        "valid": valid, "anomalies": [] if valid is True else ["lost"], "scenario": name,
        "headline_checker": "queue", "timings": {"main": 10.0, "reads": 2.5},
        "versions": {"nats_server": "2.12.1"},
        "checkers": {"queue": {"valid": valid, "summary": {
            "headline": "lost 3 of 10", "row": {"acknowledged": 10, "lost": 3}}}},
    }  # fmt: skip
    if expectation is not None:
        result["expectation"] = expectation
    (folder / "results.json").write_text(json.dumps(result))


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browse")
    outcome, _ = run(tmp, scenario(expect={"valid": True}))
    res = tmp / "results"
    expected = {"expected": "anomalies lost", "declared": True, "matched": True, "why": "ok"}
    _planted(res / "planted" / "20260102T030405", PLANTED, False, expected)
    cmp = res / "compare" / "20260103T000000"
    _planted(cmp / "runs" / "quick" / "20260103T000001", "quick", True, None)
    (cmp / "compare.json").write_text(json.dumps({"title": "quick: sync_interval", "rows": []}))
    (cmp / "compare.html").write_text("<!doctype html><title>c</title>")
    suite = res / "suites" / "20260104T000000"
    suite.mkdir(parents=True)
    summary = {"suite": "nightly", "runs": 2, "matched": 1, "all_matched": False, "wall_s": 75}
    (suite / "summary.json").write_text(json.dumps(summary))
    (suite / "summary.md").write_text("## suite\n")
    assert outcome.run_dir.parent.parent == res
    write_index(res)
    return res


def _rows(dom: str) -> list[tuple[str, bool]]:
    """(kind, hidden) of every row of the listing, from the DOM after the page's script ran."""
    body = dom[dom.index("<tbody>") : dom.index("</tbody>")]
    tags = re.findall(r"<tr [^>]*>", body)
    return [(re.findall(r'data-kind="(\w+)"', t)[0], " hidden" in t) for t in tags]


def test_every_run_compare_and_suite_is_listed(root: Path) -> None:
    got = [(e.kind, e.name, e.matched) for e in entries(root)]
    assert got == [  # newest first (the fake run is today's); a comparison's runs after it
        ("run", "fake", True),
        ("suite", "nightly", False),
        ("compare", "quick: sync_interval", None),
        ("run", "quick", None),
        ("run", PLANTED, True),
    ]
    fake = entries(root)[0]
    assert fake.status == "valid" and fake.acknowledged and fake.lost == 0
    assert fake.link and (root / fake.link).is_file() and fake.link.endswith("report.html")
    assert entries(root)[3].part_of == "compare 20260103T000000"


def test_the_static_page_loads_clean_and_escapes_the_planted_name(root: Path) -> None:
    page = headless.load((root / "index.html").as_uri())
    assert page.console == []  # no error, no message: the planted script did not run
    assert page.dom.count("<script") == 1  # the page's own filter script only
    assert "&lt;script&gt;alert('planted')&lt;/script&gt;" in page.dom
    assert [kind for kind, hidden in _rows(page.dom) if not hidden] == [
        "run", "suite", "compare", "run", "run",
    ]  # fmt: skip
    links = re.findall(r'href="([^"#]+)"', page.dom)
    assert links and not [x for x in links if x.startswith(("/", "http", "file:"))]
    assert all((root / x).is_file() for x in links), links


@pytest.mark.parametrize(
    ("fragment", "shown"),
    [
        ("kind=compare", ["compare"]),
        ("status=invalid", ["suite", "run"]),
        ("kind=run&matched=yes", ["run", "run"]),
        ("q=planted", ["run"]),
        ("q=nothing-has-this", []),
    ],
)
def test_filters_work_in_the_page(root: Path, fragment: str, shown: list[str]) -> None:
    page = headless.load(f"{(root / 'index.html').as_uri()}#{fragment}")
    assert page.console == []
    assert [kind for kind, hidden in _rows(page.dom) if not hidden] == shown
    assert f'<span id="shown">{len(shown)}</span>' in page.dom


def test_serve_shows_the_same_page_and_exits_0_on_ctrl_c(root: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "serve", str(root), "--port", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)
        assert url, line
        with urllib.request.urlopen(url.group(0), timeout=10) as resp:
            html = resp.read().decode()
        assert "&lt;script&gt;alert(&#x27;planted&#x27;)" in html and "nightly" in html
        fake = next(e for e in entries(root) if e.name == "fake")
        with urllib.request.urlopen(url.group(0) + str(fake.link), timeout=10) as resp:
            assert resp.status == 200 and b"<!doctype html>" in resp.read()
        page = headless.load(url.group(0) + "#kind=suite")
        assert page.console == []
        assert [kind for kind, hidden in _rows(page.dom) if not hidden] == ["suite"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "stopped" in out and "Traceback" not in err


def test_serve_refuses_a_missing_folder_in_one_line(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "serve", str(tmp_path / "nope")],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no such results folder" in proc.stderr


def test_serve_on_a_port_in_use_says_so_in_one_line(root: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "harness.cli", "serve", str(root), "--port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert proc.returncode == 3
    assert proc.stderr == f"nats-chaos: 127.0.0.1:{port}: the port is in use (try --port 0)\n"
