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


def stable_order(a: np.ndarray) -> np.ndarray:
    """``np.argsort(a, kind="stable")``, faster: the identity when ``a`` is already in
    order, a radix sort when ``a`` holds integers within a range of 65,536."""
    if len(a) < 2 or bool((a[1:] >= a[:-1]).all()):
        return np.arange(len(a))
    if a.dtype.kind in "iu":
        lo = int(a.min())
        if int(a.max()) - lo < 1 << 16:  # same order; numpy sorts 16-bit keys by radix
            return np.argsort((a - lo).astype(np.uint16), kind="stable")
    return np.argsort(a, kind="stable")


def union(arrays: list[np.ndarray]) -> np.ndarray:
    """Sorted distinct values of some sorted distinct arrays (at least one).

    Replicas that agree read the same values: then it is a copy of the first,
    without sorting them all together.
    """
    first = arrays[0]
    if all(a.dtype == first.dtype and np.array_equal(a, first) for a in arrays[1:]):
        return first.copy()
    return uniq(np.concatenate(arrays))


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
