"""Is a Docker engine answering here, and if not, install and start one (CI, tests).

The Docker backend talks to the engine through the ``docker`` SDK; this
module only answers the questions that come before that and uses the
standard library alone, so ``.ci/run`` can call it with the system Python
before the virtualenv exists::

    nats-chaos engine start              # start dockerd if no engine answers
    nats-chaos engine install            # also apt-get install docker.io if missing
    python3 -m harness.engine [--install]  # the same, from a checkout, without a venv

In: ``DOCKER_HOST`` (a ``unix://`` socket; default ``/var/run/docker.sock``).
Out: :func:`ping` says whether the engine answers ``/_ping``, and
:func:`status` why not: ``"permission"`` (the socket refuses this user),
``"not running"`` (no socket, or nothing listening), ``"not installed"``;
:func:`how_to_start` is the fix for each, as a command that works here
(:mod:`harness.selfcmd`); :func:`ensure_engine` returns one line saying what it did, or raises
:class:`~harness.errors.CannotRun` with the dockerd log's last lines. A
dockerd started here runs detached (its own session) and outlives the
caller, like a service would; it is never stopped by nats-chaos.
"""

from __future__ import annotations

import argparse
import errno
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness.errors import CannotRun
from harness.selfcmd import as_root, command

DEFAULT_SOCKET = "/var/run/docker.sock"
DOCKERD_LOG = Path("/var/log/nats-chaos-dockerd.log")
PERMISSION, NOT_RUNNING, NOT_INSTALLED = "permission", "not running", "not installed"


def socket_path() -> str | None:
    """The engine's unix socket (from ``DOCKER_HOST``), or None for a non-unix DOCKER_HOST."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://"):
        return host.removeprefix("unix://")
    return None


def probe(path: str | None = None, timeout: float = 2.0) -> OSError | None:
    """None if the engine answers ``GET /_ping`` with ``OK`` on its unix socket, else the error
    (the ``OSError`` of the connection, or one saying the answer was not ``OK``)."""
    path = socket_path() if path is None else path
    if path is None:  # a tcp:// engine: let the SDK decide
        return None
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError as e:
        e.filename = e.filename or path
        return e
    if data.startswith(b"HTTP/1.") and data.rstrip().endswith(b"OK"):
        return None
    return OSError(errno.EPROTO, f"answered {data[:40]!r} to /_ping", path)


def ping(timeout: float = 2.0) -> bool:
    """True if the engine answers ``GET /_ping`` with ``OK`` on its unix socket."""
    return probe(timeout=timeout) is None


def status(error: OSError, installed: bool) -> str:
    """Why no engine answered: PERMISSION, NOT_RUNNING or NOT_INSTALLED (``error``: of
    :func:`probe`; ``installed``: a ``dockerd`` binary is on PATH)."""
    if error.errno in (errno.EACCES, errno.EPERM):
        return PERMISSION
    return NOT_RUNNING if installed else NOT_INSTALLED


def how_to_start(state: str = NOT_RUNNING, euid: int | None = None) -> str:
    """The fix for an engine in ``state``, as commands that work as printed here."""
    if state == PERMISSION:
        return (
            "run nats-chaos as root (the Docker backend needs root anyway), or join the "
            "socket's group: `usermod -aG docker $USER`, then log in again"
        )
    what = "engine start" if state == NOT_RUNNING else "engine install"
    return f"start one: {as_root(command(what), euid)} (or `systemctl start docker`)"


def diagnose(euid: int | None = None) -> tuple[str, str] | None:
    """None when the engine answers; else (what was seen, how to fix it), in one line each."""
    error = probe()
    if error is None:
        return None
    state = status(error, shutil.which("dockerd") is not None)
    where = error.filename or socket_path()
    seen = {
        PERMISSION: f"no permission on the Docker socket {where}",
        NOT_RUNNING: f"dockerd installed, not running (nothing answers on {where})",
        NOT_INSTALLED: "not installed (no dockerd)",
    }[state]
    return seen, how_to_start(state, euid)


def install_engine() -> None:
    """``apt-get install docker.io`` (needs root and Debian's archive)."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    cmd = ["apt-get", "install", "-y", "-qq", "docker.io"]
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True)
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["failed"])[-1]
            raise CannotRun(f"apt-get install docker.io failed: {tail}")


def start_dockerd(log_path: Path = DOCKERD_LOG, timeout: float = 60.0) -> int:
    """Start ``dockerd`` detached and wait until it answers; return its pid."""
    exe = shutil.which("dockerd")
    if exe is None:
        raise CannotRun(f"no dockerd binary; {how_to_start(NOT_INSTALLED)}")
    if os.geteuid() != 0:
        raise CannotRun("starting dockerd needs root")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [exe],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping():
            return proc.pid
        if proc.poll() is not None:
            break
        time.sleep(0.25)
    tail = " | ".join(log_path.read_text(errors="replace").strip().splitlines()[-3:])
    state = f"exited with {proc.returncode}" if proc.poll() is not None else "does not answer"
    raise CannotRun(f"dockerd {state} (log {log_path}): {tail}")


def ensure_engine(install: bool = False) -> str:
    """Make sure an engine answers: start dockerd (after installing it if ``install``)."""
    if ping():
        return "docker engine: already running"
    if shutil.which("dockerd") is None:
        if not install:
            raise CannotRun(f"no Docker engine answers; {how_to_start(NOT_INSTALLED)}")
        install_engine()
    pid = start_dockerd()
    return f"docker engine: started dockerd (pid {pid}, log {DOCKERD_LOG})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m harness.engine", description=__doc__)
    parser.add_argument(
        "--install", action="store_true", help="apt-get install docker.io if needed"
    )
    args = parser.parse_args(argv)
    try:
        print(ensure_engine(install=args.install))
    except CannotRun as e:
        print(f"harness.engine: {e}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
