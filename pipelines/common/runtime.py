"""How the process uses the CPU and memory: OpenMP's spin-wait and glibc's allocator.

Two settings made ``recon`` many times slower than it needs to be (docs/results.md,
"Tour commands in minutes"):

- **OpenMP spin-wait.** torch and FINUFFT each run OpenMP thread teams whose idle
  threads spin for about 300 000 turns (libgomp's default) before sleeping. On a machine
  that is busy with other work, the spinning threads take the cores the working ones
  need: one radial cs-tv slice went from 0.95 s to 11.6 s beside two busy processes on
  2 cores. ``GOMP_SPINCOUNT=20000`` spins briefly, then sleeps: 0.68 s idle (faster, too)
  and 2.0 s beside the same load. It must be set before the OpenMP runtime loads, so
  :func:`tune_openmp` runs when ``pipelines`` is imported, and only where the user has
  not set it (``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` of their own win).
- **Allocator trimming.** Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``.
  Setting any of glibc's thresholds turns off its adaptive mmap threshold, so every
  tensor over 128 KiB (a 256 x 256 complex image is 512 KiB) is mapped and unmapped
  at each use: cs-tv took 10.2 s a slice instead of 1.9 s. :func:`keep_freed_memory`
  raises the mmap and trim thresholds again with ``mallopt`` in such a process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

SPIN_COUNT = "20000"
MMAP_THRESHOLD = 64 << 20  # allocations below 64 MiB come from the reusable heap
TRIM_THRESHOLD = 128 << 20  # free memory above 128 MiB at the top of the heap goes back
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_ALLOCATOR_VARIABLES = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_MMAP_MAX_")


def tune_openmp(environ: dict | None = None) -> bool:
    """Make idle OpenMP threads sleep soon (see the module); True when it set anything.
    Effective only before torch or FINUFFT are first imported."""
    environ = os.environ if environ is None else environ
    if "OMP_WAIT_POLICY" in environ or "GOMP_SPINCOUNT" in environ:
        return False
    environ["GOMP_SPINCOUNT"] = SPIN_COUNT
    return True


def keep_freed_memory(environ: dict | None = None) -> bool:
    """Undo a fixed glibc trim or mmap threshold (Dask's workers set one; see the module).

    Does nothing unless one of glibc's ``MALLOC_*`` threshold variables is set, or off
    glibc. Returns True when the thresholds were raised."""
    environ = os.environ if environ is None else environ
    if not any(name in environ for name in _ALLOCATOR_VARIABLES):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc: nothing to undo
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
