"""nats-chaos: the harness package (the CLI, runner, backends, faults, workloads, loaders).

In: nothing; importing it sets two environment defaults, before anything of
the package imports numpy, that numpy and its bundled OpenBLAS read once, at
their import. A value the user set is kept.
Out: nothing else.

- ``NUMPY_MADVISE_HUGEPAGE=0``: numpy asks for transparent huge pages for
  every array of 4 MiB and up. Where the kernel's THP ``defrag`` setting is
  ``madvise`` (Debian's default), each such fault may compact memory and
  zeroes 2 MiB, and the loaders and checkers make and free hundreds of such
  arrays: ``check`` of a 1M-publish JSONL spent 1.4-1.6 s of system time,
  0.8 s without (benchmarks/README.md, "Huge pages and BLAS threads").
- ``OPENBLAS_NUM_THREADS=1``: nothing here multiplies matrices, but OpenBLAS
  starts a thread per core that spins after each call, beside DuckDB's own.
"""

import os

os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
