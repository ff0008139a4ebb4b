"""Readers and writers, on fixtures the tests write themselves or that ship with pydicom
and nibabel."""

import gzip
import shutil
import subprocess
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest

from pipelines.formats import InputError, discover, read_input
from pipelines.formats.cfl import read_bart, write_bart
from pipelines.formats.dicom import read_dicom
from pipelines.formats.dicom_write import write_dicom_series
from pipelines.formats.fastmri import read_fastmri, write_fastmri
from pipelines.formats.ismrmrd import read_ismrmrd
from pipelines.formats.nifti import read_nifti, write_nifti
from recon.classical.bart import read_cfl, write_cfl
from tests.toys import NIBABEL_DICOM, PYDICOM_FILES, dicom_series_fixture, fastmri_fixture


def _dciodvfy_errors(path: Path) -> list[str]:
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return [line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")]


def test_nifti_round_trip_keeps_affine_and_writes_float32(tmp_path):
    data = np.random.default_rng(0).integers(0, 500, size=(20, 24, 3, 2)).astype(np.int16)
    affine = np.diag([0.9, 1.1, 3.0, 1.0])
    image = nib.Nifti1Image(data, affine)
    image.header.set_slope_inter(2.0, 5.0)
    nib.save(image, tmp_path / "in.nii.gz")
    study = read_nifti(tmp_path / "in.nii.gz")
    assert study.images.shape == (6, 20, 24)  # 4-D: Z * T slices
    np.testing.assert_allclose(study.images[4], data[:, :, 1, 1] * 2.0 + 5.0)
    write_nifti(tmp_path / "out.nii.gz", study.images, study.meta)
    back = nib.load(tmp_path / "out.nii.gz")
    assert back.get_data_dtype() == np.float32 and back.shape == data.shape
    np.testing.assert_allclose(back.affine, affine)
    np.testing.assert_allclose(np.asarray(back.dataobj), data * 2.0 + 5.0)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_nifti_with_nan_is_rejected_with_the_file_name(tmp_path):
    data = np.ones((20, 20, 2), np.float32)
    data[3, 3, 1] = np.nan
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "nan.nii")
    with pytest.raises(InputError, match=r"nan\.nii.*NaN"):
        read_nifti(tmp_path / "nan.nii")


def test_dicom_series_sorted_by_position_and_rescaled(tmp_path):
    values = dicom_series_fixture(tmp_path / "series", slope=2.0, intercept=-10.0)
    (studies, notes) = read_dicom(sorted((tmp_path / "series").iterdir()), "series", tmp_path / "series")
    assert len(studies) == 1 and not notes
    np.testing.assert_allclose(studies[0].images, values)
    positions = [s["position"][2] for s in studies[0].meta["slices"]]
    assert positions == sorted(positions)


def test_real_mr_files_and_a_derived_series_that_passes_dciodvfy(tmp_path):
    folder = tmp_path / "siemens"
    folder.mkdir()
    for name in ("1.dcm", "0.dcm"):
        shutil.copy(NIBABEL_DICOM / name, folder / name)
    (studies, _) = read_dicom(sorted(folder.iterdir()), "siemens", folder)
    study = studies[0]
    assert study.images.shape == (2, 256, 256)
    assert [s["position"][2] for s in study.meta["slices"]] == [-75.097641, -72.097641]
    written = write_dicom_series(tmp_path / "derived", study.images * 0.5, study.meta, "recon cs-tv 10pct cartesian")
    first = pydicom.dcmread(written[0])
    source = pydicom.dcmread(folder / "0.dcm")
    assert first.SeriesInstanceUID != source.SeriesInstanceUID and first.SOPInstanceUID != source.SOPInstanceUID
    assert list(first.ImageType) == ["DERIVED", "SECONDARY", "OTHER"] and first.SOPClassUID == pydicom.uid.MRImageStorage
    assert first.PatientID == source.PatientID and first.StudyInstanceUID == source.StudyInstanceUID
    assert first.SeriesDescription == "recon cs-tv 10pct cartesian"
    assert [float(v) for v in first.ImagePositionPatient] == pytest.approx(study.meta["slices"][0]["position"])
    (again, _) = read_dicom(written, "derived", tmp_path / "derived")
    np.testing.assert_allclose(again[0].images, np.rint(study.images * 0.5), atol=0.5)
    if shutil.which("dciodvfy"):
        assert _dciodvfy_errors(written[0]) == []


