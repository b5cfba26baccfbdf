"""History segments: the lines client processes write, merged by time into ``history.jsonl``.

A run whose clients are spread over OS processes (``harness.clientprocs``)
has each of them append its ops to its own segment,
``<run dir>/segments/client-<k>.jsonl``, in the history's own line format
(``harness.history.HistoryWriter``, on the run's clock: ``time`` is
nanoseconds since the run started, whichever process wrote it), while the
harness keeps appending its own ops (the nemesis's, the final reads) to
``history.jsonl``. :func:`merge` then interleaves every line by ``time``
(ties keep ``history.jsonl`` first, then segment order) and gives them
fresh indexes 0, 1, 2 …, so the merged file follows docs/contracts.md §1
like a history one process wrote: indexes in file order, times never
decreasing. Lines are moved as bytes (only ``index`` is rewritten), so a
million ops merge in about a second.

In: the history file and the segments directory. Out: the history
rewritten in place (a temporary file renamed over it), the directory
removed, the number of lines and the highest client process id seen in the
segments. A cut-off last line of a file (its writer was killed mid-line) is
dropped. The merge survives being killed: the directory is first renamed to
``segments.merging``, and a merge that finds that name and a history that
already holds client ops (it was renamed over before the kill) only
removes it — so ``nats-chaos clean`` can finish the merge of a harness
that was killed, and never merges twice.
"""

from __future__ import annotations

import heapq
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import orjson

SEGMENTS = "segments"  # the directory in a run's folder
_MERGING = ".merging"
_HEAD = re.compile(rb'\{"index":\d+,"time":(\d+),"type":"[a-z]+","process":(?:"[^"]*"|(\d+)),')


def segment_path(run_dir: Path, shard: int) -> Path:
    """Where client process ``shard`` of a run writes its segment."""
    return run_dir / SEGMENTS / f"client-{shard}.jsonl"


def pending(history: Path) -> bool:
    """Does the run of ``history`` have segments not merged into it yet?"""
    d = history.parent / SEGMENTS
    return d.is_dir() or d.with_name(SEGMENTS + _MERGING).is_dir()


def merge(history: Path, segments: Path | None = None) -> tuple[int, int | None]:
    """Merge ``segments`` (default: the run's ``segments/``) into ``history``; see the module
    docstring. Returns (lines in the history, highest client process id of the segments)."""
    segments = segments if segments is not None else history.parent / SEGMENTS
    work = segments.with_name(segments.name + _MERGING)
    top: int | None = None
    if work.is_dir():  # an earlier merge was cut short
        if _merged(history, work):
            shutil.rmtree(work)  # … after its history was renamed over: only the removal
        else:
            top = _merge_dir(history, work)
    if segments.is_dir():
        os.replace(segments, work)
        high = _merge_dir(history, work)
        top = high if top is None or (high is not None and high > top) else top
    return _count_lines(history), top


def _merge_dir(history: Path, work: Path) -> int | None:
    """Merge the segments in ``work`` into ``history``, then remove ``work``."""
    parts = sorted(work.glob("*.jsonl"), key=lambda p: (len(p.name), p.name))
    top: list[int] = []
    tmp = history.with_name(f".{history.name}.merging")
    with open(tmp, "wb", buffering=1 << 20) as out:
        sources = [_lines(history, None)] + [_lines(p, top) for p in parts]
        for i, (_t, line) in enumerate(heapq.merge(*sources, key=_first)):
            out.write(b'{"index":%d' % i)
            out.write(line)
    os.replace(tmp, history)
    shutil.rmtree(work)
    return max(top) if top else None


def _first(item: tuple[int, bytes]) -> int:
    return item[0]


def _merged(history: Path, work: Path) -> bool:
    """Does ``history`` hold a line of the segments in ``work`` already (each line has its own
    time and value, so one line's body found verbatim says the merge was written)?"""
    if not history.exists():
        return False
    for part in work.glob("*.jsonl"):
        for _t, body in _lines(part, None):
            return body in history.read_bytes()
    return False


def _lines(path: Path, processes: list[int] | None) -> Iterator[tuple[int, bytes]]:
    """``(time, line without its index)`` of each whole line of ``path``; the highest
    client process id goes into ``processes`` (when given) as the lines are read."""
    if not path.exists():
        return
    high = -1
    with open(path, "rb", buffering=1 << 20) as f:
        for line in f:
            if not line.endswith(b"\n"):
                break  # cut off: its writer died mid-line
            m = _HEAD.match(line)
            if m is None:
                if not line.strip():
                    continue
                t, line, process = _parse(line)
            else:
                t, process = int(m[1]), int(m[2]) if m[2] is not None else -1
                line = line[line.index(b',"time":') :]
            if process > high:
                high = process
            yield t, line
    if processes is not None and high >= 0:
        processes.append(high)


def _parse(line: bytes) -> tuple[int, bytes, int]:
    """A line not in the writer's own layout: parsed, and re-serialized without its index."""
    rec = orjson.loads(line)
    rec.pop("index", None)
    process = rec.get("process")
    rest = orjson.dumps(rec)[1:]  # '"time":…}' after the '{'
    return int(rec["time"]), b"," + rest + b"\n", process if type(process) is int else -1


def _count_lines(path: Path) -> int:
    if not path.exists():
        return 0
    with open(path, "rb") as f:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: f.read(1 << 20), b""))
