"""A real lossy run whose scenario expects the loss: the report says "as expected".

A short coordinated power loss of both nodes of a 2-node cluster with an R1
stream under ``sync_interval: 10s``: the first fsync happens before the fault,
so the stream survives and only the writes since the last fsync are lost, as
``anomalies: [lost]`` declares. (With R3 the replicas also come back holding
different prefixes and one sometimes stays behind past the recovery bound —
``stalled`` on top of ``lost`` — so the outcome would not be one to declare.) The
run exits 0; its report.html, screenshotted in headless Chromium, carries the
banner "INVALID — as expected: lost", and the fault timeline names each node's role.
"""

from __future__ import annotations

import re
from pathlib import Path

import headless
import pytest
from chaosrun import assert_nothing_left, results_json, run_dir_of
from PIL import Image

pytestmark = pytest.mark.integration

LOSSY = [
    "--set", "time_limit=20", "--set", "schedule.quiet=14",
    "--set", "server.sync_interval=10s", "--set", "expect={anomalies: [lost]}",
    "--set", "nodes=2", "--set", "stream.replicas=1",
]  # fmt: skip


def test_an_expected_loss_reads_as_expected_on_the_report(nats_chaos, tmp_path: Path) -> None:
    proc = nats_chaos("run", "scenarios/power-loss-coordinated.yaml", *LOSSY)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err  # the loss was declared: exit 0
    assert "expected: anomalies lost — matched" in out
    run_dir = run_dir_of(tmp_path, "power-loss-coordinated")
    result = results_json(run_dir)
    assert result["anomalies"] == ["lost"]
    assert result["expectation"]["matched"] is True

    shot = tmp_path / "report.png"
    page = headless.load((run_dir / "report.html").as_uri(), screenshot=shot, size=(1200, 900))
    assert page.console == []
    banner = page.dom[page.dom.index("<header") : page.dom.index("</header>")]
    label = re.sub(r"<[^>]+>", "", re.search(r'<div class="label"[^>]*>.*?</div>', banner)[0])
    assert label == "INVALID — as expected: lost"
    assert 'data-matched="yes"' in banner
    with Image.open(shot) as img:  # the banner is drawn: its band is the invalid red
        r, g, b = img.convert("RGB").getpixel((12, 12))
    assert (r, g, b) == (0xB3, 0x26, 0x1E)
    faults = page.dom[page.dom.index('<section id="faults">') :]
    assert re.search(r"n\d \((stream|meta|stream \+ meta) leader\)", faults)
    assert "The main phase began at" in faults

    index = (tmp_path / "results" / "index.html").read_text()  # the run rewrote the index
    assert "power-loss-coordinated" in index and 'data-matched="yes"' in index
    assert_nothing_left(result["tag"], tmp_path / "state")
