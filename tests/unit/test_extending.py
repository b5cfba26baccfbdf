"""A workload and a fault defined in a test module run through the real runner on the fake.

Registering them is one line each (plus the checker the workload names):
nothing in the harness is edited, which is what docs/extending.md promises.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fakerun import assert_well_formed, history, run, scenario
from toys import HICCUP, HiccupSpec, TallySpec, TallyWorkload, check_tally

from checkers import compose
from harness import faults, results, workloads


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(workloads.REGISTRY, "tally", TallyWorkload)
    monkeypatch.setitem(compose.REGISTRY, "tally", check_tally)
    monkeypatch.setitem(faults.REGISTRY, "hiccup", HICCUP)


# The scenario's unions are built at import: dumping a spec added later warns (and still dumps it).
@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_a_toy_workload_and_a_toy_fault_run_through_the_real_runner(
    tmp_path: Path, registered: None
) -> None:
    sc = scenario().model_copy(
        update={
            "workload": TallySpec(rate=300),
            "faults": (HiccupSpec(kind="hiccup", targets="all"),),
        }
    )
    out, made = run(tmp_path, sc)
    assert out.broken is None
    ops = history(out.run_dir)
    assert_well_formed(ops)
    acked = sum(1 for op in ops if op["f"] == "add" and op["type"] == "ok")
    counts = [op["value"] for op in ops if op["f"] == "count" and op["type"] == "ok"]
    assert acked > 0 and counts == [acked] * 3
    assert [op["value"].get("start") for op in ops if op["f"] == "hiccup"][:1] == ["hiccup"]
    assert out.result["valid"] is True
    assert out.result["checkers"]["tally"]["acknowledged"] == acked
    assert out.result["checkers"]["wellformed"]["valid"] is True
    assert results.verdict_line(out.result) == f"VALID: {acked:,} acknowledged adds kept"
    assert made[0].stopped
