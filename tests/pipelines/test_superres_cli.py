"""Super-resolution from the command line: ``recon run --mask lowres-2x`` (in-plane,
with the trust check and the report), and ``recon sr`` (through-plane) on NIfTI and
DICOM, with the thin-slice geometry."""

import json

import nibabel as nib
import numpy as np
import pydicom
import pytest

from masks import make_mask
from pipelines.cli.main import main
from pipelines.config import RunConfig
from pipelines.formats import read_input
from pipelines.run.workflow import _methods
from recon.classical.through_plane import thicken
from tests.toys import dicom_series_fixture


def test_lowres_presets_pick_the_family_and_the_sr_methods():
    config = RunConfig(mask="lowres-4x")
    assert config.mask_type == "lowres"
    names, _ = _methods(config, 1, make_mask("lowres-4x", (64, 64)))
    assert {"bicubic", "soup-gan", "med-gan", "esrgan", "mpp-gan"} <= set(names)
    names, notes = _methods(RunConfig(mask="10pct"), 1, make_mask("10pct", (64, 64)))
    assert "soup-gan" not in names and "bicubic" not in names
    assert any("soup-gan" in note and "skipped: super-resolution methods" in note for note in notes)
    with pytest.raises(ValueError, match="conflicts"):
        RunConfig(mask="lowres-2x", mask_type="vd2d")


def test_run_in_plane_sr_keeps_the_block_and_reports_what_it_added(tmp_path, capsys):
    out = tmp_path / "sr"
    code = main(["run", "--mask", "lowres-2x", "--slices", "1", "--methods", "zero-filled,bicubic,soup-gan",
                 "--estimate-folds", "0", "--out", str(out)])
    assert code == 0
    assert "mask lowres-2x lowres: achieved ratio 0.2500" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    records = {r["method"]: r for r in metrics["records"]}
    assert records["soup-gan"]["dc_residual"] <= 1e-5
    assert 0 < records["soup-gan"]["hallucination_energy"] < 1
    assert list((out / "images").glob("soup-gan_*_hallucination.png"))
    assert "soup-gan" in (out / "report.html").read_text()


