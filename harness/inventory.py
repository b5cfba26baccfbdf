"""Inventories: the hosts an ``ssh`` backend run puts its nodes on.

In: a YAML file (read within :mod:`harness.yamlfile`'s bounds)::

    hosts:
      - name: h1                 # optional; default h1, h2, … in file order
        address: 10.0.0.11       # where the harness reaches it (ssh, client and monitor ports)
        port: 22                 # ssh port (default 22)
        user: root               # ssh user (default root: iptables, FUSE, kill)
        key: ~/.ssh/id_ed25519   # private key file (relative: to the inventory's folder)
        workdir: /var/tmp/nats-chaos   # where runs keep their files on that host
        known_hosts: known_hosts # optional: host keys to verify against (default: not checked)
    standin: {...}               # written by `nats-chaos hosts up` only (see harness.standin)

Out: an :class:`Inventory` — node ``n<i>`` of a run goes on the i-th host.
Anything malformed is a :class:`~harness.errors.ScenarioError` (exit 2) with
one line naming the file and the field.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from harness import yamlfile
from harness.errors import ScenarioError

DEFAULT_WORKDIR = "/var/tmp/nats-chaos"


class Host(BaseModel):
    """One host of the inventory."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,30})?$")
    address: str
    port: int = Field(default=22, ge=1, le=65535)
    user: str = Field(default="root", pattern=r"^[a-z_][a-z0-9_-]{0,31}$")
    key: str
    workdir: str = DEFAULT_WORKDIR
    known_hosts: str | None = None

    @field_validator("address")
    @classmethod
    def _ip(cls, v: str) -> str:
        try:
            return str(ipaddress.IPv4Address(v))
        except ValueError:
            raise ValueError(
                f"{v!r} is not an IPv4 address (partitions are iptables rules)"
            ) from None

    @field_validator("workdir")
    @classmethod
    def _absolute(cls, v: str) -> str:
        p = PurePosixPath(v)
        if not p.is_absolute() or ".." in p.parts or len(p.parts) < 3:
            raise ValueError(f"{v!r} must be an absolute path at least two levels deep")
        if not re.fullmatch(r"[A-Za-z0-9_./-]+", v):  # it appears in /proc/mounts, shell lines
            raise ValueError(f"{v!r}: use letters, digits and _ . - / only")
        return str(p)


class Inventory(BaseModel):
    """The hosts, in node order, and (for stand-in hosts) what ``hosts down`` removes."""

    model_config = ConfigDict(extra="forbid")

    hosts: list[Host] = Field(min_length=1, max_length=64)
    standin: dict[str, Any] | None = None
    path: str = ""  # where it was read from (not part of the file)

    def for_nodes(self, nodes: list[str]) -> dict[str, Host]:
        """``{node: host}`` for a run's nodes; refuses an inventory with too few hosts."""
        if len(nodes) > len(self.hosts):
            raise ScenarioError(
                f"{self.path}: {len(nodes)} nodes need {len(nodes)} hosts; "
                f"the inventory has {len(self.hosts)}"
            )
        return dict(zip(nodes, self.hosts, strict=False))

    def key_path(self, host: Host) -> Path:
        return _beside(self.path, host.key)

    def known_hosts_path(self, host: Host) -> Path | None:
        return _beside(self.path, host.known_hosts) if host.known_hosts else None


def _beside(inventory: str, path: str) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(inventory).parent / p


def load(path: str | Path) -> Inventory:
    """The inventory in ``path``; a :class:`ScenarioError` (one line) if it is not one."""
    raw = yamlfile.load(Path(path), "inventory")
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: an inventory is a mapping with a `hosts:` list")
    try:
        inv = Inventory.model_validate({**raw, "path": str(path)})
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "file"
        raise ScenarioError(f"{path}: {where}: {first['msg']}") from None
    names = set()
    for i, host in enumerate(inv.hosts, 1):
        host.name = host.name or f"h{i}"
        if host.name in names:
            raise ScenarioError(f"{path}: hosts: the name {host.name} is used twice")
        names.add(host.name)
        if not inv.key_path(host).is_file():
            raise ScenarioError(f"{path}: hosts.{host.name}.key: no such file {inv.key_path(host)}")
    addresses = [h.address for h in inv.hosts]
    if len(set(addresses)) != len(addresses):
        raise ScenarioError(f"{path}: two hosts share an address (each node needs its own)")
    return inv
