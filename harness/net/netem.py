"""The kernel's netem qdisc: is it there, and the ``tc`` argv that adds and removes it.

``probe()`` tries ``tc qdisc add dev lo root netem delay 1ms`` inside a
throwaway network namespace (``unshare --net``: it vanishes with the
process, so nothing is left to clean) and returns ``None`` when netem works,
else the reason as one short phrase. The backends turn that into their
``netem`` ability (:func:`harness.backends.host.host_lacks`); the delay and
loss faults (:mod:`harness.faults.netem`) run :func:`add` / :func:`delete`
through a node's Remote. Every node's interface is ``eth0`` (both backends).
"""

from __future__ import annotations

import functools
import platform

from harness.net.netns import run

IFACE = "eth0"


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


def add(args: list[str]) -> list[str]:
    """The argv that puts (or replaces) a netem root qdisc with ``args`` on the node's eth0."""
    return ["tc", "qdisc", "replace", "dev", IFACE, "root", "netem", *args]


def delete() -> list[str]:
    """The argv that removes the node's root qdisc again."""
    return ["tc", "qdisc", "del", "dev", IFACE, "root"]
