"""Leader step-down: ask the stream's or the meta group's Raft leader to resign.

Through the JetStream API, as an operator would: ``$JS.API.STREAM.LEADER.
STEPDOWN.<stream>`` from the workload's account, ``$JS.API.META.LEADER.
STEPDOWN`` from the system account (``harness.config`` adds a system user).
The request goes to a running node other than the leader when there is one.
``start`` records the leader before, the API response and the leader a new
election settled on (polled on the monitor port for a few seconds); ``stop``
has nothing to undo — a step-down is instantaneous, the window only keeps
other faults away while the group re-elects. Needs no ability: the request
is a client's, and with the ``process`` ability stopped nodes are skipped.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any, Literal

import nats

from harness import config
from harness.backends.base import ProcessControl
from harness.faults.base import FaultContext, FaultKind, FaultSpecBase

SETTLE = 5.0  # seconds to wait for a new leader to be reported
NEEDS: frozenset[str] = frozenset()


class StepDownSpec(FaultSpecBase):
    """Ask the stream's or the meta group's leader to step down (JetStream API)."""

    kind: Literal["step-down"]
    leader: Literal["stream", "meta"] = "stream"


def label(spec: StepDownSpec) -> str:
    """``step-down leader=meta``."""
    return f"step-down leader={spec.leader}"


class StepDownFault:
    """One step-down request per window."""

    kind = "step-down"

    def __init__(self, spec: StepDownSpec) -> None:
        self.spec = spec

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        which = self.spec.leader
        find = ctx.meta_leader if which == "meta" else ctx.stream_leader
        before = find()
        cluster = ctx.cluster
        running = [
            n
            for n in cluster.nodes
            if not isinstance(cluster, ProcessControl) or cluster.running(n)
        ]
        via = next((n for n in running if n != before), before or next(iter(running), None))
        value: dict[str, Any] = {"leader": which, "before": before, "via": via}
        if via is None:
            return {**value, "error": "no running node"}
        if which == "meta":
            url = config.system_url(ctx.cluster.client_url(via))
            subject = "$JS.API.META.LEADER.STEPDOWN"
        else:
            url = ctx.cluster.client_url(via)
            subject = f"$JS.API.STREAM.LEADER.STEPDOWN.{ctx.stream}"
        value["response"] = asyncio.run(_request(url, subject))
        value["after"] = _new_leader(find, before)
        return value

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        return {"leader": self.spec.leader}


async def _request(url: str, subject: str, timeout: float = 5.0) -> dict[str, Any]:
    """Send one API request; the parsed response, or ``{"error": …}`` if none came."""
    try:
        nc = await nats.connect(
            servers=[url], connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=0
        )
    except Exception as e:
        return {"error": f"connect: {type(e).__name__}: {e}"[:200]}
    try:
        msg = await nc.request(subject, b"", timeout=timeout)
        data = json.loads(msg.data or b"{}")
        return data if isinstance(data, dict) else {"error": "not an object"}
    except Exception as e:
        return {"error": f"{type(e).__name__}: {e}"[:200]}
    finally:
        await nc.close()


def _new_leader(find: Callable[[], str | None], before: str | None) -> str | None:
    """The first leader other than ``before`` reported within ``SETTLE`` seconds (or the last)."""
    deadline = time.monotonic() + SETTLE
    who = None
    while time.monotonic() < deadline:
        who = find()
        if who and who != before:
            return who
        time.sleep(0.25)
    return who


KIND = FaultKind(StepDownSpec, StepDownFault, NEEDS, label)
