"""Measured 3-D Cartesian k-space ``(C, kx, ky, kz)`` into a study of hybrid planes.

Every 3-D reader (twix, ISMRMRD, BART ``.cfl``, ``.npy``) ends here, so the corrections
keep their 2-D order (``CONVENTIONS.md``, raw scanner data): noise prewhitening, readout
oversampling removed in hybrid space, then (in the batch) coil compression. The study's
``kspace`` is the hybrid stack ``(X, C, ky, kz)``: each readout position's (ky, kz) plane
is one 2-D problem, with the acquired (ky, kz) pattern as its mask, read from the data
(a point is acquired when any coil and readout sample of it is non-zero), never assumed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.formats.study import InputError, Study, check_finite


def hybrid_study(path: Path, name: str, format_name: str, kspace: np.ndarray, *, noise: np.ndarray | None = None,
                 oversampling: float = 1.0, support: np.ndarray | None = None, meta: dict | None = None,
                 notes: list[str] | None = None) -> Study:
    """The study of measured 3-D k-space.

    Parameters
    ----------
    kspace : (C, X, Y, Z) complex
        As acquired, X the readout; unacquired (ky, kz) points are zero.
    noise : (C, n) complex, optional
        Noise-scan samples: the channels are prewhitened with their covariance.
    oversampling : float
        Readout oversampling factor, removed in hybrid space.
    support : (Y, Z) bool, optional
        The points the protocol acquires at all (elliptical scanning leaves the corners
        out): those outside are not "undersampled", and a retrospective mask keeps to it.

    Shapes
    ------
    returns ``Study.kspace`` ``(X', C, Y, Z)`` complex64 (X' = X / oversampling) and
    ``Study.mask`` ``(Y, Z)`` or None when every supported point was acquired.
    """
    import torch

    from physics.raw import noise_from_oversampling, remove_readout_oversampling, whiten
    from physics.volume import to_hybrid

    meta = dict(meta or {})
    notes = list(notes or [])
    corrections = meta.setdefault("corrections", {})
    coils, readout, rows, columns = kspace.shape
    check_finite(kspace, path, "k-space")
    acquired = np.abs(kspace).max(axis=(0, 1)) > 0
    if not acquired.any():
        raise InputError(f"{path}: k-space is all zero")
    data = torch.from_numpy(np.ascontiguousarray(kspace, np.complex64)).reshape(1, coils, readout, rows * columns)
    source = "noise scan"
    if noise is None and coils > 1 and oversampling > 1:  # as in 2-D: the oversampled readout margin's noise
        margin = noise_from_oversampling(data, oversampling)
        noise, source = (None, source) if margin is None else (margin.numpy(), "readout oversampling margin")
    if noise is not None and coils > 1:
        try:
            data = whiten(data, torch.from_numpy(np.asarray(noise, np.complex64)))
        except ValueError as error:
            raise InputError(f"{path}: its noise scan cannot whiten the channels: {error}") from None
        corrections["prewhitened"] = f"{source}, {noise.shape[-1]} samples per channel"
    elif coils > 1:
        corrections["prewhitened"] = False
        notes.append("no noise scan and no oversampled readout margin: the channels were not prewhitened")
    if oversampling > 1:
        data = remove_readout_oversampling(data, oversampling)
        corrections["readout_oversampling_removed"] = oversampling
    volume = data.reshape(coils, -1, rows, columns)
    hybrid = to_hybrid(volume).numpy().astype(np.complex64)
    if support is not None:
        meta["support"] = np.asarray(support, bool)
        acquired &= meta["support"]
        notes.append(f"elliptical scanning: {int((~meta['support']).sum())} corner points of the (ky, kz) plane are "
                     "outside what the protocol acquires; they are not counted as undersampled")
    expected = meta["support"] if support is not None else np.ones_like(acquired)
    mask = None if (acquired == expected).all() else acquired
    meta["acquisition"] = "3d"
    ratio = float(acquired.mean())
    notes.append(f"3-D acquisition: {hybrid.shape[0]} readout positions x ({rows} x {columns}) (ky, kz) plane, "
                 f"{coils} coil(s), {ratio:.1%} of the plane acquired; each position's plane is reconstructed as a "
                 "2-D problem (hybrid space)")
    return Study(name=name, source=path, format=format_name, kspace=hybrid, mask=mask, meta=meta, notes=notes)


def as_3d(study: Study) -> Study:
    """A multi-slice k-space study read from a format that cannot say 2-D from 3-D (BART
    ``.cfl``: its Z dimension is slices or kz alike), taken as one 3-D acquisition
    (``--acquisition 3d``): ``(Z, C, X, Y)`` is ``(C, kx, ky, kz)`` with Z the kz axis.
    Studies already 3-D, or of images, are returned as they are."""
    if study.kspace is None or study.meta.get("acquisition") == "3d":
        return study
    if study.kspace.shape[0] < 2:
        raise InputError(f"{study.source}: --acquisition 3d needs a z (partition) dimension; this k-space has one slice")
    kspace = np.transpose(study.kspace, (1, 2, 3, 0))
    if study.mask is not None:  # a (X, Y) pattern of a multi-slice read: the same in every kz, so (Y, Z) is Y x all
        kspace = kspace * study.mask[None, :, :, None]
    return hybrid_study(study.source, study.name, study.format, kspace, meta=dict(study.meta), notes=list(study.notes))


def read_npy_kspace(path: Path, budget=None) -> Study | None:
    """A ``.npy`` of 3-D k-space: complex ``(C, kx, ky, kz)`` (coils, readout, the two
    phase encodes), centred and orthonormal as ``physics.fft``, unacquired (ky, kz)
    points zero; read as :func:`hybrid_study` reads any 3-D scan. None for any other
    ``.npy`` (an image stack). The header's shape is checked against ``budget`` before
    the array is read; the file is never unpickled."""
    from pipelines.common.limits import check_size
    from pipelines.formats.images import _npy_header

    try:
        shape, dtype = _npy_header(path)
    except ValueError as error:
        raise InputError(str(error)) from None
    if len(shape) != 4 or dtype.kind != "c":
        return None
    if min(shape) < 1 or min(shape[2:]) < 4:
        raise InputError(f"{path}: 3-D k-space (C, kx, ky, kz) of {shape} is too small")
    check_size(path, shape, budget, what="the 3-D k-space (C, kx, ky, kz)", copies=3)
    kspace = np.load(path, allow_pickle=False).astype(np.complex64)
    return hybrid_study(path, path.stem, "npy", kspace)
