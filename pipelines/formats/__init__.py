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
from pipelines.formats.study import FILE_PROBLEMS, InputError, Study
from pipelines.limits import MemoryBudget

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


def read_input(path: Path, budget: MemoryBudget | None = None) -> tuple[list[Study], list[str]]:
    """Read one unit from :func:`discover`; returns its studies and notes (the reader's
    notes and each study's own). Declared sizes are checked against ``budget`` (default:
    :meth:`MemoryBudget.default`) before data is read."""
    studies, notes = _read(path, budget)
    for study in studies:
        notes += study.notes
    return studies, notes


def _read(path: Path, budget: MemoryBudget | None) -> tuple[list[Study], list[str]]:
    if path.is_dir():
        return read_dicom(dicom_files(path), path.name, path, budget)
    name = path.name.lower()
    if is_nifti(path):
        return [read_nifti(path, budget)], []
    if name.endswith(".npy"):
        return [_read_npy(path, budget)], []
    if name.endswith(HDF5_SUFFIXES):
        if is_fastmri(path):
            return [read_fastmri(path, budget)], []
        if is_ismrmrd(path):
            return [read_ismrmrd(path, budget=budget)], []
        raise InputError(f"{path}: HDF5 file is neither fastMRI ('kspace') nor ISMRMRD ('dataset/data') (or it is corrupt)")
    if is_cfl(path):
        return [read_bart(path, budget)], []
    return read_dicom([path], path.stem, path, budget)


def _read_npy(path: Path, budget: MemoryBudget | None) -> Study:
    from pipelines.images import read_image_stack

    try:
        images = read_image_stack(path, budget)
    except FILE_PROBLEMS:
        raise
    except ValueError as error:
        raise InputError(str(error)) from error
    images = images.astype(np.complex64) if np.iscomplexobj(images) else np.abs(images).astype(np.float32)
    return Study(name=path.stem, source=path, format="npy", images=images)
