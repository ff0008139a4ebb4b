"""``recon batch`` end to end over a mixed folder, with bad files, an interruption and
``--resume``."""

import json
import os

import h5py
import nibabel as nib
import numpy as np
import pydicom
import pytest

import pipelines.batch.scheduling as batch
import pipelines.formats.writers as writers
from pipelines.cli.main import main
from tests.toys import dicom_series_fixture, fastmri_fixture


def _volume(size=32, slices=2, seed=0):
    rng = np.random.default_rng(seed)
    data = np.zeros((size, size, slices), np.float32)
    data[8:24, 6:26] = 100 + 50 * rng.random((16, 20, slices))
    return data


@pytest.fixture
def mixed(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    nib.save(nib.Nifti1Image(_volume(), np.diag([1.0, 1.0, 3.0, 1.0])), folder / "brain.nii.gz")
    dicom_series_fixture(folder / "series", count=2)
    np.save(folder / "slices.npy", np.moveaxis(_volume(seed=1), -1, 0))
    fastmri_fixture(folder / "raw.h5", mask=True)
    (folder / "truncated.h5").write_bytes((folder / "raw.h5").read_bytes()[:2000])
    bad = _volume(seed=2)
    bad[1, 1, 0] = np.nan
    nib.save(nib.Nifti1Image(bad, np.eye(4)), folder / "nan.nii.gz")
    return folder


def test_mixed_folder_bad_files_interruption_and_resume(mixed, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    real = batch.process_unit
    calls = []

    def interrupted(unit, *args, **kwargs):
        calls.append(unit)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(unit, *args, **kwargs)

    monkeypatch.setattr(batch, "process_unit", interrupted)
    assert main(["batch", str(mixed), "--out", str(out), "--methods", "zero-filled"]) == 130  # SIGINT
    manifest = json.loads((out / "manifest.json").read_text())
    finished = [entry for entry in manifest["units"].values() if entry["status"] in ("done", "failed")]
    assert len(finished) == 2  # recorded before the interruption, outputs in place
    for entry in finished:
        assert all((out / output).exists() for output in entry["outputs"])

    monkeypatch.setattr(batch, "process_unit", real)
    assert main(["batch", str(mixed), "--out", str(out), "--methods", "zero-filled"]) == 2  # not without --resume
    capsys.readouterr()
    code = main(["batch", str(mixed), "--out", str(out), "--methods", "zero-filled", "--resume"])
    captured = capsys.readouterr()
    assert code == 3  # finished, with the two bad files failed
    done_before = sum(entry["status"] == "done" for entry in finished)
    assert f"{done_before} already done (resume)" in captured.out
    assert "truncated.h5" in captured.out and "nan.nii.gz" in captured.out and "NaN" in captured.out
    assert (out / "brain_zero-filled.nii.gz").is_file() and (out / "slices_zero-filled.npy").is_file()
    assert (out / "zero-filled" / "raw.h5").is_file() and (out / "series_zero-filled" / "0001.dcm").is_file()
    nifti = nib.load(out / "brain_zero-filled.nii.gz")
    assert nifti.shape == (32, 32, 2) and nifti.get_data_dtype() == np.float32
    np.testing.assert_allclose(nifti.affine, np.diag([1.0, 1.0, 3.0, 1.0]))
    derived = pydicom.dcmread(out / "series_zero-filled" / "0001.dcm")
    assert "zero-filled" in derived.SeriesDescription and "DERIVED" in derived.ImageType
    with h5py.File(out / "zero-filled" / "raw.h5") as handle:
        assert handle["reconstruction"].shape == (3, 40, 40)  # cropped to reconSpace
    report = json.loads((out / "raw.metrics.json").read_text())
    assert report["kspace"] == "measured" and report["mask"] == "from file"
    assert report["methods"]["zero-filled"]["psnr"] > 5
    brain = json.loads((out / "brain.metrics.json").read_text())
    assert brain["kspace"] == "simulated" and abs(brain["ratio"] - 0.1) < 0.05
    assert [p.name for p in out.rglob(".*")] == []  # no temporary files left, and no lock once the batch ended
    assert "truncated.h5" in (out / "report.html").read_text()  # failures are listed in the report


def test_a_write_failure_fails_that_file_only(mixed, tmp_path, monkeypatch, capsys):
    real = writers.write_nifti

    def failing(path, images, meta, **options):
        if "brain" in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, images, meta, **options)

    monkeypatch.setattr(writers, "write_nifti", failing)
    out = tmp_path / "out"
    code = main(["batch", str(mixed / "brain.nii.gz"), str(mixed / "slices.npy"), "--out", str(out),
                 "--methods", "zero-filled", "--format", "nifti"])
    assert code == 3
    assert "Permission denied" in capsys.readouterr().out
    assert (out / "slices_zero-filled.nii.gz").is_file()


def test_read_only_output_and_empty_input_are_usage_errors(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["batch", str(tmp_path / "empty"), "--out", str(tmp_path / "out")]) == 2
    assert "nothing to reconstruct" in capsys.readouterr().err
    nib.save(nib.Nifti1Image(_volume(), np.eye(4)), tmp_path / "vol.nii")
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    read_only.chmod(0o555)
    if os.access(read_only, os.W_OK):  # root ignores permissions: use a read-only file system instead
        read_only = "/proc/recon-read-only-test"
    assert main(["batch", str(tmp_path / "vol.nii"), "--out", str(read_only)]) == 2
    assert "cannot write to output folder" in capsys.readouterr().err


def test_parts_split_the_inputs_and_two_workers_finish_them(tmp_path):
    for index in range(3):
        nib.save(nib.Nifti1Image(_volume(seed=index), np.eye(4)), tmp_path / f"v{index}.nii")
    inputs = [str(tmp_path / f"v{index}.nii") for index in range(3)]
    assert main(["batch", *inputs, "--out", str(tmp_path / "p1"), "--methods", "zero-filled", "--part", "1/2"]) == 0
    assert sorted(p.name for p in (tmp_path / "p1").glob("*.nii.gz")) == ["v0_zero-filled.nii.gz", "v2_zero-filled.nii.gz"]
    assert main(["batch", *inputs, "--out", str(tmp_path / "w2"), "--methods", "zero-filled", "--workers", "2"]) == 0
    assert len(list((tmp_path / "w2").glob("*.nii.gz"))) == 3


def test_batch_trust_check_and_report(tmp_path, capsys):
    nib.save(nib.Nifti1Image(_volume(size=48), np.eye(4)), tmp_path / "vol.nii")
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "vol.nii"), "--out", str(out), "--mask", "30pct",
                 "--methods", "zero-filled,cs-l1,gan-drn"]) == 0
    record = json.loads((out / "vol.metrics.json").read_text())["methods"]["gan-drn"]
    assert record["dc_residual_max"] < 1e-5 and record["hallucination_reference"] == "cs-l1"
    assert 0 <= record["hallucination_energy"] < 1 and "hallucination_energy" not in json.loads(
        (out / "vol.metrics.json").read_text())["methods"]["cs-l1"]
    report = (out / "report.html").read_text()
    assert "vs cs-l1" in report and "previews" not in report.split("<body>")[0] and 'src="data:image/png' in report
    (out / "report.html").unlink()
    assert main(["report", str(out)]) == 0 and (out / "report.html").is_file()


