"""Offline reads on the Docker backend: a node that never starts again is read from its store.

The node's store lives on the host (the bind-mounted ``<workdir>/<node>/data``),
so it is fetched as on the local backend; the server that serves the copy is
the build the containers ran. The scenario names its image (``server.image``),
so the run has no binary of its own: the nats-server is copied out of the
image, and its sha256 is the one the image was built from.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from harness import images, servers
from harness.history import load_history

pytestmark = pytest.mark.docker


def test_a_node_that_refuses_to_start_is_read_offline_with_the_images_binary(
    nats_chaos, run_dir_of, results, assert_nothing_left, node_image, dc, tmp_path: Path
) -> None:
    scenario = {
        "name": "offline-docker",
        "nodes": 3,
        "seed": 3,
        "time_limit": 12,
        "backend": "docker",
        "server": {"image": node_image},
        "workload": {"rate": 200},
        "faults": [  # its Raft snapshots truncated while it is down: it never starts again
            {
                "kind": "corrupt",
                "mode": "truncate",
                "file_types": ["snap"],
                "targets": "one",
                "while_down": True,
                "files": 100,
            },
        ],
        "schedule": {"quiet": 4, "interval": 10, "duration": 4},
        "recovery": {"timeout": 6, "read_timeout": 15},
    }
    path = tmp_path / "offline-docker.yaml"
    path.write_text(yaml.safe_dump(scenario))
    proc = nats_chaos("run", str(path))
    out, err = proc.communicate(timeout=240)
    assert proc.returncode in (0, 1), (out, err)
    run_dir = run_dir_of("offline-docker")
    result = results(run_dir)
    assert result["server"]["image"] == node_image and result["server"]["binary"] is None
    ops = load_history(run_dir / "history.jsonl").ops
    start = next(v for v, p in zip(ops["value"], ops["process"], strict=True) if p == "nemesis")
    (target,) = start["nodes"]
    assert result["offline_reads"] == {target: "ok"}
    used = result["offline_binary"]
    assert used["source"] == f"copied out of {node_image}"
    built_from = dc.images.get(node_image).labels[images.SHA_LABEL]
    cached = servers.cached_path(servers.DEFAULT_VERSION)
    assert used["sha256"] == built_from == servers.sha256(cached)
    reads = ops[(ops["f"] == "read") & (ops["type"] != "invoke")]
    mine = reads[reads["node"] == target]
    assert list(mine["type"]) == ["info", "ok"]  # live: no answer; then its store, offline
    offline = mine.iloc[1]
    assert offline["via"] == "offline" and "read offline" in offline["note"]
    other = next(n for n in ("n1", "n2", "n3") if n != target)
    ok = reads[(reads["node"] == other) & (reads["type"] == "ok")]
    held = [tuple(p) for p in offline["value"]]
    assert len(held) > 100 and set(held) <= {tuple(p) for p in ok.iloc[0]["value"]}
    assert result["checkers"]["queue"]["per_node"][target]["status"] == "read"
    # how each node was read, per node in results.json: the target offline after a live try
    assert result["final_reads"][target] == {
        "type": "ok", "via": "offline", "direct": "batched", "tries": 2,
    }  # fmt: skip
    assert result["final_reads"][other] == {
        "type": "ok", "via": "live", "direct": "batched", "tries": 1,
    }  # fmt: skip
    assert result["valid"] != "unknown" and "unread" not in out
    assert_nothing_left(result["tag"])
