"""The run's headline: the one place a result's verdict line, counts and row figures are read.

In: a composed result (:func:`checkers.compose.check_history`, or a
``results.json`` with the harness's additions ``interrupted`` and
``error``). Its ``headline_checker`` names the checker whose ``summary``
block (shape in :mod:`checkers.compose`) speaks for the run; without one,
the first checker result with a ``summary`` does. Out: a :class:`Headline`
— status, label, the sentence after the label, and the counts, row
figures, node rows and notes every view shows — so the verdict line, the
report, ``summary.md``, ``show``, and the compare and suite rows can never
disagree, and a new workload's checker brings its own headline.

The line, by the composed ``valid``:

- True: ``VALID: <headline>`` plus ``(not read: n3)`` for unread nodes;
- False: ``INVALID: <headline>`` when the headline checker found the
  problem, followed by what every other invalid checker found (its
  headline, else its anomaly names: ``ORPHANED: the server deleted the
  stream as orphaned on n2`` from the logs);
- "unknown": ``UNKNOWN: <reason>``: the run's error, else the unread
  nodes, else the headline checker's error or headline, else the first
  other undecided checker's error or headline, else "the history does not
  decide".

Either way ``(interrupted by SIGINT)`` and ``(run failed: …)`` follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LABELS: dict[Any, str] = {True: "VALID", False: "INVALID"}
STATUS = {"VALID": "valid", "INVALID": "invalid", "UNKNOWN": "unknown"}


@dataclass(frozen=True)
class Headline:
    """What every view of a result shows first (see the module docstring)."""

    status: str  # valid | invalid | unknown
    label: str  # VALID | INVALID | UNKNOWN
    text: str  # the sentence after the label
    checker: str | None = None  # the headline checker's name
    counts: list[dict[str, Any]] = field(default_factory=list)  # name, value, bad, meaning
    row: dict[str, Any] = field(default_factory=dict)  # the figures a one-line row shows
    rate: dict[str, Any] | None = None  # {"name", "label"}: the row figure a comparison charts
    nodes: list[dict[str, Any]] = field(default_factory=list)  # node, status, note, counts
    notes: list[str] = field(default_factory=list)
    unread_nodes: list[str] = field(default_factory=list)
    over_time: dict[str, Any] | None = None  # histogram data for a plot over the run

    @property
    def line(self) -> str:
        """``VALID: no anomalies in 7,195 acknowledged writes`` and the like."""
        return f"{self.label}: {self.text}"


def headline_checker(result: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """(name, result) of the checker that speaks for ``result`` (None, {} when there is none)."""
    checkers = result.get("checkers") or {}
    name = result.get("headline_checker")
    if isinstance(name, str) and isinstance(checkers.get(name), dict):
        return name, checkers[name]
    for name, r in checkers.items():
        if isinstance(r, dict) and isinstance(r.get("summary"), dict):
            return name, r
    return None, {}


def _why(result: dict[str, Any]) -> str:
    why = f" (interrupted by {result['interrupted']})" if result.get("interrupted") else ""
    if result.get("error"):
        why += f" (run failed: {result['error']})"
    return why


def _other_reason(result: dict[str, Any], skip: str | None) -> str | None:
    """The error or headline of the first undecided checker other than ``skip``."""
    for name, r in (result.get("checkers") or {}).items():
        if name == skip or not isinstance(r, dict) or r.get("valid") != "unknown":
            continue
        said = r.get("error") or (r.get("summary") or {}).get("headline")
        if said:
            return str(said)
    return None


def _other_findings(result: dict[str, Any], skip: str | None, covered: set[str]) -> list[str]:
    """What each invalid checker but ``skip`` found that the ``covered`` anomalies do not
    already say: its headline, else its anomaly names."""
    out = []
    for name, r in (result.get("checkers") or {}).items():
        if name == skip or not isinstance(r, dict) or r.get("valid") is not False:
            continue
        if covered and set(r.get("anomalies") or []) <= covered:
            continue
        said = _summary(r).get("headline") or ", ".join(r.get("anomalies") or [])
        if said:
            out.append(str(said))
    return out


def _summary(h: dict[str, Any]) -> dict[str, Any]:
    summary = h.get("summary")
    return summary if isinstance(summary, dict) else {}


def _text(result: dict[str, Any], name: str | None, h: dict[str, Any]) -> str:
    summary = _summary(h)
    said = summary.get("headline")
    unread = list(summary.get("unread_nodes") or [])
    valid = result.get("valid")
    if valid is True:
        text = said or "no anomalies"
        return text + (f" (not read: {', '.join(unread)})" if unread else "")
    if valid is False:
        parts = [str(said)] if h.get("valid") is False and said else []
        covered = set(h.get("anomalies") or []) if parts else set()
        parts += [p for p in _other_findings(result, name, covered) if p not in parts]
        if not parts:  # no checker says more than its verdict: the anomaly names speak
            parts = [", ".join(result.get("anomalies") or [])]
        return "; ".join(p for p in parts if p) or "a checker found the history invalid"
    if result.get("error"):
        return str(h.get("error") or result["error"])
    if unread:
        return f"unread nodes: {', '.join(unread)}"
    if h.get("error"):
        return str(h["error"])
    if h.get("valid") == "unknown" and said:
        return str(said)
    return _other_reason(result, name) or "the history does not decide"


def headline(result: dict[str, Any]) -> Headline:
    """The :class:`Headline` of a composed result (see the module docstring)."""
    name, h = headline_checker(result)
    summary = _summary(h)
    label = LABELS.get(result.get("valid"), "UNKNOWN")
    return Headline(
        status=STATUS[label],
        label=label,
        text=_text(result, name, h) + _why(result),
        checker=name,
        counts=list(summary.get("counts") or []),
        row=dict(summary.get("row") or {}),
        rate=summary.get("rate"),
        nodes=list(summary.get("nodes") or []),
        notes=list(summary.get("notes") or []),
        unread_nodes=list(summary.get("unread_nodes") or []),
        over_time=summary.get("over_time"),
    )


def verdict_line(result: dict[str, Any]) -> str:
    """The one line ``run``, ``check`` and ``report`` print: ``headline(result).line``."""
    return headline(result).line
