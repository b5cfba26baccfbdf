"""Fuzzing the scenario and history loaders: a result, or one line and exit 2, in bounded time.

hypothesis generates random bytes, random YAML-ish text, random structures
built from the scenario's own field names, random ``--set`` overrides and
random JSON-lines histories. Whatever comes in, the loaders must give a
scenario (or a check result) or a :class:`~harness.errors.BadInput` whose
message is one line (exit 2) — never another exception, never a hang, never
a blow-up in memory. The profile is fixed and derandomized, so CI runs the
same examples every time; the whole file stays well under 60 s.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from checkers.schema import CORE_FIELDS, OP_TYPES
from harness.cli import main
from harness.errors import BadInput
from harness.faults import REGISTRY as FAULTS
from harness.faults import schedule
from harness.scenario import Scenario, load_scenario
from harness.spec import _Model
from harness.workloads import REGISTRY as WORKLOADS

EXAMPLE_SECONDS = 5.0  # one input, loaded (and planned), on a busy 2-core machine
GROWTH_MIB = 256  # peak RSS may grow this much over a whole test

settings.register_profile(
    "fuzz",
    derandomize=True,  # the same examples on every run: CI is deterministic
    database=None,
    deadline=None,  # timed by bounded() instead, with a limit a loaded machine meets
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    print_blob=False,
)
FUZZ = settings.get_profile("fuzz")


def _field_names() -> list[str]:
    names: set[str] = set()
    todo = [_Model]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        names |= set(getattr(cls, "model_fields", {}))
    return sorted(names)


FIELDS = _field_names()
WORDS = [*FAULTS, *WORKLOADS, "always", "default", "one", "all", "leader", "file", "memory"]
DURATIONS = ["0", "0s", "10 s", "1e9", ".inf", "-1", "2m", "500ms", "99999h", "1.5s", "nan"]


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Bounded:
    """Time each example and watch the peak RSS of the whole test."""

    def __init__(self) -> None:
        self.rss0 = _rss_mib()

    def __call__(self, fn: Any, *args: Any) -> Any:
        t0 = time.monotonic()
        try:
            return fn(*args)
        finally:
            took = time.monotonic() - t0
            assert took < EXAMPLE_SECONDS, f"{took:.1f}s for one input"
            assert _rss_mib() - self.rss0 < GROWTH_MIB, "memory grew past the bound"


@pytest.fixture(scope="module")
def bounded() -> Bounded:
    return Bounded()


def one_line_bad_input(fn: Any, *args: Any) -> Any:
    """``fn(*args)``, or None after a BadInput (exit 2) whose message is one line."""
    try:
        return fn(*args)
    except BadInput as e:
        assert e.exit_code == 2
        msg = str(e)
        assert msg and "\n" not in msg, msg
        return None


def load_and_plan(path: Path, overrides: list[str] | None = None) -> Scenario | None:
    sc = one_line_bad_input(load_scenario, path, overrides)
    if sc is not None:
        assert isinstance(sc, Scenario)
        one_line_bad_input(schedule.plan, sc)
        yaml.safe_load(sc.to_yaml())  # what a run writes to scenario.yaml
    return sc


scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(WORDS + DURATIONS)
    | st.text(max_size=12)
)
keys = st.sampled_from(FIELDS) | st.text(max_size=8)
structures = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
scenarios = st.dictionaries(keys, structures, max_size=6).map(lambda d: {"name": "fz", **d})
yamlish = st.text(alphabet="{}[]:,-&*!|>'\"#\n\t ?%@`abcxyz019.", max_size=300)


@FUZZ
@given(data=st.binary(max_size=2048))
def test_random_bytes_as_a_scenario(tmp_path: Path, bounded: Bounded, data: bytes) -> None:
    path = tmp_path / "s.yaml"
    path.write_bytes(data)
    bounded(load_and_plan, path)


@FUZZ
@given(text=yamlish)
def test_random_yaml_ish_text_as_a_scenario(tmp_path: Path, bounded: Bounded, text: str) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("name: fz\n" + text)
    bounded(load_and_plan, path)


@settings(FUZZ, max_examples=150)
@given(raw=scenarios)
def test_random_structure_as_a_scenario(
    tmp_path: Path, bounded: Bounded, raw: dict[str, Any]
) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(raw))
    bounded(load_and_plan, path)


def _paths(v: Any, at: str = "") -> list[str]:
    """Every dotted path into the mappings of ``v`` (``server``, ``server.config``, …)."""
    if not isinstance(v, dict):
        return []
    out = []
    for k, x in v.items():
        p = f"{at}.{k}" if at else str(k)
        out += [p, *_paths(x, p)]
    return out


SCENARIO_FILES = sorted((Path(__file__).resolve().parents[2] / "scenarios").glob("*.yaml"))
REAL_PATHS = sorted({p for f in SCENARIO_FILES for p in _paths(yaml.safe_load(f.read_text()))})
dotted = st.sampled_from(REAL_PATHS) | st.lists(
    st.sampled_from(FIELDS), min_size=1, max_size=3
).map(".".join)
override_values = (
    st.sampled_from(WORDS + DURATIONS) | yamlish | structures.map(lambda v: json.dumps(v))
)
overrides = st.lists(
    st.tuples(dotted | st.text(max_size=10), override_values).map(lambda kv: f"{kv[0]}={kv[1]}")
    | st.text(max_size=20),
    max_size=4,
)


@settings(FUZZ, max_examples=200)
@given(file=st.sampled_from(SCENARIO_FILES), sets=overrides)
def test_random_overrides_of_the_shipped_scenarios(
    bounded: Bounded, file: Path, sets: list[str]
) -> None:
    bounded(load_and_plan, file, sets)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=12,
)
pairs = st.lists(st.lists(st.integers(-5, 2**64), min_size=1, max_size=3), max_size=4)
field_values = {
    "index": st.integers(-1, 2**65) | json_values,
    "time": st.integers(-1, 2**65) | json_values,
    "type": st.sampled_from([*OP_TYPES, "nope"]) | json_values,
    "process": st.integers(-1, 2**65) | st.just("nemesis") | json_values,
    "f": st.sampled_from(["publish", "read", "incr", "kv-put", "cas", "kill", "fetch"]),
    "value": json_values | pairs,
    "node": st.sampled_from(["n1", "n2", "n3"]) | json_values,
    "error": st.none() | st.text(max_size=6) | json_values,
}
ops = st.fixed_dictionaries({}, optional={k: field_values[k] for k in CORE_FIELDS})
lines = st.lists(
    ops.map(lambda op: json.dumps(op, allow_nan=False))
    | st.text(alphabet='{}[]",:0123456789.-truefalsn \\', max_size=40),
    max_size=12,
)


@settings(FUZZ, max_examples=200)
@given(body=lines, workload=st.sampled_from(sorted(WORKLOADS)), cut=st.booleans())
def test_random_json_lines_as_a_history(
    tmp_path: Path, bounded: Bounded, body: list[str], workload: str, cut: bool
) -> None:
    h = tmp_path / "h.jsonl"
    text = "\n".join(body)
    h.write_text(text if cut else text + "\n")
    res = bounded(CliRunner().invoke, main, ["check", str(h), "--workload", workload])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 1, 2), (res.exit_code, res.stderr)
    if res.exit_code == 2:
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("nats-chaos: "), res.stderr
    else:
        assert res.stdout.split(":")[0] in ("VALID", "INVALID", "UNKNOWN"), res.stdout


def _queue_history(n: int) -> list[dict[str, Any]]:
    """A well-formed queue history: n acknowledged publishes, then one read on each node."""
    out: list[dict[str, Any]] = []
    for v in range(n):
        out.append({"type": "invoke", "process": v % 3, "f": "publish", "value": v})
        out.append({"type": "ok", "process": v % 3, "f": "publish", "value": v, "seq": v + 1})
    for i, node in enumerate(["n1", "n2", "n3"]):
        out.append({"type": "invoke", "process": 10 + i, "f": "read", "node": node})
        read = [[v + 1, v] for v in range(n)]
        out.append({"type": "ok", "process": 10 + i, "f": "read", "node": node, "value": read})
    for i, op in enumerate(out):
        op.update(index=i, time=1000 * i)
    return out


@settings(FUZZ, max_examples=100)
@given(
    n=st.integers(1, 6),
    edits=st.lists(
        st.tuples(st.integers(0, 100), st.sampled_from([*CORE_FIELDS, "seq"]), json_values | pairs),
        min_size=1,
        max_size=3,
    ),
)
def test_a_queue_history_with_random_fields_changed(
    tmp_path: Path, bounded: Bounded, n: int, edits: list[tuple[int, str, Any]]
) -> None:
    history = _queue_history(n)
    for at, key, value in edits:
        history[at % len(history)][key] = value
    h = tmp_path / "h.jsonl"
    h.write_text("".join(json.dumps(op) + "\n" for op in history))
    res = bounded(CliRunner().invoke, main, ["check", str(h)])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code in (0, 1, 2), (res.exit_code, res.stderr)
    if res.exit_code == 2:
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("nats-chaos: "), res.stderr
    else:
        assert res.stdout.split(":")[0] in ("VALID", "INVALID", "UNKNOWN"), res.stdout
