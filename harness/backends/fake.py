"""A fake cluster in memory, with a fake NATS client, for unit tests of everything above backends.

:class:`FakeCluster` implements the core protocol and the ``process``,
``network``, ``power`` and ``files`` abilities (``harness.backends.base``)
with no process, namespace or socket: the runner, interpreter, nemesis,
faults and workloads run against it in milliseconds (STYLE §10). It models
just enough of JetStream to give a history meaning:

- streams with replicas on the first ``num_replicas`` nodes; each replica is
  a list of ``(seq, subject, data)``; a leader among the replicas that can
  reach a majority of them (elected with the longest log, as Raft would);
- an acknowledged publish is appended to the leader and copied to every
  follower it can reach, and acknowledged only with a majority; a node that is
  down, paused or cut from clients times out (``info``), a stream with no
  reachable leader answers "no responders" (``fail``);
- a publish with a ``Nats-Msg-Id`` the leader's log already holds (stored
  within the stream's ``duplicate_window``, default 2 minutes) is not stored
  again and is acknowledged with the original's seq and ``duplicate``;
  direct gets return each message's headers; a publish whose
  ``Nats-Expected-Last-Subject-Sequence`` is not the subject's last sequence
  is refused (err_code 10071); KV buckets are their streams ``KV_<bucket>``;
- followers catch up from the leader whenever they can reach it;
- a publish with ``Nats-Expected-Last-Sequence`` or
  ``Nats-Expected-Last-Subject-Sequence`` that does not match the leader's
  log is refused (400, err_code 10071); a message get (``msg_get_last``) is
  answered from the leader's log;
- a stream with ``allow_msg_counter`` takes only ``Nats-Incr`` publishes: each
  stores ``{"val": "<total>"}`` and acks the subject's new total as ``val``;
- a stream with ``allow_atomic`` takes atomic batches (:class:`_Staged`):
  messages with ``Nats-Batch-Id`` / ``Nats-Batch-Sequence`` are staged at the
  stream leader until the one with ``Nats-Batch-Commit`` appends them all at
  once and acks the last seq with the batch id and ``count``; a gap, a batch
  the leader never staged (it changed, or was killed) or an unknown batch is
  refused with err_code 10176, batch headers on another stream with 10174;
- ``power_fail`` keeps only what was synced: everything with
  ``sync_always``, nothing otherwise (like the 2-minute default);
- each node's monitor (:class:`FakeMonitor`) reports its own view; direct
  gets are answered from the node's own replica; the fake plays nats-server
  ``version`` (the scenario's ``server.version``): below 2.11 a batched direct
  get is never finished (the client times out), as 2.10 ignores ``batch``;
- durable pull consumers with explicit acks (:class:`_Consumer`): a fetch
  delivers expired ack-pending messages again, then new ones from the
  leader's log; an ack removes a message from pending and moves the ack
  floor; fetches and acks need a reachable stream leader, like publishes.

Knobs for tests: ``sync_always``; ``misbehave`` — calls that never return
(``"start"``, ``"meta_leader"``, ``"direct_get"``, ``"publish"``), to
exercise phase deadlines, ``"slow_reads"`` (every direct get answers 0.1 s
late) and ``"stall_reads"`` (direct gets past the first batch never answer),
for the final reads' own bound, and answers that break a run: ``"no_leader"`` (no
node ever sees a stream leader), ``"refuse_stream"`` (stream creation is
refused with a 400, as a config the server rejects); ``refuse_start`` — nodes
that ``start_node`` leaves down (a server that will not come back; ``start``
still boots them). ``calls`` logs every ability call the harness makes, in
order, as ``(method, *arguments)`` — ``("kill", node)``, ``("start_node",
node)``, ``("pause", node)``, ``("resume", node)``, ``("terminate", node)``,
``("isolate", grudge)``, ``("cut_clients", nodes, both_ways)``,
``("heal_network",)``, ``("power_fail", nodes)`` — so a test can assert on
what was done as well as on the state it left. Files (for corruption) live
under ``root/<node>/`` on the host (the store in ``data/``), behind a
:class:`DirRemote`. :func:`backend` hands the runner a
:class:`~harness.runner.Backend` that builds them.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError

from harness.backends.base import FILES, NETWORK, POWER, PROCESS, Grudge
from harness.backends.host import HostRemote
from harness.clients import Ack, ConsumerState, Delivery, NatsClient, StoredMsg
from harness.monitor import NodeMonitor, StreamView
from harness.servers import DEFAULT_VERSION, batched_direct_get

if TYPE_CHECKING:
    from harness.runner import Backend
    from harness.runstate import RunState
    from harness.scenario import Scenario

Msg = tuple[int, str, bytes]
OFFERED = frozenset({PROCESS, NETWORK, POWER, FILES})  # every ability but netem


class _Stored(tuple[int, str, bytes]):
    """A stored :data:`Msg` that also keeps its headers and when it was stored (for dedup)."""

    headers: dict[str, str] | None
    at: float

    def __new__(cls, seq: int, subject: str, data: bytes, headers: dict[str, str] | None) -> Any:
        msg = super().__new__(cls, (seq, subject, data))
        msg.headers, msg.at = headers, time.monotonic()
        return msg


@dataclass
class _Stream:
    name: str
    subjects: list[str]
    replicas: list[str]
    leader: str | None = None
    logs: dict[str, list[Msg]] = field(default_factory=dict)
    synced: dict[str, int] = field(default_factory=dict)
    duplicate_window: float = 120.0  # seconds; nats-server's default when none is configured
    counter: bool = False  # allow_msg_counter: publishes carry Nats-Incr, bodies the total
    atomic: bool = False  # allow_atomic: batch headers stage messages until their commit


BATCH_ID, BATCH_SEQ, BATCH_COMMIT = "Nats-Batch-Id", "Nats-Batch-Sequence", "Nats-Batch-Commit"


@dataclass
class _Staged:
    """An atomic batch the stream ``leader`` holds until its commit: ``(subject, data,
    headers)`` of messages 1, 2, … in order."""

    leader: str
    msgs: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)


def _incomplete() -> APIError:
    return APIError(code=400, err_code=10176, description="atomic publish batch is incomplete")


@dataclass
class _Consumer:
    """A durable pull consumer: what it delivered, what awaits an ack, what was acked."""

    ack_wait: float
    next_seq: int = 1  # the next stream sequence never delivered
    pending: dict[int, tuple[float, int]] = field(default_factory=dict)  # seq: (due, delivered)
    acked: set[int] = field(default_factory=set)
    ack_floor: int = 0

    def take(self, log: list[Msg], batch: int, now: float, handle: Any) -> list[Delivery]:
        """Up to ``batch`` deliveries: expired ack-pending messages first, then new ones."""
        by_seq = {m[0]: m for m in log}
        due = sorted(s for s, (at, _) in self.pending.items() if at <= now and s in by_seq)
        fresh = [m[0] for m in log if m[0] >= self.next_seq]
        out = []
        for seq in (due + fresh)[:batch]:
            count = self.pending.get(seq, (0.0, 0))[1] + 1
            self.pending[seq] = (now + self.ack_wait, count)
            self.next_seq = max(self.next_seq, seq + 1)
            out.append(Delivery(seq, by_seq[seq][2], count, handle))
        return out

    def ack(self, seq: int) -> None:
        if self.pending.pop(seq, None) is not None:
            self.acked.add(seq)
        while self.ack_floor + 1 in self.acked:
            self.ack_floor += 1

    def state(self, log: list[Msg]) -> ConsumerState:
        return ConsumerState(
            delivered_stream=self.next_seq - 1,
            ack_floor_stream=self.ack_floor,
            num_pending=sum(1 for m in log if m[0] >= self.next_seq),
            num_ack_pending=len(self.pending),
            num_redelivered=sum(1 for _, n in self.pending.values() if n > 1),
        )


class FakeCluster:
    """An in-memory cluster (see the module docstring)."""

    def __init__(
        self,
        nodes: list[str],
        root: Path,
        sync_always: bool = False,
        misbehave: Sequence[str] = (),
        refuse_start: Sequence[str] = (),
        version: str = DEFAULT_VERSION,
    ) -> None:
        self.nodes = list(nodes)
        self.version = version  # the nats-server version the fake plays
        self.abilities = OFFERED
        self.root = root
        self.sync_always = sync_always
        self.misbehave = frozenset(misbehave)
        self.refuse_start = set(refuse_start)  # start_node leaves these down
        self.calls: list[tuple[Any, ...]] = []  # every ability call, as (method, *arguments)
        self.up: dict[str, bool] = dict.fromkeys(nodes, False)
        self.paused: dict[str, bool] = dict.fromkeys(nodes, False)
        self.grudge: dict[str, frozenset[str]] = {}
        self.clients_cut: set[str] = set()
        self.streams: dict[str, _Stream] = {}
        self.consumers: dict[tuple[str, str], _Consumer] = {}  # (stream, durable)
        self.staged: dict[tuple[str, str], _Staged] = {}  # (stream, batch id)
        self.events: list[str] = []  # what happened, written to each node's log by collect
        self.dropped: dict[str, int] = {}
        self.stopped = False
        self._lock = threading.RLock()

    # -- core -----------------------------------------------------------------
    def start(self) -> None:
        self._maybe_hang_sync("start")
        for n in self.nodes:
            (self.root / n / "data").mkdir(parents=True, exist_ok=True)
            self._boot(n)

    def stop(self, keep_files: bool = False) -> None:
        with self._lock:
            self.up = dict.fromkeys(self.nodes, False)
            self.stopped = True

    def client_url(self, node: str) -> str:
        return f"fake://{node}"

    def monitor_url(self, node: str) -> str:
        return f"fake://{node}/monitor"

    def monitor(self, node: str) -> NodeMonitor:
        return FakeMonitor(self, node)

    def collect(self, dest: Path, data: bool = True) -> None:
        for n in self.nodes:
            out = dest / n
            out.mkdir(parents=True, exist_ok=True)
            (out / "nats-server.conf").write_text(f"server_name: {n}\n")
            (out / "nats-server.log").write_text("".join(f"{e}\n" for e in self.events))

    def server_info(self) -> dict[str, Any]:
        return {"backend": "fake", "version": self.version, "sha256": None}

    async def connect(self, node: str, name: str) -> NatsClient:
        """The fake's :data:`~harness.clients.Connect`: a client bound to ``node``."""
        return FakeClient(self, node)

    # -- process --------------------------------------------------------------
    def kill(self, node: str) -> None:
        with self._lock:
            self.calls.append(("kill", node))
            self._down(node)

    def start_node(self, node: str) -> None:
        with self._lock:
            self.calls.append(("start_node", node))
            if node not in self.refuse_start:
                self._boot(node)

    def pause(self, node: str) -> None:
        with self._lock:
            self.calls.append(("pause", node))
            if self.up[node]:
                self.paused[node] = True

    def resume(self, node: str) -> None:
        with self._lock:
            self.calls.append(("resume", node))
            self.paused[node] = False

    def running(self, node: str) -> bool:
        return self.up[node]

    def terminate(self, node: str, timeout: float = 10.0) -> None:
        with self._lock:
            self.calls.append(("terminate", node))
            self._down(node)

    def _boot(self, node: str) -> None:
        with self._lock:
            self.up[node] = True
            self.paused[node] = False
            self.events.append(f"[INF] {node} started")

    def _down(self, node: str) -> None:
        with self._lock:
            self.up[node] = self.paused[node] = False
            self.staged = {k: b for k, b in self.staged.items() if b.leader != node}
            self.events.append(f"[KIL] {node} killed")

    # -- network --------------------------------------------------------------
    def isolate(self, grudge: Grudge) -> None:
        with self._lock:
            self.calls.append(("isolate", dict(grudge)))
            for n, enemies in grudge.items():
                self.grudge[n] = self.grudge.get(n, frozenset()) | enemies

    def cut_clients(self, nodes: Sequence[str], both_ways: bool) -> None:
        with self._lock:
            self.calls.append(("cut_clients", list(nodes), both_ways))
            self.clients_cut |= set(nodes)

    def heal_network(self) -> None:
        with self._lock:
            self.calls.append(("heal_network",))
            self.grudge = {}
            self.clients_cut = set()

    # -- power ----------------------------------------------------------------
    def power_fail(
        self, nodes: list[str], keep: float = 0.0, torn_write: bool = False, seed: int = 0
    ) -> dict[str, dict[str, int]]:
        """Every message past a node's synced prefix is gone (``keep``: that share of them,
        from the front, survives; the fake has no torn writes)."""
        with self._lock:
            self.calls.append(("power_fail", list(nodes)))
            out: dict[str, dict[str, int]] = {}
            for n in nodes:
                self._down(n)
                lost = kept = 0
                for st in self.streams.values():
                    if n in st.logs:
                        synced = len(st.logs[n]) if self.sync_always else st.synced.get(n, 0)
                        survive = synced + int(keep * (len(st.logs[n]) - synced))
                        kept += sum(len(d) for _, _, d in st.logs[n][synced:survive])
                        lost += sum(len(d) for _, _, d in st.logs[n][survive:])
                        st.logs[n] = st.logs[n][:survive]
                out[n] = {"dropped_bytes": lost, "fsyncs": 0}
                if keep or torn_write:
                    out[n] |= {"kept_bytes": kept, "torn_bytes": 0}
                self.dropped[n] = self.dropped.get(n, 0) + lost
            return out

    def lazyfs_stats(self) -> dict[str, dict[str, int]]:
        return {n: {"dropped_bytes": self.dropped.get(n, 0)} for n in self.nodes}

    # -- files ----------------------------------------------------------------
    def remote(self, node: str) -> DirRemote:
        return DirRemote(self.root / node)

    def store_dir(self, node: str) -> str:
        return "data"

    # -- the model ------------------------------------------------------------
    def alive(self, node: str) -> bool:
        return self.up[node] and not self.paused[node]

    def hears(self, a: str, b: str) -> bool:
        """Can ``a`` and ``b`` talk (both up, neither holds a grudge against the other)?"""
        if not (self.alive(a) and self.alive(b)):
            return False
        return b not in self.grudge.get(a, ()) and a not in self.grudge.get(b, ())

    def settle(self, st: _Stream) -> str | None:
        """Elect a leader if needed and let followers catch up; the leader."""
        with self._lock:
            quorum = len(st.replicas) // 2 + 1

            def can_lead(n: str) -> bool:
                return (
                    self.alive(n) and sum(self.hears(n, m) or m == n for m in st.replicas) >= quorum
                )

            if st.leader is None or not can_lead(st.leader):
                candidates = [n for n in st.replicas if can_lead(n)]
                st.leader = max(candidates, key=lambda n: len(st.logs[n]), default=None)
            leader = st.leader
            if leader is not None:
                for n in st.replicas:
                    if n != leader and self.hears(leader, n):
                        st.logs[n] = list(st.logs[leader])
                        if self.sync_always:
                            st.synced[n] = len(st.logs[n])
            return leader

    def add_stream(self, config: dict[str, Any]) -> None:
        with self._lock:
            name = config["name"]
            if name in self.streams:
                return
            replicas = self.nodes[: int(config.get("num_replicas", 1))]
            st = _Stream(name, list(config.get("subjects") or [name]), replicas)
            st.duplicate_window = float(config.get("duplicate_window") or 120.0)
            st.counter = bool(config.get("allow_msg_counter"))
            st.atomic = bool(config.get("allow_atomic"))
            st.logs = {n: [] for n in replicas}
            self.streams[name] = st
            self.settle(st)

    def stream_for(self, subject: str) -> _Stream | None:
        for st in self.streams.values():
            for pattern in st.subjects:
                prefix = pattern.removesuffix(">")
                if subject == pattern or (pattern.endswith(">") and subject.startswith(prefix)):
                    return st
        return None

    def publish(
        self, node: str, subject: str, data: bytes, headers: dict[str, str] | None = None
    ) -> Ack:
        with self._lock:
            if not self.alive(node) or node in self.clients_cut:
                raise NatsTimeout
            st = self.stream_for(subject)
            leader = self.settle(st) if st else None
            if st is None or leader is None or not (leader == node or self.hears(node, leader)):
                raise NoRespondersError
            log = st.logs[leader]
            if BATCH_ID in (headers or {}):
                return self._commit(st, leader, subject, data, headers or {})
            original = self._original(st, log, (headers or {}).get("Nats-Msg-Id"))
            if original is not None:
                return Ack(st.name, original, duplicate=True)
            _check_expected(log, subject, headers or {})
            seq = (log[-1][0] if log else 0) + 1
            val = None
            if st.counter:
                data, val = _increment(log, subject, (headers or {}).get("Nats-Incr"))
            log.append(_Stored(seq, subject, data, headers))
            if self.sync_always:
                st.synced[leader] = len(log)
            self.settle(st)
            return Ack(st.name, seq, val=val)

    def _commit(
        self, st: _Stream, leader: str, subject: str, data: bytes, headers: dict[str, str]
    ) -> Ack:
        """The last message of an atomic batch: append the staged ones and it, all at once."""
        if not st.atomic:
            raise APIError(code=400, err_code=10174, description="atomic publish is disabled")
        if headers.get(BATCH_COMMIT) != "1":
            raise ValueError("a batch message that is not the commit has no PubAck: stage it")
        staged = self.staged.pop((st.name, headers[BATCH_ID]), None)
        msgs = staged.msgs if staged is not None and staged.leader == leader else []
        if headers.get(BATCH_SEQ) != str(len(msgs) + 1):
            raise _incomplete()
        log = st.logs[leader]
        first = (log[-1][0] if log else 0) + 1
        for i, (subj, d, h) in enumerate([*msgs, (subject, data, headers)]):
            log.append(_Stored(first + i, subj, d, h))
        if self.sync_always:
            st.synced[leader] = len(log)
        self.settle(st)
        return Ack(st.name, first + len(msgs), batch=headers[BATCH_ID], count=len(msgs) + 1)

    def stage(
        self, node: str, subject: str, data: bytes, headers: dict[str, str], confirm: bool
    ) -> None:
        """An atomic batch's message before its commit, staged at the stream leader.

        ``confirm``: the client asked for a reply, so what it cannot reach
        raises (a timeout, no responders) and a refusal is an ``APIError``;
        without, such a message just vanishes, as a plain publish does.
        """
        with self._lock:
            st = self.stream_for(subject)
            try:
                if not self.alive(node) or node in self.clients_cut:
                    raise NatsTimeout
                leader = self.settle(st) if st else None
                if st is None or leader is None or not (leader == node or self.hears(node, leader)):
                    raise NoRespondersError
                if not st.atomic:
                    raise APIError(
                        code=400, err_code=10174, description="atomic publish is disabled"
                    )
                key = (st.name, headers.get(BATCH_ID, ""))
                if headers.get(BATCH_SEQ) == "1":
                    self.staged[key] = _Staged(leader)
                staged = self.staged.get(key)
                if staged is None or staged.leader != leader:
                    raise _incomplete()
                if headers.get(BATCH_SEQ) != str(len(staged.msgs) + 1):
                    del self.staged[key]
                    raise _incomplete()
                staged.msgs.append((subject, data, headers))
            except Exception:
                if confirm:
                    raise

    @staticmethod
    def _original(st: _Stream, log: list[Msg], msg_id: str | None) -> int | None:
        """The seq of a message stored with ``msg_id`` within the duplicate window, if any.

        Like the server's, the fake's dedup state is its store: what a power
        loss drops, it forgets.
        """
        if not msg_id:
            return None
        since = time.monotonic() - st.duplicate_window
        for m in reversed(log):
            if isinstance(m, _Stored) and m.at < since:
                return None
            if isinstance(m, _Stored) and (m.headers or {}).get("Nats-Msg-Id") == msg_id:
                return m[0]
        return None

    def _leader_log(self, node: str, stream: str) -> list[Msg]:
        """The stream leader's log as ``node`` reaches it (or raise as a client would see)."""
        if not self.alive(node) or node in self.clients_cut:
            raise NatsTimeout
        st = self.streams.get(stream)
        leader = self.settle(st) if st else None
        if st is None or leader is None or not (leader == node or self.hears(node, leader)):
            raise NoRespondersError
        return st.logs[leader]

    def last_on_leader(self, node: str, stream: str, subject: str) -> StoredMsg | None:
        """The leader's last message on ``subject`` (``>`` / ``*`` wildcards), as ``node`` asks."""
        with self._lock:
            log = self._leader_log(node, stream)
            m = next((m for m in reversed(log) if _matches(subject, m[1])), None)
            return None if m is None else StoredMsg(m[0], m[2], m[1], getattr(m, "headers", None))

    def add_consumer(self, node: str, stream: str, config: dict[str, Any]) -> None:
        with self._lock:
            self._leader_log(node, stream)
            durable = config.get("durable_name") or config["name"]
            ack_wait = float(config.get("ack_wait") or 30.0)
            self.consumers.setdefault((stream, durable), _Consumer(ack_wait))

    def consumer(self, node: str, stream: str, durable: str) -> tuple[_Consumer, list[Msg]]:
        with self._lock:
            log = self._leader_log(node, stream)
            con = self.consumers.get((stream, durable))
            if con is None:
                raise APIError(code=404, err_code=10014, description="consumer not found")
            return con, log

    def _maybe_hang_sync(self, what: str) -> None:
        if what in self.misbehave:
            while not self.stopped:
                time.sleep(0.05)


