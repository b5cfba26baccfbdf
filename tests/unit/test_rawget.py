"""The raw direct-get decoder on hand-made protocol bytes (harness.rawget.parse)."""

from __future__ import annotations

import pytest

from harness.clients import Unknown
from harness.rawget import Frames, RawMsg, parse


def hmsg(headers: bytes, payload: bytes, subject: bytes = b"_INBOX.x") -> bytes:
    block = b"NATS/1.0" + headers + b"\r\n\r\n"
    size = len(block) + len(payload)
    return b"HMSG %s 1 %d %d\r\n%s%s\r\n" % (subject, len(block), size, block, payload)


def stored(seq: int, payload: bytes, own: bytes = b"") -> bytes:
    server = b"\r\nNats-Stream: S\r\nNats-Subject: S.q\r\nNats-Sequence: %d" % seq
    return hmsg(own + server + b"\r\nNats-Time-Stamp: 2026-01-01T00:00:00Z", payload)


EOB = hmsg(b" 204 EOB\r\nNats-Num-Pending: 0\r\nNats-Last-Sequence: 9", b"")
NOT_FOUND = hmsg(b" 404 Message Not Found", b"")


def decode(chunks: list[bytes]) -> Frames:
    """Feed ``chunks`` as reads would arrive, keeping the undecoded rest between them."""
    frames, buf, pos = Frames(), b"", 0
    for chunk in chunks:
        buf = buf[pos:] + chunk
        pos = parse(buf, 0, frames)
    assert pos == len(buf)
    return frames


def test_a_batch_decodes_to_its_messages_then_the_end() -> None:
    wire = stored(3, b"10") + stored(5, b"11\r\n12") + EOB
    frames = decode([wire])
    assert [(m.seq, m.data) for m in frames.msgs] == [(3, b"10"), (5, b"11\r\n12")]
    assert frames.end == "204"


def test_every_split_of_the_bytes_decodes_the_same() -> None:
    wire = stored(1, b"7") + b"PING\r\n" + stored(2, b"") + stored(4, b"x" * 50) + EOB
    for cut in range(1, len(wire)):
        frames = decode([wire[:cut], wire[cut:]])
        assert [(m.seq, m.data) for m in frames.msgs] == [(1, b"7"), (2, b""), (4, b"x" * 50)]
        assert (frames.end, frames.pings) == ("204", 1), cut


def test_decoding_stops_at_the_end_and_leaves_what_follows() -> None:
    wire = stored(1, b"7") + EOB + b"PING\r\n"
    frames = Frames()
    pos = parse(wire, 0, frames)
    assert wire[pos:] == b"PING\r\n"
    assert frames.pings == 0 and len(frames.msgs) == 1


def test_nothing_there_is_a_404() -> None:
    frames = decode([NOT_FOUND])
    assert frames.msgs == [] and frames.end == "404"


def test_the_servers_sequence_wins_over_a_stored_header_of_that_name() -> None:
    own = b"\r\nNats-Msg-Id: 42\r\nNats-Sequence: 999"
    (msg,) = decode([stored(8, b"1", own) + EOB]).msgs
    assert msg.seq == 8
    assert msg.subject == "S.q"
    assert msg.headers["Nats-Msg-Id"] == "42"
    assert msg.headers["Nats-Sequence"] == "8"


def test_an_unknown_status_or_server_error_is_unknown() -> None:
    with pytest.raises(Unknown, match="status 408 Request Timeout"):
        decode([hmsg(b" 408 Request Timeout", b"")])
    with pytest.raises(Unknown, match="server error 'Slow Consumer'"):
        decode([stored(1, b"1") + b"-ERR 'Slow Consumer'\r\n"])
    with pytest.raises(Unknown, match="unexpected frame"):
        decode([b"MSG _INBOX.x 1 1\r\na\r\n"])


def test_a_message_without_headers_reads_empty() -> None:
    msg = RawMsg(1, b"", b"NATS/1.0\r\n\r\n")
    assert msg.headers == {} and msg.subject == ""
