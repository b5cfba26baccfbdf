"""File corruption on a fake store: every recorded op matches the bytes on disk.

The cluster is the in-memory fake (:class:`~harness.backends.fake.FakeCluster`):
each node's store is ``<tmp>/<node>/data/`` on this host, reached through the
fake's :class:`~harness.backends.fake.DirRemote`; what the fault did to the
processes is the fake's ``calls`` log.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from harness.backends.fake import FakeCluster
from harness.backends.host import HostRemote
from harness.faults.base import FaultContext
from harness.faults.corrupt import CHUNK, CorruptFault, candidates, file_type
from harness.scenario import CorruptSpec


def store(root: Path) -> dict[str, bytes]:
    files = {
        "jetstream/$G/streams/chaos/msgs/1.blk": bytes(range(256)) * 64,  # 16 KiB
        "jetstream/$G/streams/chaos/meta.inf": b'{"name":"chaos"}',
        "jetstream/$G/streams/chaos/meta.sum": b"abcdef0123456789",
        "jetstream/SYS/_js_/_meta_/snapshots/snap.2.6": b"s" * 100,
        "jetstream/SYS/_js_/_meta_/peers.idx": b"p" * 34,
        "jetstream/$G/streams/chaos/msgs/empty.blk": b"",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return files


N3 = ["n1", "n2", "n3"]
STORE = "data"  # FakeCluster.store_dir(node): <root>/<node>/data on this host


def stores(root: Path) -> dict[str, bytes]:
    """The same store on every node (what :func:`store` wrote)."""
    for n in N3:
        original = store(root / n / STORE)
    return original


def started(root: Path, refuse_start: tuple[str, ...] = ()) -> FakeCluster:
    """The fake with every node up (its ``calls`` log empty)."""
    cluster = FakeCluster(N3, root, refuse_start=refuse_start)
    cluster.start()
    return cluster


def ctx(cluster: FakeCluster, seed: int = 1) -> FaultContext:
    return FaultContext(cluster, random.Random(seed), "chaos")


def test_file_types_and_candidates(tmp_path: Path) -> None:
    store(tmp_path)
    assert file_type("a/snapshots/snap.2.6") == "snap"
    assert file_type("a/msgs/1.blk") == "blk"
    remote = HostRemote(lambda: [])
    got = [Path(p).name for p in candidates(remote, str(tmp_path), ("blk", "snap"))]
    assert got == ["1.blk", "snap.2.6"]  # sorted by path: a seed picks the same files
    assert "empty.blk" not in got  # nothing to corrupt in an empty file
    assert candidates(remote, str(tmp_path / "missing"), ("blk",)) == []


@pytest.mark.parametrize("seed", [1, 9])  # seed 1 picks n1, seed 9 picks n2
def test_bitflip_ops_are_exactly_the_changed_bits(tmp_path: Path, monkeypatch, seed: int) -> None:
    original = stores(tmp_path)
    monkeypatch.setattr("harness.faults.corrupt.RESTART_GRACE", 0)
    cluster = started(tmp_path, refuse_start=("n2",))  # n2 "refuses to start"
    spec = CorruptSpec(
        kind="corrupt", mode="bitflip", file_types=("blk",), count=5, while_down=True
    )
    fault = CorruptFault(spec)
    value = fault.start(ctx(cluster, seed))
    (node,) = value["nodes"]
    assert node == {1: "n1", 9: "n2"}[seed]
    assert value["killed"] == [node] and cluster.calls == [("kill", node)]
    rel = "jetstream/$G/streams/chaos/msgs/1.blk"
    assert {op["file"] for op in value["ops"]} == {rel}
    data = (tmp_path / node / STORE / rel).read_bytes()
    before = original[rel]
    flips: dict[int, int] = {}
    for op in value["ops"]:
        assert op["length"] == 1
        flips[op["offset"]] = flips.get(op["offset"], 0) ^ (1 << op["bit"])
    assert [i for i in range(len(data)) if data[i] != before[i]] == sorted(
        o for o, mask in flips.items() if mask
    )
    assert all(data[o] == before[o] ^ mask for o, mask in flips.items())
    stopped = fault.stop(ctx(cluster, seed))
    assert stopped["restarted"] == [node]
    assert stopped["not_running"] == ([node] if node == "n2" else [])
    assert cluster.calls == [("kill", node), ("start_node", node)]  # never paused
    assert cluster.running(node) == (node != "n2")


def test_truncate_records_what_was_cut(tmp_path: Path) -> None:
    original = stores(tmp_path)
    cluster = started(tmp_path)
    spec = CorruptSpec(kind="corrupt", mode="truncate", file_types=("inf", "snap"), files=5)
    value = CorruptFault(spec).start(ctx(cluster, 4))
    assert len(value["ops"]) == 2 and value["killed"] == [] and cluster.calls == []
    for op in value["ops"]:
        size = (tmp_path / op["node"] / STORE / op["file"]).stat().st_size
        assert size == op["offset"]
        assert op["offset"] + op["length"] == len(original[op["file"]])


def test_stale_chunk_lost_write_restores_the_old_bytes(tmp_path: Path) -> None:
    stores(tmp_path)
    cluster = started(tmp_path)
    spec = CorruptSpec(kind="corrupt", mode="stale-chunk", file_types=("blk",), count=2)
    fault = CorruptFault(spec)
    copied = fault.start(ctx(cluster))
    (node,) = copied["nodes"]
    path = tmp_path / node / STORE / copied["ops"][0]["file"]
    old = path.read_bytes()
    offsets = sorted(op["offset"] for op in copied["ops"])
    assert len(set(offsets)) == 2 and all(o % CHUNK == 0 for o in offsets)
    path.write_bytes(b"\xff" * len(old))  # the server rewrote the file meanwhile
    back = fault.stop(ctx(cluster))
    assert sorted(op["offset"] for op in back["ops"]) == offsets
    assert cluster.calls == []  # not while_down: the server is never stopped
    new = path.read_bytes()
    assert len(new) == len(old)
    for o in range(0, len(old), CHUNK):
        want = old[o : o + CHUNK] if o in offsets else b"\xff" * CHUNK
        assert new[o : o + CHUNK] == want


def test_misdirected_write_never_grows_the_file(tmp_path: Path) -> None:
    stores(tmp_path)
    cluster = started(tmp_path)
    spec = CorruptSpec(
        kind="corrupt", mode="stale-chunk", file_types=("blk",), count=4, misdirect=True
    )
    fault = CorruptFault(spec)
    copied = fault.start(ctx(cluster, 9))
    path = tmp_path / copied["nodes"][0] / STORE / copied["ops"][0]["file"]
    path.write_bytes(path.read_bytes()[: CHUNK + 100])  # shrank meanwhile
    back = fault.stop(ctx(cluster, 9))
    assert path.stat().st_size == CHUNK + 100
    for op in back["ops"]:
        assert op["offset"] + op["length"] <= CHUNK + 100
        assert "copied_from" in op


def test_no_matching_file_is_reported(tmp_path: Path) -> None:
    cluster = started(tmp_path)  # empty data dirs
    value = CorruptFault(CorruptSpec(kind="corrupt", targets="minority")).start(ctx(cluster))
    assert value["ops"] == [] and value["no_files"] == value["nodes"]
