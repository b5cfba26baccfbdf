"""Pages in headless Chromium for the tests: the DOM after the scripts ran, console, screenshot.

In: a URL (``file://`` or ``http://127.0.0.1``) and, optionally, a path for a
PNG screenshot. Out: :class:`Loaded` — the serialized DOM once the page has
loaded and its scripts ran (``--dump-dom``), every console message and uncaught
error the page produced (Chromium logs them as ``CONSOLE`` lines on stderr with
``--enable-logging=stderr``), and the screenshot's path. Each call uses its own
profile directory, so parallel test sessions never share one. Only the system
``chromium`` (Debian's package; ``make test`` installs it) is used: no browser
download.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CONSOLE = re.compile(r":CONSOLE[^\]]*\]\s*(.*)")
FLAGS = [
    "--headless",
    "--no-sandbox",  # the tests run as root
    "--disable-gpu",
    "--hide-scrollbars",
    "--no-first-run",
    "--disable-extensions",
    "--disable-quic",  # no network beyond the page: nothing phones home
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def binary() -> str | None:
    """The system Chromium, or None."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass(frozen=True)
class Loaded:
    """What one page load showed."""

    dom: str
    console: list[str]  # console messages and uncaught errors, as Chromium logged them
    screenshot: Path | None = None


def _run(args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    exe = binary()
    assert exe, "chromium is missing: `make test` installs it (apt-get install chromium)"
    with tempfile.TemporaryDirectory(prefix="nats-chaos-chromium-") as profile:
        return subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


def load(
    url: str, screenshot: Path | None = None, size: tuple[int, int] = (1200, 1600),
    timeout: float = 90,
) -> Loaded:  # fmt: skip
    """Load ``url``; return its DOM and console (and write a screenshot when asked)."""
    proc = _run(["--dump-dom", url], timeout)
    assert proc.returncode == 0, f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}"
    console = [m.group(1) for m in CONSOLE.finditer(proc.stderr)]
    if screenshot is not None:
        shot = _run([f"--screenshot={screenshot}", f"--window-size={size[0]},{size[1]}", url],
                    timeout)  # fmt: skip
        assert shot.returncode == 0 and screenshot.is_file(), shot.stderr[-2000:]
        console += [m.group(1) for m in CONSOLE.finditer(shot.stderr)]
    return Loaded(proc.stdout, console, screenshot)
