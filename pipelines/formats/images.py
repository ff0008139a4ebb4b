"""Reading input images (NIfTI, ``.npy``) and writing PNG previews."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.common.limits import MemoryBudget, check_size


def _npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header, without reading the array."""
    with open(path, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
            elif version in ((2, 0), (3, 0)):
                shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
            else:
                raise ValueError(f"unsupported .npy version {version}")
        except ValueError as error:
            raise ValueError(f"{path}: not a readable .npy file: {error}") from None
    return tuple(shape), np.dtype(dtype)


def read_image_stack(path: str | Path, budget: MemoryBudget | None = None) -> np.ndarray:
    """Read a magnitude (or complex) image stack from NIfTI or ``.npy``.

    NIfTI volumes are read slice by slice along the third axis and rotated like the
    sample data (``np.rot90``); a 4-D NIfTI uses its first volume. A ``.npy`` file
    holds ``(H, W)`` or ``(N, H, W)``.

    Returns
    -------
    numpy.ndarray
        ``(N, H, W)`` float32, or complex64 for complex ``.npy`` input.

    Raises
    ------
    ValueError
        With the file name and the problem (unreadable, wrong shape, NaN/Inf, all zero,
        RGB, or a declared size beyond ``budget``).
    """
    import nibabel as nib

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    name = path.name.lower()
    try:
        if name.endswith(".npy"):
            shape, dtype = _npy_header(path)
            if dtype.fields is not None or dtype.kind not in "biufc":
                raise ValueError(f"{path}: .npy data type {dtype} is not a real or complex image")
            check_size(path, shape, budget, what="the .npy array")
            stack = np.load(path, allow_pickle=False)
        elif name.endswith((".nii", ".nii.gz")):
            image = nib.load(path)
            if len(image.shape) not in (2, 3, 4):
                raise ValueError(f"{path}: NIfTI with {len(image.shape)} dimensions; expected 2-D, 3-D or 4-D")
            dtype = np.dtype(image.get_data_dtype())
            if dtype.fields is not None or dtype.kind not in "biufc":
                raise ValueError(f"{path}: NIfTI data type {dtype} is not a scalar image (RGB?); expected real or complex intensities")
            check_size(path, image.shape[:3], budget, what="the NIfTI image")
            proxy = image.dataobj
            if len(image.shape) == 2:
                stack = np.asarray(proxy)[None]
            else:
                extra = (0,) if len(image.shape) == 4 else ()
                slices = [np.rot90(np.asarray(proxy[(slice(None), slice(None), z, *extra)])) for z in range(image.shape[2])]
                stack = np.stack(slices)
        else:
            raise ValueError(f"{path}: unsupported image format; use .nii, .nii.gz or .npy")
    except (OSError, EOFError, nib.filebasedimages.ImageFileError) as error:
        raise ValueError(f"{path}: cannot read image: {error}") from error
    if stack.ndim == 2:
        stack = stack[None]
    if stack.ndim != 3:
        raise ValueError(f"{path}: expected an (H, W) or (N, H, W) image, got shape {stack.shape}")
    if not np.issubdtype(stack.dtype, np.number) or np.issubdtype(stack.dtype, np.bool_):
        raise ValueError(f"{path}: image must be numeric, got dtype {stack.dtype}")
    if min(stack.shape[-2:]) < 16:
        raise ValueError(f"{path}: image of {stack.shape[-2:]} is too small (need at least 16x16)")
    if not np.isfinite(stack).all():
        raise ValueError(f"{path}: image contains NaN or Inf values")
    if not np.any(stack):
        raise ValueError(f"{path}: image is all zero")
    dtype = np.complex64 if np.iscomplexobj(stack) else np.float32
    return stack.astype(dtype)


def to_uint8(image: np.ndarray, vmax: float) -> np.ndarray:
    """Scale a magnitude image to 8 bits with ``[0, vmax] -> [0, 255]``."""
    scaled = np.clip(np.abs(image) / max(vmax, 1e-12), 0.0, 1.0)
    return np.round(scaled * 255).astype(np.uint8)


def save_png(path: str | Path, pixels: np.ndarray) -> None:
    """Write an 8-bit grey ``(H, W)`` or RGB ``(H, W, 3)`` array as PNG."""
    from PIL import Image

    Image.fromarray(pixels).save(path, format="PNG")
