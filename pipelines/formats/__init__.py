"""Readers and writers for the formats users hold: DICOM series, NIfTI, ``.npy``,
fastMRI HDF5, ISMRMRD HDF5 and BART ``.cfl``. Each reader returns
:class:`~pipelines.formats.study.Study` objects; bad input raises
:class:`~pipelines.formats.study.InputError` with the file's name and the problem."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.formats.cfl import is_cfl, read_bart
from pipelines.formats.dicom import dicom_files, read_dicom
from pipelines.formats.fastmri import SUFFIXES as HDF5_SUFFIXES
from pipelines.formats.fastmri import is_fastmri, read_fastmri
from pipelines.formats.ismrmrd import is_ismrmrd, read_ismrmrd
from pipelines.formats.nifti import is_nifti, read_nifti
from pipelines.formats.study import InputError, Study

__all__ = ["InputError", "Study", "discover", "read_input"]


def discover(paths: list[str | Path]) -> list[Path]:
    """Expand the command line's inputs into units to read: a file, or a folder of DICOM.

    A folder is searched recursively: NIfTI, ``.npy``, HDF5 and ``.cfl`` files are units
    of their own, and every other file in one folder belongs to that folder's DICOM unit.
    """
    units: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_file():
            units.append(path)
            continue
        dicom_folders = set()
        for file in sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")):
            name = file.name.lower()
            if is_nifti(file) or name.endswith((".npy", *HDF5_SUFFIXES, ".cfl")):
                units.append(file)
            elif name.endswith(".hdr") and file.with_suffix(".cfl").is_file():
                continue
            elif not name.endswith((".json", ".txt", ".md", ".csv", ".png")):
                dicom_folders.add(file.parent)
        units += sorted(dicom_folders)
    if not units:
        raise InputError(f"nothing to reconstruct in {', '.join(str(p) for p in paths)}")
    return units


def read_input(path: Path) -> tuple[list[Study], list[str]]:
    """Read one unit from :func:`discover`; returns its studies and notes."""
    if path.is_dir():
        return read_dicom(dicom_files(path), path.name, path)
    name = path.name.lower()
    if is_nifti(path):
        return [read_nifti(path)], []
    if name.endswith(".npy"):
        return [_read_npy(path)], []
    if name.endswith(HDF5_SUFFIXES):
        if is_fastmri(path):
            return [read_fastmri(path)], []
        if is_ismrmrd(path):
            return [read_ismrmrd(path)], []
        raise InputError(f"{path}: HDF5 file is neither fastMRI ('kspace') nor ISMRMRD ('dataset/data') (or it is corrupt)")
    if is_cfl(path):
        return [read_bart(path)], []
    return read_dicom([path], path.stem, path)


def _read_npy(path: Path) -> Study:
    from pipelines.images import read_image_stack

    try:
        images = read_image_stack(path)
    except ValueError as error:
        raise InputError(str(error)) from error
    return Study(name=path.stem, source=path, format="npy", images=np.abs(images).astype(np.float32))
