"""The headline: one function reads the verdict line, counts and row figures of a result."""

from __future__ import annotations

from typing import Any

import pytest

from checkers.compose import merge
from checkers.queue import summarize
from checkers.verdict import headline, verdict_line


def queue(valid: Any, **counts: Any) -> dict[str, Any]:
    q = {"valid": valid, **counts}
    return q | {"summary": summarize(q)}


def composed(**checkers: dict[str, Any]) -> dict[str, Any]:
    return merge(checkers, headline="queue" if "queue" in checkers else None)


WELLFORMED = {"valid": True, "summary": {"headline": "the history is well-formed (9 ops)"}}
NOT_WELL_FORMED = "the history is not well-formed: invoke without a completion ×1 (line 5)"
MALFORMED = {"valid": "unknown", "summary": {"headline": NOT_WELL_FORMED}}


@pytest.mark.parametrize(
    ("result", "line"),
    [
        (
            composed(wellformed=WELLFORMED, queue=queue(True, acknowledged_count=7195)),
            "VALID: no anomalies in 7,195 acknowledged writes",
        ),
        (
            composed(queue=queue(True, acknowledged_count=10, unread_nodes=["n3"])),
            "VALID: no anomalies in 10 acknowledged writes (not read: n3)",
        ),
        (
            composed(
                queue=queue(
                    False,
                    acknowledged_count=5432,
                    lost_count=12,
                    unexpected_count=3,
                    duplicated_count=1,
                    failed_but_read_count=2,
                    divergence={"count": 4},
                    anomalies=["lost"],
                )
            ),
            "INVALID: LOST 12 of 5,432 acknowledged writes (0.22%); 3 unexpected; 1 duplicated; "
            "2 failed publishes read back; 4 divergent between replicas",
        ),
        (  # the queue is fine, the server panicked: the anomaly names speak
            composed(
                queue=queue(True, acknowledged_count=5),
                logs={"valid": False, "anomalies": ["panic"]},
            ),
            "INVALID: panic",
        ),
        (
            composed(queue=queue("unknown", unread_nodes=["n1", "n2", "n3"])),
            "UNKNOWN: unread nodes: n1, n2, n3",
        ),
        (
            composed(wellformed=MALFORMED, queue=queue(True, acknowledged_count=5)),
            f"UNKNOWN: {NOT_WELL_FORMED}",
        ),
        (
            composed(queue={"valid": "unknown", "error": "checker queue raised KeyError: 'x'"}),
            "UNKNOWN: checker queue raised KeyError: 'x'",
        ),
        (
            composed(stats={"valid": "unknown"}),
            "UNKNOWN: the history does not decide",
        ),
        (
            {"valid": "unknown", "checkers": {}, "error": "cluster did not form"},
            "UNKNOWN: cluster did not form (run failed: cluster did not form)",
        ),
        (
            composed(queue=queue(True, acknowledged_count=1)) | {"interrupted": "SIGINT"},
            "VALID: no anomalies in 1 acknowledged writes (interrupted by SIGINT)",
        ),
    ],
)
def test_verdict_lines(result: dict[str, Any], line: str) -> None:
    assert verdict_line(result) == line


def test_the_headline_carries_the_checkers_counts_and_row() -> None:
    result = composed(queue=queue(False, acknowledged_count=1000, lost_count=7, anomalies=["lost"]))
    h = headline(result)
    assert (h.status, h.label, h.checker) == ("invalid", "INVALID", "queue")
    assert h.row == {"acknowledged": 1000, "lost": 7, "lost_pct": 0.7}
    assert [(c["name"], c["value"], c["bad"]) for c in h.counts] == [
        ("acknowledged", 1000, False),
        ("lost", 7, True),
    ]
    assert h.rate == {"name": "lost_pct", "label": "lost acknowledged writes (%)"}


def test_a_new_checker_brings_its_own_headline() -> None:
    """Nothing in the verdict knows the queue: any checker's summary block will do."""
    kv = {
        "valid": False,
        "anomalies": ["stale-read"],
        "summary": {
            "headline": "3 stale reads of 40 keys",
            "counts": [{"name": "stale", "value": 3, "bad": True}],
            "row": {"keys": 40, "stale": 3},
        },
    }
    result = merge({"kv": kv})  # no headline named: the first result with a summary speaks
    h = headline(result)
    assert h.line == "INVALID: 3 stale reads of 40 keys"
    assert h.row == {"keys": 40, "stale": 3}


def test_an_old_result_without_summary_still_has_a_line() -> None:
    old = {"valid": True, "checkers": {"queue": {"valid": True, "acknowledged_count": 5}}}
    assert verdict_line(old) == "VALID: no anomalies"
    assert headline(old).counts == []