def test_run_in_plane_sr_estimates_each_method_error_without_the_reference(tmp_path, capsys):
    out = tmp_path / "sr"
    code = main(["run", "--mask", "lowres-4x", "--slices", "1", "--methods", "zero-filled,bicubic,mpp-gan",
                 "--estimate-folds", "2", "--guard", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    records = {r["method"]: r for r in metrics["records"]}
    for name, record in records.items():
        assert len(record["estimated_fold_nmse"]) == 2, name
        assert record["estimate_calibration"] in ("baseline:block", "learned:block"), name
        assert abs(record["estimated_psnr"] - record["psnr"]) < 6, name  # the right size, without the reference
    assert "guard_flagged" not in records["mpp-gan"] and "guard: not applied to super-resolution" in printed


def test_run_refuses_sr_methods_on_an_undersampling_mask(tmp_path, capsys):
    code = main(["run", "--mask", "25pct", "--slices", "1", "--methods", "zero-filled,bicubic", "--out", str(tmp_path / "x")])
    assert code != 0
    assert "central k-space block" in capsys.readouterr().err


def _thick_nifti(path, factor=4):
    rng = np.random.default_rng(0)
    zz, yy, xx = np.mgrid[0:32, 0:24, 0:20]
    thin = (np.sin(zz / 5.0) + 0.5 * np.cos(yy / 4.0) + 0.3 * np.sin(xx / 3.0) + 2).astype(np.float32)
    thin += 0.01 * rng.random(thin.shape, dtype=np.float32)
    thick = thicken(thin, factor)  # (8, 24, 20)
    affine = np.array([[0.9, 0, 0, -10], [0, 0.9, 0, -12], [0, 0, 4.0, 30], [0, 0, 0, 1]])
    nib.save(nib.Nifti1Image(np.moveaxis(thick, 0, -1), affine), path)
    return thin, affine


@pytest.mark.parametrize("method", ["cubic", "soup-gan"])
def test_sr_nifti_thin_slices_with_their_geometry(tmp_path, capsys, method):
    thin, affine = _thick_nifti(tmp_path / "thick.nii.gz")
    out = tmp_path / "out"
    assert main(["sr", str(tmp_path / "thick.nii.gz"), "--slice-factor", "4", "--method", method, "--out", str(out)]) == 0
    assert "8 thick slices -> 32 thin slices" in capsys.readouterr().out
    written = nib.load(out / f"thick_{method}_x4.nii.gz")
    assert written.shape == (24, 20, 32)
    assert written.header.get_zooms()[2] == pytest.approx(1.0)
    # Thin slices 0..3 straddle thick slice 0's centre (z = 30): at 28.5, 29.5, 30.5, 31.5.
    assert (written.affine @ [0, 0, 0, 1])[2] == pytest.approx(28.5)
    assert (written.affine @ [0, 0, 4, 1])[2] == pytest.approx(32.5)
    restored = np.moveaxis(np.asarray(written.dataobj), -1, 0)
    if method == "soup-gan":  # hard data consistency: groups average to the thick slices
        np.testing.assert_allclose(thicken(restored, 4), thicken(thin, 4), atol=1e-3)
    provenance = json.loads((out / "sr.json").read_text())
    assert provenance["slices_out"] == 32
    # the weights that ran are recorded: at 4x the shipped 4x specialist
    assert (provenance["weights"] or "").endswith("soup-gan-z-4x.pt") == (method == "soup-gan")
    assert main(["sr", str(tmp_path / "thick.nii.gz"), "--method", method, "--out", str(out)]) == 2  # no --force


def test_sr_dicom_series_positions_and_spacing(tmp_path, capsys):
    dicom_series_fixture(tmp_path / "series", count=4)  # slices at z = 0, 5, 10, 15
    out = tmp_path / "out"
    assert main(["sr", str(tmp_path / "series"), "--slice-factor", "2", "--method", "cubic", "--out", str(out)]) == 0
    files = sorted((out).glob("*/*.dcm"))
    assert len(files) == 8
    positions = sorted(float(pydicom.dcmread(f).ImagePositionPatient[2]) for f in files)
    assert positions == pytest.approx([-1.25, 1.25, 3.75, 6.25, 8.75, 11.25, 13.75, 16.25])
    study = read_input(out / next(out.glob("*/")).name)[0][0]
    assert study.images.shape[0] == 8


def test_sr_names_bad_inputs(tmp_path, capsys):
    (tmp_path / "bad.nii.gz").write_bytes(b"not a nifti")
    assert main(["sr", str(tmp_path / "bad.nii.gz"), "--out", str(tmp_path / "o")]) == 2
    assert "bad.nii.gz" in capsys.readouterr().err
    nib.save(nib.Nifti1Image(np.ones((32, 32, 1), np.float32), np.eye(4)), tmp_path / "one.nii.gz")
    assert main(["sr", str(tmp_path / "one.nii.gz"), "--method", "cubic", "--out", str(tmp_path / "o")]) == 2
    assert "one slice" in capsys.readouterr().err


def test_batch_slice_factor_restores_every_volume_and_resumes(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    _thick_nifti(inputs / "a.nii.gz")
    dicom_series_fixture(inputs / "series", count=4)
    (inputs / "broken.nii.gz").write_bytes(b"not a nifti")
    out = tmp_path / "out"
    code = main(["batch", str(inputs), "--out", str(out), "--slice-factor", "4", "--methods", "cubic,sinc"])
    assert code == 3  # the broken file failed, the others were done
    assert "broken.nii.gz" in capsys.readouterr().out
    written = nib.load(out / "a_cubic_x4.nii.gz")
    assert written.shape == (24, 20, 32) and written.header.get_zooms()[2] == pytest.approx(1.0)
    assert (out / "a_sinc_x4.nii.gz").is_file()
    series = [folder for folder in out.iterdir() if folder.is_dir() and folder.name.endswith("_cubic_x4")]
    assert len(series) == 1 and len(list(series[0].glob("*.dcm"))) == 16
    record = json.loads((out / "a.metrics.json").read_text())
    assert record["slices_out"] == 32 and set(record["methods"]) == {"cubic", "sinc"}
    report = (out / "report.html").read_text()
    assert "<td>a</td><td>cubic" in report or "<td>a</td><td>sinc" in report
    # finished volumes are skipped on --resume
    assert main(["batch", str(inputs), "--out", str(out), "--slice-factor", "4", "--methods", "cubic,sinc", "--resume"]) == 3
    assert "2 already done" in capsys.readouterr().out
    # --format nifti converts the DICOM series' thin geometry: 16 slices 1.25 mm apart
    converted = tmp_path / "nifti"
    assert main(["batch", str(inputs / "series"), "--out", str(converted), "--slice-factor", "4", "--methods", "cubic",
                 "--format", "nifti"]) == 0
    written = nib.load(next(converted.glob("*_cubic_x4.nii.gz")))
    assert written.shape[-1] == 16 and written.header.get_zooms()[2] == pytest.approx(1.25)
    # k-space methods and formats that are not volumes are refused with the option named
    assert main(["batch", str(inputs), "--out", str(tmp_path / "x"), "--slice-factor", "2", "--methods", "cs-tv"]) == 2
    assert "--slice-factor restores thin slices with" in capsys.readouterr().err


def test_a_block_too_small_to_fold_gets_a_note_that_says_so():
    from pipelines.common.evaluation import no_estimate_note
    from recon.trust import holdout

    small = make_mask("lowres-4x", (32, 32), "lowres").array
    assert holdout.holdout_units(small) < 2
    assert "lowres block is too small" in no_estimate_note(small)
    assert "lines or points" in no_estimate_note(make_mask("25pct", (32, 32), "cartesian", seed=0).array)
