"""3-D Siemens twix scans (partition encoding), read into hybrid (ky, kz) planes.

What the protocol says is checked against what the file holds before anything is
allocated beyond twixtools' own array: the partitions acquired must be the protocol's
(``sKSpace.lPartitions``, times the slice oversampling when there is one), and the
k-space centre must be the central partition (partial Fourier in kz is refused: it needs
a partial-Fourier-aware reconstruction). Partition oversampling is removed along kz in
image space, as readout oversampling is along kx; elliptical scanning's unacquired
corners are the protocol's support, not undersampling.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.formats.study import InputError, Study


def read_3d(path: Path, grid: np.ndarray, dims: dict, noise_grid: np.ndarray | None, header: dict, scan: dict,
            notes: list[str], merged: dict | None = None) -> Study:
    """The study of a 3-D twix scan (see the module docstring) from the reader's grids:
    ``grid`` ``(Par, Cha, Col, Lin)`` (a separate reference scan already merged in, what
    ``merged`` records), ``noise_grid`` ``(Sli, Cha, Col, Lin)`` or None.

    Shapes
    ------
    ``Study.kspace`` ``(X, C, ky, kz)`` hybrid planes; ``Study.mask`` ``(ky, kz)`` or None.
    """
    import torch

    from physics.raw import remove_readout_oversampling
    from pipelines.formats.volume3d import hybrid_study

    space = header.get("MeasYaps", {}).get("sKSpace", {})
    partitions = grid.shape[0]
    declared = int(space.get("lPartitions", partitions) or partitions)
    oversampling = float(space.get("dSliceOversamplingForDialog", 0.0) or 0.0)
    expected = int(round(declared * (1 + oversampling)))
    if partitions != expected:
        raise InputError(f"{path}: {partitions} partitions in the data, but the protocol declares {declared}"
                         + (f" with {oversampling:.0%} slice oversampling ({expected})" if oversampling else ""))
    if int(space.get("ucSlicePartialFourier", 16)) not in (16, 0):
        raise InputError(f"{path}: partial Fourier along kz (sKSpace.ucSlicePartialFourier "
                         f"{space.get('ucSlicePartialFourier')}); not supported: reconstruct it with partial-Fourier-aware "
                         "scanner software")
    first = next((mdb.mdh for mdb in scan.get("mdb", []) if mdb.is_image_scan()), None)
    centre = int(getattr(first, "CenterPar", partitions // 2)) if first is not None else partitions // 2
    if centre != partitions // 2:
        raise InputError(f"{path}: the k-space centre is partition {centre} of {partitions} (asymmetric, i.e. partial "
                         "Fourier along kz); not supported")
    kspace = np.transpose(grid, (1, 2, 3, 0)).astype(np.complex64)  # (C, Col, Lin, Par)
    acquired = np.abs(kspace).max(axis=(0, 1)) > 0
    support = acquired if int(space.get("ucEnableEllipticalScanning", 0) or 0) else None
    corrections: dict = {"averages": int(dims.get("Ave", 1)), **(merged or {})}
    if oversampling > 0 and acquired.all():  # crop the slab's central partitions in image space
        data = torch.from_numpy(np.ascontiguousarray(np.swapaxes(kspace, -1, -2)))  # (C, Col, Par, Lin)
        kspace = np.ascontiguousarray(np.swapaxes(remove_readout_oversampling(data, partitions / declared).numpy(), -1, -2))
        corrections["partition_oversampling_removed"] = partitions / declared
        notes.append(f"partition oversampling removed: {partitions} -> {declared} partitions")
    elif oversampling > 0:  # undersampled along kz: cropping before the reconstruction would fold the aliasing in
        notes.append(f"partition oversampling kept: the {partitions} partitions are undersampled, so the whole slab is "
                     f"reconstructed (the protocol's {declared} are its central ones)")
    noise = None
    if noise_grid is not None:
        samples = np.asarray(noise_grid, np.complex64)  # (Sli, Cha, Col, Lin)
        noise = np.moveaxis(samples, 1, 0).reshape(samples.shape[1], -1)
    factor = float(header.get("Dicom", {}).get("flReadoutOSFactor", 1.0) or 1.0)
    return hybrid_study(path, path.stem, "twix", kspace, noise=noise, oversampling=factor, support=support,
                        meta={"corrections": corrections}, notes=notes)

