"""nats-server configuration rendering.

nats-server reads JSON as configuration, so a node's config is built as a
plain mapping and written with ``json.dumps``: no template, no quoting rules.
The scenario's ``server.config`` mapping is merged last (deeply), so a user
can set any option nats-server knows, including inside ``jetstream`` and
``cluster`` — except the ones the harness itself depends on (where nodes
listen, the routes, the monitor port, the store dir, the system account,
clients without credentials): :func:`reserved` says why such an override is
refused (nats-server reads keys case-insensitively, and so does it).
:func:`server_check` has ``nats-server -t`` test one node's rendered config
before a run starts, so a config the server rejects is refused with the
server's own error line.

Every node names a system account, ``SYS``, with one user (``SYSTEM_USER``)
for the requests only the system account may send (the meta leader
step-down fault). Clients without credentials still land in the default
account ``$G``, as before: no user exists there, so no authentication is
required of them. The password only guards the run's own private network.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import ScenarioError, ServerBinaryError

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


_LISTEN = "where each node listens: its own address, ports 4222, 6222 and 8222"
_MONITOR = f"the monitoring port ({MONITOR_PORT}) the harness polls"
RESERVED: dict[tuple[str, ...], str] = {
    ("host",): _LISTEN,
    ("net",): _LISTEN,
    ("listen",): _LISTEN,
    ("port",): f"the client port ({CLIENT_PORT}) the harness's clients dial",
    ("http",): _MONITOR,
    ("http_port",): _MONITOR,
    ("https",): _MONITOR,
    ("https_port",): _MONITOR,
    ("monitor_port",): _MONITOR,
    ("server_name",): "the node names (n1, n2, ...) that faults and reads go by",
    ("system_account",): f"the system account ({SYSTEM_ACCOUNT}) the step-down fault uses",
    ("accounts", SYSTEM_ACCOUNT.lower()): "the system account the step-down fault uses",
    ("authorization",): "that clients connect without credentials",
    ("no_auth_user",): "that clients connect without credentials",
    ("jetstream", "enabled"): "that JetStream is on",
    ("jetstream", "store_dir"): "the store dir on each node's own (lazyfs) storage",
    ("jetstream", "store"): "the store dir on each node's own (lazyfs) storage",
    ("jetstream", "storedir"): "the store dir on each node's own (lazyfs) storage",
    ("jetstream", "sync_interval"): "sync_interval from server.sync_interval (set that)",
    ("jetstream", "sync_always"): "sync_interval from server.sync_interval (set that)",
    ("cluster", "host"): _LISTEN,
    ("cluster", "listen"): _LISTEN,
    ("cluster", "port"): _LISTEN,
    ("cluster", "routes"): "the routes between the run's nodes",
    ("cluster", "no_advertise"): "that clients stay on the node they were given",
}
_MAPPINGS = {"jetstream": "that JetStream is on", "cluster": "the cluster's routes and ports"}


def reserved(extra: dict[str, Any]) -> str | None:
    """Why the ``server.config`` override ``extra`` would break the harness, or None."""
    for key, value in extra.items():
        k = str(key).lower()
        if (k,) in RESERVED:
            return f"{key} is set by nats-chaos ({RESERVED[(k,)]}); leave it out"
        if k in _MAPPINGS and not isinstance(value, dict):
            return f"{key} must be a mapping of options: nats-chaos sets {_MAPPINGS[k]}"
        if isinstance(value, dict):
            for sub in value:
                why = RESERVED.get((k, str(sub).lower()))
                if why is not None:
                    return f"{key}.{sub} is set by nats-chaos ({why}); leave it out"
    return None


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


CHECK_TIMEOUT = 15.0  # seconds for ``nats-server -t``; it answers in milliseconds


def server_check(scenario: Scenario, binary: Path) -> None:
    """Have ``binary -t`` test the config of the scenario's first node, rendered as a run would.

    Raises :class:`ScenarioError` (exit 2) with the server's own first error
    line when it rejects the config (an unknown option, a value it cannot
    parse), before anything of the run exists.
    """
    peers = [NodeAddress(n, f"127.0.0.{i}") for i, n in enumerate(scenario.node_names, 1)]
    with tempfile.TemporaryDirectory(prefix="nats-chaos-config-") as tmp:
        path = write_config(render(scenario, peers[0], peers, Path(tmp) / "store"), Path(tmp) / "c")
        try:
            proc = subprocess.run(
                [str(binary), "-t", "-c", str(path)],
                capture_output=True,
                text=True,
                errors="replace",
                timeout=CHECK_TIMEOUT,
                cwd=tmp,
            )
        except subprocess.TimeoutExpired:
            raise ServerBinaryError(
                f"{binary} -t did not answer in {CHECK_TIMEOUT:g}s: not a working nats-server"
            ) from None
        except OSError as e:
            raise ServerBinaryError(f"{binary}: cannot run it ({e.strerror})") from None
    if proc.returncode == 0:
        return
    lines = [_without_path(ln, str(path)) for ln in (proc.stderr + proc.stdout).splitlines()]
    lines = [ln for ln in lines if ln]
    first = lines[0] if lines else f"exit status {proc.returncode}"
    more = f" (+{len(lines) - 1} more)" if len(lines) > 1 else ""
    raise ScenarioError(f"server.config: nats-server rejects the rendered config: {first}{more}")


def _without_path(line: str, path: str) -> str:
    """``nats-server: /tmp/x/c:1:17: unknown field "foo"`` -> ``unknown field "foo"``."""
    line = line.strip().removeprefix("nats-server:").strip()
    return re.sub(rf"^{re.escape(path)}(:\d+)*:\s*", "", line)