def test_enhanced_multiframe_mr(tmp_path):
    dataset = pydicom.dcmread(gzip.open(NIBABEL_DICOM / "philips_mprage.dcm.gz"))
    frames = 3
    dataset.PerFrameFunctionalGroupsSequence = dataset.PerFrameFunctionalGroupsSequence[:frames][::-1]
    dataset.NumberOfFrames = frames
    pixels = (np.arange(frames)[:, None, None] * 100 + np.ones((1, dataset.Rows, dataset.Columns)) * 50).astype(np.uint16)
    dataset.PixelData = pixels.tobytes()
    dataset.save_as(tmp_path / "enhanced.dcm")
    (studies, _) = read_dicom([tmp_path / "enhanced.dcm"], "enhanced", tmp_path / "enhanced.dcm")
    study = studies[0]
    assert study.images.shape == (frames, dataset.Rows, dataset.Columns)
    normal = np.cross(*np.reshape(study.meta["slices"][0]["orientation"], (2, 3)))
    along = [float(np.dot(normal, s["position"])) for s in study.meta["slices"]]
    assert along == sorted(along)
    slope, intercept = study.meta["slices"][0]["rescale"]
    assert slope != 1.0  # the per-frame Pixel Value Transformation was applied
    stored = sorted({float(v) for v in np.unique(study.images)})
    np.testing.assert_allclose(stored, sorted(np.array([50, 150, 250]) * slope + intercept), rtol=1e-5)
    written = write_dicom_series(tmp_path / "derived", study.images, study.meta, "recon zero-filled 10pct")
    assert len(written) == frames and pydicom.dcmread(written[0]).SourceImageSequence[0].ReferencedFrameNumber
    if shutil.which("dciodvfy"):
        assert _dciodvfy_errors(written[0]) == []


def test_two_series_in_one_folder_are_split(tmp_path):
    dicom_series_fixture(tmp_path / "mixed", count=2)
    dicom_series_fixture(tmp_path / "other", count=3)
    for path in (tmp_path / "other").iterdir():
        shutil.move(path, tmp_path / "mixed" / f"b_{path.name}")
    studies, notes = read_input(tmp_path / "mixed")
    assert sorted(s.slices for s in studies) == [2, 3]
    assert len({s.name for s in studies}) == 2 and any("holds 2 series" in note for note in notes)


def test_dicom_without_pixels_is_skipped_and_bad_files_are_named(tmp_path):
    dicom_series_fixture(tmp_path / "series", count=2)
    report = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    del report.PixelData
    report.save_as(tmp_path / "series" / "report.dcm")
    studies, notes = read_input(tmp_path / "series")
    assert studies[0].slices == 2 and any("report.dcm: no pixel data" in note for note in notes)
    only = tmp_path / "only"
    only.mkdir()
    shutil.move(tmp_path / "series" / "report.dcm", only / "report.dcm")
    with pytest.raises(InputError, match="no DICOM image"):
        read_input(only)
    with pytest.raises(InputError, match="MR_truncated"):
        read_input(PYDICOM_FILES / "MR_truncated.dcm")


def test_compressed_dicom_without_a_decoder_gets_a_clear_message():
    path = PYDICOM_FILES / "MR_small_jpeg_ls_lossless.dcm"
    try:
        _ = pydicom.dcmread(path).pixel_array
        pytest.skip("a JPEG-LS decoder is installed here")
    except Exception:  # noqa: BLE001
        pass
    with pytest.raises(InputError, match=r"MR_small_jpeg_ls_lossless.*JPEG-LS.*decoder"):
        read_input(path)


def test_fastmri_read_crop_mask_and_write(tmp_path):
    target = fastmri_fixture(tmp_path / "file.h5", mask=True)
    study = read_fastmri(tmp_path / "file.h5")
    assert study.kspace.shape == (3, 4, 64, 48) and study.mask.shape == (64, 48)
    assert study.mask[:, ::3].all() and not study.mask[:, 1].any()
    assert study.reference.shape == (3, 40, 40)
    np.testing.assert_allclose(study.reference, target[:, 12:52, 4:44])
    write_fastmri(tmp_path / "out.h5", study.reference, {"method": "zero-filled"})
    with h5py.File(tmp_path / "out.h5") as handle:
        np.testing.assert_allclose(handle["reconstruction"][()], study.reference)
        assert handle.attrs["method"] == "zero-filled"
    (tmp_path / "bad.h5").write_bytes((tmp_path / "file.h5").read_bytes()[:3000])
    with pytest.raises(InputError, match="bad.h5"):
        read_input(tmp_path / "bad.h5")


@pytest.mark.skipif(not shutil.which("ismrmrd_generate_cartesian_shepp_logan"), reason="ismrmrd-tools not installed")
@pytest.mark.parametrize("acceleration", [1, 2])
def test_ismrmrd_shepp_logan(tmp_path, acceleration):
    path = tmp_path / "shepp.h5"
    subprocess.run(["ismrmrd_generate_cartesian_shepp_logan", "-m", "64", "-c", "4", "-a", str(acceleration),
                    "-w", "16", "-C", "-o", str(path)], check=True, capture_output=True)
    study = read_ismrmrd(path)
    assert study.kspace.shape == (1, 4, 64, 64)  # readout oversampling (128) removed
    image = np.sqrt((np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(study.kspace, axes=(-2, -1))), axes=(-2, -1))) ** 2).sum(1))[0]
    if acceleration == 1:
        assert study.mask is None
        assert np.corrcoef(image.ravel(), study.meta["phantom"][0].ravel())[0, 1] > 0.95
    else:  # every other line plus the 16-line calibration centre
        assert study.mask is not None and 0.5 < study.mask.mean() < 0.7
        assert study.mask[:, 24:40].all()


