"""Packet delay and loss with the kernel's netem qdisc, and the check that it exists.

``probe()`` tries ``tc qdisc add dev lo root netem delay 1ms`` inside a
throwaway network namespace (``unshare --net``: it vanishes with the
process, so nothing is left to clean) and returns ``None`` when netem works,
else the reason. ``preflight(scenario)`` runs before anything of a run
exists: a scenario with a ``delay`` or ``loss`` fault (also inside a
composed fault) on a kernel without netem raises :class:`Unsupported`
(exit 3, "unsupported on this kernel: netem (…)") — a run never goes ahead
silently without a fault it asked for.

Where netem exists, ``delay``/``loss`` put a netem root qdisc on ``eth0`` in
each target's namespace (everything the node sends: to peers and to
clients) and delete it when the window ends.
"""

from __future__ import annotations

import functools
import platform
from typing import Any

from harness.errors import Unsupported
from harness.faults.base import FaultContext
from harness.faults.targets import resolve
from harness.net.netns import run
from harness.scenario import DelaySpec, LossSpec, Scenario

NETEM_KINDS = ("delay", "loss")


@functools.lru_cache(maxsize=1)
def probe() -> str | None:
    """``None`` if netem can be added to an interface here, else why not (one short phrase)."""
    cmd = ["unshare", "--net", "sh", "-c", "tc qdisc add dev lo root netem delay 1ms"]
    proc = run(cmd, check=False, timeout=10)
    if proc.returncode == 0:
        return None
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    why = lines[-1].removeprefix("Error: ").rstrip(".") if lines else f"exit {proc.returncode}"
    return f"tc: {why}; kernel {platform.release()}"


def netem_kinds(scenario: Scenario) -> list[str]:
    """The netem fault kinds a scenario uses, composed steps included."""
    kinds = []
    for spec in scenario.faults:
        for s in getattr(spec, "steps", None) or [spec]:
            if s.kind in NETEM_KINDS and s.kind not in kinds:
                kinds.append(s.kind)
    return kinds


def preflight(scenario: Scenario) -> None:
    """Raise Unsupported if the scenario needs netem and this kernel has none."""
    kinds = netem_kinds(scenario)
    if not kinds:
        return
    why = probe()
    if why is not None:
        raise Unsupported(
            f"unsupported on this kernel: netem ({why}; needed by {', '.join(kinds)})"
        )


class _NetemFault:
    kind = ""

    def __init__(self, spec: DelaySpec | LossSpec) -> None:
        self.spec = spec
        self.nodes: list[str] = []

    def netem_args(self) -> list[str]:
        raise NotImplementedError

    def start(self, ctx: FaultContext) -> dict[str, Any]:
        topo = getattr(ctx.cluster, "topo", None)
        if topo is None:
            raise Unsupported(f"{self.kind} needs a backend with per-node network namespaces")
        self.nodes = resolve(self.spec.targets, ctx.cluster.nodes, ctx.rng, ctx.stream_leader)
        args = self.netem_args()
        for node in self.nodes:
            qdisc = ["tc", "qdisc", "replace", "dev", "eth0", "root", "netem", *args]
            run([*topo.exec_prefix(node), *qdisc])
        return {"targets": self.spec.targets, "nodes": self.nodes, "netem": " ".join(args)}

    def stop(self, ctx: FaultContext) -> dict[str, Any]:
        topo = getattr(ctx.cluster, "topo", None)
        if topo is not None:
            for node in self.nodes:
                run([*topo.exec_prefix(node), "tc", "qdisc", "del", "dev", "eth0", "root"], False)
        return {"nodes": self.nodes}


class DelayFault(_NetemFault):
    """Delay what the targets send by ``delay`` ± ``jitter``."""

    kind = "delay"

    def netem_args(self) -> list[str]:
        spec = self.spec
        assert isinstance(spec, DelaySpec)
        args = ["delay", f"{spec.delay * 1000:g}ms"]
        return [*args, f"{spec.jitter * 1000:g}ms"] if spec.jitter else args


class LossFault(_NetemFault):
    """Drop ``percent`` of what the targets send."""

    kind = "loss"

    def netem_args(self) -> list[str]:
        spec = self.spec
        assert isinstance(spec, LossSpec)
        return ["loss", f"{spec.percent:g}%"]
