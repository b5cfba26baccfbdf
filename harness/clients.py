"""Client connections, the narrow client the workloads use, and the ONE place where
client errors become op types.

Uncertainty is recorded, never guessed (STYLE §3):

- ``fail`` — the operation certainly did not take effect: the server
  refused it with a JetStream API error before proposing it, or nobody was
  subscribed (no responders: no stream received the message), or a workload
  raised :class:`Failed` for an answer it knows to be a refusal;
- ``info`` — it may or may not have taken effect: a timeout, a connection
  that dropped with the request in flight, an API error sent after the
  message was proposed (:func:`classify` has the table), a workload's :class:`Unknown`,
  anything unexpected. The process that saw an ``info`` is retired and its
  worker continues under a new id (``harness.interpreter``).

:class:`NatsClient` is everything a workload may ask of a connection to one
node: the version its server announced, an acknowledged JetStream publish, a
staged one (an atomic batch's message before its commit), a request, a
direct get (batched, or one message: the form every server version answers), a
stream or KV
bucket creation, a durable pull consumer (create, fetch, confirmed ack,
state), and the last message of a subject by direct get or from the stream
leader (``msg_get_last``). :class:`NatsPyClient` implements it over nats-py;
the fake cluster (``harness.backends.fake``) implements it in memory. Each real
client is bound to one node: it connects to that node's URL only, with
server discovery off (the cluster config sets ``no_advertise``), so a client
never silently moves to another node.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import nats
import orjson
from nats.aio.client import Client
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import ConsumerConfig, KeyValueConfig, StorageType, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError, NotFoundError

if TYPE_CHECKING:
    from harness.rawget import RawDirectGet

FAIL = "fail"
INFO = "info"
NO_MESSAGE = 10037  # JetStream err_code of a message get that found nothing
_PRUNE_EVERY = 4096  # pipelined publishes between two prunings of abandoned futures


class Failed(Exception):
    """Raised by a workload's operation for an outcome it knows did not take effect."""


class Unknown(Exception):
    """Raised by a workload's operation for an outcome it cannot know (recorded as info)."""


# JetStream API errors a stream leader sends while applying an entry already committed to the
# stream's raft log (nats-server stream.go processJetStreamMsg, clustered path): the followers
# apply the same entry, so the message may be stored although the publisher got an error.
AFTER_PROPOSAL = {
    10063: "expected stream sequence does not match",  # the leader's store was not at the
    # entry's sequence when it applied it (it fell behind or ran ahead of the log)
    10077: "store failed",  # writing the committed entry to the leader's store failed
}


def classify(exc: BaseException) -> tuple[str, str]:
    """Map a client exception to ``(op type, short error)``: fail is certain, info is not.

    =======================================  ======  ============================================
    the client saw                           op      why (nats-server's behaviour)
    =======================================  ======  ============================================
    :class:`Failed` / :class:`Unknown`       fail /  the workload knows (e.g. cas: err_codes
                                             info    10071/10164, a refused expected sequence)
    no responders (status 503, no JS error)  fail    no stream subscribed to the subject: nothing
                                                     received it, nothing stored
    API error 10063 or 10077                 info    sent by the stream leader while applying an
                                                     entry already in the raft log (stream
                                                     sequence mismatch, store failed): followers
                                                     may store it (:data:`AFTER_PROPOSAL`)
    any other API error                      fail    a refusal before the message is proposed:
                                                     the leader's checks in
                                                     processClusteredInboundMsg (not leader,
                                                     sealed, insufficient resources, size,
                                                     Msg-Id and expected-sequence headers,
                                                     counters, batches); reads, consumer and
                                                     stream API calls changed nothing
    timeout, connection lost, anything else  info    the request may have been acted on
    =======================================  ======  ============================================
    """
    if isinstance(exc, Failed):
        return FAIL, str(exc)[:200]
    if isinstance(exc, Unknown):
        return INFO, str(exc)[:200]
    if isinstance(exc, NoRespondersError | NoStreamResponseError):
        return FAIL, "no-responders"  # a 503: no stream was subscribed, nothing was stored
    if isinstance(exc, APIError):
        code = getattr(exc, "err_code", None) or getattr(exc, "code", None)
        desc = (getattr(exc, "description", None) or str(exc)).strip()
        return INFO if code in AFTER_PROPOSAL else FAIL, f"api-error {code}: {desc}"[:200]
    if isinstance(exc, NatsTimeout | asyncio.TimeoutError | TimeoutError):
        return INFO, "timeout"
    name = type(exc).__name__
    detail = str(exc).strip()
    return INFO, f"{name}: {detail}"[:200] if detail else name


