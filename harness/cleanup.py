"""``nats-chaos clean``: undo what a killed run left behind, using its state file only.

A run is cleaned when its harness process is gone (or its tag is named
explicitly). For each: its Docker containers and network (the recorded
names and anything labelled ``nats-chaos.run=<tag>``) are removed first, so
no container still uses a mount; pids it started are killed if they still
run the executable recorded for them, its mounts are unmounted, its namespaces
(the recorded ones and any other ``<tag>-*``) are deleted, its work
directory is removed, and finally its state file (kept while a container or
network could not be removed, so a later ``clean`` finishes). Nothing is chosen by a
broad name pattern: every action is tied to the run's own tag.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.net import netns
from harness.runstate import RunState, all_states, harness_alive, kill_pid, pid_is, unmount

WORK_ROOT = Path("/var/tmp/nats-chaos")


def clean_state(state: RunState, dry_run: bool = False) -> list[str]:
    """Release everything ``state`` records; return one line per action."""
    lines: list[str] = []
    docker_left = False
    if state.containers or state.networks:
        docker_lines, docker_left = _clean_docker(state, dry_run)
        lines += docker_lines
    for pid, exe in state.pids.items():
        if pid_is(int(pid), exe):
            lines.append(f"{state.tag}: kill pid {pid} ({exe})")
            if not dry_run and not kill_pid(int(pid), exe):
                lines.append(f"{state.tag}: pid {pid} did not die")
    for mount in state.mounts:
        lines.append(f"{state.tag}: unmount {mount}")
        if not dry_run and not unmount(mount):
            lines.append(f"{state.tag}: {mount} is still mounted")
    for ns in sorted(set(state.namespaces) | set(netns.namespaces_of(state.tag))):
        if ns in netns.list_namespaces():
            lines.append(f"{state.tag}: delete namespace {ns}")
    if not dry_run:
        lines += [f"{state.tag}: {e}" for e in netns.destroy_tagged(state.tag, state.namespaces)]
    work = WORK_ROOT / state.tag
    if work.exists():
        lines.append(f"{state.tag}: remove {work}")
        if not dry_run:
            shutil.rmtree(work, ignore_errors=True)
    if not dry_run and not docker_left:
        state.remove()
    return lines


def _clean_docker(state: RunState, dry_run: bool) -> tuple[list[str], bool]:
    """Remove the run's containers and networks; (lines, whether something remains)."""
    from harness.backends.docker import remove_run_network, remove_run_resources
    from harness.errors import CannotRun
    from harness.images import engine_client

    named = [*state.containers, *state.networks]
    try:
        dc = engine_client(timeout=30)
    except CannotRun as e:
        return [f"{state.tag}: cannot remove {', '.join(named)}: {e}"], True
    lines = [f"{state.tag}: remove container {c}" for c in state.containers]
    lines += [f"{state.tag}: remove network {n}" for n in state.networks]
    if dry_run:
        return lines, True
    errors = remove_run_resources(dc, state) + remove_run_network(dc, state)
    return lines + [f"{state.tag}: {e}" for e in errors], bool(errors)


def clean_runs(tags: list[str], dry_run: bool = False) -> list[str]:
    """Clean every run named in ``tags`` and every run whose harness is gone."""
    lines: list[str] = []
    for state in all_states():
        if state.tag in tags or not harness_alive(state):
            lines += clean_state(state, dry_run) or [f"{state.tag}: state file removed"]
    return lines
