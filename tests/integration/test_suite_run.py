"""A real two-run suite: a matrix with one matching and one deliberately mismatching expectation."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from chaosrun import ROOT, assert_nothing_left, results_json
from folders import the_folder

pytestmark = pytest.mark.integration

# faults=none expects `lost` on a run without faults: a "fix" the suite must report (exit 1).
SUITE = f"""
name: it
scenarios:
  - file: {ROOT / "scenarios" / "quick.yaml"}
    set: {{time_limit: 8, schedule: {{quiet: 2, interval: 8, duration: 3}}}}
    matrix:
      faults:
        kill: [{{kind: kill, targets: one}}]
        none: []
    expect_by:
      faults=kill: {{valid: true}}
      faults=none: {{anomalies: [lost]}}
"""


def test_suite_reports_match_and_mismatch(nats_chaos, tmp_path: Path) -> None:
    suite_file = tmp_path / "it.yaml"
    suite_file.write_text(SUITE)
    junit_file = tmp_path / "ci" / "junit.xml"
    proc = nats_chaos(
        "suite", str(suite_file), "--junit", str(junit_file),
        "--results-dir", str(tmp_path / "results"),
    )  # fmt: skip
    out, err = proc.communicate(timeout=150)
    assert proc.returncode == 1, (out, err)
    assert "== [1/2] quick[faults=kill]#1" in err
    assert "expected: anomalies lost — NOT MATCHED: expected anomalies lost, but the run" in err

    folder = the_folder(tmp_path / "results" / "suites")
    assert f"suite: {folder}" in out
    summary = json.loads((folder / "summary.json").read_text())
    rows = summary["rows"]
    assert [r["case"] for r in rows] == ["quick[faults=kill]#1", "quick[faults=none]#1"]
    assert [r["matched"] for r in rows] == [True, False]
    assert [r["expected"] for r in rows] == ["valid", "anomalies lost"]
    assert all(r["counts"]["acknowledged"] > 0 and r["counts"]["lost"] == 0 for r in rows)
    assert all((folder / r["report"]).is_file() for r in rows)  # links relative to the folder
    md = (folder / "summary.md").read_text()
    assert md.startswith("## ❌ suite it: 1/2 matched their expectation")
    assert md in out  # the CLI prints the table

    root = ET.parse(junit_file).getroot()
    assert ET.tostring(root) == ET.tostring(ET.parse(folder / "junit.xml").getroot())
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "0")
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("it", "quick[faults=kill]#1"), ("it", "quick[faults=none]#1"),
    ]  # fmt: skip
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None
    acked = rows[1]["counts"]["acknowledged"]
    assert failure.get("message") == (
        f"VALID: no anomalies in {acked:,} acknowledged writes — "
        "expected anomalies lost, but the run was valid (fixed?)"
    )
    assert all(float(c.get("time", "0")) > 5 for c in cases)

    for r in rows:
        run_dir = (folder / r["report"]).parent
        assert_nothing_left(results_json(run_dir)["tag"], tmp_path / "state")
