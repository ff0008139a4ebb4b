"""Outputs as the tools users check them with see them: dcm2niix's geometry, unclipped
DICOM, fastMRI's ``evaluate.py`` layout, ISMRMRD's orientation and complex BART files."""

import json
import shutil
import subprocess
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest

from pipelines.cli.main import main
from pipelines.formats import read_input
from pipelines.formats.dicom_write import write_dicom_series
from recon.classical.bart import read_cfl
from tests.toys import PYDICOM_FILES, dicom_series_fixture, fastmri_fixture


def oblique_series(folder: Path, count: int = 5) -> None:
    """An oblique classic MR series (rotated about two axes, anisotropic pixels, 3.5 mm
    slices) with an asymmetric marker in the corner of every slice."""
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    a, b = np.deg2rad(20), np.deg2rad(-12)
    rotation = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1]]) @ np.array(
        [[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    row, column = rotation[:, 0], rotation[:, 1]
    normal = np.cross(row, column)
    uid = pydicom.uid.generate_uid()
    rng = np.random.default_rng(0)
    for z in range(count):
        ds = template.copy()
        stored = rng.integers(10, 1000, size=(ds.Rows, ds.Columns)).astype(np.int16)
        stored[:5, :9] = 3000 + z
        ds.PixelData = stored.tobytes()
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row, *column)]
        ds.ImagePositionPatient = [f"{v:.4f}" for v in np.array([-30.0, 12.0, 40.0]) + 3.5 * z * normal]
        ds.PixelSpacing = ["0.9", "1.1"]
        ds.SliceThickness = "3.5"
        ds.SliceLocation = f"{40 + 3.5 * z:.1f}"
        ds.SpacingBetweenSlices = "3.5"
        ds.InstanceNumber = count - z
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.save_as(folder / f"img{(z * 3) % count:02d}.dcm")


def _world(image: nib.Nifti1Image) -> np.ndarray:
    index = np.indices(image.shape[:3]).reshape(3, -1)
    return (image.affine @ np.vstack([index, np.ones(index.shape[1])]))[:3]


def test_dicom_to_nifti_keeps_the_scanner_geometry(tmp_path):
    oblique_series(tmp_path / "series")
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "series"), "--out", str(out), "--methods", "zero-filled", "--format", "nifti"]) == 0
    written = nib.load(out / "series_zero-filled.nii.gz")
    assert written.header["qform_code"] == 1 and written.header["sform_code"] == 1
    np.testing.assert_allclose(written.get_qform(), written.affine, atol=1e-4)
    # Voxel (r, c, k) lies where DICOM puts row r, column c of slice k (LPS, negated to RAS).
    study = read_input(tmp_path / "series")[0][0]
    slices = study.meta["slices"]
    for r, c, k in [(0, 0, 0), (63, 0, 2), (0, 63, 4), (17, 40, 3)]:
        info = slices[k]
        orientation = np.asarray(info["orientation"])
        lps = np.asarray(info["position"]) + c * info["spacing"][1] * orientation[:3] + r * info["spacing"][0] * orientation[3:]
        np.testing.assert_allclose(written.affine @ [r, c, k, 1], [-lps[0], -lps[1], lps[2], 1], atol=1e-3)


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix is not installed (Debian package dcm2niix)")
def test_dicom_to_nifti_matches_dcm2niix_voxel_for_voxel(tmp_path):
    from pipelines.formats.nifti import write_nifti
    from pipelines.formats.writers import nifti_meta

    oblique_series(tmp_path / "series")
    (tmp_path / "d2n").mkdir()
    subprocess.run(["dcm2niix", "-o", str(tmp_path / "d2n"), "-f", "conv", "-z", "n", str(tmp_path / "series")],
                   check=True, capture_output=True)
    theirs = nib.load(tmp_path / "d2n" / "conv.nii")
    study = read_input(tmp_path / "series")[0][0]
    write_nifti(tmp_path / "ours.nii.gz", study.images, nifti_meta(study, study.images))
    ours = nib.load(tmp_path / "ours.nii.gz")
    index = np.linalg.inv(theirs.affine) @ np.vstack([_world(ours), np.ones(ours.get_fdata().size)])
    rounded = np.rint(index[:3]).astype(int)
    assert np.abs(index[:3] - rounded).max() < 1e-3  # every voxel centre lands on one of theirs
    np.testing.assert_array_equal(theirs.get_fdata()[tuple(rounded)], ours.get_fdata().reshape(-1))


