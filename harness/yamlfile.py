"""Bounded YAML: scenario and suite files, and ``--set`` values, read within fixed limits.

In: a path (a scenario or suite file) or a text (a ``--set`` value). Out: the
plain Python data ``yaml.safe_load`` makes of it, or a
:class:`~harness.errors.ScenarioError` (exit 2) with one line naming the
file and what is wrong. Before anything is built the input must be:

- a regular file or a pipe (not a device such as ``/dev/zero``, not a directory);
- at most :data:`MAX_BYTES` long, and UTF-8 text;
- YAML whose event stream nests at most :data:`MAX_DEPTH` deep and whose
  aliases, expanded, make at most :data:`MAX_NODES` nodes (an alias bomb
  such as "billion laughs" is a few hundred bytes and would expand to
  billions of nodes wherever the data is copied, validated or written).

The limits are checked on the parser's event stream, which needs no
recursion, so a file nested 100,000 deep is refused before the (recursive)
composer ever sees it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from harness.errors import ScenarioError

MAX_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 100_000

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_events(text: str, source: str) -> None:
    """Refuse ``text`` whose nesting or expanded size passes the limits (one pass, no recursion)."""
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for
    stack: list[tuple[int, str | None]] = [(0, None)]  # (nodes so far, anchor) per open collection
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            if len(stack) > MAX_DEPTH:
                raise ScenarioError(f"{source}: YAML nested deeper than {MAX_DEPTH} levels")
            stack.append((0, event.anchor))
            continue
        if isinstance(event, yaml.CollectionEndEvent):
            count, anchor = stack.pop()
            n = count + 1
        elif isinstance(event, yaml.ScalarEvent):
            n, anchor = 1, event.anchor
        elif isinstance(event, yaml.AliasEvent):
            n, anchor = sizes.get(event.anchor or "", 1), None
        else:  # stream and document starts and ends
            continue
        if anchor is not None:
            sizes[anchor] = n
        total = stack[-1][0] + n
        stack[-1] = (total, stack[-1][1])
        if total > MAX_NODES:
            raise ScenarioError(
                f"{source}: YAML expands to more than {MAX_NODES:,} values "
                "(aliases repeating aliases: an alias bomb?)"
            )


def _yaml_error(source: str, e: yaml.YAMLError) -> ScenarioError:
    mark = getattr(e, "problem_mark", None)
    where = f" line {mark.line + 1}" if mark else ""
    if isinstance(e, yaml.reader.ReaderError):  # a character YAML does not allow
        why = f"character {e.character!r} at offset {e.position}: {e.reason}"
    else:
        why = getattr(e, "problem", None) or str(e)
    return ScenarioError(f"{source}:{where} not valid YAML ({' '.join(str(why).split())})")


def parse(text: str, source: str) -> Any:
    """``yaml.safe_load(text)`` within the limits; ``source`` names the input in errors."""
    if len(text) > MAX_BYTES:
        raise ScenarioError(f"{source}: longer than {MAX_BYTES >> 20} MiB")
    try:
        _check_events(text, source)
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as e:
        raise _yaml_error(source, e) from None
    except ValueError as e:  # a value the constructor cannot build (an int of 5,000 digits)
        raise ScenarioError(f"{source}: not a usable YAML value ({e})") from None
    except RecursionError:  # unreachable within MAX_DEPTH; kept so no traceback can escape
        raise ScenarioError(f"{source}: YAML nested too deep") from None


def read_text(path: Path, what: str = "scenario") -> str:
    """The UTF-8 text of ``path``, a regular file or pipe of at most :data:`MAX_BYTES`."""
    try:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            raise ScenarioError(f"{path}: is a directory, not a {what} file")
        if not (stat.S_ISREG(mode) or stat.S_ISFIFO(mode)):
            raise ScenarioError(f"{path}: not a regular file (a device?), not a {what} file")
        with open(path, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as e:
        raise ScenarioError(f"{path}: cannot read {what} ({e.strerror})") from None
    if len(data) > MAX_BYTES:
        raise ScenarioError(f"{path}: larger than {MAX_BYTES >> 20} MiB, not a {what} file")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ScenarioError(
            f"{path}: not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}), "
            f"not a {what} file"
        ) from None


def load(path: Path, what: str = "scenario") -> Any:
    """Read ``path`` (:func:`read_text`) and parse it (:func:`parse`)."""
    return parse(read_text(path, what), str(path))


def parse_value(text: str, source: str) -> Any:
    """A ``--set`` value: its YAML data within the limits, or the text itself if not YAML."""
    if len(text) > MAX_BYTES:
        raise ScenarioError(f"{source}: longer than {MAX_BYTES >> 20} MiB")
    try:
        _check_events(text, source)
        return yaml.load(text, Loader=_Loader)
    except (yaml.YAMLError, ValueError):
        return text
