"""How to call this nats-chaos from a shell, so every fix nats-chaos prints works as printed.

Standard library only (``harness.engine`` uses it before a virtualenv exists).
In: the running interpreter and ``PATH``. Out: :func:`program` is
``nats-chaos`` when that name on ``PATH`` is this very install, else the full
path of this install's script (``/srv/app/.venv/bin/nats-chaos``: ``sudo``
and a root shell rarely have a virtualenv on ``PATH``), else ``<python> -m
harness.cli``; :func:`command` joins it with a subcommand, and
:func:`as_root` says that a command needs root when the caller is not.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path


def program() -> str:
    """The shortest command line that runs this nats-chaos."""
    script = Path(sys.executable).parent / "nats-chaos"
    if not script.is_file():
        return f"{sys.executable} -m harness.cli"
    found = shutil.which("nats-chaos")
    if found is not None and Path(found).resolve() == script.resolve():
        return "nats-chaos"
    return str(script)


def command(args: str) -> str:
    """``nats-chaos <args>`` as it can be typed here."""
    return f"{program()} {args}"


def as_root(cmd: str, euid: int | None = None) -> str:
    """``cmd``, prefixed ``as root:`` when the caller (``euid``, default: this process) is not."""
    euid = os.geteuid() if euid is None else euid
    return cmd if euid == 0 else f"as root: {cmd}"
