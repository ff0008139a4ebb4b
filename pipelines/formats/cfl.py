"""BART ``.cfl`` / ``.hdr`` files (k-space in, complex images out).

BART's dimensions are ``(X, Y, Z, coils, ...)``; X (BART's readout) is this project's
H and Y its W, so k-space ``(X, Y, Z, C)`` becomes ``(Z, C, X, Y)``. The data are taken
as centred unitary k-space (BART's ``fft -u``, this project's convention). Phase-encode
samples that are zero in every coil and slice are taken as not acquired.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipelines.common.limits import MemoryBudget, check_size
from pipelines.formats.study import FILE_PROBLEMS, InputError, Study, check_finite
from recon.classical.bart import cfl_dims, read_cfl, write_cfl


def read_bart(path: str | Path, budget: MemoryBudget | None = None) -> Study:
    """Read BART k-space ``(X, Y[, Z[, C]])``.

    Shapes
    ------
    ``kspace`` ``(Z, C, X, Y)`` complex64; ``mask`` ``(X, Y)`` when samples are missing.
    """
    path = Path(path)
    base = path.with_suffix("")
    for needed in (base.with_suffix(".cfl"), base.with_suffix(".hdr")):
        if not needed.is_file():
            raise InputError(f"{path}: a BART file is a pair, {base.name}.cfl (data) and {base.name}.hdr (dimensions); "
                             f"{needed.name} is missing")
    try:
        check_size(f"{base}.cfl", tuple(cfl_dims(base)), budget, what="the BART header")
        data = read_cfl(base)
    except FILE_PROBLEMS:
        raise
    except (OSError, ValueError) as error:
        raise InputError(f"{base}.cfl: cannot read BART file: {error}") from error
    if data.ndim > 4 or data.ndim < 2 or any(size != 1 for size in data.shape[4:]):
        raise InputError(f"{base}.cfl: expected k-space (X, Y[, Z[, coils]]), got dimensions {data.shape}")
    data = data.reshape(*data.shape[:2], *(data.shape[2:] + (1, 1))[:2])
    kspace = np.ascontiguousarray(np.transpose(data, (2, 3, 0, 1))).astype(np.complex64)
    check_finite(kspace, f"{base}.cfl", "k-space")
    sampled = np.abs(kspace).max(axis=(0, 1)) > 0
    if not sampled.any():
        raise InputError(f"{base}.cfl: k-space is all zero")
    mask = None if sampled.all() else sampled
    return Study(name=base.name, source=path, format="cfl", kspace=kspace, mask=mask)


def write_bart(path: str | Path, images: np.ndarray) -> None:
    """Write complex or magnitude images ``(Z, X, Y)`` as BART ``(X, Y, Z)``; the ``.cfl``
    and ``.hdr`` are each written to a temporary name, then renamed (data first)."""
    base = Path(path).with_suffix("")
    tmp = base.with_name(f".{base.name}.tmp-{os.getpid()}")
    try:
        write_cfl(tmp, np.transpose(np.asarray(images), (1, 2, 0)))
        tmp.with_suffix(".cfl").replace(base.with_suffix(".cfl"))
        tmp.with_suffix(".hdr").replace(base.with_suffix(".hdr"))
    finally:
        for suffix in (".cfl", ".hdr"):
            tmp.with_suffix(suffix).unlink(missing_ok=True)