def _increment(log: list[Msg], subject: str, incr: str | None) -> tuple[bytes, str]:
    """A counter stream's next message on ``subject``: its body and the new total."""
    if incr is None or not incr.lstrip("-").isdigit():
        why = "missing" if incr is None else "invalid"
        raise APIError(code=400, err_code=10169, description=f"message counter increment is {why}")
    last = next((d for _, subj, d in reversed(log) if subj == subject), None)
    total = int(json.loads(last)["val"]) if last else 0
    val = str(total + int(incr))
    return json.dumps({"val": val}).encode(), val


def _check_expected(log: list[Msg], subject: str, headers: dict[str, str]) -> None:
    """Refuse (400, err_code 10071) a publish whose expected last sequence does not match:
    ``Nats-Expected-Last-Sequence`` the stream's, ``Nats-Expected-Last-Subject-Sequence``
    the subject's (0: the stream or subject holds nothing)."""
    for header, subj in (
        ("Nats-Expected-Last-Sequence", None),
        ("Nats-Expected-Last-Subject-Sequence", subject),
    ):
        want = headers.get(header)
        if want is None:
            continue
        last = next((m[0] for m in reversed(log) if subj is None or m[1] == subj), 0)
        if int(want) != last:
            raise APIError(code=400, err_code=10071, description=f"wrong last sequence: {last}")


