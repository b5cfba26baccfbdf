"""Client connections and the ONE place where client errors become op types.

Uncertainty is recorded, never guessed (STYLE §3):

- ``fail`` — the operation certainly did not take effect: the server
  answered with a JetStream API error, or nobody was subscribed (no
  responders: no stream received the message);
- ``info`` — it may or may not have taken effect: a timeout, a connection
  that dropped with the request in flight, anything unexpected. The process
  that saw an ``info`` is retired and its worker continues under a new id.

Each client is bound to one node: it connects to that node's URL only, with
server discovery off (the cluster config sets ``no_advertise``), so a client
never silently moves to another node.
"""

from __future__ import annotations

import asyncio

import nats
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError, NoStreamResponseError

FAIL = "fail"
INFO = "info"


def classify(exc: BaseException) -> tuple[str, str]:
    """Map a client exception to ``(op type, short error)``: fail is certain, info is not."""
    if isinstance(exc, NoRespondersError | NoStreamResponseError):
        return FAIL, "no-responders"  # a 503: no stream was subscribed, nothing was stored
    if isinstance(exc, APIError):
        code = getattr(exc, "err_code", None) or getattr(exc, "code", None)
        desc = (getattr(exc, "description", None) or str(exc)).strip()
        return FAIL, f"api-error {code}: {desc}"[:200]
    if isinstance(exc, NatsTimeout | asyncio.TimeoutError | TimeoutError):
        return INFO, "timeout"
    name = type(exc).__name__
    detail = str(exc).strip()
    return INFO, f"{name}: {detail}"[:200] if detail else name


async def connect(url: str, name: str, timeout: float = 2.0) -> Client:
    """Connect to one node only, reconnecting to it forever (the harness decides when to stop)."""

    async def _quiet(_e: Exception) -> None:  # reconnect noise is expected under faults
        return None

    return await nats.connect(
        servers=[url],
        name=name,
        connect_timeout=timeout,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        ping_interval=5,
        max_outstanding_pings=2,
        dont_randomize=True,
        error_cb=_quiet,
        disconnected_cb=None,
        pending_size=8 * 1024 * 1024,
    )
