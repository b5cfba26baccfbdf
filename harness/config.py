"""nats-server configuration rendering.

nats-server reads JSON as configuration, so a node's config is built as a
plain mapping and written with ``json.dumps``: no template, no quoting rules.
The scenario's ``server.config`` mapping is merged last (deeply), so a user
can set any option nats-server knows, including inside ``jetstream`` and
``cluster``.

Every node names a system account, ``SYS``, with one user (``SYSTEM_USER``)
for the requests only the system account may send (the meta leader
step-down fault). Clients without credentials still land in the default
account ``$G``, as before: no user exists there, so no authentication is
required of them. The password only guards the run's own private network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: the scenario module imports the faults, which import this
    from harness.scenario import Scenario

CLIENT_PORT = 4222
CLUSTER_PORT = 6222
MONITOR_PORT = 8222
SYSTEM_ACCOUNT = "SYS"
SYSTEM_USER = "nats-chaos-sys"
SYSTEM_PASSWORD = "nats-chaos-sys"


@dataclass(frozen=True)
class NodeAddress:
    """Where one node listens."""

    name: str
    host: str
    client_port: int = CLIENT_PORT
    cluster_port: int = CLUSTER_PORT
    monitor_port: int = MONITOR_PORT

    @property
    def client_url(self) -> str:
        return f"nats://{self.host}:{self.client_port}"

    @property
    def monitor_url(self) -> str:
        return f"http://{self.host}:{self.monitor_port}"


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """``base`` updated with ``extra``, merging nested mappings instead of replacing them."""
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def render(
    scenario: Scenario, node: NodeAddress, peers: list[NodeAddress], store_dir: Path
) -> dict[str, Any]:
    """The configuration mapping for ``node`` in a cluster of ``peers`` (which may include it)."""
    jetstream: dict[str, Any] = {
        "store_dir": str(store_dir),
        "max_memory_store": 256 * 1024 * 1024,
        "max_file_store": 4 * 1024 * 1024 * 1024,
    }
    if scenario.server.sync_interval != "default":
        jetstream["sync_interval"] = scenario.server.sync_interval
    conf: dict[str, Any] = {
        "server_name": node.name,
        "host": node.host,
        "port": node.client_port,
        "http": f"{node.host}:{node.monitor_port}",
        "jetstream": jetstream,
        "accounts": {
            SYSTEM_ACCOUNT: {"users": [{"user": SYSTEM_USER, "password": SYSTEM_PASSWORD}]}
        },
        "system_account": SYSTEM_ACCOUNT,
    }
    others = [p for p in peers if p.name != node.name]
    if others:
        conf["cluster"] = {
            "name": "chaos",
            "host": node.host,
            "port": node.cluster_port,
            "routes": [f"nats-route://{p.host}:{p.cluster_port}" for p in others],
            # clients stay on the node they were given: no discovered URLs
            "no_advertise": True,
        }
    return deep_merge(conf, scenario.server.config)


def system_url(client_url: str) -> str:
    """``client_url`` with the system user's credentials (``nats://user:pass@host:port``)."""
    scheme, sep, rest = client_url.partition("://")
    return f"{scheme}{sep}{SYSTEM_USER}:{SYSTEM_PASSWORD}@{rest}"


def write_config(conf: dict[str, Any], path: Path) -> Path:
    """Write ``conf`` as nats-server configuration and return the path."""
    path.write_text(json.dumps(conf, indent=2) + "\n")
    return path