def test_measured_kspace_without_reference_is_ranked_by_the_estimate(tmp_path):
    from physics.fft import fft2c

    rng = np.random.default_rng(4)
    image = np.zeros((2, 64, 64), np.complex64)
    image[:, 12:52, 14:50] = 1 + rng.random((2, 40, 36))
    columns = np.zeros(64, bool)
    columns[::3] = columns[28:36] = True
    with h5py.File(tmp_path / "raw.h5", "w") as handle:  # fastMRI layout, single coil, no reconstruction to compare with
        handle.create_dataset("kspace", data=(fft2c(image) * columns).astype(np.complex64))
        handle.create_dataset("mask", data=columns)
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "raw.h5"), "--out", str(out), "--methods", "zero-filled,cs-tv,gan-drn"]) == 0
    study = json.loads((out / "raw.metrics.json").read_text())
    assert study["kspace"] == "measured" and all("psnr" not in r for r in study["methods"].values())
    for record in study["methods"].values():
        assert len(record["estimated_psnr_slices"]) == 2 and np.isfinite(record["estimated_psnr"])
    assert study["estimate"]["folds"] == 4 and sorted(study["estimate"]["ranked"]) == ["cs-tv", "gan-drn", "zero-filled"]
    # a scanner's data is calibrated as measured data, judged against its own full scan
    assert study["estimate"]["regime"] == "measured"
    # a mask from the file has no family: the measured regime's entry for its kind
    assert study["methods"]["cs-tv"]["estimate_calibration"] == "cs:1d:1c-measured"
    assert study["methods"]["gan-drn"]["guard_reference"] == "cs-tv"
    report = (out / "report.html").read_text()
    assert "1 of 1 outputs have no reference and are ranked by the estimate" in report


