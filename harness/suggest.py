""" "Did you mean …?": the nearest valid name to a mistyped one.

In: the name as written and the names that would have been valid. Out:
:func:`nearest` returns the closest valid name (``difflib`` similarity of at
least 0.6, as Python's own "did you mean" uses), or None; :func:`hint`
returns the same as a phrase to append to an error line (``"; did you mean
'sync_interval'?"``), or ``""``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def nearest(word: str, choices: Iterable[str]) -> str | None:
    """The valid name closest to ``word``, or None when none is close."""
    found = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def hint(word: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest valid name, else ``""``."""
    best = nearest(word, choices)
    return f"; did you mean {best!r}?" if best is not None else ""
