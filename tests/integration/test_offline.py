"""Offline replica reads: a node's collected store, served by a standalone nats-server.

1. The HighwayHash checksums :func:`harness.offline.highway.meta_sum` computes
   equal the ``meta.sum`` files nats-server itself writes, for meta files of
   every length modulo 32 (every remainder branch of the hash).
2. After a real run, the store collected from n1 (``nodes/n1/data.tar.gz``),
   made single-replica and served alone on loopback, reads back exactly what
   the run's live final read of n1 recorded.
3. A node that never starts again is read offline by the run itself, on the
   local backend and on Docker (marked ``docker``: the engine is started and
   the node image built when missing, as ``tests/docker`` does).
"""

from __future__ import annotations

import asyncio
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from chaosrun import assert_nothing_left, results_json, run_dir_of

from harness import engine, images, servers
from harness.clients import NatsPyClient
from harness.history import load_history
from harness.offline import OfflineServer, prepare
from harness.offline.highway import meta_sum
from harness.workloads import streams
from harness.workloads.queue import _pair

pytestmark = pytest.mark.integration


async def _make_streams(url: str, n: int) -> None:
    client = await NatsPyClient.open(url, "offline-test")
    try:
        for i in range(n):
            config = {"name": f"s{'x' * (i % 7)}{i}", "subjects": [f"t{i}.>"],
                      "description": "d" * i, "allow_direct": True}  # fmt: skip
            await client.add_stream(config, 5)
            await client.publish(f"t{i}.a", b"%d" % i, 5)
    finally:
        await client.close()


