"""Set algebra over sorted int64 numpy arrays, shared by the checkers.

In: numpy arrays of integers (values, stream sequences). Out: sorted
distinct arrays and membership masks. No Python loop runs over elements,
so a set difference over a million values takes milliseconds.
"""

from __future__ import annotations

import numpy as np

DENSE = 4  # contains() uses a lookup table when the values span at most this many per element


def uniq(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values (np.unique, minus its hashing detour that is slow here)."""
    if len(a) < 2 or bool((a[1:] > a[:-1]).all()):  # already sorted and distinct
        return a.copy()
    a = np.sort(a)
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a[keep]


def stable_order(a: np.ndarray) -> np.ndarray:
    """``np.argsort(a, kind="stable")``, faster: the identity when ``a`` is already in
    order, a radix sort when ``a`` holds integers of at most 65,536 distinct values in a
    range of at most :data:`DENSE` per element (processes, keys)."""
    if len(a) < 2 or bool((a[1:] >= a[:-1]).all()):
        return np.arange(len(a))
    key = _rank16(a) if a.dtype.kind in "iu" else None
    # the same order: each value maps to its rank; numpy sorts 16-bit keys by radix
    return np.argsort(a if key is None else key, kind="stable")


def _rank16(a: np.ndarray) -> np.ndarray | None:
    """Each integer of ``a`` as its rank among the distinct ones (uint16), or None."""
    lo, span = a.min(), int(a.max()) - int(a.min())
    if span < 1 << 16:
        return (a - lo).astype(np.uint16)
    if span > DENSE * len(a):
        return None
    seen = np.zeros(span + 1, dtype=bool)
    seen[a - lo] = True
    rank = np.cumsum(seen)
    return (rank[a - lo] - 1).astype(np.uint16) if rank[-1] <= 1 << 16 else None


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
    if sorted_b.dtype == a.dtype and a.dtype.kind in "iu":
        lo, hi = sorted_b.min(), sorted_b.max()
        if int(hi) - int(lo) <= DENSE * (len(sorted_b) + len(a)):
            # values that are nearly consecutive (a run's publish values): a lookup table
            table = np.zeros(int(hi) - int(lo) + 1, dtype=bool)
            table[sorted_b - lo] = True
            if len(a) and a.min() >= lo and a.max() <= hi:
                return table[a - lo]
            inside = np.flatnonzero((a >= lo) & (a <= hi))
            out = np.zeros(len(a), dtype=bool)
            out[inside] = table[a[inside] - lo]
            return out
    at = np.minimum(np.searchsorted(sorted_b, a), len(sorted_b) - 1)
    return sorted_b[at] == a


def repeated(a: np.ndarray) -> np.ndarray:
    """Sorted distinct values that occur more than once in ``a``."""
    s = np.sort(a)
    return uniq(s[1:][s[1:] == s[:-1]])
