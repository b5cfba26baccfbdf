"""What the checkers' planted replica-anomaly tests share: the four-node case's recovery
record and the summary every replica-reading checker shows for it.

The case: n1 and n2 read, n3 left behind by the recovery wait (stalled), n4's read
says the stream is gone there (stream lost).
"""

from __future__ import annotations

from typing import Any


def recovery_record(last: dict[str, int], bound: float) -> dict[str, Any]:
    """The runner's record of a recovery wait that reached ``bound`` with these last seqs."""
    views = {n: {"present": True, "messages": s, "first_seq": 1, "last_seq": s}
             for n, s in last.items()}  # fmt: skip
    value = {"settle": "recovery", "converged": False, "seconds": bound, "nudges": 0}
    return value | {"nodes": views, "bound": bound}


def assert_stalled_and_stream_lost_shown(r: dict[str, Any], behind: int, bound: str) -> None:
    """n3 stalled ``behind`` stream sequences at the ``bound`` recovery bound, n4 stream lost:
    in the headline, the node rows and the counts."""
    headline = f"STREAM LOST on n4; STALLED n3 ({behind} stream sequence"
    headline += f"{'' if behind == 1 else 's'} behind at the {bound} recovery bound)"
    assert headline in r["summary"]["headline"]
    rows = {row["node"]: row["status"] for row in r["summary"]["nodes"]}
    assert rows == {"n1": "read", "n2": "read", "n3": "stalled", "n4": "stream lost"}
    named = {c["name"]: c["value"] for c in r["summary"]["counts"]}
    assert (named["stream lost"], named["stalled"]) == (1, 1)