def test_checksums_match_what_nats_server_writes(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (store / "jetstream").mkdir(parents=True)
    with OfflineServer(servers.resolve_binary(None, None), store, tmp_path / "w") as server:
        asyncio.run(_make_streams(server.url, 128))
        assert len(server.streams()) == 128
    metas = sorted((store / "jetstream" / "$G" / "streams").glob("*/meta.inf"))
    assert len(metas) == 128
    lengths = set()
    for meta in metas:
        raw = meta.read_bytes()
        lengths.add(len(raw) % 32)
        assert meta_sum(meta.parent.name, raw) == (meta.parent / "meta.sum").read_text()
    # every remainder length was hashed (descriptions of 0 … 127 bytes; the creation time's
    # width varies, so a few lengths repeat)
    assert len(lengths) == 32


def test_an_offline_read_of_a_collected_store_equals_the_live_read(
    nats_chaos, tmp_path: Path
) -> None:
    proc = nats_chaos("run", "scenarios/quick.yaml", "--set", "time_limit=6")
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, (out, err)
    run_dir = run_dir_of(tmp_path, "quick")
    ops = load_history(run_dir / "history.jsonl").ops
    cols = zip(ops["value"], ops["f"], ops["type"], ops["node"], strict=True)
    [live] = [v for v, f, t, n in cols if f == "read" and t == "ok" and n == "n1"]
    live = [list(map(int, p)) for p in live]
    assert len(live) > 100
    unpacked = tmp_path / "n1"
    with tarfile.open(run_dir / "nodes" / "n1" / "data.tar.gz") as tar:
        tar.extractall(unpacked, filter="data")
    [store] = [p.parent for p in unpacked.rglob("jetstream") if p.is_dir()][:1]
    assert prepare(store, tmp_path / "copy") == ["$G/chaos"]
    assert not list((tmp_path / "copy").rglob("_js_"))
    binary = results_json(run_dir)["server"]["binary"]

    async def read(url: str) -> list[list[int]]:
        client = await NatsPyClient.open(url, "offline-read")
        try:
            return await streams.direct_read(client, "chaos", 30, _pair)
        finally:
            await client.close()

    with OfflineServer(binary, tmp_path / "copy", tmp_path / "w") as server:
        assert server.streams()["chaos"]["messages"] == len(live)
        offline = asyncio.run(read(server.url))
    assert offline == live
    assert json.loads(json.dumps(offline)) == live


def _docker_image() -> str:
    """The node image a Docker run names (the engine started, the image built, if need be)."""
    engine.ensure_engine(install=True)
    servers.install(servers.DEFAULT_VERSION)
    return images.build(servers.DEFAULT_VERSION, force=False)


@pytest.mark.parametrize("backend", ["local", pytest.param("docker", marks=pytest.mark.docker)])
def test_a_node_that_refuses_to_start_is_read_offline(
    backend: str, nats_chaos, tmp_path: Path
) -> None:
    """Its Raft snapshots truncated while it was down, a node never starts again; its
    store still holds the stream, and the run reads it offline instead of leaving it unread.

    On Docker the store is the container's bind-mounted data dir on the host, and the
    scenario names its image (``server.image``), so the run has no binary of its own: the
    server that serves the copy is copied out of the image, the build the nodes ran."""
    scenario = {
        "name": "offline-read",
        "nodes": 3,
        "seed": 3,
        "time_limit": 12,
        "workload": {"rate": 200},
        "faults": [
            {
                "kind": "corrupt",
                "mode": "truncate",
                "file_types": ["snap"],
                "targets": "one",
                "while_down": True,
                "files": 100,
            }
        ],
        "schedule": {"quiet": 4, "interval": 10, "duration": 4},
        "recovery": {"timeout": 6, "read_timeout": 15},
    }
    image = _docker_image() if backend == "docker" else None
    if image is not None:
        scenario |= {"backend": "docker", "server": {"image": image}}
    path = tmp_path / "offline-read.yaml"
    path.write_text(yaml.safe_dump(scenario))
    proc = nats_chaos("run", str(path))
    out, err = proc.communicate(timeout=240)
    assert proc.returncode in (0, 1), (out, err)
    run_dir = run_dir_of(tmp_path, "offline-read")
    result = results_json(run_dir)
    ops = load_history(run_dir / "history.jsonl").ops
    start = next(v for v, p in zip(ops["value"], ops["process"], strict=True) if p == "nemesis")
    (target,) = start["nodes"]
    assert result["offline_reads"] == {target: "ok"}
    reads = ops[(ops["f"] == "read") & (ops["type"] != "invoke")]
    mine = reads[reads["node"] == target]
    assert list(mine["type"]) == ["info", "ok"]  # live: no answer; then its store, offline
    offline = mine.iloc[1]
    assert offline["via"] == "offline" and "read offline" in offline["note"]
    other = next(n for n in ("n1", "n2", "n3") if n != target)
    ok = reads[(reads["node"] == other) & (reads["type"] == "ok")]
    theirs = {tuple(p) for p in ok.iloc[0]["value"]}
    held = [tuple(p) for p in offline["value"]]
    assert len(held) > 100 and set(held) <= theirs  # what it had when it went down
    per_node = result["checkers"]["queue"]["per_node"]
    assert per_node[target]["status"] == "read"
    # how each node was read, per node in results.json: the target offline after a live try
    assert result["final_reads"][target] == {
        "type": "ok", "via": "offline", "direct": "batched", "tries": 2,
    }  # fmt: skip
    assert result["final_reads"][other] == {
        "type": "ok", "via": "live", "direct": "batched", "tries": 1,
    }  # fmt: skip
    used = result["offline_binary"]
    cached = servers.sha256(servers.cached_path(servers.DEFAULT_VERSION))
    if image is None:
        assert used == {"path": result["server"]["binary"], "sha256": cached,
                        "source": "the run's binary"}  # fmt: skip
    else:
        assert result["server"]["image"] == image and result["server"]["binary"] is None
        assert used["source"] == f"copied out of {image}"
        built_from = images.engine_client().images.get(image).labels[images.SHA_LABEL]
        assert used["sha256"] == built_from == cached
        assert _docker_leftovers(result["tag"]) == []
    assert result["valid"] != "unknown"
    assert "unread" not in out
    assert_nothing_left(result["tag"], tmp_path / "state")


def _docker_leftovers(tag: str) -> list[str]:
    """Containers (the one the binary was copied out of too) and networks of run ``tag``."""
    from harness.backends.docker import RUN_LABEL

    dc, label = images.engine_client(), {"label": f"{RUN_LABEL}={tag}"}
    return [c.name for c in dc.containers.list(all=True, filters=label)] + [
        n.name for n in dc.networks.list(filters=label)
    ]