@dataclass(frozen=True)
class Ack:
    """A JetStream publish acknowledgement."""

    stream: str
    seq: int
    duplicate: bool = False
    val: str | None = None  # a counter stream's new total (``Nats-Incr`` publishes), as sent
    batch: str | None = None  # an atomic batch's commit: the batch id the server committed
    count: int | None = None  # … and how many messages it stored (seq is the last one's)


@dataclass(frozen=True)
class StoredMsg:
    """One message a direct get returned."""

    seq: int
    data: bytes
    subject: str = ""
    headers: dict[str, str] | None = None  # the stored message's (and the direct get's Nats-*)


class Message(Protocol):
    """What a batched direct get returns per message: a :class:`StoredMsg`, or a
    :class:`harness.rawget.RawMsg` that parses its headers only when asked."""

    @property
    def seq(self) -> int: ...
    @property
    def data(self) -> bytes: ...
    @property
    def subject(self) -> str: ...
    @property
    def headers(self) -> dict[str, str] | None: ...


@dataclass(frozen=True)
class Delivery:
    """One message a pull consumer delivered: its stream sequence, payload and delivery
    count (1 the first time); ``handle`` is what :meth:`NatsClient.ack_sync` acknowledges."""

    seq: int
    data: bytes
    num_delivered: int
    handle: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ConsumerState:
    """What ``CONSUMER.INFO`` says of a consumer (stream sequences and counts)."""

    delivered_stream: int  # the last stream sequence delivered
    ack_floor_stream: int  # every message up to this stream sequence is acknowledged
    num_pending: int  # messages not yet delivered
    num_ack_pending: int  # delivered, not yet acknowledged
    num_redelivered: int  # ack-pending messages delivered more than once
    num_waiting: int = 0  # pull requests waiting


class NatsClient(Protocol):
    """What a workload may do over its connection to one node."""

    def server_version(self) -> str | None:
        """The version the node's server announced (``2.10.25``); None before it connects."""

    async def add_stream(self, config: dict[str, Any], timeout: float) -> None:
        """Create a stream (``StreamConfig`` fields); API errors raise ``APIError``."""

    async def publish(
        self, subject: str, payload: bytes, timeout: float, headers: dict[str, str] | None = None
    ) -> Ack:
        """An acknowledged JetStream publish."""

    async def publish_async(self, subject: str, payload: bytes) -> asyncio.Future[Any]:
        """A JetStream publish sent without waiting for its ack: a future of the ack.

        The future resolves to an ack with ``.seq`` (and ``.stream``,
        ``.duplicate``), or fails as ``publish`` would raise (an API error,
        no responders). It never times out on its own: the caller cancels it
        when it stops waiting (the pipelined interpreter's sweeper).
        """

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        """A plain request; the reply's payload."""

    async def direct_get(
        self, stream: str, seq: int, batch: int, timeout: float
    ) -> Sequence[Message] | None:
        """Up to ``batch`` messages from ``seq`` on; ``[]`` at the end, None: nothing there.

        ``batch`` > 1 needs a server that answers batched direct gets (2.11+);
        ``batch`` 1 is a single direct get of the first message at or after
        ``seq``, which every server answers.
        """

    async def add_consumer(self, stream: str, config: dict[str, Any], timeout: float) -> None:
        """Create a consumer on ``stream`` (``ConsumerConfig`` fields); errors: ``APIError``."""

    async def fetch(self, stream: str, durable: str, batch: int, timeout: float) -> list[Delivery]:
        """Up to ``batch`` messages from the durable pull consumer; ``[]`` if none came in time."""

    async def ack_sync(self, delivery: Delivery, timeout: float) -> None:
        """Acknowledge ``delivery`` and wait until the server confirms it."""

    async def consumer_info(
        self, stream: str, durable: str, timeout: float
    ) -> ConsumerState | None:
        """The consumer's state; None when the server has no such consumer (or stream)."""

    async def direct_get_last(self, stream: str, subject: str, timeout: float) -> StoredMsg | None:
        """The last message stored on ``subject`` (a direct get); None: there is none."""

    async def publish_staged(
        self, subject: str, payload: bytes, headers: dict[str, str], timeout: float | None
    ) -> None:
        """A message the stream stages rather than stores (an atomic batch's before its commit).

        With ``timeout``: a request, whose empty reply confirms the message was
        staged (an error reply raises ``APIError``); None: a plain publish that
        nothing answers.
        """

    async def add_key_value(self, config: dict[str, Any], timeout: float) -> None:
        """Create a KV bucket (``KeyValueConfig`` fields: ``bucket``, ``history``,
        ``replicas``, ``storage`` …): the stream ``KV_<bucket>`` on ``$KV.<bucket>.>``."""

    async def msg_get_last(self, stream: str, subject: str, timeout: float) -> StoredMsg | None:
        """The last message on ``subject`` (wildcards allowed) as the stream leader holds it
        (``STREAM.MSG.GET`` with ``last_by_subj``), with its headers; None: there is none;
        other API errors raise ``APIError``."""

    async def close(self) -> None:
        """Close the connection (never raises)."""


