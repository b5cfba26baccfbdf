"""Partition shapes: the exact grudge for 3, 5 and 7 nodes, one-way variants, cut-off nodes.

Shapes that choose use one ``rng.sample`` of the nodes. ``InOrder`` returns
the nodes as given, so each expected mapping below is worked out by hand
from the shape's definition; ``test_seeded_shape_is_the_in_order_shape_relabelled``
then ties the seeded case to the same definitions.
"""

from __future__ import annotations

import random
import subprocess
import time
from pathlib import Path

import pytest

from harness.backends.fake import FakeCluster
from harness.backends.host import HostCluster, HostRemote
from harness.errors import CannotRun
from harness.faults.base import FaultContext
from harness.faults.partition import PartitionFault
from harness.net import grudges, iptables, netns
from harness.net.grudges import Partition, shape
from harness.scenario import PartitionSpec

N3 = ["n1", "n2", "n3"]
N5 = ["n1", "n2", "n3", "n4", "n5"]
N7 = ["n1", "n2", "n3", "n4", "n5", "n6", "n7"]


class InOrder(random.Random):
    """An RNG whose ``sample`` keeps the given order."""

    def sample(self, population, k, **_kw):  # type: ignore[override]
        return list(population)[:k]


def g(mapping: dict[str, str]) -> dict[str, frozenset[str]]:
    """``{"n1": "n2 n3"}`` -> ``{"n1": frozenset({"n2", "n3"})}``."""
    return {k: frozenset(v.split()) for k, v in mapping.items()}


EXPECTED: dict[tuple[str, int], dict[str, str]] = {
    # one: the first node (in sample order) against all others
    ("one", 3): {"n1": "n2 n3", "n2": "n1", "n3": "n1"},
    ("one", 5): {"n1": "n2 n3 n4 n5", "n2": "n1", "n3": "n1", "n4": "n1", "n5": "n1"},
    ("one", 7): {"n1": "n2 n3 n4 n5 n6 n7", **{f"n{i}": "n1" for i in range(2, 8)}},
    # halves: the first n // 2 against the rest
    ("halves", 3): {"n1": "n2 n3", "n2": "n1", "n3": "n1"},
    ("halves", 5): {
        "n1": "n3 n4 n5",
        "n2": "n3 n4 n5",
        "n3": "n1 n2",
        "n4": "n1 n2",
        "n5": "n1 n2",
    },
    ("halves", 7): {
        **{n: "n4 n5 n6 n7" for n in ("n1", "n2", "n3")},
        **{n: "n1 n2 n3" for n in ("n4", "n5", "n6", "n7")},
    },
    # ring: each node hears ring neighbours within majority // 2 (5: 1, 7: 2)
    ("ring", 5): {
        "n1": "n3 n4",
        "n2": "n4 n5",
        "n3": "n5 n1",
        "n4": "n1 n2",
        "n5": "n2 n3",
    },
    ("ring", 7): {
        "n1": "n4 n5",
        "n2": "n5 n6",
        "n3": "n6 n7",
        "n4": "n7 n1",
        "n5": "n1 n2",
        "n6": "n2 n3",
        "n7": "n3 n4",
    },
    # bridge: first (n-1)//2 against the last n//2; the node between hears everyone
    ("bridge", 3): {"n1": "n3", "n3": "n1"},
    ("bridge", 5): {"n1": "n4 n5", "n2": "n4 n5", "n4": "n1 n2", "n5": "n1 n2"},
    ("bridge", 7): {
        **{n: "n5 n6 n7" for n in ("n1", "n2", "n3")},
        **{n: "n1 n2 n3" for n in ("n5", "n6", "n7")},
    },
}
EXPECTED.update({("random-halves", n): EXPECTED[("halves", n)] for n in (3, 5, 7)})

NODES = {3: N3, 5: N5, 7: N7}


@pytest.mark.parametrize(("name", "n"), sorted(EXPECTED))
def test_exact_grudge_in_order(name: str, n: int) -> None:
    part = shape(name, NODES[n], InOrder())
    assert part.grudge == g(EXPECTED[(name, n)])


@pytest.mark.parametrize("n", [3, 5, 7])
@pytest.mark.parametrize("name", ["stream-leader", "meta-leader"])
def test_leader_shapes_isolate_the_leader(name: str, n: int) -> None:
    nodes = NODES[n]
    part = shape(name, nodes, InOrder(), leader="n3")
    others = [x for x in nodes if x != "n3"]
    assert part.grudge == {"n3": frozenset(others), **{x: frozenset({"n3"}) for x in others}}
    assert part.side == frozenset({"n3"})


