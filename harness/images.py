"""Node images for the Docker backend, built locally from a cached nats-server binary.

No registry is reachable, so the image a run uses is either built here or
already present on the engine:

- ``build(version)`` makes ``nats-chaos/nats-server:<version>`` from
  ``docker/Dockerfile`` (``FROM scratch`` + the static binary; package data,
  :data:`harness.shipped.DOCKERFILE`) in a temporary build context; a binary
  given by path is tagged ``<version>-<sha8>`` so it never replaces the
  cached version's image. Images carry labels
  ``nats-chaos.image``, ``nats-chaos.version`` and ``nats-chaos.binary-sha256``.
- ``for_scenario(scenario, binary)`` is what a run uses: ``server.image`` if
  the scenario names one (it must exist locally, e.g. an official
  ``nats:2.10.22``), else the built image, rebuilt when the binary changed.
- ``installed()`` lists nats-chaos images and official ``nats:*`` images;
- ``extract_binary(dc, image, dest, name)`` copies the nats-server an image
  runs out of it (an offline read serves a node's store with the same build).

Every engine failure becomes :class:`~harness.errors.CannotRun` with one line.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from harness import servers, shipped
from harness.engine import diagnose, how_to_start
from harness.errors import CannotRun

if TYPE_CHECKING:
    # Submodules, not ``docker.X``: the repository's own docker/ directory (the node
    # image) would otherwise shadow the SDK for the type checker.
    from docker.client import DockerClient
    from docker.models.images import Image

    from harness.scenario import Scenario

REPOSITORY = "nats-chaos/nats-server"
LABEL = "nats-chaos.image"
SHA_LABEL = "nats-chaos.binary-sha256"
VERSION_LABEL = "nats-chaos.version"
DOCKERFILE = shipped.DOCKERFILE


@dataclass(frozen=True)
class ImageRow:
    """One node image on the engine: its tag, nats-server version and size."""

    tag: str
    version: str
    size_mb: float
    ours: bool


def engine_client(timeout: int = 120) -> DockerClient:
    """A client for the local engine, or CannotRun saying how to start one."""
    from docker.client import from_env
    from docker.errors import DockerException

    try:
        dc = from_env(timeout=timeout)
        dc.ping()
    except DockerException as e:
        why = diagnose()  # not running, or no permission on the socket: said as such
        hint = f"{why[0]}; {why[1]}" if why else how_to_start()
        raise CannotRun(f"no Docker engine answers ({_short(e)}); {hint}") from None
    return dc


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:160]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def tag_for(version: str, digest: str | None = None) -> str:
    """``nats-chaos/nats-server:<version>`` (``-<sha8>`` appended for a binary given by path)."""
    return f"{REPOSITORY}:{version}" + (f"-{digest[:8]}" if digest else "")


def _get(dc: DockerClient, tag: str) -> Image | None:
    from docker.errors import ImageNotFound

    try:
        return dc.images.get(tag)
    except ImageNotFound:
        return None


def build(
    version: str | None = None,
    binary: Path | str | None = None,
    dc: DockerClient | None = None,
    force: bool = True,
) -> str:
    """Build the node image for ``version`` (or for ``binary``); return its tag.

    With ``force=False`` an existing image built from the same binary is reused.
    """
    from docker.errors import APIError, BuildError

    path = servers.resolve_binary(version, binary)
    actual = servers.binary_version(path)
    digest = sha256(path)
    tag = tag_for(actual, digest if binary else None)
    dc = dc or engine_client()
    have = _get(dc, tag)
    if have is not None and not force and have.labels.get(SHA_LABEL) == digest:
        return tag
    if not DOCKERFILE.is_file():
        raise CannotRun(f"{DOCKERFILE} is missing (the node image's Dockerfile)")
    labels = {LABEL: "nats-server", VERSION_LABEL: actual, SHA_LABEL: digest}
    with tempfile.TemporaryDirectory(prefix="nats-chaos-image-") as tmp:
        shutil.copy2(DOCKERFILE, Path(tmp) / "Dockerfile")
        shutil.copy2(path, Path(tmp) / "nats-server")
        try:
            dc.images.build(path=tmp, tag=tag, labels=labels, rm=True, forcerm=True)
        except (BuildError, APIError) as e:
            raise CannotRun(f"building {tag} failed: {_short(e)}") from None
    return tag


def for_scenario(scenario: Scenario, binary: Path | None, dc: DockerClient | None = None) -> str:
    """The image a run of ``scenario`` uses; builds the default one if needed."""
    dc = dc or engine_client()
    if scenario.server.image:
        if _get(dc, scenario.server.image) is None:
            raise CannotRun(
                f"image {scenario.server.image} is not on the local engine and no registry is "
                "reachable; build one with `nats-chaos image build VERSION` "
                "or load it with `docker load`"
            )
        return scenario.server.image
    explicit = scenario.server.binary is not None or (
        binary is not None and binary != servers.cached_path(scenario.server.version)
    )
    return build(scenario.server.version, binary if explicit else None, dc, force=False)


def image_version(dc: DockerClient, image: str) -> str:
    """The nats-server version inside ``image`` (its label, else ``--version`` in a container)."""
    img = _get(dc, image)
    if img is not None and img.labels.get(VERSION_LABEL):
        return img.labels[VERSION_LABEL]
    out = dc.containers.run(image, ["--version"], remove=True, stdout=True, stderr=True)
    m = re.search(rb"v?(\d+\.\d+\.\d+\S*)", out or b"")
    return m.group(1).decode() if m else "unknown"


def extract_binary(
    dc: DockerClient, image: str, dest: Path, name: str, labels: dict[str, str]
) -> Path:
    """Copy the nats-server ``image`` runs (its entrypoint) to the file ``dest``; ``dest``.

    A container ``name`` with ``labels`` is created (never started) to read the
    file from and removed again. CannotRun when the image has no such file.
    """
    import io
    import tarfile

    from docker.errors import DockerException

    img = _get(dc, image)
    entry = ((img.attrs.get("Config") or {}).get("Entrypoint") or []) if img else []
    path = entry[0] if entry else "/nats-server"
    try:
        container = dc.containers.create(image, name=name, labels=labels)
    except DockerException as e:
        raise CannotRun(f"cannot read the nats-server of {image}: {_short(e)}") from None
    try:
        stream, _ = container.get_archive(path)
        with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
            member = next((m for m in tar.getmembers() if m.isfile()), None)
            src = tar.extractfile(member) if member is not None else None
            if src is None:
                raise CannotRun(f"{image}: {path} is not a file")
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(src.read())
    except DockerException as e:
        raise CannotRun(f"cannot copy {path} out of {image}: {_short(e)}") from None
    finally:
        with contextlib.suppress(DockerException):
            container.remove(force=True)
    dest.chmod(0o755)
    return dest


def installed(dc: DockerClient | None = None) -> list[ImageRow]:
    """nats-chaos node images and official ``nats:*`` images present on the engine."""
    dc = dc or engine_client()
    rows = []
    for img in dc.images.list():
        ours = img.labels.get(LABEL) == "nats-server" if img.labels else False
        for tag in img.tags:
            if ours or tag.startswith("nats:"):
                version = (img.labels or {}).get(VERSION_LABEL) or tag.split(":", 1)[1]
                size = round(img.attrs.get("Size", 0) / 1e6, 1)
                rows.append(ImageRow(tag, version, size, ours))
    return sorted(rows, key=lambda r: r.tag)
