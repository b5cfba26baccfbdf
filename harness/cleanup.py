"""``nats-chaos clean``: undo what a killed run left behind, using its state file only.

In: the state files in ``harness.runstate.state_dir()``, each validated
first (``runstate.load``: a schema, its tag is its name, every namespace,
container and network carries the tag, every mount is inside the run's
work dir). Out: one line per action, and per state file that is refused.
A refused state file is never acted on; with ``force`` it is moved aside
(``<name>.rejected``) so later runs of ``clean`` stop reporting it.

A run is cleaned when its harness process is gone (or its tag is named
explicitly). For each: its Docker containers and network (the recorded
names and anything labelled ``nats-chaos.run=<tag>``) are removed first, so
no container still uses a mount; the servers and client processes it started are killed; its
nodes' configs, logs and stores are copied from its work dir into its
result folder's ``nodes/`` (as a run's collect writes them) and the history
segments its client processes wrote are merged into its ``history.jsonl``
(``harness.segments``), and a columnar sidecar it was killed writing removed; then its
lazyfs processes are killed, its mounts unmounted, its namespaces (the
recorded ones and any other ``<tag>-*``) deleted and its work dir
``WORK_ROOT/<tag>`` removed; finally its state file. An ssh run's hosts
come first: on each, over SSH, its servers are killed, their logs and
stores copied, its chain and its directory removed
(:func:`harness.backends.ssh.clean_remote`). Whatever could not be
undone (or copied) keeps the state file, so a later ``clean`` finishes; the
work dir is removed only once its files are copied (or ``force``). Every
pid killed must still run the executable recorded for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness import segments
from harness.backends.lazystore import LAZYFS_EXE
from harness.net import netns
from harness.runstate import (
    WORK_ROOT,
    RunState,
    all_states,
    harness_alive,
    kill_pid,
    pid_is,
    unmount,
)


def clean_state(state: RunState, dry_run: bool = False, force: bool = False) -> list[str]:
    """Release everything ``state`` records; return one line per action."""
    lines: list[str] = []
    left = False  # something could not be undone: keep the state file
    if state.containers or state.networks:
        docker_lines, left = _clean_docker(state, dry_run)
        lines += docker_lines
    if state.hosts:  # an ssh run: its servers, chains and files on other hosts
        from harness.backends.ssh import clean_remote

        left |= clean_remote(state, dry_run, lines, force)
    servers = {p: e for p, e in state.pids.items() if e != LAZYFS_EXE}
    lazyfs = {p: e for p, e in state.pids.items() if e == LAZYFS_EXE}
    left |= _kill(state, servers, dry_run, lines)  # no server writes while its files are copied
    left |= _merge_segments(state, dry_run, lines)  # its client processes are gone now
    _remove_partial_sidecar(state, dry_run, lines)
    copied = _copy_node_files(state, dry_run, lines)
    left |= _kill(state, lazyfs, dry_run, lines)
    for mount in state.mounts:
        lines.append(f"{state.tag}: unmount {mount}")
        if not dry_run and not unmount(mount):
            lines.append(f"{state.tag}: {mount} is still mounted")
            left = True
    for ns in sorted(set(state.namespaces) | set(netns.namespaces_of(state.tag))):
        if ns in netns.list_namespaces():
            lines.append(f"{state.tag}: delete namespace {ns}")
    if not dry_run:
        errors = netns.destroy_tagged(state.tag, state.namespaces)
        lines += [f"{state.tag}: {e}" for e in errors]
        left |= bool(errors)
    work = state.work_dir
    if work.is_symlink():
        lines.append(f"{state.tag}: {work} is a symlink; left alone")
    elif work.exists() and (copied or force):
        lines.append(f"{state.tag}: remove {work}")
        if not dry_run:
            shutil.rmtree(work, ignore_errors=True)
    elif work.exists():
        left = True
    if not dry_run and not left:
        state.remove()
    return lines


def _kill(state: RunState, pids: dict[str, str], dry_run: bool, lines: list[str]) -> bool:
    """Kill ``pids`` that still run their executable; True if one did not die."""
    survived = False
    for pid, exe in pids.items():
        if pid_is(int(pid), exe):
            lines.append(f"{state.tag}: kill pid {pid} ({exe})")
            if not dry_run and not kill_pid(int(pid), exe):
                lines.append(f"{state.tag}: pid {pid} did not die")
                survived = True
    return survived


def _remove_partial_sidecar(state: RunState, dry_run: bool, lines: list[str]) -> None:
    """Remove the columnar sidecar a run killed while writing it left half-written."""
    if state.run_dir is None or Path(state.run_dir).is_symlink():
        return
    from harness.sidecar import partial_for  # numpy: only for a run that left a result folder

    partial = partial_for(Path(state.run_dir) / "history.jsonl")
    if partial.is_file() and not partial.is_symlink():
        lines.append(f"{state.tag}: remove the half-written {partial}")
        if not dry_run:
            partial.unlink(missing_ok=True)


def _merge_segments(state: RunState, dry_run: bool, lines: list[str]) -> bool:
    """Merge the history segments a killed run's client processes left into its
    ``history.jsonl`` (``harness.segments``); True if that failed."""
    if state.run_dir is None:
        return False
    history = Path(state.run_dir) / "history.jsonl"
    if history.parent.is_symlink() or not segments.pending(history):
        return False
    lines.append(f"{state.tag}: merge the client processes' history segments into {history}")
    if dry_run:
        return False
    try:
        segments.merge(history)
    except OSError as e:
        lines.append(f"{state.tag}: could not merge the history segments: {e}")
        return True
    return False


def _copy_node_files(state: RunState, dry_run: bool, lines: list[str]) -> bool:
    """Copy the work dir's node files into the result folder's ``nodes/``; True if done
    (or there was nothing to copy), False if the work dir must be kept."""
    from harness.backends.host import collect_work_dir

    work = state.work_dir
    if not work.is_dir() or work.is_symlink() or not any(work.iterdir()):
        return True
    if state.run_dir is None:  # a state file of an older nats-chaos: nowhere to copy to
        lines.append(f"{state.tag}: no result folder recorded; node files not copied")
        return True
    run_dir = Path(state.run_dir)
    if not (run_dir / "scenario.yaml").is_file() or run_dir.is_symlink():
        lines.append(
            f"{state.tag}: {run_dir} is not the run's result folder; node files kept in {work} "
            "(`clean --force` removes them)"
        )
        return False
    dest = run_dir / "nodes"
    if dest.is_symlink():
        lines.append(f"{state.tag}: {dest} is a symlink; node files kept in {work}")
        return False
    lines.append(f"{state.tag}: copy node files from {work} into {dest}")
    if dry_run:
        return True
    failed = collect_work_dir(work, dest)
    if failed:
        lines.append(
            f"{state.tag}: could not copy {'; '.join(failed)}; node files kept in {work} "
            "(`clean --force` removes them)"
        )
    return not failed


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


def clean_runs(
    tags: list[str], dry_run: bool = False, force: bool = False
) -> tuple[list[str], list[str]]:
    """Clean every run named in ``tags`` and every run whose harness is gone.

    Returns (one line per action, one line per refused state file).
    """
    lines: list[str] = []
    states, bad = all_states()
    for state in states:
        if state.tag in tags or not harness_alive(state):
            done = "remove state file" if dry_run else "state file removed"
            lines += clean_state(state, dry_run, force) or [f"{state.tag}: {done}"]
    refused = []
    for path, why in bad:
        if force and not dry_run:
            aside = path.with_name(path.name + ".rejected")
            path.rename(aside)
            refused.append(f"{why}; moved aside to {aside}")
        else:
            refused.append(f"{why}; nothing it names was touched (`clean --force` moves it aside)")
    return lines, refused


__all__ = ["WORK_ROOT", "clean_runs", "clean_state"]
