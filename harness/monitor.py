"""Read a node's own view of the cluster from its HTTP monitoring port.

Each function asks ONE node and returns what that node says (``/jsz``,
``/routez``, ``/healthz``). Leaders are found the same way: the meta leader
from ``/jsz``'s ``meta_cluster``, the stream leader from the stream's
``cluster`` block. A node that does not answer yields ``None``, never an
exception: during faults, silence is expected.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol


def get_json(url: str, timeout: float = 2.0) -> dict[str, Any] | None:
    """GET ``url`` and parse JSON; ``None`` if the node is down, slow or says nonsense."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.loads(resp.read())
    except (OSError, urllib.error.URLError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass(frozen=True)
class StreamView:
    """One node's view of one stream."""

    present: bool
    messages: int = 0
    first_seq: int = 0
    last_seq: int = 0
    leader: str | None = None

    @property
    def state(self) -> tuple[int, int, int]:
        """What must agree across nodes before the final reads."""
        return (self.messages, self.first_seq, self.last_seq)


def jsz(monitor_url: str, streams: bool = False) -> dict[str, Any] | None:
    """The node's ``/jsz`` (with per-stream details when ``streams``)."""
    q = "?streams=true&config=false&consumers=false" if streams else ""
    return get_json(f"{monitor_url}/jsz{q}")


def meta_leader(monitor_url: str) -> str | None:
    """The JetStream meta leader as this node sees it."""
    data = jsz(monitor_url)
    if not data:
        return None
    return (data.get("meta_cluster") or {}).get("leader") or None


def stream_view(monitor_url: str, stream: str) -> StreamView | None:
    """This node's replica of ``stream``: present or not, its state and its leader."""
    data = jsz(monitor_url, streams=True)
    if data is None:
        return None
    for acct in data.get("account_details") or []:
        for sd in acct.get("stream_detail") or []:
            if sd.get("name") != stream:
                continue
            st = sd.get("state") or {}
            cl = sd.get("cluster") or {}
            return StreamView(
                present=True,
                messages=int(st.get("messages", 0)),
                first_seq=int(st.get("first_seq", 0)),
                last_seq=int(st.get("last_seq", 0)),
                leader=cl.get("leader") or None,
            )
    return StreamView(present=False)


def route_count(monitor_url: str) -> int | None:
    """How many route connections the node has right now."""
    data = get_json(f"{monitor_url}/routez")
    return None if data is None else int(data.get("num_routes", 0))


def healthy(monitor_url: str) -> bool:
    """``/healthz`` says ok (JetStream enabled and current)."""
    data = get_json(f"{monitor_url}/healthz")
    return data is not None and data.get("status") == "ok"


def serves_direct_get(monitor_url: str, stream: str) -> bool | None:
    """Does this node's OWN replica answer direct gets for ``stream``?

    ``/subsz?subs=1&test=…`` lists only the server's local subscriptions (not
    interest learned over routes), so this is true exactly when the node's
    replica has joined the direct-get queue group — which a follower does only
    once it is caught up. ``None`` if the node does not answer.
    """
    subject = f"$JS.API.DIRECT.GET.{stream}"
    q = urllib.parse.quote(subject)
    data = get_json(f"{monitor_url}/subsz?subs=1&acc=%24G&test={q}&limit=1024")
    if data is None:
        return None
    return any(s.get("subject") == subject for s in data.get("subscriptions_list") or [])


class NodeMonitor(Protocol):
    """One node's own view of the cluster; every method answers None when the node is silent."""

    def meta_leader(self) -> str | None:
        """The JetStream meta leader as this node sees it."""

    def stream_view(self, stream: str) -> StreamView | None:
        """This node's replica of ``stream``."""

    def route_count(self) -> int | None:
        """Route connections the node has right now."""

    def serves_direct_get(self, stream: str) -> bool | None:
        """Does the node's own replica answer direct gets for ``stream``?"""


@dataclass(frozen=True)
class HttpMonitor:
    """:class:`NodeMonitor` over a node's HTTP monitoring port (the real backends)."""

    url: str

    def meta_leader(self) -> str | None:
        return meta_leader(self.url)

    def stream_view(self, stream: str) -> StreamView | None:
        return stream_view(self.url, stream)

    def route_count(self) -> int | None:
        return route_count(self.url)

    def serves_direct_get(self, stream: str) -> bool | None:
        return serves_direct_get(self.url, stream)