def test_dicom_output_never_clips_and_keeps_slice_tags(tmp_path):
    oblique_series(tmp_path / "series")
    study = read_input(tmp_path / "series")[0][0]
    bright = study.images * 60.0 + 5.0  # up to ~180000: beyond the input's 16-bit stored range
    files = write_dicom_series(tmp_path / "a", bright, study.meta, "recon test", series_offset=2)
    back = read_input(tmp_path / "a")[0][0]
    slope = float(pydicom.dcmread(files[0]).RescaleSlope)
    assert np.abs(back.images - bright).max() <= slope / 2 + 1e-6 * bright.max()
    first = pydicom.dcmread(files[0])
    assert float(first.SliceLocation) == 40.0 and float(first.SpacingBetweenSlices) == 3.5
    assert int(first.SeriesNumber) == int(study.meta["dataset"].SeriesNumber) + 1002
    normal = np.asarray(study.images)  # within range: the input's own rescale is kept
    write_dicom_series(tmp_path / "b", normal, study.meta, "recon test")
    assert "RescaleSlope" not in pydicom.dcmread(tmp_path / "b" / "0001.dcm")
    np.testing.assert_array_equal(read_input(tmp_path / "b")[0][0].images, normal)


def test_each_method_gets_its_own_series_number(tmp_path):
    dicom_series_fixture(tmp_path / "series", count=2)
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "series"), "--out", str(out), "--methods", "zero-filled,cs-tv"]) == 0
    numbers = {int(pydicom.dcmread(out / f"series_{m}" / "0001.dcm").SeriesNumber) for m in ("zero-filled", "cs-tv")}
    assert len(numbers) == 2


def test_fastmri_output_layout_for_evaluate_py(tmp_path):
    fastmri_fixture(tmp_path / "file1000001.h5", mask=True)
    with h5py.File(tmp_path / "file1000001.h5", "a") as handle:
        handle.attrs["patient_id"] = "abc123"
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "file1000001.h5"), "--out", str(out), "--methods", "zero-filled,cs-tv"]) == 0
    for method in ("zero-filled", "cs-tv"):
        with h5py.File(out / method / "file1000001.h5") as handle:  # OUT/METHOD/INPUT_NAME
            assert handle["reconstruction"].shape == (3, 40, 40)
            assert handle.attrs["acquisition"] == "AXT1" and handle.attrs["patient_id"] == "abc123"
    manifest = json.loads((out / "manifest.json").read_text())
    outputs = next(iter(manifest["units"].values()))["outputs"]
    assert "zero-filled/file1000001.h5" in outputs


@pytest.mark.skipif(shutil.which("ismrmrd_recon_cartesian_2d") is None,
                    reason="ismrmrd-tools is not installed (Debian package ismrmrd-tools)")
def test_ismrmrd_output_matches_ismrmrd_recon_cartesian_2d_orientation(tmp_path):
    raw = tmp_path / "shepp.h5"
    subprocess.run(["ismrmrd_generate_cartesian_shepp_logan", "-o", str(raw), "-m", "64", "-c", "4", "-r", "1"],
                   check=True, capture_output=True)
    theirs_file = tmp_path / "theirs.h5"
    shutil.copy(raw, theirs_file)
    subprocess.run(["ismrmrd_recon_cartesian_2d", str(theirs_file)], check=True, capture_output=True, cwd=tmp_path)
    with h5py.File(theirs_file) as handle:
        theirs = np.asarray(handle["dataset/cpp/data"][()], np.float64).reshape(-1, 64, 64)[0]
    ours = {}
    for kind in ("same", "npy", "nifti", "cfl"):  # every output format an ISMRMRD input can have
        out = tmp_path / kind
        assert main(["batch", str(raw), "--out", str(out), "--methods", "zero-filled", "--mask", "100pct",
                     "--format", kind]) == 0
        if kind == "same":
            with h5py.File(out / "zero-filled" / "shepp.h5") as handle:
                ours[kind] = np.asarray(handle["reconstruction"][()], np.float64)[0]
        elif kind == "npy":
            ours[kind] = np.load(out / "shepp_zero-filled.npy")[0]
        elif kind == "nifti":  # (x, y, slice), x fastest as in ISMRMRD: theirs[y, x] is data[x, y, 0]
            ours[kind] = np.asarray(nib.load(out / "shepp_zero-filled.nii.gz").dataobj)[:, :, 0].T
        else:  # BART's column-major (x, y): the same
            ours[kind] = np.abs(read_cfl(out / "shepp_zero-filled")).reshape(64, 64, -1)[:, :, 0].T
    for kind, image in ours.items():
        assert image.shape == theirs.shape, kind
        same = np.corrcoef(image.ravel(), theirs.ravel())[0, 1]
        transposed = np.corrcoef(image.T.ravel(), theirs.ravel())[0, 1]
        assert same > 0.99 and transposed < 0.9, (kind, same, transposed)


def test_cfl_output_is_complex(tmp_path):
    rng = np.random.default_rng(0)
    image = np.zeros((32, 32), np.complex64)
    image[8:24, 10:22] = np.exp(1j * rng.uniform(0, 1, (16, 12)))
    from physics.fft import fft2c
    from recon.classical.bart import write_cfl

    write_cfl(tmp_path / "k", fft2c(image)[:, :, None, None].astype(np.complex64))
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "k.cfl"), "--out", str(out), "--methods", "zero-filled", "--mask", "100pct"]) == 0
    result = read_cfl(out / "k_zero-filled")
    assert np.iscomplexobj(result) and np.abs(result.imag).max() > 0.1
    np.testing.assert_allclose(result, image, atol=1e-4)
