"""Importing harness tunes numpy before it loads (harness/__init__.py), keeping a user's value.

Each case runs in a fresh interpreter: this test process imported numpy long ago.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KNOBS = ("NUMPY_MADVISE_HUGEPAGE", "OPENBLAS_NUM_THREADS")
PROBE = (
    "import json, os\n"
    "import harness.history\n"  # the loader: numpy comes with it
    "from numpy._core import multiarray\n"
    "hugepages = multiarray._set_madvise_hugepage(False)\n"  # returns the state numpy had
    f"print(json.dumps([hugepages, *(os.environ.get(k) for k in {KNOBS!r})]))\n"
)


def _probe(**env: str) -> list:
    base = {k: v for k, v in os.environ.items() if k not in KNOBS}
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env={**base, **env, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def test_numpy_asks_for_no_huge_pages_and_blas_for_one_thread() -> None:
    assert _probe() == [False, "0", "1"]


def test_a_value_the_user_set_is_kept() -> None:
    assert _probe(NUMPY_MADVISE_HUGEPAGE="1", OPENBLAS_NUM_THREADS="2") == [True, "1", "2"]