def _matches(pattern: str, subject: str) -> bool:
    """Does ``subject`` match the NATS subject ``pattern`` (``*`` one token, ``>`` the rest)?"""
    want, got = pattern.split("."), subject.split(".")
    for i, w in enumerate(want):
        if w == ">":
            return len(got) > i
        if i >= len(got) or (w != "*" and w != got[i]):
            return False
    return len(got) == len(want)


class FakeMonitor:
    """One fake node's own view (:class:`~harness.monitor.NodeMonitor`)."""

    def __init__(self, cluster: FakeCluster, node: str) -> None:
        self.c = cluster
        self.node = node

    def meta_leader(self) -> str | None:
        c = self.c
        c._maybe_hang_sync("meta_leader")
        if not c.alive(self.node):
            return None
        peers = [n for n in c.nodes if n == self.node or c.hears(self.node, n)]
        return min(peers) if len(peers) >= len(c.nodes) // 2 + 1 else None

    def stream_view(self, stream: str) -> StreamView | None:
        c = self.c
        if not c.alive(self.node):
            return None
        st = c.streams.get(stream)
        if st is None or self.node not in st.replicas:
            return StreamView(present=False)
        leader = c.settle(st)
        log = st.logs[self.node]
        seen = leader if leader == self.node or (leader and c.hears(self.node, leader)) else None
        if "no_leader" in c.misbehave:
            seen = None
        return StreamView(
            present=True,
            messages=len(log),
            first_seq=log[0][0] if log else 0,
            last_seq=log[-1][0] if log else 0,
            leader=seen,
        )

    def route_count(self) -> int | None:
        c = self.c
        if not c.alive(self.node):
            return None
        return sum(c.hears(self.node, n) for n in c.nodes if n != self.node)

    def serves_direct_get(self, stream: str) -> bool | None:
        view = self.stream_view(stream)
        return None if view is None else view.present


