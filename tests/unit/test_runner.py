"""The real runner on the fake cluster: phases, faults, verdicts, deadlines and the error tree."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
from fakerun import assert_well_formed, history, run, scenario

from harness import results
from harness.errors import EXIT_RUN_BROKEN, BadInput
from harness.runner import RunOptions, execute
from harness.workloads import streams


def test_a_run_with_a_kill_is_valid_and_leaves_a_result_folder(tmp_path: Path) -> None:
    sc = scenario(faults=[{"kind": "kill", "targets": "one"}])
    out, made = run(tmp_path, sc)
    assert out.broken is None and out.interrupted is None
    assert out.result["valid"] is True, results.verdict_line(out.result)
    for name in ("scenario.yaml", "history.jsonl", "results.json", "summary.md", "harness.log"):
        assert (out.run_dir / name).is_file(), name
    assert (out.run_dir / "nodes" / "n1" / "nats-server.log").is_file()
    ops = history(out.run_dir)
    assert_well_formed(ops)
    kills = [op for op in ops if op["process"] == "nemesis" and op["f"] == "kill"]
    assert [("start" in k["value"], "stop" in k["value"]) for k in kills][:2] == [
        (True, False),
        (False, True),
    ]
    reads = [op for op in ops if op["f"] == "read" and op["type"] == "ok"]
    assert sorted(r["node"] for r in reads) == ["n1", "n2", "n3"]
    acked = {op["value"] for op in ops if op["f"] == "publish" and op["type"] == "ok"}
    assert acked and all({v for _, v in r["value"]} == acked for r in reads)
    saved = json.loads((out.run_dir / "results.json").read_text())
    assert saved["replica_nodes"] == ["n1", "n2", "n3"]
    assert saved["recovery"]["converged"] is True and saved["isolated_for_reads"] is True
    assert saved["deadlines_passed"] == []
    assert (made[0].stopped and not (tmp_path / "work").exists()) or not any(
        (tmp_path / "work").iterdir()
    )


def test_the_history_records_the_recovery_wait_and_the_leaders_at_each_fault(
    tmp_path: Path,
) -> None:
    sc = scenario(faults=[{"kind": "pause", "targets": "leader"}])
    out, _ = run(tmp_path, sc)
    ops = history(out.run_dir)
    starts = [op["value"] for op in ops if op["process"] == "nemesis" and "start" in op["value"]]
    assert starts
    for v in starts:
        assert set(v["leaders"]) == {"stream", "meta"}
        assert v["leaders"]["stream"] in ("n1", "n2", "n3")
        assert v["nodes"] == [v["leaders"]["stream"]]  # targets: leader, the one recorded
    [waited] = [op for op in ops if op["f"] == "recovery"]
    assert waited["process"] == "nemesis" and waited["type"] == "info"
    saved = json.loads((out.run_dir / "results.json").read_text())
    value = dict(waited["value"])
    assert value.pop("settle") == "recovery" and value.pop("bound") == 2
    assert 0 <= value.pop("began") <= waited["time"]
    assert value == saved["recovery"]
    first_read = next(op["index"] for op in ops if op["f"] == "read")
    assert waited["index"] < first_read  # written before the final reads
    a = saved["checkers"]["availability"]
    assert len(a["faults"]) == len(starts) and a["recovery"]["converged"] is True


def test_coordinated_power_loss_without_fsync_loses_every_acknowledged_write(
    tmp_path: Path,
) -> None:
    sc = scenario(
        faults=[{"kind": "power-loss", "targets": "all", "coordinated": True}],
        schedule={"quiet": 0.6, "interval": 5, "duration": 0.3},
    )
    out, _ = run(tmp_path, sc)
    q = out.result["checkers"]["queue"]
    ops = history(out.run_dir)
    acked_before = {
        op["value"]
        for op in ops
        if op["f"] == "publish"
        and op["type"] == "ok"
        and op["time"] < next(o["time"] for o in ops if o["process"] == "nemesis")
    }
    assert out.result["valid"] is False
    assert "lost" in out.result["anomalies"]
    assert q["lost_count"] == len(acked_before) > 0


def test_power_loss_with_sync_always_loses_nothing(tmp_path: Path) -> None:
    sc = scenario(faults=[{"kind": "power-loss", "targets": "all", "coordinated": True}])
    out, _ = run(tmp_path, sc, sync_always=True)
    assert out.result["valid"] is True, results.verdict_line(out.result)


def test_reads_past_their_deadline_are_recorded_and_the_run_broke(tmp_path: Path) -> None:
    # the counter workload's reads have no bound of their own below the phase's deadline
    sc = scenario(workload={"name": "counter"}, recovery={"read_timeout": 0.3, "grace": 0.3})
    out, made = run(tmp_path, sc, misbehave=("direct_get",))
    assert out.broken == "phase 'reads' passed its deadline of 0.6s"
    ops = history(out.run_dir)
    assert_well_formed(ops)
    reads = [op for op in ops if op["f"] == "read" and op["type"] != "invoke"]
    assert [(r["type"], r["error"]) for r in reads] == [("info", "interrupted")] * 3
    saved = json.loads((out.run_dir / "results.json").read_text())
    assert saved["deadlines_passed"] == [{"phase": "reads", "deadline": 0.6}]
    assert saved["valid"] == "unknown"
    for page in ("summary.md", "report.html"):
        assert "reads (deadline 0.6s)" in (out.run_dir / page).read_text(), page
    assert made[0].stopped  # torn down all the same


def test_a_read_that_stops_answering_ends_info_at_its_bound_with_what_it_read(
    tmp_path: Path,
) -> None:
    sc = scenario(recovery={"read_timeout": 0.3, "grace": 30})
    out, _ = run(tmp_path, sc, misbehave=("stall_reads",))
    assert out.broken is None
    ops = history(out.run_dir)
    assert_well_formed(ops)
    stored = {n: v["messages"] for n, v in out.result["recovery"]["nodes"].items()}
    reads = [op for op in ops if op["f"] == "read" and op["type"] != "invoke"]
    assert len(reads) == 3 and min(stored.values()) > 0
    for r in reads:  # the first batch came, then nothing: info, with what was read
        assert r["type"] == "info"
        assert r["error"].startswith("read stalled: nothing for 0.3s after "), r["error"]
        assert r["read_count"] == r["messages"] == stored[r["node"]]
        assert r["last_seq"] == stored[r["node"]]
    seconds = out.result["timings"]["final reads"]
    assert seconds < 3, seconds  # bounded by read_timeout, not the 30 s grace
    assert out.result["valid"] == "unknown"


def test_a_slow_read_that_keeps_receiving_outlives_the_phase_deadline(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(streams, "READ_BATCH", 20)  # many batches, each 0.1 s late
    sc = scenario(recovery={"read_timeout": 0.5, "grace": 0.2})
    out, _ = run(tmp_path, sc, misbehave=("slow_reads",))
    assert out.broken is None, out.broken
    reads = [op for op in history(out.run_dir) if op["f"] == "read" and op["type"] != "invoke"]
    assert [r["type"] for r in reads] == ["ok"] * 3
    assert out.result["timings"]["final reads"] > 0.7 + 0.5  # past the fixed 0.7 s deadline
    assert out.result["valid"] is True


def test_a_cluster_that_never_comes_up_breaks_the_run_with_exit_4(tmp_path: Path) -> None:
    sc = scenario(recovery={"cluster_up": 0.2, "grace": 0.2})
    out, made = run(tmp_path, sc, misbehave=("start",))
    assert out.broken == "phase 'cluster_up' passed its deadline of 0.4s"
    assert "cluster up" in out.result["timings"]
    assert made[0].stopped
    assert results.exit_code_for(out.result) == 1  # the CLI gives 4 (see test_cli_run_exit_4)
    assert not (out.run_dir / "history.jsonl").exists()  # no op recorded: no empty file
    written = [p for p in out.run_dir.iterdir() if p.is_file()]  # nodes/: the servers' own
    assert [p.name for p in written if p.stat().st_size == 0 or p.name.startswith(".")] == []


def test_cli_run_exits_4_when_the_run_broke(tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from harness import cli, runner
    from harness.backends import fake

    backend, _ = fake.backend(misbehave=("start",))
    monkeypatch.setattr(runner, "REAL_BACKEND", backend)
    monkeypatch.setattr(runner.RunOptions, "__init__", _options_with(backend, tmp_path))
    path = tmp_path / "s.yaml"
    path.write_text("name: s\ntime_limit: 1\nrecovery: {cluster_up: 0.2, grace: 0.1}\n")
    res = CliRunner().invoke(cli.main, ["run", str(path), "--results-dir", str(tmp_path / "r")])
    assert res.exit_code == EXIT_RUN_BROKEN, res.output
    assert "UNKNOWN" in res.output


def _options_with(backend, tmp_path):
    original = RunOptions.__init__

    def init(self, *a, **kw):
        original(self, *a, **kw)
        self.backend = backend
        self.work_root = tmp_path / "work"

    return init


def test_setup_that_never_gets_a_stream_leader_is_run_broken(tmp_path: Path) -> None:
    sc = scenario(recovery={"setup": 0.3, "grace": 0.3})
    out, _ = run(tmp_path, sc, misbehave=("no_leader",))
    assert out.broken is not None and out.broken.startswith("stream chaos has no leader")


def test_bad_input_met_mid_run_raises_after_the_folder_is_written(tmp_path: Path) -> None:
    sc = scenario(recovery={"setup": 0.2, "grace": 0.5})
    out_dir = tmp_path / "results"
    from harness.backends import fake

    backend, made = fake.backend(misbehave=("refuse_stream",))
    opts = RunOptions(results_dir=out_dir, echo=lambda _m: None, backend=backend,
                      work_root=tmp_path / "work")  # fmt: skip
    with pytest.raises(BadInput, match="cannot create stream chaos"):
        execute(sc, opts)
    (run_dir,) = (out_dir / "fake").glob("2*")
    assert (run_dir / "results.json").is_file()
    assert made[0].stopped


def test_sigint_in_the_main_phase_interrupts_and_every_invoke_is_completed(
    tmp_path: Path,
) -> None:
    sc = scenario(time_limit=30)
    timer = threading.Timer(0.8, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        out, made = run(tmp_path, sc)
    finally:
        timer.cancel()
    assert out.interrupted == "SIGINT"
    ops = history(out.run_dir)
    assert_well_formed(ops)
    assert out.result["valid"] == "unknown"
    assert made[0].stopped


def test_a_workload_needing_what_the_backend_lacks_is_refused_in_one_line() -> None:
    from harness import workloads
    from harness.errors import Unsupported

    def lacks(ability: str) -> str | None:
        return "which this host lacks" if ability == "network" else None

    with pytest.raises(Unsupported) as e:
        workloads.preflight(scenario(), lacks)
    assert str(e.value) == (
        "the local backend cannot run workload queue: it needs network, which this host lacks"
    )
    assert e.value.exit_code == 3


def test_a_workload_needing_a_newer_server_is_refused_in_one_line(monkeypatch) -> None:
    from harness import workloads
    from harness.errors import Unsupported
    from harness.workloads.queue import QueueWorkload

    monkeypatch.setattr(QueueWorkload, "min_server", "2.12.0")
    workloads.check_server(scenario(), "2.12.0")
    workloads.check_server(scenario(), "2.14.0-beta.1")
    with pytest.raises(Unsupported) as e:
        workloads.check_server(scenario(), "2.11.11")
    assert str(e.value) == (
        "workload queue needs nats-server 2.12.0 or newer, and this run's is 2.11.11 "
        "(--set server.version=2.12.0, or newer)"
    )


class _SignalAt(logging.Handler):
    """Sends this process ``signals`` when the harness log first says ``phase: <phase>``."""

    def __init__(self, phase: str, *signals: signal.Signals) -> None:
        super().__init__()
        self.phase, self.signals = phase, signals

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(f"phase: {self.phase}") and self.signals:
            sent, self.signals = self.signals, ()
            for sig in sent:
                os.kill(os.getpid(), sig)


def _run_signalled(tmp_path: Path, phase: str, *signals: signal.Signals) -> Any:
    handler = _SignalAt(phase, *signals)
    logging.getLogger().addHandler(handler)
    try:
        return run(tmp_path, scenario(faults=[{"kind": "kill", "targets": "one"}]))
    finally:
        logging.getLogger().removeHandler(handler)


def _no_partial_files(run_dir: Path) -> None:
    every = [p for p in run_dir.rglob("*") if p.is_file()]
    assert [p.name for p in every if p.name.startswith(".") or p.stat().st_size == 0] == []


@pytest.mark.parametrize("phase", ["collect", "teardown", "check", "report"])
def test_a_signal_after_the_main_phase_still_writes_the_whole_folder(
    tmp_path: Path, phase: str
) -> None:
    out, made = _run_signalled(tmp_path, phase, signal.SIGTERM)
    assert out.interrupted == "SIGTERM"  # exit 143, though nothing was cut short
    saved = json.loads((out.run_dir / "results.json").read_text())
    assert saved["valid"] is True and saved["interrupted"] is None
    for name in ("summary.md", "report.html", "history.jsonl", "harness.log"):
        assert (out.run_dir / name).is_file(), name
    assert (out.run_dir.parent / "latest").resolve() == out.run_dir.resolve()
    assert "SIGTERM after the main phase" in (out.run_dir / "harness.log").read_text()
    _no_partial_files(out.run_dir)
    assert made[0].stopped


@pytest.mark.parametrize(("phase", "written"), [("collect", False), ("report", True)])
def test_a_second_signal_stops_at_once_with_one_line_and_the_history_kept(
    tmp_path: Path, phase: str, written: bool
) -> None:
    from harness.errors import Stopped

    with pytest.raises(Stopped) as stopped:
        _run_signalled(tmp_path, phase, signal.SIGINT, signal.SIGTERM)
    assert stopped.value.exit_code == 130  # the first signal names the exit code
    [run_dir] = (tmp_path / "results" / "fake").glob("2*")
    assert str(stopped.value) == (
        f"stopped by a second SIGTERM; the history and the files written so far are in "
        f"{run_dir} (check them again with: nats-chaos report {run_dir})"
    )
    assert (run_dir / "results.json").is_file() is written  # the checks ran only after collect
    assert not (run_dir / "report.html").exists()
    assert len(history(run_dir)) > 50
    assert (run_dir / "nodes" / "n1" / "nats-server.log").is_file()  # teardown finished
    assert (run_dir.parent / "latest").resolve() == run_dir.resolve()
    _no_partial_files(run_dir)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
