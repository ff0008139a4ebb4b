"""What a reader returns: one study (a volume or a raw acquisition) ready to reconstruct."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.common.limits import TooLargeError


class InputError(ValueError):
    """A file that cannot be used, with the file's name and the problem in the message."""


FILE_PROBLEMS = (InputError, TooLargeError)
"""Errors whose message already names the file and the problem (re-raised as they are)."""
HDF5 = (".h5", ".hdf5")
"""The endings of HDF5 files (fastMRI and ISMRMRD both use them)."""


@dataclass
class Study:
    """One input to reconstruct.

    Attributes
    ----------
    name : str
        A file-system-safe name for the outputs (file stem, or stem + series number).
    source : Path
        The file or folder it came from.
    format : str
        ``dicom``, ``nifti``, ``npy``, ``fastmri``, ``ismrmrd``, ``cfl`` or ``twix``.
    images : numpy.ndarray or None
        ``(N, H, W)`` float32 magnitudes, or complex64 images with phase (complex NIfTI);
        k-space is simulated from them.
    kspace : numpy.ndarray or None
        ``(N, C, H, W)`` complex64 measured k-space (C = 1 for single-coil).
    mask : numpy.ndarray or None
        ``(H, W)`` bool: the sampling of ``kspace`` when it is already undersampled;
        None when it is fully sampled (the chosen mask is then applied).
    reference : numpy.ndarray or None
        ``(N, H, W)`` float32 target for the metrics, when one exists.
    meta : dict
        Format-specific information the writers need (NIfTI affine and header, DICOM
        datasets, HDF5 attributes, ...).
    notes : list of str
        What the reader noticed and the user should know (a reference that does not fit
        the k-space, duplicated DICOM objects, ...); written to the metrics and the batch
        summary.
    """

    name: str
    source: Path
    format: str
    images: np.ndarray | None = None
    kspace: np.ndarray | None = None
    mask: np.ndarray | None = None
    reference: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def slices(self) -> int:
        data = self.images if self.images is not None else self.kspace
        return int(data.shape[0])

    @property
    def simulated(self) -> bool:
        """True when k-space is simulated from magnitude images."""
        return self.kspace is None


def check_finite(array: np.ndarray, source: Path | str, what: str) -> None:
    """Raise :class:`InputError` naming ``source`` when ``array`` holds NaN or Inf."""
    if not np.isfinite(array).all():
        raise InputError(f"{source}: {what} contains NaN or Inf values")


SIMULATION_LIMIT = 1e36
"""The largest ``max|x| * sqrt(H W)`` a simulated acquisition takes: the orthonormal FFT
can reach that magnitude, and float32 ends at 3.4e38 (the margin leaves room for coil
maps, noise and the solvers' sums)."""


def check_simulable(images: np.ndarray, source: Path | str) -> None:
    """Raise :class:`InputError` naming ``source`` when finite ``images`` are too large for
    their simulated k-space to stay finite in float32 (``(..., H, W)``)."""
    peak = float(np.abs(images).max()) if images.size else 0.0
    size = float(np.sqrt(images.shape[-1] * images.shape[-2])) if images.ndim >= 2 else 1.0
    if peak * size > SIMULATION_LIMIT:
        raise InputError(f"{source}: values up to {peak:.1e} are too large to simulate k-space in float32 (its FFT "
                         f"would overflow); rescale the image so that its largest value is below "
                         f"{SIMULATION_LIMIT / size:.1e}")
