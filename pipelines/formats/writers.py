"""Writing one method's reconstruction of a study in the format the user asked for,
as the tools users check it with expect it (see the README's ``recon batch`` section).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.common.output import atomic_file, staged_dir
from pipelines.formats import InputError, Study
from pipelines.formats.cfl import write_bart
from pipelines.formats.dicom_write import nifti_geometry, write_dicom_series
from pipelines.formats.fastmri import write_fastmri
from pipelines.formats.nifti import write_nifti
from pipelines.formats.table import SAME

FASTMRI_ATTRS = ("acquisition", "patient_id", "max", "norm", "norm_rss")
"""Input attributes kept in a fastMRI-layout output (``evaluate.py`` and the
leaderboard read ``acquisition``; ``patient_id`` identifies the volume)."""


def output_kind(study: Study, output_format: str) -> str:
    return SAME[study.format] if output_format == "same" else output_format


def write_output(study: Study, method: str, images: np.ndarray, folder: Path, output_format: str, description: str,
                 method_index: int = 0, slice_notes: list[str] | None = None) -> Path:
    """Write one method's reconstruction of ``study``; returns the path written.

    ``images`` ``(N, H, W)`` is complex (``cfl`` keeps it complex, so BART can go on
    working with it); every other format gets its magnitude. ``h5`` follows fastMRI's
    layout for ``evaluate.py``: ``OUT/METHOD/INPUT_NAME.h5`` with a ``reconstruction``
    dataset and the input's ``acquisition`` and ``patient_id`` attributes; ISMRMRD
    inputs are written in ISMRMRD's image orientation ``(slices, y, x)``, as
    ``ismrmrd_recon_cartesian_2d`` writes them, and so is ``.npy``; NIfTI ``(x, y, slice)``
    and BART's column-major ``(x, y)`` hold the same image with x (the readout) fastest,
    as ISMRMRD stores it, so each format's own tools show what that tool shows.

    ``description`` says what the output holds: it goes into the NIfTI ``descrip`` (80
    bytes), DICOM's SeriesDescription and DerivationDescription, and the HDF5 attributes;
    ``slice_notes`` (one per slice) into each DICOM instance's ImageComments.
    """
    kind = output_kind(study, output_format)
    if study.meta.get("acquisition") == "3d" and kind in ("nifti", "cfl"):
        # a 3-D volume (readout, ky, kz) is written with those voxel axes, as the scanner's geometry has them
        images = np.moveaxis(images, -1, 0)
        slice_notes = None
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / f"{study.name}_{method}"
    magnitude = np.abs(images).astype(np.float32)
    if kind == "dicom":
        if study.format != "dicom":
            raise InputError(f"{study.source}: DICOM output needs a DICOM input (its patient, study and geometry); use --format nifti or same")
        with staged_dir(base, force=True) as staging:
            write_dicom_series(staging, magnitude, study.meta, description, series_offset=method_index,
                               comments=slice_notes)
        return base
    if kind == "nifti":
        path = base.with_name(base.name + ".nii.gz")
        write_nifti(path, magnitude, nifti_meta(study, magnitude), description=description)
        return path
    if kind == "h5":
        name = study.source.name if study.format in ("fastmri", "ismrmrd") and study.source.is_file() else f"{study.name}.h5"
        path = folder / method / name
        path.parent.mkdir(exist_ok=True)
        kept = {key: value for key, value in study.meta.get("attrs", {}).items() if key in FASTMRI_ATTRS}
        if study.format == "ismrmrd":
            magnitude = np.ascontiguousarray(np.swapaxes(magnitude, -1, -2))
        write_fastmri(path, magnitude, {**kept, "method": method, "description": description, "source": str(study.source)})
        return path
    if kind == "cfl":
        write_bart(base, np.asarray(images, np.complex64))
        return base.with_name(base.name + ".cfl")
    path = base.with_name(base.name + ".npy")
    if study.format == "ismrmrd":  # (slices, y, x), the array ismrmrd_recon_cartesian_2d writes
        magnitude = np.ascontiguousarray(np.swapaxes(magnitude, -1, -2))
    with atomic_file(path) as tmp:
        np.save(tmp, magnitude)
    return path


def nifti_meta(study: Study, images: np.ndarray) -> dict[str, Any]:
    """The NIfTI geometry of the output: the input's for NIfTI, the scanner geometry of a
    DICOM series (as dcm2niix converts it), else an identity affine with a note."""
    import nibabel as nib

    if study.format == "nifti":
        return study.meta
    height, width = images.shape[-2:]
    if study.format == "dicom":
        geometry = nifti_geometry(study.meta, len(images))
        if geometry is not None:
            affine, trailing = geometry
            return {"affine": affine, "header": nib.Nifti1Header(), "shape": (height, width, *trailing), "xform_code": 1}
    if study.format == "twix" and study.meta.get("affine") is not None:  # the protocol's slice geometry
        return {"affine": study.meta["affine"], "header": nib.Nifti1Header(), "shape": (height, width, len(images)),
                "xform_code": 1}
    return {"affine": np.eye(4), "header": nib.Nifti1Header(), "shape": (height, width, len(images))}
