"""``server.version`` on the fake cluster: reads on a server without batched direct gets
(2.10), runs that record the version, ``compare --vary server.version`` and suite matrices."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import yaml
from fakerun import FAST, history, run, scenario
from nats.errors import TimeoutError as NatsTimeout

from harness import compare as cmp
from harness import results
from harness import suite as st
from harness.backends import fake
from harness.runner import RunOptions, execute
from harness.workloads import streams


def _stream_with_holes(
    version: str, tmp_path: Path, count: int, holes: set[int]
) -> fake.FakeClient:
    cluster = fake.FakeCluster(["n1"], tmp_path, version=version)
    cluster.start()
    cluster.add_stream({"name": "S", "subjects": ["S.>"], "num_replicas": 1})
    for v in range(count):
        cluster.publish("n1", "S.q", b"%d" % v, None)
    log = cluster.streams["S"].logs["n1"]
    log[:] = [m for m in log if m[0] not in holes]  # planted holes: deleted sequences
    return fake.FakeClient(cluster, "n1")


def _pair(m: fake.StoredMsg) -> list[int]:
    return [m.seq, int(m.data)]


@pytest.mark.parametrize("version", ["2.10.25", "2.14.0"])
def test_direct_read_reads_every_stored_message_with_or_without_batches(
    version: str, tmp_path: Path
) -> None:
    w = streams.SINGLE_WINDOW
    holes = {1, 7, w - 1, w, w + 1, 2 * w, 3 * w + 5}  # at window edges, and the first seq
    client = _stream_with_holes(version, tmp_path, 3 * w + 10, holes)
    rows = asyncio.run(streams.direct_read(client, "S", 5, _pair))
    want = [[s, s - 1] for s in range(1, 3 * w + 11) if s not in holes]
    assert rows == want


def test_a_2_10_server_never_finishes_a_batched_direct_get(tmp_path: Path) -> None:
    """Why the single reads exist: the batch itself times out on the 2.10 fake."""
    client = _stream_with_holes("2.10.25", tmp_path, 10, set())
    assert client.server_version() == "2.10.25"
    with pytest.raises(NatsTimeout):
        asyncio.run(client.direct_get("S", 1, streams.READ_BATCH, 0.05))
    assert asyncio.run(client.direct_get("S", 4, 1, 0.05)) == [fake.StoredMsg(4, b"3", "S.q", None)]


def test_a_2_10_run_reads_every_node_and_records_its_version(tmp_path: Path) -> None:
    sc = scenario(server={"version": "2.10.25"}, faults=[{"kind": "kill", "targets": "one"}])
    out, _ = run(tmp_path, sc)
    assert out.result["valid"] is True, results.verdict_line(out.result)
    per_node = out.result["checkers"]["queue"]["per_node"]
    acked = out.result["checkers"]["queue"]["acknowledged_count"]
    assert acked > 0 and {n: v["read_count"] for n, v in per_node.items()} == dict.fromkeys(
        ["n1", "n2", "n3"], acked
    )
    saved = json.loads((out.run_dir / "results.json").read_text())
    assert saved["versions"]["nats_server"] == "2.10.25"
    assert saved["server"] == {"backend": "fake", "version": "2.10.25", "sha256": None}


def _scenario_file(tmp_path: Path) -> Path:
    path = tmp_path / "fast.yaml"
    path.write_text(yaml.safe_dump({"name": "fast", **FAST}))
    return path


def test_compare_varies_the_server_version(tmp_path: Path) -> None:
    backend, made = fake.backend()
    out, rows = cmp.compare(
        str(_scenario_file(tmp_path)),
        [],
        ["server.version=2.10.25,2.14.0"],
        1,
        tmp_path / "results",
        echo=lambda _m: None,
        backend=backend,
    )
    assert [r["variant"] for r in rows] == ["server.version=2.10.25", "server.version=2.14.0"]
    assert [r["verdict"] for r in rows] == ["valid", "valid"]
    assert [c.version for c in made] == ["2.10.25", "2.14.0"]
    saved = [json.loads((Path(r["run_dir"]) / "results.json").read_text()) for r in rows]
    assert [s["versions"]["nats_server"] for s in saved] == ["2.10.25", "2.14.0"]
    assert "| server.version=2.10.25 | 1 |" in (out / "compare.md").read_text()


def test_a_suite_matrix_over_server_versions(tmp_path: Path) -> None:
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "name: versions\nscenarios:\n  - file: fast.yaml\n"
        '    matrix: {server.version: ["2.10.25", "2.12.1", "2.15.1"]}\n'
    )
    _scenario_file(tmp_path)
    backend, made = fake.backend()

    def run_one(sc: object, runs: Path) -> object:
        opts = RunOptions(results_dir=runs, echo=lambda _m: None, backend=backend,
                          work_root=tmp_path / "work")  # fmt: skip
        return execute(sc, opts)  # type: ignore[arg-type]

    name, cases = st.load_cases([str(suite)], [])
    outcome = st.run_suite(name, cases, 1, tmp_path / "r", run_one, echo=lambda _m: None)  # type: ignore[arg-type]
    assert outcome.exit_code == 0
    assert [c.version for c in made] == ["2.10.25", "2.12.1", "2.15.1"]
    assert [r["matched"] for r in outcome.rows] == [True, True, True]


def test_a_version_that_is_not_one_is_bad_input() -> None:
    from harness.errors import ScenarioError

    for bad in (2.1, "2.10", "latest"):
        with pytest.raises(ScenarioError, match="is no nats-server version: write all three"):
            scenario(server={"version": bad})


@pytest.mark.parametrize(
    ("workload", "version", "direct"),
    [
        ("queue", "2.10.25", "single"),
        ("queue", "2.14.0", "batched"),
        ("dedup", "2.10.25", "single"),
        ("batch", "2.14.0", "batched"),
        ("counter", "2.14.0", "last-by-subject"),
    ],
)
def test_each_final_read_says_how_it_read(
    workload: str, version: str, direct: str, tmp_path: Path
) -> None:
    sc = scenario(server={"version": version}, workload={"name": workload})
    out, _ = run(tmp_path, sc)
    saved = json.loads((out.run_dir / "results.json").read_text())
    how = {"type": "ok", "via": "live", "direct": direct, "tries": 1}
    assert saved["final_reads"] == dict.fromkeys(["n1", "n2", "n3"], how)
    reads = [o for o in history(out.run_dir) if o["f"] == "read" and o["type"] == "ok"]
    assert [(o["via"], o["direct"]) for o in reads] == [("live", direct)] * 3
    said = {"single": "single direct gets", "batched": "batched direct gets",
            "last-by-subject": "direct gets of each key's last message"}[direct]  # fmt: skip
    assert f"| live: {said} |" in (out.run_dir / "summary.md").read_text()
