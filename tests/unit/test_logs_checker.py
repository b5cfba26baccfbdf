"""Log checker on planted log lines: exact counts, first lines per node, panic is invalid."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from checkers.logs import FIRST, check_logs, explain, scan_nodes
from harness import results
from harness.scenario import scenario_from_dict

INF = "[1] 2026/11/26 22:00:00.000000 [INF] "
WRN = "[1] 2026/11/26 22:00:00.000000 [WRN] "
ERR = "[1] 2026/11/26 22:00:00.000000 [ERR] "

N1 = [
    INF + "Starting nats-server",
    WRN + "Filestore [chaos] loadBlock error: message block corrupt",
    ERR + "JetStream stream 'chaos' checksum mismatch on block 3",  # checksum and mismatch
    INF + "Deleting orphaned stream 'chaos'",
    WRN + "Detected orphaned stream '$G > chaos', will cleanup",
    INF + "Server is ready",
]
N2 = [
    INF + "Starting nats-server",
    "panic: runtime error: index out of range [3] with length 3",
    "",
    "goroutine 117 [running]:",
    "github.com/nats-io/nats-server/v2/server.(*msgBlock).indexCacheBuf(...)",
    "fatal error: concurrent map writes",
]
N3 = [INF + "Starting nats-server", WRN + "RAFT [abc - S-R3F] Truncating WAL to index 5"]


def plant(root: Path, logs: dict[str, list[str]]) -> Path:
    nodes = root / "nodes"
    for node, lines in logs.items():
        (nodes / node).mkdir(parents=True)
        if lines is not None:
            (nodes / node / "nats-server.log").write_text("\n".join(lines) + "\n")
    return nodes


def test_exact_counts_and_first_lines_per_node(tmp_path: Path) -> None:
    r = scan_nodes(plant(tmp_path, {"n1": N1, "n2": N2, "n3": N3}))
    n1 = r["nodes"]["n1"]
    assert n1["lines"] == 6
    assert {k: v for k, v in n1["counts"].items() if v} == {
        "corrupt": 1,
        "checksum": 1,
        "mismatch": 1,
        "orphaned": 2,
        "orphaned_stream": 1,
    }
    assert n1["first"]["orphaned"] == [N1[3], N1[4]]
    n2 = r["nodes"]["n2"]
    assert {k: v for k, v in n2["counts"].items() if v} == {"panic": 3}
    assert n2["first"]["panic"] == [N2[1], N2[3], N2[5]]
    assert {k: v for k, v in r["nodes"]["n3"]["counts"].items() if v} == {"truncated": 1}
    assert {k: v for k, v in r["counts"].items() if v} == {
        "panic": 3,
        "corrupt": 1,
        "checksum": 1,
        "mismatch": 1,
        "orphaned": 2,
        "orphaned_stream": 1,
        "truncated": 1,
    }
    assert r["valid"] is False
    assert r["anomalies"] == ["panic", "orphaned"]
    assert r["missing"] == []
    assert r["summary"]["headline"] == (
        "server panic on n2; ORPHANED: the server deleted the stream as orphaned on n1"
    )


def test_findings_without_a_panic_or_orphaned_stream_are_evidence_not_invalid(
    tmp_path: Path,
) -> None:
    evidence = [line for line in N1 if "Detected orphaned stream" not in line]
    r = scan_nodes(plant(tmp_path, {"n1": evidence, "n3": N3}))
    assert r["valid"] is True
    assert r["anomalies"] == []
    assert r["counts"]["orphaned"] == 1  # "Deleting orphaned stream": evidence only
    assert "summary" not in r


def test_a_server_deleting_an_orphaned_stream_is_the_orphaned_anomaly(tmp_path: Path) -> None:
    orphan = WRN + "Detected orphaned stream '$G > chaos', will cleanup"
    logs = {"n1": N3, "n2": [INF + "Starting nats-server", orphan], "n3": [orphan, orphan]}
    r = scan_nodes(plant(tmp_path, logs))
    assert r["valid"] is False
    assert r["anomalies"] == ["orphaned"]
    assert r["counts"]["orphaned_stream"] == 3
    assert r["summary"]["headline"] == (
        "ORPHANED: the server deleted the stream as orphaned on n2, n3"
    )


def test_explain_counts_each_distinct_message_once(tmp_path: Path) -> None:
    retry = "Expected first catchup entry to be a snapshot and peerstate, will retry"
    lines = [f"[7] 2026/12/01 12:00:0{i}.000000 [WRN] RAFT [x - S-R3F] {retry}" for i in range(4)]
    lines.insert(2, INF + "Catchup for stream '$G > chaos' complete")
    path = tmp_path / "nats-server.log"
    path.write_text("\n".join([INF + "Server is ready", *lines]) + "\n")
    found = explain(path, re.compile("catch ?up|will retry", re.I))
    assert found == [
        {"line": lines[0], "count": 4},
        {"line": lines[2], "count": 1},
    ]
    assert explain(path, re.compile("nothing like this")) == []


def test_first_lines_are_capped_and_counts_are_not(tmp_path: Path) -> None:
    lines = [f"{WRN}block {i} corrupt" for i in range(10)]
    r = scan_nodes(plant(tmp_path, {"n1": lines}))
    assert r["nodes"]["n1"]["counts"]["corrupt"] == 10
    assert r["nodes"]["n1"]["first"]["corrupt"] == lines[:FIRST]


def test_missing_logs_and_missing_folder(tmp_path: Path) -> None:
    nodes = plant(tmp_path, {"n1": N3, "n2": None})  # n2 never wrote a log
    r = scan_nodes(nodes)
    assert r["missing"] == ["n2"]
    assert r["valid"] is True
    empty = scan_nodes(tmp_path / "does-not-exist")
    assert empty["valid"] == "unknown"
    assert empty["nodes"] == {}


def test_results_write_merges_a_panic_into_the_verdict(tmp_path: Path) -> None:
    plant(tmp_path, {"n1": N1, "n2": N2})
    sc = scenario_from_dict({"name": "t"}, "t")
    result = results.write(tmp_path, sc, {}, {})  # no history: the queue checker is unknown
    written = json.loads((tmp_path / "results.json").read_text())
    assert written["checkers"]["logs"]["counts"]["panic"] == 3
    assert written["valid"] is False
    assert "panic" in written["anomalies"]
    assert result["valid"] is False


def test_composed_by_name_it_reads_the_nodes_dir_of_the_context(tmp_path: Path) -> None:
    nodes = plant(tmp_path, {"n1": N1, "n2": N2})
    assert check_logs(None, {"nodes_dir": nodes}) == scan_nodes(nodes)
    assert check_logs(None, {"nodes_dir": str(nodes)})["counts"]["panic"] == 3
    with pytest.raises(ValueError, match="no nodes_dir"):
        check_logs(None, {})
