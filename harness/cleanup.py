"""``nats-chaos clean``: undo what a killed run left behind, using its state file only.

A run is cleaned when its harness process is gone (or its tag is named
explicitly). For each: pids it started are killed if they still run the
executable recorded for them, its mounts are unmounted, its namespaces
(the recorded ones and any other ``<tag>-*``) are deleted, its work
directory is removed, and finally its state file. Nothing is chosen by a
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
    if not dry_run:
        state.remove()
    return lines


def clean_runs(tags: list[str], dry_run: bool = False) -> list[str]:
    """Clean every run named in ``tags`` and every run whose harness is gone."""
    lines: list[str] = []
    for state in all_states():
        if state.tag in tags or not harness_alive(state):
            lines += clean_state(state, dry_run) or [f"{state.tag}: state file removed"]
    return lines
