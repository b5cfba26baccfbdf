"""``doctor`` run by a real non-root user: it says "not root" and "no permission on the Docker
socket", never "unsupported on this kernel" or "not running", and refuses the scenario (exit 3).

The user is the checkout's owner when that is not root (a CI runner user), else ``nobody``;
``setpriv --clear-groups`` drops the docker group. The checkout and the packages it imports may
lie where that user cannot look (a root-only home), so they are bind-mounted into a world-readable
folder inside a private mount namespace, which goes away with the process.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from chaosrun import ROOT

from harness import engine

NOBODY = 65534


def _user() -> int:
    owner = ROOT.stat().st_uid
    return owner if owner != 0 else NOBODY


def _as(
    uid: int, argv: list[str], env: dict[str, str], binds: dict[str, Path] | None = None
) -> subprocess.CompletedProcess[str]:
    """``argv`` as ``uid``, with each ``binds`` source mounted at its target first."""
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]
    if binds:
        mounts = " && ".join(f"mount --bind {shlex.quote(src)} {shlex.quote(str(dst))}"
                             for src, dst in binds.items())  # fmt: skip
        script = f"{mounts} && exec {shlex.join(cmd)}"
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]
    return subprocess.run(cmd, env=env, cwd="/", capture_output=True, text=True, timeout=120)


def _python(uid: int, env: dict[str, str]) -> str:
    """An interpreter of this version the user can run (a venv's may live in root's home)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for exe in (sys.executable, shutil.which(version), f"/usr/bin/{version}"):
        if exe and _as(uid, [exe, "-c", "import sys"], env).returncode == 0:
            return exe
    pytest.fail(f"no {version} that uid {uid} can run (tried {sys.executable}, /usr/bin)")


@pytest.fixture
def seen() -> Iterator[Path]:
    """A folder any user can look into (pytest's tmp_path is root's only)."""
    path = Path(tempfile.mkdtemp(prefix="nats-chaos-doctor-", dir="/tmp"))
    os.chmod(path, 0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.integration
def test_doctor_as_a_user_who_is_not_root(seen: Path) -> None:
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed"
    uid = _user()
    sources = dict.fromkeys([str(ROOT), sysconfig.get_paths()["purelib"],
                             sysconfig.get_paths()["platlib"]])  # fmt: skip
    binds = {src: seen / f"p{i}" for i, src in enumerate(sources)}
    for dst in binds.values():
        dst.mkdir()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
           "PYTHONPATH": os.pathsep.join(map(str, binds.values())),
           "NATS_CHAOS_CACHE": "/nonexistent"}  # fmt: skip
    python = _python(uid, env)
    p = _as(uid, [python, "-m", "harness.cli", "doctor", "quick", "--json"], env, binds)
    assert p.returncode == 3, p.stderr
    rows = {c["key"]: c for c in json.loads(p.stdout)["host"]}
    assert rows["shipped"]["detail"].startswith(f"in {seen}/p0"), rows["shipped"]  # this code
    assert rows["root"]["ok"] is False and rows["root"]["detail"] == f"euid {uid}"
    for key in ("netns", "netem"):
        assert rows[key]["ok"] is False
        assert rows[key]["detail"].startswith(f"not root (euid {uid}): "), rows[key]
        assert "kernel" not in rows[key]["detail"]
        assert rows[key]["fix"].startswith("run nats-chaos as root")
    docker = rows["docker"]
    sock = engine.socket_path()
    if sock and os.path.exists(sock) and engine.ping():  # root's engine answers; this user's not
        assert docker["detail"] == f"no permission on the Docker socket {sock}", docker
        assert "usermod -aG docker" in docker["fix"]
    assert "not running" not in docker["detail"] or not engine.ping()
    last = p.stderr.strip().splitlines()[-1]
    assert last.startswith("quick: cannot run here (root: run nats-chaos as root")
    assert "network namespaces: run nats-chaos as root" in last
