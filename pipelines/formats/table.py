"""The format registry: one table of what ``recon`` reads and writes.

Discovery (which files of a folder are units), dispatch to the readers, the CLI's
``--format`` choices and the writers' ``same`` rule all read this table, so a format
is added in one place (plus its reader or writer module). The table imports no reader:
the command line builds its choices from it without loading nibabel, h5py or pydicom.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.formats.study import HDF5


@dataclass(frozen=True)
class InputFormat:
    """A format ``recon batch`` reads.

    Attributes
    ----------
    name : str
        The ``Study.format`` its reader sets.
    suffixes : tuple of str
        File-name endings (lower case) that make a file a unit of its own in a folder;
        empty for DICOM, whose files often have no suffix and group by folder.
    output : str
        What ``--format same`` writes for it.
    reader : callable
        ``reader(path, budget) -> (studies, notes)``, importing its module when called.
    sniff : callable or None
        For suffixes shared by several formats (``.h5``): does this file hold this format?
    """

    name: str
    suffixes: tuple[str, ...]
    output: str
    reader: Callable
    sniff: Callable[[Path], bool] | None = None

    def claims(self, path: Path) -> bool:
        return path.name.lower().endswith(self.suffixes) and (self.sniff is None or self.sniff(path))


def _nifti(path, budget):
    from pipelines.formats.nifti import read_nifti

    return [read_nifti(path, budget)], []


def _npy(path, budget):
    from pipelines.formats.npy import read_npy
    from pipelines.formats.trajectory_files import read_npy_pair, sidecar
    from pipelines.formats.volume3d import read_npy_kspace

    trajectory = sidecar(path)  # scan.npy + scan.traj.npy: non-Cartesian k-space
    if trajectory is not None:
        return [read_npy_pair(path, trajectory, budget)], []
    volume = read_npy_kspace(path, budget)  # a complex (C, kx, ky, kz) array without a trajectory: 3-D k-space
    if volume is not None:
        return [volume], []
    return [read_npy(path, budget)], []


def _fastmri(path, budget):
    from pipelines.formats.fastmri import read_fastmri

    return [read_fastmri(path, budget)], []


def _is_fastmri(path):
    from pipelines.formats.fastmri import is_fastmri

    return is_fastmri(path)


def _ismrmrd(path, budget):
    from pipelines.formats.ismrmrd import read_ismrmrd

    return [read_ismrmrd(path, budget=budget)], []


def _is_ismrmrd(path):
    from pipelines.formats.ismrmrd import is_ismrmrd

    return is_ismrmrd(path)


def _cfl(path, budget):
    from pipelines.formats.cfl import read_bart
    from pipelines.formats.trajectory_files import read_cfl_pair, sidecar

    trajectory = sidecar(path)  # scan.cfl + scan_traj.cfl: non-Cartesian k-space
    if trajectory is not None:
        return [read_cfl_pair(path, trajectory, budget)], []
    return [read_bart(path, budget)], []


def _twix(path, budget):
    from pipelines.formats.twix import read_twix

    return [read_twix(path, budget)], []


def _dicom(path, budget):
    from pipelines.formats.dicom import dicom_files, read_dicom

    if path.is_dir():
        return read_dicom(dicom_files(path), path.name, path, budget)
    return read_dicom([path], path.stem, path, budget)


INPUTS: tuple[InputFormat, ...] = (
    InputFormat("nifti", (".nii", ".nii.gz"), "nifti", _nifti),
    InputFormat("npy", (".npy",), "npy", _npy),
    InputFormat("fastmri", HDF5, "h5", _fastmri, _is_fastmri),
    InputFormat("ismrmrd", HDF5, "h5", _ismrmrd, _is_ismrmrd),
    InputFormat("cfl", (".cfl", ".hdr"), "cfl", _cfl),  # the reader names a missing half of the pair
    InputFormat("twix", (".dat",), "nifti", _twix),  # Siemens raw data; written as NIfTI with its geometry
)
DICOM = InputFormat("dicom", (), "dicom", _dicom)
"""Folders, and single files no other format claims."""

OUTPUTS = ("nifti", "dicom", "h5", "cfl", "npy")
FORMAT_CHOICES = ("same", *OUTPUTS)
SAME = {entry.name: entry.output for entry in (*INPUTS, DICOM)}
UNIT_SUFFIXES = tuple(suffix for entry in INPUTS for suffix in entry.suffixes)
"""Files with these endings are units of their own in a folder."""
SIDE_FILES = (".json", ".txt", ".md", ".csv", ".png")
"""Files with these endings in a folder are neither units nor DICOM."""