def test_cfl_round_trip_and_undersampling_detected(tmp_path):
    rng = np.random.default_rng(0)
    kspace = (rng.standard_normal((32, 24, 1, 3)) + 1j * rng.standard_normal((32, 24, 1, 3))).astype(np.complex64)
    kspace[:, 1::2] = 0
    write_cfl(tmp_path / "ksp", kspace)
    study = read_bart(tmp_path / "ksp.cfl")
    assert study.kspace.shape == (1, 3, 32, 24)
    np.testing.assert_array_equal(study.kspace[0, 2], kspace[:, :, 0, 2])
    assert study.mask[:, ::2].all() and not study.mask[:, 1::2].any()
    images = rng.random((2, 32, 24)).astype(np.float32)
    write_bart(tmp_path / "out", images)
    np.testing.assert_allclose(read_cfl(tmp_path / "out"), np.transpose(images, (1, 2, 0)))


def test_discover_groups_dicom_folders_and_lists_files(tmp_path):
    dicom_series_fixture(tmp_path / "study" / "series1", count=2)
    nib.save(nib.Nifti1Image(np.ones((20, 20, 2), np.float32), np.eye(4)), tmp_path / "study" / "vol.nii.gz")
    write_cfl(tmp_path / "study" / "raw", np.ones((20, 20), np.complex64))
    units = discover([tmp_path / "study"])
    assert sorted(p.name for p in units) == ["raw.cfl", "series1", "vol.nii.gz"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="nothing to reconstruct"):
        discover([tmp_path / "empty"])


def test_fastmri_multicoil_oversampled_readout_is_prewhitened_from_its_margin_and_cropped(tmp_path):
    # a knee-like file: encodedSpace x = 2 x reconSpace x, an object inside the central half of
    # the readout, and noise correlated across the 4 coils (what a scanner writes)
    rng = np.random.default_rng(3)
    image = np.zeros((2, 1, 128, 48), np.complex64)
    image[:, :, 40:88, 10:38] = 1 + rng.random((2, 1, 48, 28))
    coils = np.exp(1j * np.linspace(0, 2, 4))[None, :, None, None] * np.array([1, 0.8, 0.6, 1.2])[None, :, None, None]
    mixing = np.array([[1, 0, 0, 0], [0.7, 0.7, 0, 0], [0.2, 0.3, 0.9, 0], [0, 0, 0.5, 0.8]])
    white = rng.standard_normal((2, 4, 128, 48)) + 1j * rng.standard_normal((2, 4, 128, 48))
    noise = np.einsum("cd,ndhw->nchw", mixing, white) * 0.01
    kspace = (np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image * coils, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
              + noise).astype(np.complex64)
    header = ("<ismrmrdHeader><encoding><encodedSpace><matrixSize><x>128</x><y>48</y><z>1</z></matrixSize>"
              "</encodedSpace><reconSpace><matrixSize><x>64</x><y>48</y><z>1</z></matrixSize></reconSpace>"
              "</encoding></ismrmrdHeader>")
    with h5py.File(tmp_path / "knee.h5", "w") as handle:
        handle.create_dataset("kspace", data=kspace)
        handle.create_dataset("ismrmrd_header", data=header)
    study = read_fastmri(tmp_path / "knee.h5")
    assert study.kspace.shape == (2, 4, 64, 48)  # the readout's oversampling removed
    corrections = study.meta["corrections"]
    assert corrections["readout_oversampling_removed"] == 2.0 and corrections["prewhitened"].startswith("readout")
    assert any("prewhitened with the noise of the readout" in note for note in study.notes)
    # the edge of the cropped field of view holds noise only: whitened, its coils are uncorrelated with equal power
    edge = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(study.kspace, axes=(-2, -1)), norm="ortho"),
                           axes=(-2, -1))[:, :, :6].transpose(1, 0, 2, 3).reshape(4, -1)
    covariance = edge @ edge.conj().T / edge.shape[1]
    assert np.abs(covariance - np.eye(4) * np.trace(covariance).real / 4).max() < 0.25 * np.trace(covariance).real / 4
    raw_edge = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(kspace, axes=(-2, -1)), norm="ortho"),
                               axes=(-2, -1))[:, :, 32:38].transpose(1, 0, 2, 3).reshape(4, -1)
    raw = raw_edge @ raw_edge.conj().T / raw_edge.shape[1]
    assert np.abs(raw - np.eye(4) * np.trace(raw).real / 4).max() > 0.4 * np.trace(raw).real / 4  # it was correlated