def test_leader_shape_without_a_leader_isolates_one_seeded_node() -> None:
    a = shape("stream-leader", N5, random.Random(3), leader=None)
    b = shape("one", N5, random.Random(3))
    assert a == b
    assert len(a.side or ()) == 1


def test_ring_of_three_is_impossible() -> None:
    with pytest.raises(ValueError, match="at least 4 nodes"):
        shape("ring", N3, InOrder())


@pytest.mark.parametrize("n", [4, 5, 6, 7, 9])
def test_ring_every_node_hears_a_distinct_majority(n: int) -> None:
    nodes = [f"n{i}" for i in range(1, n + 1)]
    grudge = shape("ring", nodes, random.Random(n)).grudge
    heard = [frozenset(nodes) - grudge.get(x, frozenset()) for x in nodes]
    assert all(len(h) >= n // 2 + 1 for h in heard)
    assert len(set(heard)) == n
    assert grudges.symmetric(grudge) == grudge


@pytest.mark.parametrize("name", ["one", "random-halves", "ring", "bridge"])
def test_seeded_shape_is_the_in_order_shape_relabelled(name: str) -> None:
    order = random.Random(11).sample(N7, 7)
    relabel = dict(zip(N7, order, strict=True))  # position i in the order -> node
    base = shape(name, N7, InOrder()).grudge
    want = {relabel[a]: frozenset(relabel[b] for b in e) for a, e in base.items()}
    assert shape(name, N7, random.Random(11)).grudge == want
    assert shape(name, N7, random.Random(11)) == shape(name, N7, random.Random(11))


def test_symmetric_is_the_union_of_both_directions() -> None:
    assert grudges.symmetric(g({"n1": "n2", "n3": "n1"})) == g(
        {"n1": "n2 n3", "n2": "n1", "n3": "n1"}
    )


def test_one_way_keeps_only_the_side() -> None:
    part = shape("halves", N5, InOrder())
    assert grudges.one_way(part) == g({"n1": "n3 n4 n5", "n2": "n3 n4 n5"})
    assert grudges.one_way(shape("one", N3, InOrder())) == g({"n1": "n2 n3"})
    assert grudges.one_way(shape("bridge", N5, InOrder())) == g({"n1": "n4 n5", "n2": "n4 n5"})
    with pytest.raises(ValueError, match="no one-way"):
        grudges.one_way(shape("ring", N5, InOrder()))


@pytest.mark.parametrize(
    ("name", "n", "cut"),
    [
        ("one", 3, {"n1"}),
        ("halves", 5, {"n1", "n2"}),
        ("halves", 7, {"n1", "n2", "n3"}),
        ("bridge", 5, set()),  # everyone reaches a majority through the bridge node
        ("ring", 5, set()),
        ("ring", 7, set()),
    ],
)
def test_cut_off_nodes(name: str, n: int, cut: set[str]) -> None:
    part = shape(name, NODES[n], InOrder())
    assert grudges.cut_off(part.grudge, NODES[n]) == frozenset(cut)


def test_one_way_links_do_not_count_as_links() -> None:
    one_way = grudges.one_way(shape("one", N3, InOrder()))  # n1 does not hear n2, n3
    assert grudges.cut_off(one_way, N3) == frozenset({"n1"})
    assert grudges.cut_off({}, N3) == frozenset()


def test_unknown_shape() -> None:
    with pytest.raises(ValueError, match="unknown partition shape"):
        shape("star", N3, InOrder())


def test_as_lists_for_the_history() -> None:
    part = Partition(g({"n1": "n2"}), frozenset({"n1"}))
    assert grudges.as_lists(part.grudge) == {"n1": ["n2"]}


# -- how a grudge becomes rules, and what the partition fault hands the cluster ----------


class Recorder:
    """Stands in for ``netns.run`` under the real host Remote: records commands (with what
    went to their stdin), and lists no rules, so no chain exists yet."""

    def __init__(self) -> None:
        self.cmds: list[list[str]] = []
        self.inputs: list[tuple[list[str], str | None]] = []

    def __call__(self, cmd: list[str], check: bool = True, timeout: float = 30, input=None):
        self.cmds.append(cmd)
        self.inputs.append((cmd, input))
        return subprocess.CompletedProcess(cmd, 0, "", "")

    def rules(self, ns: str) -> list[str]:
        """Every rule line restored in namespace ``ns``, in order."""
        restore = ["ip", "netns", "exec", ns, "iptables-restore", "-w", "5", "--noflush"]
        return [
            line
            for cmd, text in self.inputs
            if cmd == restore
            for line in (text or "").splitlines()
            if line not in ("*filter", "COMMIT")
        ]


def apply(grudge: dict[str, frozenset[str]], monkeypatch) -> Recorder:
    rec = Recorder()
    monkeypatch.setattr(netns, "run", rec)
    iptables.apply_grudge(grudge, remote_of, IPS.__getitem__)
    return rec


IPS = {"n1": "10.0.0.11", "n2": "10.0.0.12", "n3": "10.0.0.13"}


def remote_of(node: str) -> HostRemote:
    return HostRemote(lambda: ["ip", "netns", "exec", node])


class RulesOnly(HostCluster):
    """The host backends' shared network half over namespaces that exist only as names."""

    def __init__(self) -> None:
        super().__init__()
        self.nodes = list(N3)

    def ip(self, node: str) -> str:
        return IPS[node]

    @property
    def host_ip(self) -> str:
        return "10.0.0.1"

    def remote(self, node: str) -> HostRemote:
        return remote_of(node)

    def has_netns(self, node: str) -> bool:
        return node != "n3"  # n3 is "stopped": its rules wait for its restart

    def kill(self, node: str) -> None:
        raise AssertionError("not a process test")

    def _copy_logs(self, node, out) -> None:
        raise AssertionError("not a collect test")


def test_one_way_entry_only_drops_what_arrives(monkeypatch) -> None:
    rec = apply(g({"n1": "n2"}), monkeypatch)
    assert rec.rules("n1") == [
        "-N NCHAOS",
        "-I INPUT -j NCHAOS",
        "-I OUTPUT -j NCHAOS",
        "-A NCHAOS -s 10.0.0.12 -j DROP",
    ]
    assert rec.rules("n2") == []
    assert not any("ss" in c for c in rec.cmds)


def test_symmetric_pair_is_cut_both_ways_with_resets(monkeypatch) -> None:
    rec = apply(g({"n1": "n2", "n2": "n1"}), monkeypatch)
    assert rec.rules("n1")[3:] == [
        "-A NCHAOS -s 10.0.0.12 -p tcp -j REJECT --reject-with tcp-reset",
        "-A NCHAOS -s 10.0.0.12 -j DROP",
        "-A NCHAOS -d 10.0.0.12 -p tcp -j REJECT --reject-with tcp-reset",
        "-A NCHAOS -d 10.0.0.12 -j DROP",
    ]
    assert rec.rules("n2")[3:] == [r.replace(".12", ".11") for r in rec.rules("n1")[3:]]
    assert ["ip", "netns", "exec", "n1", "ss", "-K", "(", "dst", "10.0.0.12", ")"] in rec.cmds


def ctx_for(cluster: FakeCluster, leader: str | None = "n2") -> FaultContext:
    """A context whose stream leader is ``leader``, as the nemesis would have looked it up."""
    return FaultContext(cluster, random.Random(0), "chaos", stream_leader=lambda: leader)


def test_partition_fault_isolates_the_leader_and_heals(tmp_path: Path) -> None:
    cluster = FakeCluster(N3, tmp_path)
    fault = PartitionFault(PartitionSpec(kind="partition", shape="stream-leader"))
    value = fault.start(ctx_for(cluster))
    grudge = g({"n2": "n1 n3", "n1": "n2", "n3": "n2"})
    assert cluster.calls == [("isolate", grudge)] and cluster.grudge == grudge
    assert value["leader"] == "n2"
    assert value["cut_off"] == ["n2"]
    assert value["clients_cut"] == [] and cluster.clients_cut == set()
    assert fault.stop(ctx_for(cluster)) == {"healed": True}
    assert cluster.calls == [("isolate", grudge), ("heal_network",)] and cluster.grudge == {}


def test_partition_fault_one_way_with_clients_cut(tmp_path: Path) -> None:
    cluster = FakeCluster(N3, tmp_path)
    spec = PartitionSpec(kind="partition", shape="stream-leader", one_way=True, cut_clients=True)
    value = PartitionFault(spec).start(ctx_for(cluster))
    assert value["clients_cut"] == ["n2"]
    assert cluster.calls == [("isolate", g({"n2": "n1 n3"})), ("cut_clients", ["n2"], False)]
    assert cluster.grudge == g({"n2": "n1 n3"}) and cluster.clients_cut == {"n2"}


def test_host_backends_cut_clients_and_replay_rules_on_a_new_namespace(monkeypatch) -> None:
    rec = Recorder()
    monkeypatch.setattr(netns, "run", rec)
    cluster = RulesOnly()
    cluster.cut_clients(["n2"], both_ways=False)
    assert rec.rules("n2")[3:] == ["-A NCHAOS -s 10.0.0.1 -j DROP"]
    assert rec.rules("n1") == []
    cluster.isolate(g({"n3": "n1", "n1": "n3"}))  # n3 has no namespace now: only n1's rules
    assert rec.rules("n3") == [] and len(rec.rules("n1")) == 3 + 4
    cluster._reapply_rules("n3")  # n3 restarted: its half of the cut, still symmetric
    assert rec.rules("n3")[3:] == [r.replace(".13", ".11") for r in rec.rules("n1")[3:]]


class ExitsMidway(RulesOnly):
    """n2's container exits by itself while the harness works in its namespace."""

    def __init__(self) -> None:
        super().__init__()
        self.n2_up = True

    def has_netns(self, node: str) -> bool:
        return node != "n3" and (node != "n2" or self.n2_up)

    def remote(self, node: str) -> HostRemote:
        def prefix() -> list[str]:
            if node == "n2":
                self.n2_up = False  # gone between the look and the command
                raise CannotRun("n2 is not running: its network namespace is gone")
            return ["ip", "netns", "exec", node]

        return HostRemote(prefix)


def test_a_namespace_that_goes_away_midway_gets_its_rules_at_the_next_start(monkeypatch) -> None:
    rec = Recorder()
    monkeypatch.setattr(netns, "run", rec)
    cluster = ExitsMidway()
    cluster.isolate(g({"n1": "n2", "n2": "n1"}))  # no error: n2 gets its half when it starts
    assert len(rec.rules("n1")) == 3 + 4 and rec.rules("n2") == []
    assert cluster._grudge == g({"n1": "n2", "n2": "n1"})
    cluster.n2_up = True
    cluster.heal_network()  # the heal of a node that exits meanwhile does not break the run
    assert cluster._grudge == {} and not cluster.n2_up
    cluster.n2_up = True
    cluster.remote = lambda node: HostRemote(lambda: (_ for _ in ()).throw(OSError("broken")))
    with pytest.raises(OSError, match="broken"):  # a namespace still there: a real failure
        cluster.heal_network()


class Listing(Recorder):
    """A Recorder whose namespaces list ``present`` (``iptables -S``) and whose restores
    take ``delay`` seconds each."""

    def __init__(self, present: list[str], delay: float = 0.0) -> None:
        super().__init__()
        self.present, self.delay, self.spans = present, delay, []

    def __call__(self, cmd: list[str], check: bool = True, timeout: float = 30, input=None):
        out = super().__call__(cmd, check, timeout, input)
        if cmd[-1] == "-S":
            out.stdout = "\n".join(self.present)
        elif "iptables-restore" in cmd:
            began = time.monotonic()
            time.sleep(self.delay)
            self.spans.append((began, time.monotonic()))
        return out


def test_a_grudge_is_one_transaction_per_namespace_all_at_once(monkeypatch) -> None:
    rec = Listing([], delay=0.3)
    monkeypatch.setattr(netns, "run", rec)
    iptables.apply_grudge(g({"n1": "n2 n3", "n2": "n1", "n3": "n1"}), remote_of, IPS.__getitem__)
    for ns in N3:
        mine = [c[4:] for c in rec.cmds if c[3] == ns]
        assert [c[0] for c in mine] == ["iptables", "iptables-restore", "ss"], mine
    assert len(rec.rules("n1")) == 3 + 2 * 4 and len(rec.rules("n2")) == 3 + 4
    # every restore ran while every other one did: the cut lands at one instant
    assert max(b for b, _ in rec.spans) < min(e for _, e in rec.spans)


def test_an_existing_chain_gets_rules_only_and_heal_removes_exactly_it(monkeypatch) -> None:
    present = ["-P INPUT ACCEPT", "-N NCHAOS", "-A INPUT -j NCHAOS", "-A OUTPUT -j NCHAOS"]
    rec = Listing(present)
    monkeypatch.setattr(netns, "run", rec)
    iptables.cut(remote_of("n1"), "10.0.0.1", both_ways=False)
    assert rec.rules("n1") == ["-A NCHAOS -s 10.0.0.1 -j DROP"]
    iptables.flush_all([remote_of("n1"), remote_of("n2")])
    assert (
        rec.rules("n1")[1:]
        == rec.rules("n2")
        == [
            "-D INPUT -j NCHAOS",
            "-D OUTPUT -j NCHAOS",
            "-F NCHAOS",
            "-X NCHAOS",
        ]
    )


def test_heal_without_the_chain_restores_nothing(monkeypatch) -> None:
    rec = Listing(["-P INPUT ACCEPT", "-P OUTPUT ACCEPT"])
    monkeypatch.setattr(netns, "run", rec)
    iptables.flush_all([remote_of(n) for n in N3])
    assert [c[4] for c in rec.cmds] == ["iptables"] * 3
