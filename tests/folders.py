"""Shared by the test folders: the one result folder a command made under a parent folder.

``compare`` and ``suite`` write ``<results>/compare/<stamp>/`` and
``<results>/suites/<stamp>/`` and point ``latest`` at the newest; tests that ran
one of them want that one folder, not the link.
"""

from __future__ import annotations

from pathlib import Path


def the_folder(parent: Path) -> Path:
    """The single stamped folder under ``parent`` (``latest`` and other links left out)."""
    (folder,) = [p for p in parent.iterdir() if p.is_dir() and not p.is_symlink()]
    return folder
