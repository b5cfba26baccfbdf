"""A real nats-server judges the rendered config and its own version before a run starts.

``nats-server -t`` on the first node's rendered config: a config it rejects
is refused in seconds with the server's own error line (it waited 60 s for a
cluster that never came), and one it accepts passes. Debian's nats-server
2.9.10 (the test unpacks it from ``apt-get download nats-server``) is refused with the oldest
supported version (it ran to "UNKNOWN: unread nodes"). No cluster starts.
"""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
from chaosrun import ROOT

from harness import config, servers
from harness.errors import ScenarioError
from harness.scenario import load_scenario
from harness.workloads import MIN_SERVER, version_key

pytestmark = pytest.mark.integration

QUICK = str(ROOT / "scenarios" / "quick.yaml")


@pytest.fixture
def binary() -> Path:
    path = servers.cached_path(servers.DEFAULT_VERSION)
    if not path.is_file():
        pytest.skip(f"nats-server {servers.DEFAULT_VERSION} is not installed")
    return path


def refused(nats_chaos, tmp_path: Path, *args: str, within: float) -> tuple[int, str]:
    t0 = time.monotonic()
    proc = nats_chaos("run", QUICK, *args)
    out, err = proc.communicate(timeout=60)
    assert time.monotonic() - t0 < within, err
    assert out == "" and err.count("\n") == 1, (out, err)
    assert not (tmp_path / "results").exists()
    state = tmp_path / "state"  # no run state file: nothing of a run was made
    assert not state.exists() or not any(state.iterdir())
    return proc.returncode, err.strip()


def test_a_config_the_server_rejects_is_its_own_error_in_seconds(
    binary: Path, nats_chaos, tmp_path: Path
) -> None:
    code, line = refused(nats_chaos, tmp_path, "--set", "server.config.foo=1", within=20)
    assert code == 2
    assert line == (
        'nats-chaos: server.config: nats-server rejects the rendered config: unknown field "foo"'
    )


def test_server_check_accepts_what_the_server_accepts_and_counts_the_rest(binary: Path) -> None:
    fine = load_scenario(QUICK, ["server.config={max_payload: 65536, cluster: {name: other}}"])
    config.server_check(fine, binary)
    bad = load_scenario(QUICK, ["server.config={foo: 1, bar: 2}"])
    with pytest.raises(ScenarioError) as err:
        config.server_check(bad, binary)
    # nats-server reports the unknown fields in map order, which Go randomises
    assert re.fullmatch(
        r'server\.config: nats-server rejects the rendered config: unknown field "(foo|bar)" '
        r"\(\+1 more\)",
        str(err.value),
    ), str(err.value)


OLD = Path.home() / ".cache" / "nats-chaos" / "debian-nats-server"


def _old_server() -> Path:
    """Debian 12's own nats-server (2.9.10), unpacked from its package (apt-get download)."""
    binary = OLD / "usr" / "sbin" / "nats-server"
    if not binary.is_file():
        OLD.mkdir(parents=True, exist_ok=True)
        download = ["apt-get", "download", "nats-server"]
        got = subprocess.run(download, cwd=OLD, capture_output=True, timeout=300, check=False)
        if got.returncode != 0:  # the package lists may be missing on a fresh machine
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
            subprocess.run(download, cwd=OLD, capture_output=True, timeout=300, check=True)
        [deb] = OLD.glob("nats-server_*.deb")
        subprocess.run(["dpkg", "-x", str(deb), str(OLD)], check=True, timeout=120)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    assert "v2.9." in version, version  # older than harness.workloads.MIN_SERVER
    return binary


def test_a_server_older_than_the_oldest_supported_names_the_minimum(
    nats_chaos, tmp_path: Path
) -> None:
    old = _old_server()
    version = servers.binary_version(old)
    assert version_key(version) < version_key(MIN_SERVER)
    code, line = refused(nats_chaos, tmp_path, "--nats-server", str(old), within=20)
    assert code == 3
    assert line.startswith(
        f"nats-chaos: nats-server {version} is older than {MIN_SERVER}, the oldest nats-chaos runs"
    )
