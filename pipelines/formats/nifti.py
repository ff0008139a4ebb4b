"""NIfTI volumes: read slice by slice through ``dataobj``, write with the input's geometry.

Slices are taken along the third voxel axis, ``data[:, :, z]``, without reorientation, so
a reconstruction written back lands on the input's voxel grid. A 4-D image becomes
``Z * T`` slices (volume-major) and is written back 4-D.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from pipelines.formats.study import InputError, Study, check_finite

SUFFIXES = (".nii", ".nii.gz")


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(SUFFIXES)


def stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def read_nifti(path: str | Path) -> Study:
    """Read a 2-D, 3-D or 4-D NIfTI image as magnitude slices.

    Shapes
    ------
    Returns a :class:`Study` with ``images`` ``(Z * T, X, Y)`` float32; ``meta`` holds the
    affine, the header and the original shape.
    """
    path = Path(path)
    try:
        image = nib.load(path)
        shape = image.shape
        if len(shape) not in (2, 3, 4):
            raise InputError(f"{path}: NIfTI with {len(shape)} dimensions; expected 2-D, 3-D or 4-D")
        proxy = image.dataobj
        if len(shape) == 2:
            slices = [np.asarray(proxy, dtype=np.float32)]
        elif len(shape) == 3:
            slices = [np.asarray(proxy[:, :, z], dtype=np.float32) for z in range(shape[2])]
        else:
            slices = [np.asarray(proxy[:, :, z, t], dtype=np.float32) for t in range(shape[3]) for z in range(shape[2])]
    except InputError:
        raise
    except (OSError, EOFError, ValueError, nib.filebasedimages.ImageFileError) as error:
        raise InputError(f"{path}: cannot read NIfTI: {error}") from error
    if np.iscomplexobj(slices[0]):
        slices = [np.abs(s) for s in slices]
    images = np.stack(slices).astype(np.float32)
    if min(images.shape[-2:]) < 16:
        raise InputError(f"{path}: slices of {images.shape[-2:]} are too small (need at least 16x16)")
    check_finite(images, path, "image")
    if not np.any(images):
        raise InputError(f"{path}: image is all zero")
    return Study(
        name=stem(path), source=path, format="nifti", images=images,
        meta={"affine": image.affine, "header": image.header.copy(), "shape": tuple(shape)},
    )


def write_nifti(path: str | Path, images: np.ndarray, meta: dict) -> None:
    """Write ``images`` ``(Z * T, X, Y)`` as float32 NIfTI with the input's affine and header.

    The data type is set to float32 and the scaling slope/intercept cleared, so the values
    are stored as they are, never rescaled. Written atomically (temporary file + rename).
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
    output = nib.Nifti1Image(data, meta["affine"], header=header)
    output.set_data_dtype(np.float32)
    tmp = path.with_name(f".{path.name}.tmp{''.join(path.suffixes)}")
    nib.save(output, tmp)
    tmp.replace(path)
