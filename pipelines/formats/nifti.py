"""NIfTI volumes: read slice by slice through ``dataobj``, write with the input's geometry.

Slices are taken along the third voxel axis, ``data[:, :, z]``, without reorientation, so
a reconstruction written back lands on the input's voxel grid. A 4-D image becomes
``Z * T`` slices (volume-major) and is written back 4-D.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from pipelines.common.limits import MemoryBudget, check_size
from pipelines.common.output import atomic_file
from pipelines.formats.study import FILE_PROBLEMS, InputError, Study, check_finite


def stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def read_nifti(path: str | Path, budget: MemoryBudget | None = None) -> Study:
    """Read a 2-D, 3-D or 4-D NIfTI image as slices.

    The header's shape is checked against ``budget`` before any voxel is read. Real
    images become float32 magnitudes; a complex NIfTI is an image with phase and is kept
    complex (complex64), never cast to its real part. RGB and other structured data
    types are refused.

    Shapes
    ------
    Returns a :class:`Study` with ``images`` ``(Z * T, X, Y)``; ``meta`` holds the
    affine, the header and the original shape.
    """
    path = Path(path)
    try:
        image = nib.load(path)
        shape = image.shape
        if len(shape) not in (2, 3, 4):
            raise InputError(f"{path}: NIfTI with {len(shape)} dimensions; expected 2-D, 3-D or 4-D")
        dtype = np.dtype(image.get_data_dtype())
        if dtype.fields is not None or dtype.kind not in "biufc":
            raise InputError(f"{path}: NIfTI data type {_dtype_name(image)} is not a scalar image (RGB?); "
                             "expected real or complex intensities")
        complex_data = dtype.kind == "c"
        check_size(path, shape, budget, what="the NIfTI image")
        proxy = image.dataobj
        target = np.complex64 if complex_data else np.float32
        if len(shape) == 2:
            slices = [np.asarray(proxy).astype(target)]
        elif len(shape) == 3:
            slices = [np.asarray(proxy[:, :, z]).astype(target) for z in range(shape[2])]
        else:
            slices = [np.asarray(proxy[:, :, z, t]).astype(target) for t in range(shape[3]) for z in range(shape[2])]
    except FILE_PROBLEMS:
        raise
    except (OSError, EOFError, ValueError, TypeError, nib.filebasedimages.ImageFileError) as error:
        raise InputError(f"{path}: cannot read NIfTI: {error}") from error
    images = np.stack(slices)
    if min(images.shape[-2:]) < 16:
        raise InputError(f"{path}: slices of {images.shape[-2:]} are too small (need at least 16x16)")
    check_finite(images, path, "image")
    if not np.any(images):
        raise InputError(f"{path}: image is all zero")
    return Study(
        name=stem(path), source=path, format="nifti", images=images,
        meta={"affine": image.affine, "header": image.header.copy(), "shape": tuple(shape),
              "frequency_axis": _frequency_axis(image.header)},
        notes=[f"{path}: complex NIfTI; its magnitude and phase are used as the image"] if complex_data else [],
    )


def _frequency_axis(header) -> int | None:
    """The axis of the slice stack ``(Z, X, Y)`` that the header's ``dim_info`` calls
    frequency-encoded (the readout of a 3-D acquisition), or None when it does not say."""
    try:
        frequency = header.get_dim_info()[0]
    except (AttributeError, TypeError, ValueError):
        return None
    return {0: 1, 1: 2, 2: 0}.get(frequency)


def _dtype_name(image) -> str:
    try:
        return str(image.header.get_value_label("datatype"))
    except (KeyError, AttributeError, ValueError):
        return str(image.get_data_dtype())


def write_nifti(path: str | Path, images: np.ndarray, meta: dict, description: str | None = None) -> None:
    """Write ``images`` ``(Z * T, X, Y)`` as float32 NIfTI with the input's affine and header.

    The data type is set to float32 and the scaling slope/intercept cleared, so the values
    are stored as they are, never rescaled. Written atomically (temporary file + rename).
    ``description`` goes into the header's ``descrip`` (cut to its 80 bytes).
    """
    path = Path(path)
    shape = meta["shape"]
    images = np.asarray(images, dtype=np.float32)
    if len(shape) == 2:
        data = images[0]
    elif len(shape) == 3:
        data = np.moveaxis(images, 0, -1)
    else:
        data = images.reshape(shape[3], shape[2], shape[0], shape[1]).transpose(2, 3, 1, 0)
    header = meta["header"].copy()
    header.set_data_dtype(np.float32)
    header.set_slope_inter(1.0, 0.0)
    if description is not None:
        header["descrip"] = description.encode("ascii", "replace")[:79]
    output = nib.Nifti1Image(data, meta["affine"], header=header)
    output.set_data_dtype(np.float32)
    if meta.get("xform_code") is not None:  # geometry from scanner coordinates (DICOM)
        output.set_qform(meta["affine"], code=meta["xform_code"])
        output.set_sform(meta["affine"], code=meta["xform_code"])
    with atomic_file(path) as tmp:
        nib.save(output, tmp)
