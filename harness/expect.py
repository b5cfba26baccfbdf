"""Does a run's outcome match what its scenario says it should be (``expect:``)?

In: a result (``results.json`` as a dict: ``valid`` True/False/"unknown",
``anomalies``) and the scenario's :class:`~harness.scenario.ExpectSpec` or
None. Out: a :class:`Match` — matched or not, and one line saying why.

The rules (docs/contracts.md §5; README "Suites"):

- no expectation: matches when the run is valid (the behaviour before ``expect:``);
- ``valid: true`` (or ``anomalies: []``): valid, and no anomaly at all;
- ``anomalies: [a, b]``: invalid, and exactly these anomalies — every one
  appears and no other does (a new anomaly is a regression; a declared one
  that disappears is a fix someone should notice and record);
- ``valid: false`` alone: invalid, whichever anomalies;
- an ``unknown`` verdict (interrupted, unread nodes, a checker error) never
  matches: the run did not decide anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a result is matched without importing the scenario's models
    from harness.scenario import ExpectSpec


@dataclass(frozen=True)
class Match:
    """The outcome of matching: ``why`` is one line for a terminal or a JUnit failure."""

    matched: bool
    why: str


def describe(expect: ExpectSpec | None) -> str:
    """``valid``, ``anomalies lost`` or ``invalid (any anomalies)``: the expectation in words."""
    if expect is None or expect.valid is True or expect.anomalies == ():
        return "valid"
    if expect.anomalies:
        return "anomalies " + ", ".join(expect.anomalies)
    return "invalid (any anomalies)"


def outcome(result: dict[str, Any], expect: ExpectSpec | None) -> dict[str, Any]:
    """The ``expectation`` a result records for its views (docs/contracts.md §2):
    ``expected`` (:func:`describe`), ``declared`` (the scenario has an ``expect:``),
    ``matched`` and ``why`` (:func:`match`)."""
    m = match(result, expect)
    return {
        "expected": describe(expect),
        "declared": expect is not None,
        "matched": m.matched,
        "why": m.why,
    }


def match(result: dict[str, Any], expect: ExpectSpec | None) -> Match:
    """Match ``result`` against ``expect`` (None: the run must be valid)."""
    valid = result.get("valid")
    found = list(result.get("anomalies") or [])
    wanted = describe(expect)
    if valid is not True and valid is not False:
        return Match(False, f"expected {wanted}, but the verdict is unknown")
    if expect is None or expect.valid is True or expect.anomalies == ():
        if valid is True and not found:
            return Match(True, "valid, as expected")
        got = ", ".join(found) or "no anomaly named"
        return Match(False, f"expected valid, got invalid ({got})")
    if valid is True:
        return Match(False, f"expected {wanted}, but the run was valid (fixed?)")
    if expect.anomalies is None:  # valid: false, any anomalies
        return Match(True, f"invalid ({', '.join(found) or 'no anomaly named'}), as expected")
    missing = [a for a in expect.anomalies if a not in found]
    extra = [a for a in found if a not in expect.anomalies]
    if not missing and not extra:
        return Match(True, f"anomalies {', '.join(found)}, as expected")
    parts = []
    if extra:
        parts.append(f"unexpected {', '.join(extra)}")
    if missing:
        parts.append(f"{', '.join(missing)} did not appear")
    return Match(False, f"expected {wanted}: {'; '.join(parts)}")