class FakeClient:
    """:class:`~harness.clients.NatsClient` of one fake node."""

    def __init__(self, cluster: FakeCluster, node: str) -> None:
        self.c = cluster
        self.node = node

    async def _hang(self, what: str) -> None:
        if what in self.c.misbehave:
            await asyncio.Event().wait()

    async def add_stream(self, config: dict[str, Any], timeout: float) -> None:
        if not self.c.alive(self.node):
            raise NatsTimeout
        if "refuse_stream" in self.c.misbehave:
            raise APIError(code=400, err_code=10052, description="stream configuration invalid")
        self.c.add_stream(config)

    async def publish(
        self, subject: str, payload: bytes, timeout: float, headers: dict[str, str] | None = None
    ) -> Ack:
        await self._hang("publish")
        await asyncio.sleep(0)  # let the other workers and the nemesis run, as real I/O would
        return self.c.publish(self.node, subject, payload, headers)

    async def publish_async(self, subject: str, payload: bytes) -> asyncio.Future[Any]:
        """The publish is answered on the next loop turn; a node that would time out (down,
        paused, cut from clients, or ``misbehave`` "publish") never answers."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if "publish" in self.c.misbehave:
            return fut

        def answer() -> None:
            if fut.done():
                return
            try:
                fut.set_result(self.c.publish(self.node, subject, payload))
            except NatsTimeout:
                pass  # no answer ever comes: the caller gives up on it
            except Exception as e:
                fut.set_exception(e)

        asyncio.get_running_loop().call_soon(answer)
        return fut

    async def publish_staged(
        self, subject: str, payload: bytes, headers: dict[str, str], timeout: float | None
    ) -> None:
        await self._hang("publish")
        await asyncio.sleep(0)  # let the others run, as real I/O would
        self.c.stage(self.node, subject, payload, headers, timeout is not None)

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        c = self.c
        prefix = "$JS.API.STREAM.LEADER.STEPDOWN."
        if not c.alive(self.node) or not subject.startswith(prefix):
            raise NoRespondersError
        st = c.streams.get(subject.removeprefix(prefix))
        if st is None:
            raise APIError(code=404, description="stream not found")
        preferred = (json.loads(payload or b"{}").get("placement") or {}).get("preferred")
        with c._lock:
            if preferred in st.replicas and c.alive(preferred):
                st.leader = preferred
        return json.dumps({"success": True}).encode()

    def server_version(self) -> str | None:
        return self.c.version

    async def direct_get(
        self, stream: str, seq: int, batch: int, timeout: float
    ) -> list[StoredMsg] | None:
        await self._hang("direct_get")
        c = self.c
        if "slow_reads" in c.misbehave:  # every get answers, 0.1 s late (a slow, live read)
            await asyncio.sleep(0.1)
        if "stall_reads" in c.misbehave and seq > 1:  # the first batch, then silence
            await asyncio.Event().wait()
        if batch > 1 and not batched_direct_get(c.version):  # 2.10: one message, no end, ever
            await asyncio.sleep(timeout)
            raise NatsTimeout
        if not c.alive(self.node):
            raise NatsTimeout
        st = c.streams.get(stream)
        if st is None or self.node not in st.replicas:
            raise NoRespondersError
        log = st.logs[self.node]  # in seq order
        first = bisect.bisect_left(log, seq, key=lambda m: m[0])
        msgs = [
            StoredMsg(m[0], m[2], m[1], getattr(m, "headers", None))
            for m in log[first : first + batch]
        ]
        return msgs or None

    async def add_consumer(self, stream: str, config: dict[str, Any], timeout: float) -> None:
        self.c.add_consumer(self.node, stream, config)

    async def fetch(self, stream: str, durable: str, batch: int, timeout: float) -> list[Delivery]:
        """What the consumer has for us, waiting up to ``timeout`` for something to come."""
        deadline = time.monotonic() + timeout
        while True:
            with self.c._lock:
                con, log = self.c.consumer(self.node, stream, durable)
                got = con.take(log, batch, time.monotonic(), (stream, durable))
            if got or time.monotonic() >= deadline:
                return got
            await asyncio.sleep(min(0.01, max(0.0, deadline - time.monotonic())))

    async def ack_sync(self, delivery: Delivery, timeout: float) -> None:
        await asyncio.sleep(0)  # let the others run, as the round trip would
        with self.c._lock:
            con, _ = self.c.consumer(self.node, *delivery.handle)
            con.ack(delivery.seq)

    async def consumer_info(
        self, stream: str, durable: str, timeout: float
    ) -> ConsumerState | None:
        try:
            con, log = self.c.consumer(self.node, stream, durable)
        except APIError:
            return None
        return con.state(log)

    async def direct_get_last(self, stream: str, subject: str, timeout: float) -> StoredMsg | None:
        await self._hang("direct_get")
        msgs = await self.direct_get(stream, 1, 1 << 62, timeout) or []
        return next((m for m in reversed(msgs) if m.subject == subject), None)

    async def add_key_value(self, config: dict[str, Any], timeout: float) -> None:
        """The bucket's stream ``KV_<bucket>`` on ``$KV.<bucket>.>`` (history is not modelled:
        every read wants a subject's last entry)."""
        bucket = config["bucket"]
        stream = {"name": f"KV_{bucket}", "subjects": [f"$KV.{bucket}.>"], "allow_direct": True}
        await self.add_stream({**stream, "num_replicas": config.get("replicas", 1)}, timeout)

    async def msg_get_last(self, stream: str, subject: str, timeout: float) -> StoredMsg | None:
        await asyncio.sleep(0)  # let the others run, as the round trip would
        return self.c.last_on_leader(self.node, stream, subject)

    async def close(self) -> None:
        return None


