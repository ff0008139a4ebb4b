"""fastMRI HDF5 files: ``kspace`` in, a ``reconstruction`` dataset out.

``kspace`` is ``(slices, H, W)`` (single-coil) or ``(slices, coils, H, W)``
(multi-coil) with H the readout, as in this project. The reference is
``reconstruction_rss`` (multi-coil) or ``reconstruction_esc`` (single-coil) when
present; it is cropped to the header's reconSpace (e.g. 320 x 320), and so are the
reconstructions before they are scored and written. Test and challenge files carry a
``mask`` of sampled columns: their k-space is already undersampled and is
reconstructed as it is.

Multi-coil files keep the scanner's readout oversampling (encodedSpace x = 640 against
reconSpace x = 320 for the knee). As for twix and ISMRMRD data, the channels are then
prewhitened with the noise of the oversampled margin (fastMRI files carry no noise
scan), and the oversampling is removed in hybrid space; both are recorded in the
study's corrections and said in a note.
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from pipelines.common.limits import MemoryBudget, check_size
from pipelines.common.output import atomic_file
from pipelines.formats.study import FILE_PROBLEMS, HDF5, InputError, Study, check_finite


def recon_space(header: str, space: str = "reconSpace") -> tuple[int, int] | None:
    """``(x, y)`` of ``encoding/<space>/matrixSize`` in an ISMRMRD XML header."""
    match = re.search(rf"<{space}>.*?<matrixSize>\s*<x>(\d+)</x>\s*<y>(\d+)</y>", header, re.S)
    return (int(match[1]), int(match[2])) if match else None


def center_crop(images: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Crop the last two axes of ``images`` to ``shape`` around the centre (fastMRI's rule)."""
    height, width = images.shape[-2:]
    h, w = min(shape[0], height), min(shape[1], width)
    top, left = (height - h) // 2, (width - w) // 2
    return images[..., top : top + h, left : left + w]


def is_fastmri(path: Path) -> bool:
    if not path.name.lower().endswith(HDF5):
        return False
    try:
        with h5py.File(path, "r") as handle:
            return "kspace" in handle
    except OSError:
        return False


def _dataset(handle: h5py.File, key: str, path: Path) -> h5py.Dataset:
    item = handle[key]
    if not isinstance(item, h5py.Dataset):
        raise InputError(f"{path}: {key!r} is not a dataset")
    return item


def read_fastmri(path: str | Path, budget: MemoryBudget | None = None) -> Study:
    """Read a fastMRI file.

    Shapes
    ------
    ``kspace`` ``(slices, C, H, W)`` complex64; ``mask`` ``(H, W)`` when the file has one;
    ``reference`` ``(slices, h, w)`` cropped to reconSpace when the file has one.
    The declared sizes are checked against ``budget`` before anything is read.
    """
    path = Path(path)
    notes: list[str] = []
    try:
        with h5py.File(path, "r") as handle:
            if "kspace" not in handle:
                raise InputError(f"{path}: no 'kspace' dataset (not a fastMRI file)")
            dataset = _dataset(handle, "kspace", path)
            check_size(path, dataset.shape, budget, what="'kspace'")
            kspace = np.asarray(dataset[()])
            header = b""
            if "ismrmrd_header" in handle:
                item = _dataset(handle, "ismrmrd_header", path)
                if item.size > 1 or item.dtype.kind not in "OSU":
                    raise InputError(f"{path}: 'ismrmrd_header' must be one string")
                header = item[()]
            header = _checked_header(header, path, notes)
            reference = None
            for key in ("reconstruction_rss", "reconstruction_esc"):
                if key in handle:
                    item = _dataset(handle, key, path)
                    check_size(path, item.shape, budget, itemsize=4, what=repr(key), copies=2)
                    reference = np.asarray(item[()], dtype=np.float32)
                    break
            columns = None
            if "mask" in handle:
                item = _dataset(handle, "mask", path)
                check_size(path, item.shape, budget, itemsize=1, what="'mask'", copies=1)
                columns = np.asarray(item[()]).astype(bool)
            attrs = {key: (value.item() if hasattr(value, "item") else value) for key, value in handle.attrs.items()}
    except FILE_PROBLEMS:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise InputError(f"{path}: cannot read HDF5 file (truncated or corrupt?): {error}") from error
    if not np.iscomplexobj(kspace):
        raise InputError(f"{path}: 'kspace' must be complex, got {kspace.dtype}")
    if kspace.ndim == 3:
        kspace = kspace[:, None]
    if kspace.ndim != 4:
        raise InputError(f"{path}: 'kspace' must be (slices, H, W) or (slices, coils, H, W), got {kspace.shape}")
    check_finite(kspace, path, "'kspace'")
    corrections: dict = {}
    kspace = _corrected(kspace, header, notes, corrections)
    mask = None
    if columns is not None:
        if columns.shape != (kspace.shape[-1],):
            raise InputError(f"{path}: 'mask' has shape {columns.shape}; expected ({kspace.shape[-1]},) sampled columns")
        mask = np.broadcast_to(columns[None, :], kspace.shape[-2:]).copy()
    crop = recon_space(header) or (reference.shape[-2:] if reference is not None else None)
    if reference is not None and (reference.ndim != 3 or len(reference) != len(kspace)):
        notes.append(f"{path}: the reference has shape {reference.shape}, which does not fit k-space of "
                     f"{len(kspace)} slices; it is ignored and no metrics against it are computed")
        reference = None
    if reference is not None and crop is not None:
        reference = center_crop(reference, crop)
    return Study(
        name=path.stem, source=path, format="fastmri", kspace=kspace.astype(np.complex64), mask=mask,
        reference=reference, meta={"crop": tuple(crop) if crop else None, "attrs": attrs, "header": header,
                                  "corrections": corrections},
        notes=notes,
    )


