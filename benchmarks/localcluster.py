"""The local cluster the throughput benchmarks run on (root needed).

In: a scenario (its nodes and stream), a nats-server version, and the
benchmark's async main, called as ``main(cluster, state, tmp)`` once the
cluster's processes run (``state``: the run state its pids are recorded
in, so ``nats-chaos clean`` can remove what a killed benchmark left;
``tmp``: a scratch directory). Out: whatever ``main`` printed; the cluster,
the state file and the scratch directory are released in every case.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from harness import servers
from harness.backends.local import LocalCluster
from harness.runstate import RunState, new_tag
from harness.scenario import Scenario

Main = Callable[[LocalCluster, RunState, Path], Coroutine[Any, Any, None]]


def run_on_local_cluster(scenario: Scenario, version: str, main: Main) -> None:
    """Start the cluster, run ``main`` on it, release everything."""
    state = RunState(new_tag())
    state.save()
    tmp = Path(tempfile.mkdtemp(prefix="nc-bench-"))
    cluster = LocalCluster(scenario, servers.resolve_binary(version), tmp / "nodes", state)
    try:
        cluster.start()
        asyncio.run(main(cluster, state, tmp))
    finally:
        cluster.stop()
        state.remove()
        shutil.rmtree(tmp, ignore_errors=True)