class DirRemote(HostRemote):
    """A :class:`~harness.backends.base.Remote` over a directory of this host.

    Files are :class:`HostRemote`'s, under ``root``; commands are recorded in
    ``commands`` and succeed without running.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(list, root)
        self.commands: list[list[str]] = []

    def run(
        self,
        argv: Sequence[str],
        check: bool = True,
        timeout: float = 30.0,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        self.commands.append(list(argv))
        return subprocess.CompletedProcess(list(argv), 0, "", "")


def backend(
    sync_always: bool = False, misbehave: Sequence[str] = ()
) -> tuple[Backend, list[FakeCluster]]:
    """A runner :class:`~harness.runner.Backend` that builds :class:`FakeCluster`s, and the
    list every cluster it builds is appended to (so a test can look at it after the run)."""
    from harness.runner import Backend

    made: list[FakeCluster] = []

    def make(scenario: Scenario, binary: Path | None, workdir: Path, state: RunState) -> Any:
        cluster = FakeCluster(
            scenario.node_names,
            workdir,
            sync_always=sync_always,
            misbehave=misbehave,
            version=scenario.server.version,
        )
        made.append(cluster)
        return cluster

    def connect(cluster: Any) -> Any:
        return cluster.connect  # a FakeCluster's

    def preflight(scenario: Scenario) -> None:  # the faults' needs, against what a fake offers
        from harness import faults, workloads

        lacks = lambda a: None if a in OFFERED else "which the fake lacks"  # noqa: E731
        faults.preflight(scenario, lacks)
        workloads.preflight(scenario, lacks)

    fake = Backend(
        preflight=preflight,
        binary=lambda scenario, explicit: None,
        make_cluster=make,
        connect=connect,
        client_processes=False,  # in memory: every client runs in the harness's own loop
    )
    return fake, made
