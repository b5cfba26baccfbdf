"""Pipelined workers: a window of logical processes in flight on one connection, the sweeper
that gives up on unanswered ops, the merge of client processes' history segments, and a
client process that cannot start."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from fakerun import assert_well_formed, history, run, scenario
from nats.errors import NoRespondersError

from checkers.wellformed import check_wellformed
from harness import segments
from harness.backends.fake import FakeCluster
from harness.clientprocs import EXE, ClientProcesses, plans_for
from harness.errors import ClientProcessFailed, ScenarioError
from harness.history import HistoryWriter, load_history
from harness.interpreter import Completion, Counters, Interpreter, Operation
from harness.runstate import RunState, new_tag, pid_is
from harness.workloads.queue import QueuePublisher


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def most_in_flight(ops: list[dict[str, Any]]) -> dict[str, int]:
    """The most client ops in flight at once, per node."""
    now: dict[str, int] = defaultdict(int)
    top: dict[str, int] = defaultdict(int)
    for op in ops:
        if op["process"] == "nemesis":
            continue
        now[op["node"]] += 1 if op["type"] == "invoke" else -1
        top[op["node"]] = max(top[op["node"]], now[op["node"]])
    return dict(top)


def fake_cluster(tmp_path: Path, **knobs: Any) -> FakeCluster:
    cluster = FakeCluster(["n1", "n2", "n3"], tmp_path / "fake", **knobs)
    cluster.start()
    cluster.add_stream({"name": "s", "subjects": ["s.>"], "num_replicas": 3})
    return cluster


def run_publishes(
    tmp_path: Path, cluster: FakeCluster, workers: int, window: int, seconds: float,
    timeout: float,
) -> tuple[Interpreter, list[dict[str, Any]]]:  # fmt: skip
    writer = HistoryWriter(tmp_path / "h.jsonl")
    clients: dict[str, Any] = {}

    async def client_for(node: str) -> Any:
        if node not in clients:
            clients[node] = await cluster.connect(node, "t")
        return clients[node]

    interp = Interpreter(writer, client_for)
    publisher = QueuePublisher("s.q", timeout)
    nodes = list(cluster.nodes)

    async def go() -> None:
        await interp.run(publisher, nodes, workers, 0, time.monotonic() + seconds, window, timeout)

    asyncio.run(go())
    writer.close()
    return interp, lines(tmp_path / "h.jsonl")


def test_a_worker_keeps_its_window_in_flight_and_each_process_has_one_op(tmp_path) -> None:
    cluster = fake_cluster(tmp_path)
    interp, ops = run_publishes(tmp_path, cluster, workers=3, window=16, seconds=0.3, timeout=1)
    assert_well_formed(ops)  # one op in flight per process, one completion per invoke
    assert most_in_flight(ops) == {"n1": 16, "n2": 16, "n3": 16}
    oks = [o for o in ops if o["type"] == "ok"]
    assert len(oks) == interp.counters.ok > 100 and interp.counters.info == 0
    values = [o["value"] for o in ops if o["type"] == "invoke"]
    assert len(set(values)) == len(values)  # unique within the run
    by_process: dict[int, list[int]] = defaultdict(list)
    for o in ops:
        if o["type"] == "invoke":
            by_process[o["process"]].append(o["value"])
    assert all(v == sorted(v) for v in by_process.values())  # increasing per process
    stored = [int(m[2]) for m in cluster.streams["s"].logs["n1"]]
    assert sorted(stored) == sorted(o["value"] for o in oks)
    assert sorted(o["seq"] for o in oks) == list(range(1, len(oks) + 1))


def test_the_sweeper_turns_unanswered_ops_into_info_and_retires_their_processes(
    tmp_path: Path,
) -> None:
    cluster = fake_cluster(tmp_path)
    cluster.kill("n1")  # a down node never answers
    interp, ops = run_publishes(tmp_path, cluster, workers=3, window=4, seconds=0.5, timeout=0.2)
    assert_well_formed(ops)  # also: no process is used again after its info
    invokes = {(o["process"], o["value"]): o for o in ops if o["type"] == "invoke"}
    n1 = [o for o in ops if o["node"] == "n1" and o["type"] != "invoke"]
    assert n1 and {(o["type"], o["error"]) for o in n1} == {("info", "timeout")}
    for o in n1:  # given up on after the timeout, not before (and not much after)
        waited = (o["time"] - invokes[(o["process"], o["value"])]["time"]) / 1e9
        assert 0.2 <= waited < 1.0, waited
    # 0.5 s of sending at 4 in flight and 0.2 s each: 3 rounds (the last sent before 0.5 s),
    # or 2 on a host so loaded that the sweep comes late
    assert len(n1) in (8, 12)
    assert len({o["process"] for o in n1}) == len(n1)
    others = [o for o in ops if o["node"] != "n1" and o["type"] != "invoke"]
    assert others and {o["type"] for o in others} == {"ok"}
    assert interp.counters.info == len(n1)


class Manual:
    """A pipelined client whose answers the test gives by hand (``answers``)."""

    def __init__(self, refuse: set[int] | None = None) -> None:
        self.futures: dict[int, asyncio.Future[Any]] = {}
        self.refuse = refuse or set()
        self.values = iter(range(1000))

    def operations(self, worker: int, node: str) -> Any:
        while True:
            yield Operation("write", next(self.values), node)

    async def invoke(self, client: Any, op: Operation) -> Completion:
        raise AssertionError("a pipelined worker never invokes")

    async def submit(self, client: Any, op: Operation) -> asyncio.Future[Any]:
        if op.value in self.refuse:
            raise NoRespondersError
        fut = asyncio.get_running_loop().create_future()
        self.futures[op.value] = fut
        return fut

    def complete(self, op: Operation, answer: Any) -> Completion:
        return Completion("ok", extra={"seq": answer})


async def _client(node: str) -> Any:
    return node


def test_a_late_answer_after_the_sweep_adds_nothing_and_a_refused_send_is_a_fail(
    tmp_path: Path,
) -> None:
    writer = HistoryWriter(tmp_path / "h.jsonl")
    interp = Interpreter(writer, _client)
    manual = Manual(refuse={1})

    async def go() -> None:
        task = asyncio.create_task(
            interp.run(manual, ["n1"], 1, 0, time.monotonic() + 0.05, window=3, timeout=0.5)
        )
        await asyncio.sleep(0.01)
        manual.futures[0].set_result(7)  # answered in time: ok, and its process goes on
        await asyncio.sleep(0.01)
        manual.futures[2].set_exception(NoRespondersError())
        await asyncio.sleep(1.0)  # 3 is swept at 0.5 s
        assert manual.futures[3].cancelled()
        manual.futures[3].cancel()  # what a late ack finds: a future given up on
        await task

    asyncio.run(go())
    writer.close()
    ops = lines(tmp_path / "h.jsonl")
    assert_well_formed(ops)
    ends = {
        o["value"]: (o["type"], o.get("error"), o.get("seq")) for o in ops if o["type"] != "invoke"
    }
    assert ends[0] == ("ok", None, 7)
    assert ends[1] == ("fail", "no-responders", None)  # submit raised: a certain refusal
    assert ends[2] == ("fail", "no-responders", None)
    assert ends[3] == ("info", "timeout", None)
    assert len([o for o in ops if o["value"] == 3]) == 2  # one invoke, one completion


def test_an_interrupted_window_records_every_op_in_flight_as_interrupted(tmp_path) -> None:
    writer = HistoryWriter(tmp_path / "h.jsonl")
    interp = Interpreter(writer, _client)
    manual = Manual()

    async def go() -> None:
        task = asyncio.create_task(
            interp.run(manual, ["n1", "n2"], 2, 0, time.monotonic() + 60, window=5, timeout=60)
        )
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    writer.close()
    ops = lines(tmp_path / "h.jsonl")
    assert_well_formed(ops)
    assert len(ops) == 20
    assert {(o["type"], o["error"]) for o in ops[10:]} == {("info", "interrupted")}
    assert all(f.cancelled() for f in manual.futures.values())


def test_a_fake_run_at_rate_0_pipelines_and_stays_valid(tmp_path: Path) -> None:
    sc = scenario(workload={"rate": 0, "window": 8, "concurrency": 3})
    outcome, _ = run(tmp_path, sc)
    ops = history(outcome.run_dir)
    assert_well_formed(ops)
    assert outcome.result["valid"] is True
    assert outcome.result["clients"] == {"window": 8, "processes": 0}  # the fake: in the harness
    publishes = [o for o in ops if o["f"] == "publish"]
    assert max(most_in_flight(publishes).values()) == 8
    reads = [o for o in ops if o["f"] == "read" and o["type"] == "invoke"]
    assert len({o["process"] for o in reads}) == 3
    assert min(o["process"] for o in reads) > max(o["process"] for o in publishes)


def test_rate_0_means_saturating_defaults_and_processes_are_bounded_by_the_workers() -> None:
    paced = scenario(workload={"rate": 300})
    assert paced.workload.pipelining(paced.concurrency) == (1, 0)
    flat_out = scenario(workload={"rate": 0, "concurrency": 1})
    assert flat_out.workload.pipelining(1) == (128, 1)
    explicit = scenario(workload={"rate": 0, "window": 2, "processes": 0})
    assert explicit.workload.pipelining(9) == (2, 0)
    with pytest.raises(ScenarioError, match=r"workload.processes \(4\) exceeds the workers"):
        scenario(workload={"processes": 4, "concurrency": 3})
    with pytest.raises(ScenarioError, match=r"workload\.kv\.window: unknown field"):
        scenario(workload={"name": "kv", "window": 4})


def _segment_line(index: int, t: int, type_: str, process: Any, value: int) -> bytes:
    rec = {"index": index, "time": t, "type": type_, "process": process, "f": "publish",
           "value": value, "node": "n1"}  # fmt: skip
    return json.dumps(rec, separators=(",", ":")).encode() + b"\n"


def test_segments_merge_by_time_with_fresh_indexes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / segments.SEGMENTS).mkdir(parents=True)
    main = run_dir / "history.jsonl"
    kill = {"index": 0, "time": 5, "type": "info", "process": "nemesis", "f": "kill",
            "value": {"start": "kill"}, "node": None}  # fmt: skip
    main.write_bytes(json.dumps(kill).encode() + b"\n")
    a = segments.segment_path(run_dir, 0)
    b = segments.segment_path(run_dir, 1)
    a.write_bytes(_segment_line(0, 1, "invoke", 0, 0) + _segment_line(1, 9, "ok", 0, 0)
                  + _segment_line(2, 10, "invoke", 2, 2) + b'{"index":3,"time":1')  # fmt: skip
    b.write_bytes(_segment_line(0, 3, "invoke", 1, 1) + _segment_line(1, 5, "ok", 1, 1)
                  + _segment_line(2, 11, "info", 1, 3))  # fmt: skip
    (run_dir / segments.SEGMENTS / "client-0.log").write_text("a log is not a segment\n")
    assert segments.pending(main)
    assert segments.merge(main) == (7, 2)
    got = lines(main)
    assert [o["index"] for o in got] == list(range(7))
    assert [o["time"] for o in got] == [1, 3, 5, 5, 9, 10, 11]  # the harness's own first on a tie
    assert got[2]["process"] == "nemesis" and got[3]["process"] == 1
    assert not segments.pending(main)
    loaded = load_history(main)
    counts = check_wellformed(loaded.ops, {"cut_off": True})["counts"]
    assert counts["time-decreasing"] == counts["index-not-increasing"] == 0
    assert counts["completion-without-invoke"] == 1  # the planted info of process 1's value 3


def test_a_merge_cut_short_after_its_rename_is_never_done_twice(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / segments.SEGMENTS).mkdir(parents=True)
    main = run_dir / "history.jsonl"
    segments.segment_path(run_dir, 0).write_bytes(
        _segment_line(0, 1, "invoke", 0, 0) + _segment_line(1, 2, "ok", 0, 0)
    )
    merging = run_dir / (segments.SEGMENTS + ".merging")
    (run_dir / segments.SEGMENTS).rename(merging)  # killed after the rename, before the merge
    assert segments.pending(main)
    assert segments.merge(main) == (2, 0)
    merged = main.read_bytes()
    merging.mkdir()  # killed after the history was renamed over, before the removal
    (merging / "client-0.jsonl").write_bytes(
        _segment_line(0, 1, "invoke", 0, 0) + _segment_line(1, 2, "ok", 0, 0)
    )
    assert segments.merge(main) == (2, None)
    assert main.read_bytes() == merged and not merging.exists()


def test_a_batched_writer_writes_one_turn_of_the_loop_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "seg.jsonl"
    writer = HistoryWriter(path, t0=time.monotonic_ns(), batched=True)

    async def go() -> None:
        writer.append("invoke", 0, "publish", 0, "n1")
        writer.append("ok", 0, "publish", 0, "n1", seq=1)
        assert path.read_bytes() == b""  # still this turn
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert len(lines(path)) == 2
        writer.append("invoke", 1, "publish", 1, "n1")

    asyncio.run(go())
    writer.close()  # what the last turn held is written on close
    got = lines(path)
    assert [o["index"] for o in got] == [0, 1, 2] and got[1]["seq"] == 1
    assert all(0 <= o["time"] < 10**9 for o in got)  # on the clock it was given


def test_a_client_process_that_cannot_start_is_one_line_and_leaves_no_pid(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NATS_CHAOS_STATE", str(tmp_path / "state"))
    state = RunState(new_tag())
    state.save()
    kv = scenario(workload={"name": "kv"})  # kv does not pipeline: the process refuses it
    [plan] = plans_for(kv.to_yaml(), {"n1": "nats://127.0.0.1:1"}, ["n1"], 1, 4, 1, tmp_path, "t")
    procs = ClientProcesses(1, Counters(), state, tmp_path / "segments")

    async def go() -> None:
        await procs.spawn()
        assert list(state.pids.values()) == [EXE] and pid_is(procs.procs[0].pid, EXE)
        try:
            await procs.start([plan], 60)
        finally:
            await procs.stop()

    with pytest.raises(ClientProcessFailed) as e:
        asyncio.run(go())
    assert (
        str(e.value) == "client process 0 did not start: TypeError: workload 'kv' does not pipeline"
    )
    assert state.pids == {}
    assert not procs.log_path(0).exists()  # what it said went to the harness's log
