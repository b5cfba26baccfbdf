"""The dedup workload's client logic through the real runner on the fake cluster.

The fake stores a message once per ``Nats-Msg-Id`` within the stream's
duplicate window (as nats-server does), so what is checked here is the
workload: the same value and id after an ``info`` under a new process, the
resends after an ``ok``, the ack's ``duplicate`` and ``seq`` recorded, the
reads' ``[seq, msg_id, value]`` triples, and the verdict.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict
from pathlib import Path
from typing import Any

from fakerun import assert_well_formed, history, run, scenario

from harness import results
from harness.backends.fake import FakeCluster


def attempts_by_value(ops: list[dict[str, Any]]) -> dict[int, list[tuple[dict, dict]]]:
    """Each publish value's attempts, in order, as (invoke, completion)."""
    open_: dict[int, dict] = {}
    out: dict[int, list[tuple[dict, dict]]] = defaultdict(list)
    for op in ops:
        if op["f"] != "publish":
            continue
        if op["type"] == "invoke":
            open_[op["process"]] = op
        else:
            out[op["value"]].append((open_.pop(op["process"]), op))
    return out


def test_no_fault_run_resends_are_acked_as_duplicates_and_each_id_is_stored_once(
    tmp_path: Path,
) -> None:
    sc = scenario(workload={"name": "dedup", "rate": 300, "resend": 0.5})
    out, made = run(tmp_path, sc)
    assert out.broken is None
    ops = history(out.run_dir)
    assert_well_formed(ops)
    by_value = attempts_by_value(ops)
    resent = {v: a for v, a in by_value.items() if len(a) == 2}
    assert resent and all(len(a) <= 2 for a in by_value.values())
    for tries in resent.values():
        (_, first), (_, again) = tries
        assert (first["type"], first["duplicate"]) == ("ok", False)
        assert (again["type"], again["duplicate"], again["seq"]) == ("ok", True, first["seq"])
    reads = [op for op in ops if op["f"] == "read" and op["type"] == "ok"]
    assert sorted(op["node"] for op in reads) == ["n1", "n2", "n3"]
    acked = sorted(by_value)
    for op in reads:
        assert op["routes"] == 0 and op["duplicate_window"] == 120.0
        assert sorted(msg_id for _, msg_id, _ in op["value"]) == acked
        assert all(msg_id == value for _, msg_id, value in op["value"])
    d = out.result["checkers"]["dedup"]
    assert d["duplicate_ack_count"] == len(resent)
    assert d["acknowledged_count"] == len(acked)
    assert (
        results.verdict_line(out.result)
        == f"VALID: {len(acked):,} ids acknowledged, each stored once"
    )
    assert made[0].stopped


def test_after_an_info_the_same_value_is_retried_under_a_new_process(tmp_path: Path) -> None:
    sc = scenario(
        workload={"name": "dedup", "rate": 300, "resend": 0.0, "retries": 2},
        faults=[{"kind": "kill", "targets": "one"}],
        schedule={"quiet": 0.1, "interval": 0.3, "duration": 1.0},
    )
    out, _ = run(tmp_path, sc)
    assert out.broken is None
    ops = history(out.run_dir)
    assert_well_formed(ops)
    retried = 0
    for tries in attempts_by_value(ops).values():
        assert len(tries) <= 3  # the first attempt and at most two retries
        for (inv, done), (nxt, _) in itertools.pairwise(tries):
            assert done["type"] == "info"  # only an unknown outcome is retried (resend is 0)
            assert nxt["process"] != inv["process"] and nxt["index"] > done["index"]
            assert nxt["node"] == inv["node"]
            retried += 1
    assert retried > 0
    assert out.result["valid"] is True
    assert out.result["checkers"]["dedup"]["retried_count"] > 0


def test_the_fake_stores_an_id_once_and_forgets_it_with_the_data(tmp_path: Path) -> None:
    c = FakeCluster(["n1"], tmp_path)
    c.start()
    c.add_stream({"name": "s", "subjects": ["s.>"], "num_replicas": 1, "duplicate_window": 60})
    hdr = {"Nats-Msg-Id": "7"}
    first = c.publish("n1", "s.d", b"7", hdr)
    again = c.publish("n1", "s.d", b"7", hdr)
    other = c.publish("n1", "s.d", b"8", {"Nats-Msg-Id": "8"})
    assert (first.seq, first.duplicate) == (1, False)
    assert (again.seq, again.duplicate) == (1, True)
    assert (other.seq, other.duplicate) == (2, False)
    client = asyncio.run(c.connect("n1", "t"))
    got = asyncio.run(client.direct_get("s", 1, 10, 1.0)) or []
    assert [(m.seq, m.data, (m.headers or {}).get("Nats-Msg-Id")) for m in got] == [
        (1, b"7", "7"),
        (2, b"8", "8"),
    ]
    c.power_fail(["n1"])  # nothing was synced: the store and its dedup memory are gone
    c.start_node("n1")
    assert c.publish("n1", "s.d", b"7", hdr) == first  # stored anew at seq 1