def test_guard_writes_the_best_cs_output_where_the_learned_one_is_flagged(tmp_path):
    """The sample slice on a 2-D mask at 50pct, where the learned models lose 1.6 dB to CS
    (tests/pipelines/test_known_answers.py): the guard, on by default, flags csr-gan and
    writes the CS slice in its place, while its metrics stay its own; --no-guard writes
    csr-gan's own slice and still records the verdict."""
    from pipelines.data.sample import sample

    image = np.asarray(sample("test").images[0], np.float32)
    nib.save(nib.Nifti1Image(image[:, :, None], np.eye(4)), tmp_path / "brain.nii.gz")
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "brain.nii.gz"), "--out", str(out), "--mask", "50pct", "--mask-type", "vd2d",
                 "--methods", "cs-l1,cs-tv,csr-gan"]) == 0
    study = json.loads((out / "brain.metrics.json").read_text())
    learned = study["methods"]["csr-gan"]
    assert learned["guard_flagged"] == 1 and learned["psnr"] < study["methods"][learned["guard_reference"]]["psnr"]
    assert learned["guard_output_slices"] == [learned["guard_reference"]]
    assert learned["guard_reasons"][0].startswith(f"{learned['guard_reference']}: csr-gan's estimated lead")
    assert learned["written_psnr"] == pytest.approx(study["methods"][learned["guard_reference"]]["psnr"])
    assert "zero-filled" in study["methods"]  # added as a fallback the guard may choose
    written = nib.load(out / "brain_csr-gan.nii.gz").get_fdata()
    reference = nib.load(out / f"brain_{learned['guard_reference']}.nii.gz").get_fdata()
    assert np.allclose(written, reference)
    assert any("guard" in note for note in study["notes"])
    assert (out / "previews" / "brain_reference.png").is_file() and (out / "previews" / "brain_csr-gan.png").is_file()
    # the file, its sidecar, the report and the terminal say which method's image it holds
    cs = learned["guard_reference"]
    descrip = nib.load(out / "brain_csr-gan.nii.gz").header["descrip"].tobytes().decode()
    assert descrip.startswith(f"recon {cs} image, not csr-gan")
    sidecar = json.loads((out / "brain_csr-gan.json").read_text())
    assert sidecar["output"] == "brain_csr-gan.nii.gz" and sidecar["slices"][0]["image_of"] == cs
    assert sidecar["slices"][0]["guard_reason"].startswith(f"{cs}: csr-gan's estimated lead")
    own = json.loads((out / f"brain_{cs}.json").read_text())
    assert own["holds"] == f"{cs} output" and own["slices"][0]["image_of"] == cs
    report = (out / "report.html").read_text()
    assert f"shows {cs}'s image: the guard wrote it on this slice" in report and "file holds:" in report
    assert "previews/brain_mask.png" in json.dumps(study["preview"]) and 'alt="mask brain"' in report
    assert "{HALLUCINATION_THRESHOLD" not in report and "Results (1 file, 4 methods)" in report
    off = tmp_path / "off"
    assert main(["batch", str(tmp_path / "brain.nii.gz"), "--out", str(off), "--mask", "50pct", "--mask-type", "vd2d",
                 "--methods", "cs-tv,csr-gan", "--no-guard"]) == 0
    study = json.loads((off / "brain.metrics.json").read_text())
    assert set(study["methods"]) == {"cs-tv", "csr-gan"} and "guard_output_slices" not in study["methods"]["csr-gan"]
    assert study["methods"]["csr-gan"]["guard_reasons"][0].startswith("csr-gan (--no-guard)")
    assert not np.allclose(nib.load(off / "brain_csr-gan.nii.gz").get_fdata(), nib.load(off / "brain_cs-tv.nii.gz").get_fdata())


def test_adapt_fine_tunes_on_the_scan_and_records_it(tmp_path, monkeypatch):
    """``recon batch --adapt``: the learned method is fine-tuned on the file's own k-space
    (a short time limit here) and its metrics record the adaptation and its estimated gain."""
    import recon.training.adapt as adapt
    from pipelines.data.sample import sample

    monkeypatch.setattr(adapt, "ADAPT_SECONDS", float("inf"))  # bounded by steps: the same on a loaded machine
    monkeypatch.setattr(adapt, "ADAPT_MAX_STEPS", 6)
    images = np.asarray(sample("test").images[4:6], np.float32)
    images = images.reshape(2, 128, 2, 128, 2).mean(axis=(2, 4))
    nib.save(nib.Nifti1Image(np.moveaxis(images, 0, -1), np.eye(4)), tmp_path / "brain.nii.gz")
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "brain.nii.gz"), "--out", str(out), "--mask", "25pct",
                 "--methods", "gan-drn", "--adapt", "--estimate-folds", "2"]) == 0
    study = json.loads((out / "brain.metrics.json").read_text())
    record = study["methods"]["gan-drn"]
    assert "adapted" in record and record["adapt_steps"] == 6
    assert record["adapt_validation_after"] <= record["adapt_validation_before"]
    # adapted weights are kept only for an estimated gain of 0.3 dB; either way the notes say what happened
    assert record["adapted"] == (record["adapt_gain_db"] >= 0.3)
    assert any(note.startswith("--adapt gan-drn: ") for note in study["notes"])
