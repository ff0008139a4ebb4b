"""Contract test over the output formats: every format ``recon batch --format`` offers
writes a reconstruction that its reader gives back (magnitude formats to float32
precision, DICOM to its rescale step, BART complex). A format added to
the format table (``pipelines.formats.table.OUTPUTS``) without a reader here fails the first test."""

from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from pipelines.formats import read_input
from pipelines.formats.table import OUTPUTS
from pipelines.formats.writers import write_output
from recon.classical.bart import read_cfl
from tests.toys import dicom_series_fixture


def _nifti(path: Path) -> np.ndarray:
    return np.moveaxis(nib.load(path).get_fdata(), -1, 0)


def _dicom(path: Path) -> np.ndarray:
    return read_input(path)[0][0].images


def _h5(path: Path) -> np.ndarray:
    with h5py.File(path) as handle:
        return handle["reconstruction"][()]


def _cfl(path: Path) -> np.ndarray:
    return np.transpose(read_cfl(path.with_suffix("")), (2, 0, 1))


READERS = {"nifti": _nifti, "dicom": _dicom, "h5": _h5, "cfl": _cfl, "npy": np.load}


def test_every_format_has_a_reader_here():
    assert set(OUTPUTS) == set(READERS)


@pytest.mark.parametrize("output_format", sorted(READERS))
def test_round_trip(tmp_path, output_format):
    dicom_series_fixture(tmp_path / "series", count=3)
    study = read_input(tmp_path / "series")[0][0]  # a DICOM study: every format can be written from it
    rng = np.random.default_rng(0)
    images = (study.images * np.exp(1j * rng.uniform(0, 0.5, study.images.shape))).astype(np.complex64)
    path = write_output(study, "zero-filled", images, tmp_path / "out", output_format, "round trip")
    back = READERS[output_format](path)
    expected = images if output_format == "cfl" else np.abs(images)
    assert back.shape == expected.shape
    tolerance = 0.5 * float(np.abs(images).max()) / 65535 + 1e-3 if output_format == "dicom" else 1e-4
    np.testing.assert_allclose(back, expected, atol=tolerance, rtol=1e-5)
