"""Inputs that used to give silently wrong output, or a traceback, get a clear error or
a note that reaches the metrics and the batch summary."""

import json

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest

from pipelines.cli.main import main
from pipelines.formats import InputError, read_input
from tests.toys import dicom_series_fixture, fastmri_fixture


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def _phantom(size: int = 48) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    disk = ((yy - size / 2) ** 2 + (xx - size / 2) ** 2 < (size / 3) ** 2).astype(np.float32)
    return disk * (1 + 0.5 * (yy > size / 2))


def test_complex_nifti_keeps_its_phase(tmp_path, recwarn):
    magnitude = _phantom()
    phase = np.exp(1j * np.linspace(0, np.pi, magnitude.shape[1]))[None, :]
    data = (magnitude * phase).astype(np.complex64)[..., None]
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "complex.nii.gz")
    studies, notes = read_input(tmp_path / "complex.nii.gz")
    assert studies[0].images.dtype == np.complex64
    np.testing.assert_allclose(studies[0].images[0], data[..., 0], atol=1e-6)
    assert any("complex NIfTI" in note for note in notes)
    assert not [w for w in recwarn if "ComplexWarning" in type(w.message).__name__]
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "complex.nii.gz"), "--out", str(out), "--methods", "zero-filled", "--mask", "50pct"]) == 0
    written = nib.load(out / "complex_zero-filled.nii.gz").get_fdata()[..., 0]
    assert written.max() > 0.5 * magnitude.max()  # the image, not its (zero) real part dropped to nothing
    metrics = json.loads((out / "complex.metrics.json").read_text())
    assert metrics["methods"]["zero-filled"]["psnr"] > 15 and any("complex" in n for n in metrics["notes"])


def test_rgb_nifti_is_refused(tmp_path, capsys):
    rgb = np.zeros((32, 32, 2), dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
    nib.save(nib.Nifti1Image(rgb, np.eye(4)), tmp_path / "rgb.nii.gz")
    with pytest.raises(InputError, match=r"rgb.nii.gz.*RGB"):
        read_input(tmp_path / "rgb.nii.gz")
    assert main(["run", "--input", str(tmp_path / "rgb.nii.gz"), "--out", str(tmp_path / "run")]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "rgb.nii.gz" in line and "RGB" in line


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["run", "--noise-snr", "nan"], "--noise-snr"),
        (["run", "--noise-snr", "inf"], "--noise-snr"),
        (["run", "--slices", "0"], "--slices"),
        (["run", "--center-fraction", "2"], "--center-fraction"),
        (["run", "--coils", "-3"], "--coils"),
        (["train", "--val-every", "0"], "--val-every"),
        (["train", "--lr-g", "nan"], "--lr-g"),
        (["train", "--device", "nonsense"], "--device"),
        (["train", "--generator", "width=abc"], "--generator"),
        (["train", "--generator", "wdth=3"], "--generator"),
        (["train", "--coils", "1,0"], "--coils"),
        (["train", "--coils", "two"], "--coils"),
        (["train", "--mask-type", "cartesian,spiral"], "--mask-type"),
        (["train", "--mix", "videos"], "--mix"),
        (["batch", "x", "--out", "y", "--workers", "0"], "--workers"),
        (["mask", "--shape", "0,5", "--out", "m.npy"], "--shape"),
    ],
)
def test_bad_numeric_options_name_the_option(tmp_path, capsys, argv, option):
    assert main(argv + (["--out", str(tmp_path / "o")] if argv[0] in ("run", "train") else [])) == 2
    line = _one_line(capsys.readouterr().err)
    assert option in line
    assert "TypeError" not in line and "Traceback" not in line and "unexpected" not in line


def test_noise_snr_nan_never_writes_nan_metrics(tmp_path):
    assert main(["run", "--slices", "1", "--noise-snr", "nan", "--methods", "zero-filled", "--out", str(tmp_path / "r")]) == 2
    assert not (tmp_path / "r").exists()


def test_non_numeric_rescale_slope_names_the_file_and_tag(tmp_path, capsys):
    dicom_series_fixture(tmp_path / "series", count=2)
    first = sorted((tmp_path / "series").iterdir())[0]
    dataset = pydicom.dcmread(first)
    tag = pydicom.tag.Tag("RescaleSlope")  # written raw: pydicom refuses to set 'abc' as a DS
    dataset._dict[tag] = pydicom.dataelem.RawDataElement(tag, "DS", 4, b"abc ", 0, False, True)
    dataset.save_as(first)
    with pytest.raises(InputError, match=rf"{first.name}.*RescaleSlope.*not a number"):
        read_input(tmp_path / "series")
    assert main(["batch", str(tmp_path / "series"), "--out", str(tmp_path / "out"), "--methods", "zero-filled"]) == 3
    out = capsys.readouterr().out
    assert "RescaleSlope" in out and "unexpected" not in out


def test_duplicated_sop_instance_uids_are_read_once_with_a_note(tmp_path, capsys):
    dicom_series_fixture(tmp_path / "series", count=3)
    first = sorted((tmp_path / "series").iterdir())[0]
    (tmp_path / "series" / "copy_of_first.dcm").write_bytes(first.read_bytes())
    studies, notes = read_input(tmp_path / "series")
    assert len(studies[0].images) == 3
    assert any("SOPInstanceUID" in note and "copy_of_first.dcm" in note for note in notes)
    code = main(["batch", str(tmp_path / "series"), "--out", str(tmp_path / "out"), "--methods", "zero-filled"])
    assert code == 0 and "SOPInstanceUID" in capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert any("SOPInstanceUID" in n for e in summary["units"].values() for n in e["notes"])


def test_mixed_orientations_are_an_error(tmp_path):
    dicom_series_fixture(tmp_path / "series", count=3)
    first = sorted((tmp_path / "series").iterdir())[0]
    dataset = pydicom.dcmread(first)
    dataset.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]  # a sagittal slice in an axial series
    dataset.save_as(first)
    with pytest.raises(InputError, match="mixes 2 slice orientations"):
        read_input(tmp_path / "series")


def test_nan_positions_drop_the_geometry_with_a_note(tmp_path):
    dicom_series_fixture(tmp_path / "series", count=3)
    first = sorted((tmp_path / "series").iterdir())[0]
    dataset = pydicom.dcmread(first)
    dataset.ImagePositionPatient = ["nan", "0", "0"]
    dataset.save_as(first)
    studies, notes = read_input(tmp_path / "series")
    assert any("NaN" in note and first.name in note for note in notes)
    assert all(s["position"] is None for s in studies[0].meta["slices"])


def test_reference_with_fewer_slices_than_kspace_is_noted(tmp_path, capsys):
    path = tmp_path / "raw.h5"
    fastmri_fixture(path, mask=True)
    with h5py.File(path, "a") as handle:
        reference = handle["reconstruction_rss"][:2]
        del handle["reconstruction_rss"]
        handle.create_dataset("reconstruction_rss", data=reference)
    studies, notes = read_input(path)
    assert studies[0].reference is None and any("does not fit k-space of 3 slices" in n for n in notes)
    assert main(["batch", str(path), "--out", str(tmp_path / "out"), "--methods", "zero-filled"]) == 0
    assert "does not fit" in capsys.readouterr().err
    metrics = json.loads((tmp_path / "out" / "raw.metrics.json").read_text())
    assert any("does not fit" in note for note in metrics["notes"]) and "psnr" not in metrics["methods"]["zero-filled"]
