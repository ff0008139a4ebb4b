"""Memory budget: a file's declared size is checked before anything is allocated.

A hostile (or simply huge) file can declare far more data than it holds: a 5 KB HDF5
file can declare 2 GiB of k-space, a small ``.nii.gz`` can inflate to 16384², a
``recon mask --shape 60000,60000`` asks for billions of points. Every reader computes
the memory its declared shape needs and calls :func:`check_size` first, which refuses
with one line naming the file, the declared shape and the budget.

The budget defaults to half of the machine's physical memory; ``--max-memory`` (e.g.
``2G``, ``512M``, ``1.5GiB`` or a number of bytes) changes it.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

DEFAULT_FRACTION = 0.5
WORKING_COPIES = 6
"""Processing keeps several arrays of an input's size alive at once (k-space, the
masked copy, the reference, each method's complex output and its magnitude), so the
estimate is the declared data as complex64 times this many copies."""

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1000, "kib": 1024, "m": 1024**2, "mb": 1000**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1000**3, "gib": 1024**3, "t": 1024**4, "tb": 1000**4, "tib": 1024**4}


class TooLargeError(ValueError):
    """The declared size of an input exceeds the memory budget."""


def physical_memory() -> int:
    """Bytes of physical memory (8 GiB when it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 8 * 1024**3


def parse_size(text: str) -> int:
    """``"2G"`` -> 2147483648; ``"512MB"`` -> 512000000; a plain number is bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([a-zA-Z]*)\s*", str(text))
    if not match or match[2].lower() not in _UNITS:
        raise ValueError(f"--max-memory: expected a size such as 4G, 512M or 1073741824, got {text!r}")
    value = float(match[1]) * _UNITS[match[2].lower()]
    if not math.isfinite(value) or value < 1024**2:
        raise ValueError(f"--max-memory: must be at least 1M, got {text!r}")
    return int(value)


def format_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


@dataclass(frozen=True)
class MemoryBudget:
    """The most memory one input may make the process allocate, in bytes."""

    bytes: int

    @classmethod
    def default(cls) -> MemoryBudget:
        return cls(int(physical_memory() * DEFAULT_FRACTION))

    @classmethod
    def of(cls, max_bytes: int | None) -> MemoryBudget:
        """The budget of a ``max_memory`` setting: the default when it is None."""
        return cls.default() if max_bytes is None else cls(max_bytes)

    @classmethod
    def parse(cls, text: str | None) -> MemoryBudget:
        return cls.default() if text is None else cls(parse_size(text))

    def check(self, source: object, shape: tuple[int, ...], itemsize: int = 8, what: str = "data",
              copies: int = WORKING_COPIES) -> None:
        """Raise :class:`TooLargeError` when ``copies`` arrays of ``shape`` with
        ``itemsize`` bytes per element exceed the budget."""
        if any(int(size) < 0 for size in shape):
            raise TooLargeError(f"{source}: {what} declares a negative size {tuple(shape)}")
        needed = math.prod(int(size) for size in shape) * itemsize * copies
        if needed > self.bytes:
            raise TooLargeError(
                f"{source}: {what} declares shape {tuple(int(s) for s in shape)}, which needs about "
                f"{format_size(needed)} to process; the memory budget is {format_size(self.bytes)} "
                f"(raise it with --max-memory)"
            )


def check_size(source: object, shape: tuple[int, ...], budget: MemoryBudget | None, itemsize: int = 8,
               what: str = "data", copies: int = WORKING_COPIES) -> None:
    """:meth:`MemoryBudget.check` with the default budget when ``budget`` is None."""
    (budget or MemoryBudget.default()).check(source, shape, itemsize, what, copies)
