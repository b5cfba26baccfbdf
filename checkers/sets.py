"""Set algebra over sorted int64 numpy arrays, shared by the checkers.

In: numpy arrays of integers (values, stream sequences). Out: sorted
distinct arrays and membership masks. No Python loop runs over elements,
so a set difference over a million values takes milliseconds.
"""

from __future__ import annotations

import numpy as np


def uniq(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique, minus its hashing detour that is slow here)."""
    a = np.sort(a)
    if len(a) < 2:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def contains(sorted_b: np.ndarray, a: np.ndarray) -> np.ndarray:
    """For each element of ``a``: is it in the sorted array ``sorted_b``?"""
    if len(sorted_b) == 0:
        return np.zeros(len(a), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_b, a), len(sorted_b) - 1)
    return sorted_b[at] == a


def repeated(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values that occur more than once in ``a``."""
    s = np.sort(a)
    return uniq(s[1:][s[1:] == s[:-1]])
