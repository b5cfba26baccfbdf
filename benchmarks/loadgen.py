"""Acknowledged-publish load shared by the throughput benchmarks.

In: open NATS connections (one publisher each), a duration, the number of
un-acked publishes each may have in flight and a payload. Out: how many
publishes were acknowledged inside the measured window (after a 0.5 s
warm-up). The connections are closed afterwards.
"""

from __future__ import annotations

import asyncio
import time

import nats


async def quiet(_error: Exception) -> None:
    """nats-py prints every connection error by default; the benchmarks check results instead."""


async def acked_within(conns: list[nats.NATS], seconds: float, window: int, payload: bytes) -> int:
    """Acks received within ``seconds`` (after a 0.5 s warm-up) by all publishers together."""
    acked = 0
    t_start = time.monotonic() + 0.5
    t_end = t_start + seconds

    def on_done(fut: asyncio.Future) -> None:
        nonlocal acked
        if not fut.cancelled() and fut.exception() is None and t_start <= time.monotonic() <= t_end:
            acked += 1

    async def publisher(i: int, nc: nats.NATS) -> None:
        js = nc.jetstream(publish_async_max_pending=window)
        while time.monotonic() < t_end:
            fut = await js.publish_async(f"bench.{i}", payload)
            fut.add_done_callback(on_done)
        await asyncio.wait_for(js.publish_async_completed(), timeout=30)

    await asyncio.gather(*(publisher(i, nc) for i, nc in enumerate(conns)))
    for nc in conns:
        await nc.close()
    return acked
