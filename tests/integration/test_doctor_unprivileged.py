"""``doctor`` run by a real non-root user: it says "not root" and "no permission on the Docker
socket", never "unsupported on this kernel" or "not running", and refuses the scenario (exit 3).

The user is the checkout's owner when that is not root (CI: the runner user, who can read the
checkout and its venv), else ``nobody``; ``setpriv --clear-groups`` drops the docker group.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from chaosrun import ROOT

from harness import engine

NOBODY = 65534


def _user() -> int:
    owner = ROOT.stat().st_uid
    return owner if owner != 0 else NOBODY


def _as(uid: int, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    cmd = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]
    return subprocess.run(cmd, env=env, cwd="/", capture_output=True, text=True, timeout=120)


def _python(uid: int, env: dict[str, str]) -> str:
    """An interpreter of this version the user can run (a venv's may live in root's home)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for exe in (sys.executable, shutil.which(version), f"/usr/bin/{version}"):
        if exe and _as(uid, [exe, "-c", "import sys"], env).returncode == 0:
            return exe
    pytest.fail(f"no {version} that uid {uid} can run (tried {sys.executable}, /usr/bin)")


@pytest.mark.integration
def test_doctor_as_a_user_who_is_not_root(tmp_path: Path) -> None:
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed"
    uid = _user()
    paths = dict.fromkeys([str(ROOT), sysconfig.get_paths()["purelib"],
                           sysconfig.get_paths()["platlib"]])  # fmt: skip
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
           "PYTHONPATH": os.pathsep.join(paths), "NATS_CHAOS_CACHE": "/nonexistent"}  # fmt: skip
    python = _python(uid, env)
    p = _as(uid, [python, "-m", "harness.cli", "doctor", "quick", "--json"], env)
    assert p.returncode == 3, p.stderr
    rows = {c["key"]: c for c in json.loads(p.stdout)["host"]}
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