def _corrected(kspace: np.ndarray, header: str, notes: list[str], corrections: dict) -> np.ndarray:
    """Multi-coil k-space whose readout the header declares oversampled: prewhitened with
    the margin's noise, then the oversampling removed (:mod:`physics.raw`)."""
    encoded, recon = recon_space(header, "encodedSpace"), recon_space(header)
    if kspace.shape[1] < 2 or not encoded or not recon or encoded[0] != kspace.shape[-2] or recon[0] >= encoded[0]:
        return kspace
    import torch

    from physics.raw import remove_readout_oversampling, whiten_from_oversampling

    factor = encoded[0] / recon[0]
    data = torch.from_numpy(np.ascontiguousarray(kspace, dtype=np.complex64))
    whitened = whiten_from_oversampling(data, factor)
    if whitened is None:
        notes.append("no noise scan in a fastMRI file, and the oversampled readout margin could not estimate the "
                     "noise: the channels were not prewhitened")
    else:
        data, samples = whitened
        corrections["prewhitened"] = f"readout oversampling margin, {samples} samples per channel"
        notes.append(f"no noise scan in a fastMRI file: the channels were prewhitened with the noise of the readout's "
                     f"oversampled margin ({samples} samples per channel)")
    corrections["readout_oversampling_removed"] = factor
    return remove_readout_oversampling(data, factor).numpy()


def _checked_header(raw: bytes | str, path: Path, notes: list[str]) -> str:
    """The ``ismrmrd_header`` as text when it is UTF-8 XML; otherwise the file is read
    without it (no reconSpace crop), with a note saying so."""
    import xml.etree.ElementTree as ElementTree

    if not raw:
        return ""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        ElementTree.fromstring(text)  # expat: well-formedness only, no external entities
    except (UnicodeDecodeError, ElementTree.ParseError) as error:
        notes.append(f"{path}: its 'ismrmrd_header' is not valid UTF-8 XML ({type(error).__name__}); read without it "
                     "(no reconSpace crop of the reference)")
        return ""
    return text


def write_fastmri(path: str | Path, images: np.ndarray, attrs: dict) -> None:
    """Write ``images`` ``(slices, h, w)`` as a fastMRI-style ``reconstruction`` dataset
    (float32), with ``attrs`` as file attributes; atomically (temporary file + rename)."""
    with atomic_file(path) as tmp, h5py.File(tmp, "w") as handle:
        handle.create_dataset("reconstruction", data=np.asarray(images, dtype=np.float32))
        for key, value in attrs.items():
            handle.attrs[key] = value
