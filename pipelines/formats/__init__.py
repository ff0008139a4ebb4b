"""Readers and writers: DICOM series, NIfTI, ``.npy``, fastMRI and ISMRMRD HDF5, BART ``.cfl``, Siemens twix, PNG."""

# Each reader returns pipelines.formats.study.Study objects; bad input raises
# pipelines.formats.study.InputError with the file's name and the problem.

from __future__ import annotations

from pathlib import Path

from pipelines.common.limits import MemoryBudget
from pipelines.formats.study import HDF5, InputError, Study
from pipelines.formats.table import DICOM, INPUTS, SIDE_FILES, UNIT_SUFFIXES
from pipelines.formats.trajectory_files import SIDECAR_ENDINGS as TRAJECTORY_SIDECARS

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
            if name.endswith(".hdr") and file.with_suffix(".cfl").is_file():
                continue  # the header of a .cfl unit
            if name.endswith(TRAJECTORY_SIDECARS):
                continue  # a non-Cartesian scan's trajectory, read with its k-space
            if name.endswith(UNIT_SUFFIXES):
                units.append(file)
            elif not name.endswith(SIDE_FILES):
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
    """Dispatch through the format table (:mod:`pipelines.formats.table`)."""
    if path.is_dir():
        return DICOM.reader(path, budget)
    for entry in INPUTS:
        if entry.claims(path):
            return entry.reader(path, budget)
    if path.name.lower().endswith(HDF5):
        raise InputError(f"{path}: HDF5 file is neither fastMRI ('kspace') nor ISMRMRD ('dataset/data') (or it is corrupt)")
    return DICOM.reader(path, budget)
