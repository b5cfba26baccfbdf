"""Is a Docker engine answering here, and if not, install and start one (CI, tests).

The Docker backend talks to the engine through the ``docker`` SDK; this
module only answers the questions that come before that and uses the
standard library alone, so ``.ci/run`` can call it with the system Python
before the virtualenv exists::

    python3 -m harness.engine            # start dockerd if no engine answers
    python3 -m harness.engine --install  # also apt-get install docker.io if missing

In: ``DOCKER_HOST`` (a ``unix://`` socket; default ``/var/run/docker.sock``).
Out: :func:`ping` says whether the engine answers ``/_ping``;
:func:`ensure_engine` returns one line saying what it did, or raises
:class:`~harness.errors.CannotRun` with the dockerd log's last lines. A
dockerd started here runs detached (its own session) and outlives the
caller, like a service would; it is never stopped by nats-chaos.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from harness.errors import CannotRun

DEFAULT_SOCKET = "/var/run/docker.sock"
DOCKERD_LOG = Path("/var/log/nats-chaos-dockerd.log")
HOW_TO_START = (
    "start one with `systemctl start docker` or `dockerd &` "
    "(install it with `apt-get install docker.io`), or run `python3 -m harness.engine --install`"
)


def socket_path() -> str | None:
    """The engine's unix socket (from ``DOCKER_HOST``), or None for a non-unix DOCKER_HOST."""
    host = os.environ.get("DOCKER_HOST", "")
    if not host:
        return DEFAULT_SOCKET
    if host.startswith("unix://"):
        return host.removeprefix("unix://")
    return None


def ping(timeout: float = 2.0) -> bool:
    """True if the engine answers ``GET /_ping`` with ``OK`` on its unix socket."""
    path = socket_path()
    if path is None:  # a tcp:// engine: let the SDK decide
        return True
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(path)
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
    except OSError:
        return False
    return data.startswith(b"HTTP/1.") and data.rstrip().endswith(b"OK")


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
        raise CannotRun(f"no dockerd binary; {HOW_TO_START}")
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
            raise CannotRun(f"no Docker engine answers; {HOW_TO_START}")
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
