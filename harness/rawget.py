"""Batched direct gets on a raw NATS connection of their own, decoded in bulk.

In: the client URL of one node (the same URL its :class:`~harness.clients.NatsPyClient`
is bound to), a stream, a first sequence and a batch size. Out: the batch as
:class:`RawMsg` rows (sequence, payload, the header block kept as bytes and
parsed only when asked), ``[]`` at the end of the stream, or None when nothing is
stored at or after the sequence. Anything the server says that is not a
message, an end of batch or a "not found" raises
:class:`~harness.clients.Unknown`; a closed connection raises ``ConnectionError``.

Why a connection of its own. nats-py hands every message to a subscription
queue and ``next_msg`` takes each out with a uuid, a task and a
``wait_for``, and parses every header into a dict: ~70 µs of harness CPU per
message, and on Python 3.11 a ``wait_for`` around a loop whose queue never
empties swallows its cancellation, so a bound around it does not hold. Here
one TCP connection speaks the NATS protocol (``CONNECT``, one ``SUB`` on an
inbox, a ``PUB`` per batch request) and :func:`parse` splits whatever bytes
have arrived into messages with a few ``bytes.find`` calls each; the only
waits are socket reads, so cancellation (a bound, a phase deadline) ends a
read at once. A cancelled or failed batch closes the connection (half a
batch may still be on the wire); the next batch opens a new one, as does a
batch after ``IDLE`` seconds unused (between batches nothing reads the
socket, so the server's PINGs go unanswered until the connection is stale).

Locality is the caller's business exactly as before: the connection goes to
the node's own client URL, and server discovery does not exist here (no
reconnect, no other URL), so every reply comes from the server this
connection reached — and that server answers a direct get from its own
replica when it has no routes (``harness.workloads.streams``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import secrets
import time
from urllib.parse import urlsplit

from harness.clients import Unknown

CHUNK = 1 << 20  # bytes asked of the socket per read
IDLE = 30.0  # seconds unused after which the connection is opened afresh (nobody answered PINGs)
SEQ = b"\r\nNats-Sequence: "
HMSG = re.compile(rb"HMSG [^ \r\n]+ \d+ (\d+) (\d+)\r\n")  # a reply: no reply-to field
SUBJECT = b"\r\nNats-Subject: "
CONNECT = {"verbose": False, "pedantic": False, "headers": True, "no_responders": True}


class RawMsg:
    """One stored message of a batch: ``seq``, ``data``; ``headers``/``subject`` on demand."""

    __slots__ = ("data", "raw_headers", "seq")

    def __init__(self, seq: int, data: bytes, raw_headers: bytes) -> None:
        self.seq = seq
        self.data = data
        self.raw_headers = raw_headers

    @property
    def headers(self) -> dict[str, str]:
        """The header block as a dict (the stored message's, then the direct get's ``Nats-*``;
        a name given twice keeps its last value, the server's)."""
        out: dict[str, str] = {}
        for line in self.raw_headers.decode(errors="replace").split("\r\n")[1:]:
            name, sep, value = line.partition(":")
            if sep:
                out[name.strip()] = value.strip()
        return out

    @property
    def subject(self) -> str:
        """The subject the message was stored under (``Nats-Subject``)."""
        h = self.raw_headers
        i = h.rfind(SUBJECT)
        if i < 0:
            return ""
        i += len(SUBJECT)
        return h[i : h.index(b"\r", i)].decode(errors="replace")


class Frames:
    """What :func:`parse` found in a buffer: messages, an end status, and server PINGs."""

    __slots__ = ("end", "msgs", "pings")

    def __init__(self) -> None:
        self.msgs: list[RawMsg] = []
        self.end: str | None = None  # "204" (end of batch) or "404" (nothing there)
        self.pings = 0


def parse(buf: bytes, pos: int, frames: Frames) -> int:
    """Decode every whole protocol frame of ``buf`` from ``pos`` into ``frames``.

    Returns where the first incomplete frame starts (the caller keeps the
    rest for the next read). Stops after an end-of-batch status. A status
    other than 204/404, an ``-ERR`` or a frame it does not know raises
    :class:`Unknown`.
    """
    msgs = frames.msgs
    find, rfind, index, head = buf.find, buf.rfind, buf.index, HMSG.match
    size = len(buf)
    while frames.end is None:
        m = head(buf, pos)
        if m is not None:  # "HMSG <subject> <sid> <header bytes> <total bytes>\r\n"
            start = m.end()
            hend = start + int(m[1])
            end = start + int(m[2])
            if end + 2 > size:
                return pos
            if buf[start + 8] == 32:  # "NATS/1.0 204 EOB": a status, not a message
                status = buf[start + 9 : start + 12].decode()
                if status not in ("204", "404"):
                    line = buf[start + 9 : find(b"\r", start)].decode(errors="replace")
                    raise Unknown(f"direct get: status {line}")
                frames.end = status
            else:
                i = rfind(SEQ, start, hend) + len(SEQ)  # the server's, appended last
                if i < start + len(SEQ):
                    raise Unknown("direct get: a reply without Nats-Sequence")
                seq = int(buf[i : index(b"\r", i)])
                msgs.append(RawMsg(seq, buf[hend:end], buf[start:hend]))
            pos = end + 2
            continue
        eol = find(b"\r\n", pos)
        if eol < 0:
            return pos
        if buf.startswith(b"HMSG ", pos):
            raise Unknown(f"direct get: a malformed frame {buf[pos : min(eol, pos + 60)]!r}")
        if buf.startswith(b"PING", pos):
            frames.pings += 1
        elif not (buf.startswith(b"PONG", pos) or buf.startswith(b"+OK", pos)):
            if buf.startswith(b"-ERR", pos):
                error = buf[pos + 5 : eol].decode(errors="replace")
                raise Unknown(f"direct get: server error {error}")
            raise Unknown(f"direct get: unexpected frame {buf[pos : min(eol, pos + 40)]!r}")
        pos = eol + 2
    return pos


class RawDirectGet:
    """Batched direct gets over one raw connection to one node (see the module docstring)."""

    def __init__(self, url: str, name: str = "nats-chaos-reads", timeout: float = 5.0) -> None:
        parts = urlsplit(url if "://" in url else f"nats://{url}")
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 4222
        self.name = name
        self.timeout = timeout  # for connecting only; a batch is bounded by its caller
        self.inbox = f"_INBOX.{secrets.token_hex(11)}".encode()
        self._io: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._rest = b""  # bytes after the last batch's end (a server PING), parsed next time
        self._used = 0.0  # when the last batch ended (monotonic)
        self._lock = asyncio.Lock()

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(self.timeout):
            reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                line = await reader.readline()
                if not line.startswith(b"INFO "):
                    raise Unknown(f"direct get: {self.host}:{self.port} sent {line[:40]!r}")
                hello = json.dumps({**CONNECT, "name": self.name}).encode()
                writer.write(b"CONNECT %s\r\nPING\r\nSUB %s 1\r\n" % (hello, self.inbox))
                while not (line := await reader.readline()).startswith(b"PONG"):
                    if not line or line.startswith(b"-ERR"):
                        raise Unknown(f"direct get: connect refused: {line.strip()!r}")
            except BaseException:
                writer.close()
                raise
        return reader, writer

    async def batch(self, stream: str, seq: int, batch: int) -> list[RawMsg] | None:
        """Up to ``batch`` messages from ``seq`` on; ``[]`` at the end, None: nothing there.

        Unbounded by itself: the caller bounds it (``asyncio.timeout``), and a
        cancellation ends it at once, closing the connection.
        """
        async with self._lock:  # one batch at a time: replies share the inbox
            now = time.monotonic()
            if self._io is not None and now - self._used > IDLE:
                self._drop()  # unanswered server PINGs may have made it stale: start afresh
            if self._io is None:
                self._io = await self._connect()
            reader, writer = self._io
            ask = json.dumps({"seq": seq, "batch": batch}).encode()
            subject = f"$JS.API.DIRECT.GET.{stream}".encode()
            frames = Frames()
            try:
                writer.write(b"PUB %s %s %d\r\n%s\r\n" % (subject, self.inbox, len(ask), ask))
                buf, self._rest = self._rest, b""
                pos = parse(buf, 0, frames)
                while frames.end is None:
                    chunk = await reader.read(CHUNK)
                    if not chunk:
                        raise ConnectionError(f"{self.host}:{self.port} closed the connection")
                    buf = buf[pos:] + chunk if pos < len(buf) else chunk
                    pos = parse(buf, 0, frames)
                    if frames.pings:
                        writer.write(b"PONG\r\n" * frames.pings)
                        frames.pings = 0
                self._rest = buf[pos:]
                self._used = time.monotonic()
            except BaseException:
                self._drop()
                raise
        if frames.end == "404":
            return frames.msgs or None
        return frames.msgs

    def _drop(self) -> None:
        self._rest = b""
        if self._io is not None:
            with contextlib.suppress(Exception):
                self._io[1].close()
            self._io = None

    async def close(self) -> None:
        """Close the connection (never raises)."""
        io, self._io = self._io, None
        if io is not None:
            with contextlib.suppress(Exception):
                io[1].close()
                await asyncio.wait_for(io[1].wait_closed(), 2)
