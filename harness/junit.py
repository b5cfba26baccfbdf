"""JUnit XML for a suite: one ``<testcase>`` per run, so CI shows a red test per mismatch.

In: the suite's name, its summary rows (``harness.suite.row``: ``case``,
``verdict``, ``matched``, ``why``, ``wall_s``, ``report``, optional
``error_code``) and its start time. Out: a file in the common JUnit schema
(``testsuites`` > ``testsuite`` > ``testcase``), written with
``xml.etree``. A mismatch is a ``<failure>`` whose message is the verdict
line and why it did not match; a run that could not happen is an ``<error>``.
"""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from checkers import files


def build(name: str, rows: list[dict[str, Any]], started: float) -> ET.ElementTree:
    """The JUnit tree of ``rows`` (classname: the suite name; name: ``scenario[variant]#k``)."""
    failures = sum(1 for r in rows if not r["matched"] and not r.get("error_code"))
    errors = sum(1 for r in rows if r.get("error_code"))
    total = f"{sum(float(r['wall_s']) for r in rows):.1f}"
    counts = {"tests": str(len(rows)), "failures": str(failures), "errors": str(errors)}
    root = ET.Element("testsuites", {"name": name, **counts, "time": total})
    suite = ET.SubElement(
        root,
        "testsuite",
        {
            "name": name,
            **counts,
            "skipped": "0",
            "time": total,
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(started)),
        },
    )
    for r in rows:
        case = ET.SubElement(
            suite, "testcase", {"classname": name, "name": r["case"], "time": f"{r['wall_s']:.1f}"}
        )
        if r.get("error_code"):
            error = ET.SubElement(case, "error", {"message": r["verdict"], "type": "harness"})
            error.text = r["why"]
        elif not r["matched"]:
            message = f"{r['verdict']} — {r['why']}"
            detail = f"expected: {r['expected']}\nanomalies: {', '.join(r['anomalies']) or '-'}"
            ET.SubElement(case, "failure", {"message": message, "type": "mismatch"}).text = detail
        if r.get("report"):
            ET.SubElement(case, "system-out").text = f"report: {r['report']}"
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(path: Path, name: str, rows: list[dict[str, Any]], started: float) -> None:
    """Write the JUnit XML of ``rows`` to ``path`` (atomically: whole or not at all)."""
    tree = build(name, rows, started)
    files.write_with(path, lambda fh: tree.write(fh, encoding="utf-8", xml_declaration=True), True)
