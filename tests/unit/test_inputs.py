"""Inputs that used to hang, crash or mean the opposite are refused before anything starts.

Each case goes through the command line (click's CliRunner) and asserts the
exit code (2 bad input, 3 cannot run here), that stderr is the one line
expected, that the refusal took seconds at most and that no result folder
was written. The scenario cases are refused while the scenario loads, so no
cluster, binary or privilege is involved.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import fakerun
import pytest
from click.testing import CliRunner

from harness import dirs, yamlfile
from harness.cli import main
from harness.errors import ScenarioError
from harness.scenario import load_scenario, scenario_from_dict

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
QUICK = str(SCENARIOS / "quick.yaml")
BOMB = "".join(
    f"  {c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n"
    for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def refused(tmp_path: Path, args: list[str], code: int = 2, within: float = 5.0) -> str:
    """Run the CLI; assert one line on stderr, ``code``, the time bound, no results; the line."""
    results = tmp_path / "results"
    t0 = time.monotonic()
    res = CliRunner().invoke(main, [*args, "--results-dir", str(results)])
    took = time.monotonic() - t0
    assert res.exit_code == code, (res.exit_code, res.stderr, res.exception)
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("nats-chaos: "), res.stderr
    assert took < within, f"took {took:.1f}s"
    assert not results.exists()
    return res.stderr.strip()


def scenario_file(tmp_path: Path, data: bytes | str) -> Path:
    path = tmp_path / "s.yaml"
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# -- the scenario file itself -------------------------------------------------


def test_binary_garbage_is_not_utf8(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, b"name: x\n" + bytes(range(128, 256)) * 4)
    line = refused(tmp_path, ["run", str(path)])
    assert (
        line == f"nats-chaos: {path}: not UTF-8 text (byte 0x80 at offset 8), not a scenario file"
    )


def test_dev_zero_is_not_a_regular_file(tmp_path: Path) -> None:
    line = refused(tmp_path, ["run", "/dev/zero"])
    assert line == "nats-chaos: /dev/zero: not a regular file (a device?), not a scenario file"


def test_a_file_over_the_size_cap(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "name: big\n" + "# padding\n" * (yamlfile.MAX_BYTES // 10))
    line = refused(tmp_path, ["run", str(path)])
    assert line == f"nats-chaos: {path}: larger than 1 MiB, not a scenario file"


def test_yaml_nested_100k_deep(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "name: deep\nserver: {config: " + "[" * 100_000 + "]" * 100_000)
    line = refused(tmp_path, ["run", str(path)])
    assert line.startswith(f"nats-chaos: {path}:") and "nest" in line


def test_yaml_nested_past_the_depth_limit_but_within_libyaml(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "name: deep\nserver: {config: " + "{a: " * 70 + "1" + "}" * 71)
    line = refused(tmp_path, ["run", str(path)])
    assert line == f"nats-chaos: {path}: YAML nested deeper than 64 levels"


def test_alias_bomb_in_server_config(tmp_path: Path) -> None:
    text = "name: bomb\nserver:\n  config:\n    a: &a [x, x, x, x, x, x, x, x, x]\n"
    text += "".join("  " + line for line in BOMB.splitlines(keepends=True))
    path = scenario_file(tmp_path, text)
    line = refused(tmp_path, ["run", str(path)])
    assert line == (
        f"nats-chaos: {path}: YAML expands to more than 100,000 values "
        "(aliases repeating aliases: an alias bomb?)"
    )


def test_alias_bomb_in_a_set_value(tmp_path: Path) -> None:
    value = "{a: &a [x, x, x, x, x, x, x, x, x], " + ", ".join(
        f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    line = refused(tmp_path, ["run", QUICK, "--set", f"server.config={value}}}"])
    assert line.startswith("nats-chaos: --set server.config: YAML expands to more than 100,000")


def test_a_small_alias_is_still_fine(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "name: a\nx-common: &c {replicas: 3}\nstream: *c\n")
    with pytest.raises(ScenarioError, match="x-common: unknown field"):
        load_scenario(path)
    ok = scenario_file(tmp_path, "name: a\nstream: &c {replicas: 3}\n")
    assert load_scenario(ok).stream.replicas == 3


def test_an_integer_of_5000_digits(tmp_path: Path) -> None:
    path = scenario_file(tmp_path, "name: x\nseed: " + "9" * 5000 + "\n")
    line = refused(tmp_path, ["run", str(path)])
    assert line.startswith(f"nats-chaos: {path}: not a usable YAML value (Exceeds the limit")


# -- durations, sizes and settings that meant something else ---------------------


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        (
            "time_limit=.inf",
            "time_limit: infinity is longer than 24h; give a duration from 0 to 24h",
        ),
        ("time_limit=1000000000", "time_limit: 1e+09s is longer than 24h; give a duration from 0"),
        ("time_limit=0", "time_limit: 0s is shorter than 1s: the main phase would write nothing"),
        ("time_limit=.nan", "time_limit: not a number; give a duration from 0 to 24h"),
        ("recovery.cluster_up=99h", "recovery.cluster_up: 356400s is longer than 24h"),
        ("schedule.interval=-1", "schedule.interval: -1s is negative"),
        ("nodes=1", "(top level): nodes: 1 node cannot form a JetStream cluster (no meta"),
        ("nodes=2", "(top level): nodes: 2 nodes are too few for a replicated stream"),
        (
            "server.sync_interval=0",
            "server.sync_interval: 0 is not a positive interval (nats-server",
        ),
        ("server.sync_interval=0s", "server.sync_interval: '0s' is not a positive interval"),
        ("server.sync_interval=0.0001", "server.sync_interval: 0.0001 is not a positive interval"),
        ("server.sync_interval=.inf", "server.sync_interval: infinity is longer than 24h"),
        ("name=..", "name: '..' is not a folder name"),
        ("name=.hidden", "name: '.hidden' is not a folder name"),
        ("name=a/b", "name: 'a/b' is not a folder name"),
        ("name=" + "x" * 101, "name: String should have at most 100 characters"),
    ],
)
def test_out_of_bounds_settings(tmp_path: Path, override: str, expected: str) -> None:
    line = refused(tmp_path, ["run", QUICK, "--set", override])
    assert line.startswith(f"nats-chaos: {QUICK}: {expected}"), line


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ('{listen: "127.0.0.1:4222"}', "listen is set by nats-chaos (where each node listens"),
        ("{port: 4223}", "port is set by nats-chaos (the client port (4222)"),
        ("{PORT: 4223}", "PORT is set by nats-chaos (the client port"),
        ("{http_port: 8000}", "http_port is set by nats-chaos (the monitoring port (8222)"),
        ("{server_name: x}", "server_name is set by nats-chaos (the node names"),
        ("{cluster: {Routes: []}}", "cluster.Routes is set by nats-chaos (the routes between"),
        ("{cluster: {port: 7000}}", "cluster.port is set by nats-chaos (where each node listens"),
        ("{jetstream: false}", "jetstream must be a mapping of options: nats-chaos sets that"),
        ("{jetstream: {store_dir: /x}}", "jetstream.store_dir is set by nats-chaos (the store dir"),
        ("{jetstream: {sync_interval: 1s}}", "jetstream.sync_interval is set by nats-chaos"),
        ("{authorization: {user: a}}", "authorization is set by nats-chaos (that clients connect"),
        ("{accounts: {SYS: {}}}", "accounts.SYS is set by nats-chaos (the system account"),
    ],
)
def test_config_overrides_that_break_the_harness(
    tmp_path: Path, config: str, expected: str
) -> None:
    line = refused(tmp_path, ["run", QUICK, "--set", f"server.config={config}"])
    assert line.startswith(f"nats-chaos: {QUICK}: server.config: {expected}"), line
    assert line.endswith("; leave it out") or "must be a mapping" in line


def test_config_overrides_the_harness_does_not_own_are_kept() -> None:
    sc = load_scenario(QUICK, ["server.config={cluster: {name: other}, max_payload: 65536}"])
    assert sc.server.config == {"cluster": {"name": "other"}, "max_payload": 65536}


@pytest.mark.parametrize(
    ("value", "written"),
    [("0.5", "500ms"), ("2", "2s"), ('"10 s"', "10s"), ('"10"', "10s"), ("2m", "2m"),
     ("always", "always"), ("default", "default"), ("1ms", "1ms")],
)  # fmt: skip
def test_sync_interval_is_written_as_nats_server_reads_it(value: str, written: str) -> None:
    sc = load_scenario(QUICK, [f"server.sync_interval={value}"])
    assert sc.server.sync_interval == written


def test_two_nodes_run_an_r1_stream_written_out() -> None:
    sc = scenario_from_dict({"name": "r1", "nodes": 2, "stream": {"replicas": 1}}, "s")
    assert (sc.nodes, sc.stream.replicas) == (2, 1)
    with pytest.raises(ScenarioError, match="nodes: 2 nodes are too few"):
        scenario_from_dict({"name": "r1", "nodes": 2}, "s")


def test_time_limit_zero_never_prints_valid(tmp_path: Path) -> None:
    """It did: "VALID: no anomalies in 0 acknowledged writes", exit 0."""
    line = refused(tmp_path, ["run", QUICK, "--set", "time_limit=0"])
    assert "VALID" not in line and "shorter than 1s" in line


def test_name_dot_dot_never_writes_outside_the_results_dir(tmp_path: Path) -> None:
    refused(tmp_path, ["run", QUICK, "--set", "name=.."])
    assert list(tmp_path.iterdir()) == []


def test_a_server_older_than_the_oldest_supported_is_refused_with_the_minimum(
    tmp_path: Path,
) -> None:
    sc = fakerun.scenario(server={"version": "2.9.10"})
    with pytest.raises(Exception) as err:
        fakerun.run(tmp_path, sc)
    assert err.type.__name__ == "Unsupported" and err.value.exit_code == 3
    assert str(err.value).startswith(
        "nats-server 2.9.10 is older than 2.11.0, the oldest nats-chaos runs"
    )
    assert not (tmp_path / "results").exists()


# -- histories -----------------------------------------------------------------

INVOKE = '{"index":0,"time":1,"type":"invoke","process":0,"f":"publish","value":1,"node":"n1"}'
OK = '{"index":1,"time":2,"type":"ok","process":0,"f":"publish","value":1,"node":"n1","seq":1}'
READ = '{"index":2,"time":3,"type":"invoke","process":1,"f":"read","value":null,"node":"n1"}'


def publish(value: str) -> list[str]:
    return [
        f'{{"index":0,"time":1,"type":"invoke","process":0,"f":"publish","value":{value}}}',
        f'{{"index":1,"time":2,"type":"ok","process":0,"f":"publish","value":{value}}}',
    ]


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ([INVOKE.replace('"index":0', '"index":"a"')], "1: index 'a' is not a 64-bit integer"),
        ([INVOKE.replace('"time":1', '"time":"soon"')], "1: time 'soon' is not a 64-bit integer"),
        ([INVOKE.replace('"time":1', '"time":1.5')], "1: time 1.5 is not a 64-bit integer"),
        ([INVOKE.replace('"index":0', '"index":true')], "1: index True is not a 64-bit integer"),
        (
            [INVOKE.replace('"process":0', '"process":' + "9" * 19)],
            "1: process 9999999999999999999 is not a 64-bit integer",
        ),
        (publish('{"a":1}'), "1: publish value {'a': 1} is not a 64-bit integer"),
        ([INVOKE.replace('"node":"n1"', '"node":[]')], "1: node [] is not a string or null"),
        ([INVOKE.replace('"f":"publish"', '"f":null')], "1: f None is not a string"),
        ([INVOKE.replace('"f":"publish"', '"f":7')], "1: f 7 is not a string"),
        ([INVOKE[:-1] + ',"error":{"a":1}}'], "1: error {'a': 1} is not a string or null"),
        (publish("1" + "0" * 26), "1: publish value 1e+26 is not a 64-bit integer"),
        (publish("9223372036854775808"), "1: publish value 9223372036854775808 is not a 64-bit"),
        (
            [INVOKE, OK, READ, READ.replace("invoke", "ok").replace("null", "[[1,1],[2]]")],
            "4: the value of an ok read must be a list of [int, int] pairs, not [[1, 1], [2]]",
        ),
        (
            [INVOKE, OK, READ, READ.replace("invoke", "ok").replace("null", '{"a":1}')],
            "4: the value of an ok read must be a list of [int, int] pairs, not {'a': 1}",
        ),
    ],
)
def test_malformed_history_is_exit_2_naming_the_line(
    tmp_path: Path, lines: list[str], expected: str
) -> None:
    h = tmp_path / "h.jsonl"
    h.write_text("\n".join(lines) + "\n")
    res = CliRunner().invoke(main, ["check", str(h)])
    assert res.exit_code == 2, (res.stdout, res.stderr, res.exception)
    assert res.stderr.count("\n") == 1
    assert res.stderr.startswith(f"nats-chaos: {h}:{expected}"), res.stderr


def test_a_device_is_no_history() -> None:
    """``check /dev/zero`` read as an empty history: "UNKNOWN: no node was read"."""
    res = CliRunner().invoke(main, ["check", "/dev/zero"])
    assert res.exit_code == 2
    assert res.stderr == "nats-chaos: /dev/zero: not a regular file (a device?), not a history\n"


def test_a_well_formed_history_still_checks(tmp_path: Path) -> None:
    h = tmp_path / "h.jsonl"
    read_ok = (
        READ.replace("invoke", "ok").replace("null", "[[1,1]]").replace('"index":2', '"index":3')
    )
    h.write_text("\n".join([INVOKE, OK, READ, read_ok]) + "\n")
    res = CliRunner().invoke(main, ["check", str(h)])
    assert res.exit_code == 0, res.stderr
    assert res.stdout.startswith("VALID")


# -- result folders: never shared ------------------------------------------------


def test_stamped_dirs_started_in_the_same_second_never_collide(tmp_path: Path) -> None:
    """``new_run_dir`` checked, then created: two harnesses could both pick one name."""
    barrier = threading.Barrier(16)
    made: list[Path] = []
    errors: list[BaseException] = []

    def make() -> None:
        barrier.wait()
        try:
            made.append(dirs.stamped_dir(tmp_path / "compare", "20261201T120000"))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=make) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(made)) == 16
    names = sorted(p.name for p in made)
    assert names[0] == "20261201T120000" and "20261201T120000-15" in names


def test_two_suites_in_the_same_second_get_two_folders(tmp_path: Path) -> None:
    """``suites/<stamp>`` was made with exist_ok=False: the second suite died (FileExistsError)."""
    from harness import suite as st

    fake, _ = fakerun.fake.backend()
    sc_file = tmp_path / "s.yaml"
    sc_file.write_text("name: s\ntime_limit: 2\nfaults: []\nschedule: {quiet: 0}\n")
    _, cases = st.load_cases([str(sc_file)], [])

    def run_one(sc, runs_dir):  # type: ignore[no-untyped-def]
        from harness.runner import RunOptions, execute

        return execute(sc, RunOptions(results_dir=runs_dir, echo=lambda m: None, backend=fake))

    outs = [st.run_suite("s", cases, 1, tmp_path / "r", run_one, echo=lambda m: None).out
            for _ in range(2)]  # fmt: skip
    assert outs[0] != outs[1] and all(o.parent == tmp_path / "r" / "suites" for o in outs)
