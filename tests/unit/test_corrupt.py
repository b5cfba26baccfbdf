"""File corruption on a fake store: every recorded op matches the bytes on disk.

The store is a host directory reached through the real host Remote
(:class:`~harness.backends.host.HostRemote`), as on the local backend.
"""

from __future__ import annotations

import random
from pathlib import Path

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


class FakeCluster:
    def __init__(self, root: Path) -> None:
        self.nodes = ["n1", "n2", "n3"]
        self.root = root
        self.up = set(self.nodes)
        self.calls: list[tuple[str, str]] = []

    def remote(self, node: str) -> HostRemote:
        return HostRemote(lambda: [])

    def store_dir(self, node: str) -> str:
        return str(self.root / node)

    def pause(self, node: str) -> None:
        raise AssertionError("corruption never pauses")

    resume = terminate = pause

    def running(self, node: str) -> bool:
        return node in self.up

    def kill(self, node: str) -> None:
        self.calls.append(("kill", node))
        self.up.discard(node)

    def start_node(self, node: str) -> None:
        self.calls.append(("start", node))
        if node != "n2":  # n2 "refuses to start"
            self.up.add(node)


def ctx(cluster: FakeCluster, seed: int = 1) -> FaultContext:
    return FaultContext(cluster, random.Random(seed), "chaos")  # type: ignore[arg-type]  # a partial fake


def test_file_types_and_candidates(tmp_path: Path) -> None:
    store(tmp_path)
    assert file_type("a/snapshots/snap.2.6") == "snap"
    assert file_type("a/msgs/1.blk") == "blk"
    remote = HostRemote(lambda: [])
    got = [Path(p).name for p in candidates(remote, str(tmp_path), ("blk", "snap"))]
    assert got == ["1.blk", "snap.2.6"]  # sorted by path: a seed picks the same files
    assert "empty.blk" not in got  # nothing to corrupt in an empty file
    assert candidates(remote, str(tmp_path / "missing"), ("blk",)) == []


def test_bitflip_ops_are_exactly_the_changed_bits(tmp_path: Path, monkeypatch) -> None:
    for n in ("n1", "n2", "n3"):
        original = store(tmp_path / n)
    monkeypatch.setattr("harness.faults.corrupt.RESTART_GRACE", 0)
    cluster = FakeCluster(tmp_path)
    spec = CorruptSpec(
        kind="corrupt", mode="bitflip", file_types=("blk",), count=5, while_down=True
    )
    fault = CorruptFault(spec)
    value = fault.start(ctx(cluster))
    (node,) = value["nodes"]
    assert value["killed"] == [node] and cluster.calls == [("kill", node)]
    rel = "jetstream/$G/streams/chaos/msgs/1.blk"
    assert {op["file"] for op in value["ops"]} == {rel}
    data = (tmp_path / node / rel).read_bytes()
    before = original[rel]
    flips: dict[int, int] = {}
    for op in value["ops"]:
        assert op["length"] == 1
        flips[op["offset"]] = flips.get(op["offset"], 0) ^ (1 << op["bit"])
    assert [i for i in range(len(data)) if data[i] != before[i]] == sorted(
        o for o, mask in flips.items() if mask
    )
    assert all(data[o] == before[o] ^ mask for o, mask in flips.items())
    stopped = fault.stop(ctx(cluster))
    assert stopped["restarted"] == [node]
    assert stopped["not_running"] == ([node] if node == "n2" else [])


def test_truncate_records_what_was_cut(tmp_path: Path) -> None:
    for n in ("n1", "n2", "n3"):
        original = store(tmp_path / n)
    cluster = FakeCluster(tmp_path)
    spec = CorruptSpec(kind="corrupt", mode="truncate", file_types=("inf", "snap"), files=5)
    value = CorruptFault(spec).start(ctx(cluster, 4))
    assert len(value["ops"]) == 2 and value["killed"] == []
    for op in value["ops"]:
        size = (tmp_path / op["node"] / op["file"]).stat().st_size
        assert size == op["offset"]
        assert op["offset"] + op["length"] == len(original[op["file"]])


def test_stale_chunk_lost_write_restores_the_old_bytes(tmp_path: Path) -> None:
    for n in ("n1", "n2", "n3"):
        store(tmp_path / n)
    cluster = FakeCluster(tmp_path)
    spec = CorruptSpec(kind="corrupt", mode="stale-chunk", file_types=("blk",), count=2)
    fault = CorruptFault(spec)
    copied = fault.start(ctx(cluster))
    (node,) = copied["nodes"]
    path = tmp_path / node / copied["ops"][0]["file"]
    old = path.read_bytes()
    offsets = sorted(op["offset"] for op in copied["ops"])
    assert len(set(offsets)) == 2 and all(o % CHUNK == 0 for o in offsets)
    path.write_bytes(b"\xff" * len(old))  # the server rewrote the file meanwhile
    back = fault.stop(ctx(cluster))
    assert sorted(op["offset"] for op in back["ops"]) == offsets
    new = path.read_bytes()
    assert len(new) == len(old)
    for o in range(0, len(old), CHUNK):
        want = old[o : o + CHUNK] if o in offsets else b"\xff" * CHUNK
        assert new[o : o + CHUNK] == want


def test_misdirected_write_never_grows_the_file(tmp_path: Path) -> None:
    for n in ("n1", "n2", "n3"):
        store(tmp_path / n)
    cluster = FakeCluster(tmp_path)
    spec = CorruptSpec(
        kind="corrupt", mode="stale-chunk", file_types=("blk",), count=4, misdirect=True
    )
    fault = CorruptFault(spec)
    copied = fault.start(ctx(cluster, 9))
    path = tmp_path / copied["nodes"][0] / copied["ops"][0]["file"]
    path.write_bytes(path.read_bytes()[: CHUNK + 100])  # shrank meanwhile
    back = fault.stop(ctx(cluster, 9))
    assert path.stat().st_size == CHUNK + 100
    for op in back["ops"]:
        assert op["offset"] + op["length"] <= CHUNK + 100
        assert "copied_from" in op


def test_no_matching_file_is_reported(tmp_path: Path) -> None:
    cluster = FakeCluster(tmp_path)  # empty data dirs
    value = CorruptFault(CorruptSpec(kind="corrupt", targets="minority")).start(ctx(cluster))
    assert value["ops"] == [] and value["no_files"] == value["nodes"]
