"""A fault program on a real 3-node cluster: the planned grudges and kills, from the history.

Cut n1 off, kill a node other than n1, restart it and heal, then cut off the
node that was killed: the history must show exactly those nodes, in that
order, and (sync_interval always) nothing acknowledged is lost.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from chaosrun import assert_nothing_left, results_json, run_dir_of

from harness.history import load_history

pytestmark = pytest.mark.integration

STEPS = [
    {"name": "cut-a", "fault": {"kind": "partition", "targets": ["n1"]}, "wait": 3},
    {"name": "crash", "fault": {"kind": "kill", "targets": {"other_than": "cut-a", "count": 1}},
     "wait": 2},
    {"stop": ["crash", "cut-a"], "wait": 2},
    {"name": "cut-b", "fault": {"kind": "partition", "targets": {"same_as": "crash"}}, "wait": 3},
    {"stop": "all"},
]  # fmt: skip
PROGRAM = {
    "name": "program",
    "nodes": 3,
    "seed": 4,
    "time_limit": 14,
    "server": {"sync_interval": "always"},
    "workload": {"rate": 200},
    "faults": [{"kind": "program", "steps": STEPS}],
    "schedule": {"quiet": 2, "interval": 60},
}


def test_a_program_cuts_and_kills_the_nodes_it_names(nats_chaos, tmp_path: Path) -> None:
    path = tmp_path / "program.yaml"
    path.write_text(yaml.safe_dump(PROGRAM))
    proc = nats_chaos("run", str(path))
    out, err = proc.communicate(timeout=180)
    run_dir = run_dir_of(tmp_path, "program")
    result = results_json(run_dir)
    assert proc.returncode == 0, (out, err)
    assert result["checkers"]["queue"]["lost_count"] == 0
    ops = load_history(run_dir / "history.jsonl").ops
    nem = [(v, t) for v, t, p in zip(ops["value"], ops["time"], ops["process"], strict=True)
           if p == "nemesis" and ("start" in v or "stop" in v)]  # fmt: skip
    said = [(v.get("start") or "stop " + v["stop"], v["window"]) for v, _ in nem]
    assert said == [
        ("partition", "0.cut-a"), ("kill", "0.crash"), ("stop kill", "0.crash"),
        ("stop partition", "0.cut-a"), ("partition", "0.cut-b"), ("stop partition", "0.cut-b"),
    ]  # fmt: skip
    (cut_a, _), (crash, t1), _, _, (cut_b, t4), _ = nem
    assert cut_a["grudge"] == {"n1": ["n2", "n3"], "n2": ["n1"], "n3": ["n1"]}
    [killed] = crash["nodes"]
    assert killed in ("n2", "n3")
    assert cut_b["nodes"] == [killed]
    others = sorted({"n1", "n2", "n3"} - {killed})
    assert cut_b["grudge"][killed] == others
    assert 2.5 < (t1 - cut_a["began"]) / 1e9 < 4.5  # the kill came 3 s into the cut
    assert 3.5 < (t4 - t1) / 1e9 < 6.5  # … the second cut 2 s after the restart
    assert_nothing_left(result["tag"], tmp_path / "state")