Connect = Callable[[str, str], Awaitable[NatsClient]]
"""``connect(node, name)``: a client bound to ``node``."""


async def connect(url: str, name: str, timeout: float = 2.0) -> Client:
    """Connect to one node only, reconnecting to it forever (the harness decides when to stop)."""

    async def _quiet(_e: Exception) -> None:  # reconnect noise is expected under faults
        return None

    return await nats.connect(
        servers=[url],
        name=name,
        connect_timeout=timeout,
        allow_reconnect=True,
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.25,
        ping_interval=5,
        max_outstanding_pings=2,
        dont_randomize=True,
        error_cb=_quiet,
        disconnected_cb=None,
        pending_size=8 * 1024 * 1024,
    )


class NatsPyClient:
    """:class:`NatsClient` over one nats-py connection."""

    def __init__(self, nc: Client, url: str | None = None) -> None:
        self.nc = nc
        self.url = url  # the node's client URL, for the reads' own connection
        self._raw: RawDirectGet | None = None  # opened on the first batched get
        self._js: dict[float, Any] = {}  # one JetStream context per timeout, not one per publish
        self._acks: dict[bytes, asyncio.Future[Any]] | None = None  # pipelined, by reply id
        self._ack_prefix = ""
        self._ack_ids = itertools.count(1)
        self._pulls: dict[tuple[str, str], tuple[Any, asyncio.Lock]] = {}  # per durable

    def _jetstream(self, timeout: float) -> Any:
        js = self._js.get(timeout)
        if js is None:
            js = self._js[timeout] = self.nc.jetstream(timeout=timeout)
        return js

    @classmethod
    async def open(cls, url: str, name: str) -> NatsPyClient:
        return cls(await connect(url, name), url)

    def server_version(self) -> str | None:
        """From the server's INFO on connect (the node this client is bound to)."""
        v = self.nc.connected_server_version
        return f"{v.major}.{v.minor}.{v.patch}" if v.major else None

    async def add_stream(self, config: dict[str, Any], timeout: float) -> None:
        await self._jetstream(timeout).add_stream(StreamConfig(**config))

    async def publish(
        self, subject: str, payload: bytes, timeout: float, headers: dict[str, str] | None = None
    ) -> Ack:
        ack = await self._jetstream(timeout).publish(subject, payload, headers=headers)
        return Ack(ack.stream, ack.seq, bool(ack.duplicate), ack.val, ack.batch_id, ack.batch_size)

    async def publish_async(self, subject: str, payload: bytes) -> asyncio.Future[Any]:
        """A publish whose reply subject is ``<inbox>.<n>`` under one wildcard subscription;
        the future is kept by ``n`` until its ack lands.

        nats-py's own ``publish_async`` does the same with a semaphore, random
        tokens and a dataclass per ack, which costs about as much client CPU
        per message as the rest of a recorded op: on a host the servers share
        with the clients that is throughput taken from the cluster. Futures
        the caller cancelled (it gave up on them) are dropped every
        :data:`_PRUNE_EVERY` publishes.
        """
        acks = self._acks
        if acks is None:
            acks = await self._open_acks()
        n = next(self._ack_ids)
        if n % _PRUNE_EVERY == 0:
            for key in [k for k, f in acks.items() if f.done()]:
                del acks[key]
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        acks[b"%d" % n] = fut
        await self.nc.publish(subject, payload, reply=self._ack_prefix + str(n))
        return fut

    async def _open_acks(self) -> dict[bytes, asyncio.Future[Any]]:
        prefix = self.nc.new_inbox()
        self._ack_prefix = prefix + "."
        self._acks = acks = dict[bytes, asyncio.Future[Any]]()
        skip = len(self._ack_prefix)
        stream_missing = NoStreamResponseError

        async def landed(msg: Any) -> None:
            fut = acks.pop(msg.subject[skip:].encode(), None)
            if fut is None or fut.done():
                return
            if msg.headers and msg.headers.get("Status") == "503":
                fut.set_exception(stream_missing())
                return
            try:
                reply = orjson.loads(msg.data)
                error = reply.get("error")
                if error:
                    APIError.from_error(error)  # raises the error's class
                fut.set_result(Ack(reply["stream"], reply["seq"], bool(reply.get("duplicate"))))
            except Exception as e:
                fut.set_exception(e)

        await self.nc.subscribe(self._ack_prefix + "*", cb=landed)
        return acks

    async def request(self, subject: str, payload: bytes, timeout: float) -> bytes:
        return (await self.nc.request(subject, payload, timeout=timeout)).data

    async def direct_get(
        self, stream: str, seq: int, batch: int, timeout: float
    ) -> Sequence[Message] | None:
        """One direct get (``$JS.API.DIRECT.GET.<stream>``).

        With ``batch`` > 1 the request carries ``batch`` and the server answers
        each message, then a ``204`` status that ends the batch, or a ``404``
        when nothing is stored at or after ``seq`` (a 2.10 server ignores
        ``batch``: one message, no ``204``, and the read times out). Batches go
        over a raw connection of their own to the same node, decoded in bulk
        (:class:`harness.rawget.RawDirectGet`: :class:`~harness.rawget.RawMsg`
        rows, headers parsed on demand), within ``timeout`` seconds, which a
        cancellation or the bound ends at once. With ``batch`` 1 it is a
        single get with ``next_by_subj: ">"`` on this connection
        (:meth:`subscribed_get`).
        """
        if batch == 1:
            return await self.subscribed_get(stream, seq, 1, timeout)
        if self._raw is None:
            from harness.rawget import RawDirectGet  # here: harness.rawget imports this module

            url = self.url or (self.nc.connected_url.geturl() if self.nc.connected_url else "")
            self._raw = RawDirectGet(url)
        try:
            async with asyncio.timeout(timeout):
                return await self._raw.batch(stream, seq, batch)
        except TimeoutError:
            raise NatsTimeout from None

    async def subscribed_get(
        self, stream: str, seq: int, batch: int, timeout: float
    ) -> list[StoredMsg] | None:
        """A direct get through a nats-py subscription (``next_msg`` per message).

        What every batch used before :class:`harness.rawget.RawDirectGet`; now
        single gets, and the baseline of ``benchmarks/bench_reads.py``. The
        whole batch must arrive within ``timeout`` seconds: the deadline is
        checked between messages too (but on Python 3.11 a cancellation from
        outside may be swallowed by ``next_msg``'s ``wait_for`` while replies
        keep coming).
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        inbox = self.nc.new_inbox()
        sub = await self.nc.subscribe(inbox)
        out: list[StoredMsg] = []
        try:
            single = batch == 1
            ask = {"seq": seq, "next_by_subj": ">"} if single else {"seq": seq, "batch": batch}
            await self.nc.publish(f"$JS.API.DIRECT.GET.{stream}", json.dumps(ask).encode(), inbox)
            while True:
                left = deadline - loop.time()
                if left <= 0:
                    raise NatsTimeout
                msg = await sub.next_msg(timeout=left)
                headers = msg.headers or {}
                status = headers.get("Status")
                if status == "204":
                    return out
                if status == "404":
                    return out or None
                if status:
                    raise Unknown(f"direct get: status {status} {headers.get('Description', '')}")
                out.append(
                    StoredMsg(
                        int(headers["Nats-Sequence"]),
                        msg.data,
                        headers.get("Nats-Subject", ""),
                        headers,
                    )
                )
                if single:
                    return out
        finally:
            with contextlib.suppress(Exception):  # the connection may be gone already
                await sub.unsubscribe()

    async def add_consumer(self, stream: str, config: dict[str, Any], timeout: float) -> None:
        await self._jetstream(timeout).add_consumer(stream, ConsumerConfig(**config))

    async def fetch(self, stream: str, durable: str, batch: int, timeout: float) -> list[Delivery]:
        """One ``psub.fetch`` on a subscription bound to the existing durable.

        Bound, never created: ``pull_subscribe`` would silently create a new
        consumer (delivering everything again) if the server lost this one.
        Fetches on one connection take turns: concurrent fetches on one pull
        subscription would take each other's messages and status replies.
        """
        pull = self._pulls.get((stream, durable))
        if pull is None:
            js = self._jetstream(timeout)
            pull = (await js.pull_subscribe_bind(durable=durable, stream=stream), asyncio.Lock())
            self._pulls[(stream, durable)] = pull
        psub, lock = pull
        try:
            async with lock:
                msgs = await psub.fetch(batch, timeout)
        except TimeoutError:  # NatsTimeout is one too; nothing came: a 408, or no answer at all
            return []
        out = []
        for m in msgs:
            meta = m.metadata
            out.append(Delivery(meta.sequence.stream, m.data, meta.num_delivered, m))
        return out

    async def ack_sync(self, delivery: Delivery, timeout: float) -> None:
        await delivery.handle.ack_sync(timeout=timeout)

    async def consumer_info(
        self, stream: str, durable: str, timeout: float
    ) -> ConsumerState | None:
        try:
            info = await self._jetstream(timeout).consumer_info(stream, durable, timeout=timeout)
        except NotFoundError:  # no such consumer, or no such stream
            return None
        delivered, floor = info.delivered, info.ack_floor
        return ConsumerState(
            delivered_stream=delivered.stream_seq if delivered else 0,
            ack_floor_stream=floor.stream_seq if floor else 0,
            num_pending=info.num_pending or 0,
            num_ack_pending=info.num_ack_pending or 0,
            num_redelivered=info.num_redelivered or 0,
            num_waiting=info.num_waiting or 0,
        )

    async def direct_get_last(self, stream: str, subject: str, timeout: float) -> StoredMsg | None:
        """``$JS.API.DIRECT.GET.<stream>.<subject>``: one reply, or a ``404`` status for none."""
        msg = await self.nc.request(f"$JS.API.DIRECT.GET.{stream}.{subject}", b"", timeout=timeout)
        headers = msg.headers or {}
        status = headers.get("Status")
        if status == "404":
            return None
        if status:
            raise Unknown(f"direct get: status {status} {headers.get('Description', '')}")
        seq, subject = int(headers["Nats-Sequence"]), headers.get("Nats-Subject", "")
        return StoredMsg(seq, msg.data, subject, headers)

    async def add_key_value(self, config: dict[str, Any], timeout: float) -> None:
        fields = dict(config)
        if isinstance(fields.get("storage"), str):
            fields["storage"] = StorageType(fields["storage"])
        await self._jetstream(timeout).create_key_value(KeyValueConfig(**fields))

    async def msg_get_last(self, stream: str, subject: str, timeout: float) -> StoredMsg | None:
        """A leader get; "no message found" (err_code 10037) is None, other API errors raise."""
        try:
            raw = await self._jetstream(timeout).get_msg(stream, subject=subject)
        except NotFoundError as e:
            if e.err_code == NO_MESSAGE:
                return None
            raise
        return StoredMsg(raw.seq or 0, raw.data or b"", raw.subject or subject, raw.headers)

    async def publish_staged(
        self, subject: str, payload: bytes, headers: dict[str, str], timeout: float | None
    ) -> None:
        if timeout is None:
            await self.nc.publish(subject, payload, headers=headers)
            return
        msg = await self.nc.request(subject, payload, timeout=timeout, headers=headers)
        if msg.data:  # staged: an empty reply; refused: a PubAck with an error
            reply = json.loads(msg.data)
            if "error" in reply:
                APIError.from_error(reply["error"])  # raises
            raise Unknown(f"a staged message answered with {msg.data[:80]!r}")

    async def close(self) -> None:
        if self._raw is not None:
            await self._raw.close()
        with contextlib.suppress(Exception):  # closing a connection to a dead node may fail
            await asyncio.wait_for(self.nc.close(), 5)


def connect_real(urls: Callable[[str], str]) -> Connect:
    """The :data:`Connect` of the real backends: nats-py to ``urls(node)``."""

    async def _connect(node: str, name: str) -> NatsClient:
        return await NatsPyClient.open(urls(node), name)

    return _connect


class ClientPool:
    """One client per node, opened on first use and shared by every worker on that node."""

    def __init__(self, connect: Connect, name: str = "nats-chaos") -> None:
        self._connect = connect
        self._name = name
        self._clients: dict[str, NatsClient] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, node: str) -> NatsClient:
        """The client bound to ``node`` (connecting it the first time)."""
        client = self._clients.get(node)
        if client is not None:
            return client
        async with self._locks.setdefault(node, asyncio.Lock()):
            if node not in self._clients:
                self._clients[node] = await self._connect(node, f"{self._name}-{node}")
            return self._clients[node]

    async def close(self) -> None:
        """Close every client (never raises)."""
        clients, self._clients = list(self._clients.values()), {}
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
