"""The client interpreter: process ids, one completion per invoke, retirement after info,
classification of errors, cancellation, pacing and the deadline."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fakerun import assert_well_formed
from nats.errors import NoRespondersError

from harness.clients import Failed, Unknown
from harness.history import HistoryWriter
from harness.interpreter import Completion, Interpreter, Operation


class Script:
    """A workload whose operation ``i`` ends as ``outcomes[i]`` (an exception or a Completion)."""

    def __init__(self, outcomes: list[Any]) -> None:
        self.outcomes = outcomes
        self.i = 0

    def operations(self, worker: int, node: str) -> Iterator[Operation]:
        while True:
            yield Operation("write", self.i, node)

    async def invoke(self, client: Any, op: Operation) -> Completion:
        assert client == f"client-{op.node}"
        outcome = self.outcomes[self.i % len(self.outcomes)]
        self.i += 1
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


async def client_for(node: str) -> Any:
    return f"client-{node}"


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def interpreter(tmp_path: Path, clock: Any = None) -> tuple[Interpreter, HistoryWriter]:
    history = HistoryWriter(tmp_path / "h.jsonl")
    kw = {"clock": clock} if clock else {}
    return Interpreter(history, client_for, **kw), history


def test_each_outcome_is_recorded_once_and_info_retires_the_process(tmp_path: Path) -> None:
    interp, history = interpreter(tmp_path)
    script = Script(
        [
            Completion("ok", extra={"seq": 7}),
            Failed("refused: wrong last sequence"),
            NoRespondersError(),
            TimeoutError(),
            Unknown("read had routes"),
            Completion("ok", "changed"),
            Completion("fail", error="definite"),
        ]
    )
    ops = [Operation("write", i, "n1") for i in range(7)]

    async def go() -> list[str]:
        p = interp.new_process()
        kinds = []
        for op in ops:
            kind = await interp.perform(p, op, script.invoke)
            kinds.append(kind)
            if kind == "info":
                p = interp.new_process()
        return kinds

    assert asyncio.run(go()) == ["ok", "fail", "fail", "info", "info", "ok", "fail"]
    history.close()
    got = lines(tmp_path / "h.jsonl")
    assert_well_formed(got)
    done = [
        (o["process"], o["type"], o["value"], o.get("error")) for o in got if o["type"] != "invoke"
    ]
    assert done == [
        (0, "ok", 0, None),
        (0, "fail", 1, "refused: wrong last sequence"),
        (0, "fail", 2, "no-responders"),
        (0, "info", 3, "timeout"),
        (1, "info", 4, "read had routes"),
        (2, "ok", "changed", None),
        (2, "fail", 6, "definite"),
    ]
    assert got[1]["seq"] == 7
    c = interp.counters
    assert (c.ok, c.fail, c.info) == (2, 3, 2)


def test_a_cancelled_operation_ends_info_interrupted(tmp_path: Path) -> None:
    interp, history = interpreter(tmp_path)

    async def never(client: Any, op: Operation) -> Completion:
        await asyncio.Event().wait()
        raise AssertionError

    async def go() -> None:
        task = asyncio.create_task(interp.execute([Operation("read", None, "n1")] * 2, never))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    history.close()
    got = lines(tmp_path / "h.jsonl")
    assert_well_formed(got)
    assert [(o["type"], o.get("error")) for o in got[2:]] == [("info", "interrupted")] * 2


def test_an_operation_without_a_node_is_refused_as_unknown(tmp_path: Path) -> None:
    interp, history = interpreter(tmp_path)
    asyncio.run(interp.execute([Operation("read")], Script([Completion()]).invoke))
    history.close()
    got = lines(tmp_path / "h.jsonl")
    assert got[1]["type"] == "info" and "names no node" in got[1]["error"]


def test_workers_stop_at_the_deadline_and_are_bound_to_their_node(tmp_path: Path) -> None:
    now = [0.0]
    interp, history = interpreter(tmp_path, clock=lambda: now[0])
    script = Script([Completion()])

    async def invoke(client: Any, op: Operation) -> Completion:
        await asyncio.sleep(0)  # yield, as real client I/O does
        now[0] += 0.01  # each op takes 10 ms of the fake clock
        return await script.invoke(client, op)

    script_invoke = invoke

    class Timed(Script):
        async def invoke(self, client: Any, op: Operation) -> Completion:
            return await script_invoke(client, op)

    asyncio.run(interp.run(Timed([]), ["n1", "n2"], workers=4, rate=0, deadline=1.0))
    history.close()
    got = lines(tmp_path / "h.jsonl")
    assert_well_formed(got)
    invokes = [o for o in got if o["type"] == "invoke"]
    # 1 s of fake time at 10 ms per op; a worker may start one op while others are in flight
    assert 100 <= len(invokes) <= 103
    by_process = {(o["process"], o["node"]) for o in invokes}
    assert by_process == {(0, "n1"), (1, "n2"), (2, "n1"), (3, "n2")}


def test_pacing_spreads_a_rate_over_the_workers(tmp_path: Path) -> None:
    history = HistoryWriter(tmp_path / "h.jsonl")
    interp = Interpreter(history, client_for)
    deadline = asyncio.run(_paced(interp))
    history.close()
    invokes = [o for o in lines(tmp_path / "h.jsonl") if o["type"] == "invoke"]
    assert 40 <= len(invokes) <= 52, deadline  # 100 ops/s for 0.5 s, staggered starts
    assert {o["process"] for o in invokes} == {0, 1}


async def _paced(interp: Interpreter) -> float:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 0.5
    await interp.run(Script([Completion()]), ["n1"], workers=2, rate=100, deadline=deadline)
    return deadline
