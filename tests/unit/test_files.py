"""checkers.files: a result file holds its whole new content or its old one, never a part."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from checkers import files


def _leftovers(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir() if p.name.startswith("."))


def test_write_json_and_text_replace_the_file(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("old")
    assert files.write_json(path, {"valid": True, "n": 3}) == path
    assert json.loads(path.read_text()) == {"valid": True, "n": 3}
    files.write_text(tmp_path / "summary.md", "# ok ✓\n")
    assert (tmp_path / "summary.md").read_text(encoding="utf-8") == "# ok ✓\n"
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_write_stopped_midway_keeps_the_old_file_and_no_temporary(
    tmp_path: Path, error: BaseException
) -> None:
    path = tmp_path / "report.html"
    path.write_text("the old report")
    with pytest.raises(type(error)), files.atomic_file(path) as fh:
        fh.write("half of the new rep")
        raise error
    assert path.read_text() == "the old report"
    assert _leftovers(tmp_path) == []


def test_a_failed_first_write_leaves_no_file_at_all(tmp_path: Path) -> None:
    def fill(fh: object) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        files.write_with(tmp_path / "junit.xml", fill, binary=True)
    assert list(tmp_path.iterdir()) == []


def test_copy_keeps_content_and_mode(tmp_path: Path) -> None:
    src = tmp_path / "nats-server.log"
    src.write_bytes(b"x" * 3_000_000)
    os.chmod(src, 0o640)
    dest = tmp_path / "out" / "nats-server.log"
    dest.parent.mkdir()
    files.copy(src, dest)
    assert dest.read_bytes() == src.read_bytes()
    assert dest.stat().st_mode & 0o777 == 0o640
    assert _leftovers(dest.parent) == []


def test_link_replaces_a_link_and_a_stale_temporary(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files.link(tmp_path / "latest", "a")
    (tmp_path / f".latest.{os.getpid()}.tmp").write_text("left by a killed process")
    files.link(tmp_path / "latest", "b")
    assert os.readlink(tmp_path / "latest") == "b"
    assert _leftovers(tmp_path) == []
