import json

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from pipelines.cli.main import main


def test_run_end_to_end_two_slices(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--mask", "10pct", "--slices", "2", "--methods", "zero-filled,cs-tv", "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "achieved ratio 0.1016" in printed and "cs-tv" in printed and "PSNR" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    records = metrics["records"]
    assert len(records) == 4
    assert set(records[0]) >= {"method", "mask", "ratio", "slice", "psnr", "ssim", "nmse", "seconds"}
    by_method = {row["method"]: row for row in metrics["summary"]}
    assert by_method["cs-tv"]["psnr"] > by_method["zero-filled"]["psnr"]
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["mask"] == "10pct" and config["seed"] == 0 and config["kspace"] == "simulated"
    assert config["mask"]["ratio"] == pytest.approx(26 / 256)
    pngs = sorted(p.name for p in (out / "images").glob("*.png"))
    assert len(pngs) == 2 * (1 + 2 * 2)
    assert Image.open(out / "images" / pngs[0]).size == (256, 256)
    # every image says what it holds (a sidecar beside it); no guard here, so each its own method's
    sidecars = sorted((out / "images").glob("*.json"))
    assert len(sidecars) == 2 * 2
    assert all(json.loads(s.read_text())["image_of"] == json.loads(s.read_text())["method"] for s in sidecars)
    # same seed, same numbers: the mask is seeded from the input name
    code = main(["run", "--mask", "10pct", "--slices", "2", "--methods", "zero-filled", "--out", str(out), "--force"])
    assert code == 0
    again = json.loads((out / "metrics.json").read_text())["records"]
    assert again[0]["psnr"] == pytest.approx(records[[r["method"] for r in records].index("zero-filled")]["psnr"])


def test_run_trust_check_for_learned_methods(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--mask", "10pct", "--slices", "1", "--methods", "zero-filled,cs-tv,gan-drn", "--out", str(out)]) == 0
    assert "trust gan-drn: data-consistency residual" in capsys.readouterr().out
    records = {r["method"]: r for r in json.loads((out / "metrics.json").read_text())["records"]}
    learned = records["gan-drn"]
    assert learned["dc_residual"] < 1e-5 and learned["hallucination_reference"] == "cs-tv"
    assert 0 < learned["hallucination_energy"] < 1 and learned["hallucination_flagged"] in (True, False)
    assert "dc_residual" not in records["cs-tv"]
    assert len(list((out / "images").glob("gan-drn_*_hallucination.png"))) == 1


def test_run_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code = main(["run", "--slices", "1", "--methods", "zero-filled", "--out", str(out)])
    assert code == 2
    assert "--force" in capsys.readouterr().err
    assert (out / "keep.txt").read_text() == "mine"


def test_run_on_nifti_multicoil_noisy(tmp_path):
    volume = np.zeros((64, 64, 5), dtype=np.float32)
    volume[16:48, 20:44, :] = 100
    volume[24:40, 28:36, :] = 250
    path = tmp_path / "phantom.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.eye(4)), path)
    out = tmp_path / "nifti-run"
    code = main(["run", "--input", str(path), "--mask", "50pct", "--mask-type", "vd2d", "--coils", "4",
                 "--noise-snr", "30", "--phase", "--methods", "zero-filled,cg-sense", "--slices", "2", "--out", str(out)])
    assert code == 0
    records = json.loads((out / "metrics.json").read_text())["records"]
    assert {r["slice"] for r in records} == {"phantom.nii.gz:0", "phantom.nii.gz:4"}
    assert all(r["mask_type"] == "vd2d" for r in records)


def _npy(tmp_path, name, array):
    path = tmp_path / name
    np.save(path, array)
    return str(path)


@pytest.mark.parametrize(
    "make_args,message",
    [
        (lambda p: ["--mask", "10percent"], "unknown mask preset '10percent'"),
        (lambda p: ["--methods", "zero-filled,magic"], "unknown method 'magic'; valid methods"),
        (lambda p: ["--input", _npy(p, "zeros.npy", np.zeros((32, 32)))], "zeros.npy: image is all zero"),
        (lambda p: ["--input", _npy(p, "nan.npy", np.full((32, 32), np.nan))], "nan.npy: image contains NaN or Inf"),
        (lambda p: ["--mask-file", _npy(p, "m.npy", np.ones((10, 10), bool))], r"m.npy: mask shape \(10, 10\) does not match"),
        (lambda p: ["--input", str(p / "missing.nii.gz")], "missing.nii.gz: no such file"),
        (lambda p: ["--mask-type", "zigzag"], "invalid choice: 'zigzag'"),
        (lambda p: ["--device", "tpu"], "--device must be auto, cpu, cuda or cuda:N, got 'tpu'"),
    ],
)
def test_bad_input_one_line_exit_2_no_output(tmp_path, capsys, make_args, message):
    out = tmp_path / "out"
    code = main(["run", "--slices", "1", "--methods", "zero-filled", "--out", str(out), *make_args(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    import re

    assert re.search(message, err), err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_mask_command(tmp_path, capsys):
    png = tmp_path / "mask.png"
    assert main(["mask", "--mask", "10pct", "--mask-type", "cartesian", "--shape", "256,256", "--seed", "0", "--out", str(png)]) == 0
    assert "achieved ratio 0.1016" in capsys.readouterr().out
    pixels = np.array(Image.open(png))
    assert pixels.shape == (256, 256) and (pixels > 0).mean() == pytest.approx(26 / 256)
    npy = tmp_path / "mask.npy"
    assert main(["mask", "--mask", "25pct", "--mask-type", "vd2d", "--shape", "64,80", "--out", str(npy)]) == 0
    array = np.load(npy)
    assert array.dtype == bool and array.shape == (64, 80)
    assert main(["mask", "--out", str(npy)]) == 2  # exists, no --force
    assert main(["mask", "--out", str(tmp_path / "mask.txt")]) == 2


def test_mask_command_draws_phase_encode_plane_masks_of_any_aspect(tmp_path, capsys):
    npy = tmp_path / "poisson.npy"
    assert main(["mask", "--mask", "10pct", "--mask-type", "poisson", "--shape", "256,176", "--out", str(npy)]) == 0
    array = np.load(npy)
    assert array.shape == (256, 176) and abs(array.mean() - 0.1) <= 0.005
    caipi = tmp_path / "caipi.npy"
    assert main(["mask", "--mask", "10pct", "--mask-type", "caipi", "--shape", "256,176", "--out", str(caipi)]) == 0
    assert "R 4x3 shift 1" in capsys.readouterr().out
    assert np.load(caipi).shape == (256, 176)


def test_help_has_examples(capsys):
    for command in (["--help"], ["run", "--help"], ["mask", "--help"], ["train", "--help"], ["methods", "--help"]):
        assert main(command) == 0
        assert "example" in capsys.readouterr().out


def test_methods_command(capsys):
    assert main(["methods"]) == 0
    assert "cs-l1" in capsys.readouterr().out


def test_run_from_toml_config_with_flag_override(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('mask = "50pct"\nmask-type = "equispaced"\nmethods = ["zero-filled"]\nslices = 3\n')
    out = tmp_path / "cfg-run"
    assert main(["run", "--config", str(config), "--slices", "1", "--out", str(out)]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["mask"] == "50pct" and saved["config"]["mask_type"] == "equispaced"
    assert saved["config"]["slices"] == 1
    assert len(json.loads((out / "metrics.json").read_text())["records"]) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('mask = "50pct"\nmaks_type = "vd2d"\n')
    assert main(["run", "--config", str(bad), "--out", str(tmp_path / "x")]) == 2


def test_train_command_tiny_run_and_resume(tmp_path, capsys):
    out = tmp_path / "train"
    args = ["train", "--model", "gan-drn", "--mask", "30pct", "--steps", "2", "--batch-size", "1",
            "--generator", "width=4,blocks=1,stages=1", "--val-every", "2", "--out", str(out), "--threads", "1"]
    assert main(args) == 0
    assert "best validation" in capsys.readouterr().out
    assert (out / "best.pt").is_file() and (out / "command.json").is_file()
    assert main([*args[:6], "3", *args[7:], "--resume"]) == 0
    assert "for 3 steps" in capsys.readouterr().out
    assert main(["train", "--model", "nope", "--out", str(tmp_path / "x")]) == 2
    assert main(["train", "--resample", "1.5", "--out", str(tmp_path / "x")]) == 2
    assert "--resample: must be" in capsys.readouterr().err
    for bad in ("0.5", "3-2", "two"):
        assert main(["train", "--resample-shrink", bad, "--out", str(tmp_path / "x")]) == 2
        assert "--resample-shrink: expected" in capsys.readouterr().err


def test_mask_lists_and_ranges():
    from pipelines.cli.main import parse_ratios

    assert parse_ratios("10pct") == pytest.approx((0.1,))
    assert parse_ratios("10pct,50pct") == pytest.approx((0.1, 0.5))
    assert parse_ratios("10pct-50pct") == pytest.approx(tuple(np.linspace(0.1, 0.5, 9)))


def test_config_loads_on_python_310_through_tomli(tmp_path, monkeypatch):
    """Python 3.10 has no tomllib: the config module falls back to tomli (same API)."""
    import importlib
    import sys

    import tomllib

    import pipelines.config

    monkeypatch.setitem(sys.modules, "tomllib", None)  # "import tomllib" now fails
    monkeypatch.setitem(sys.modules, "tomli", tomllib)  # stands in for the tomli package
    monkeypatch.setattr(sys, "version_info", (3, 10, 14, "final", 0))
    try:
        module = importlib.reload(pipelines.config)
        path = tmp_path / "run.toml"
        path.write_text('mask = "25pct"\n')
        assert module.load_config(path).mask == "25pct"
    finally:
        monkeypatch.undo()
        importlib.reload(pipelines.config)


def test_report_out_into_a_new_folder(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["run", "--slices", "1", "--methods", "zero-filled", "--out", str(run)]) == 0
    target = tmp_path / "new" / "deeper" / "report.html"
    assert main(["report", str(run), "--out", str(target)]) == 0
    assert target.is_file() and "<html" in target.read_text().lower()


def test_help_and_version_do_not_load_torch_or_sigpy():
    """Startup: ``recon --help`` imports no heavy module (speed is measured by
    ``benchmarks.speed``, not here)."""
    import subprocess
    import sys

    code = ("import sys\nfrom pipelines.cli.main import main\n"
            "assert main(['--help']) == 0 and main(['--version']) == 0\n"
            "heavy = [m for m in ('torch', 'sigpy', 'scipy', 'nibabel', 'h5py', 'pydicom') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_run_and_batch_give_the_same_metrics_for_the_same_slice(tmp_path):
    """One evaluation core: the same reading (no rotation), the same seeding by the
    study's name, the same reconstruction and metrics."""
    rng = np.random.default_rng(4)
    volume = np.zeros((64, 48, 3), np.float32)
    volume[12:52, 8:40] = 1 + rng.random((40, 32, 3))
    volume[30:40, 20:30, 1] = 4.0  # not symmetric: a rotation would change the result
    nib.save(nib.Nifti1Image(volume, np.diag([0.9, 1.1, 3.0, 1.0])), tmp_path / "x.nii.gz")
    methods = "zero-filled,cs-tv"
    assert main(["run", "--input", str(tmp_path / "x.nii.gz"), "--methods", methods, "--out", str(tmp_path / "r")]) == 0
    assert main(["batch", str(tmp_path / "x.nii.gz"), "--methods", methods, "--out", str(tmp_path / "b")]) == 0
    run_records = json.loads((tmp_path / "r" / "metrics.json").read_text())["records"]
    batch_methods = json.loads((tmp_path / "b" / "x.metrics.json").read_text())["methods"]
    for method in methods.split(","):
        from_run = [r["psnr"] for r in run_records if r["method"] == method]
        assert len(from_run) == 3
        np.testing.assert_allclose(from_run, batch_methods[method]["psnr_slices"], rtol=1e-6)
        np.testing.assert_allclose([r["ssim"] for r in run_records if r["method"] == method],
                                   batch_methods[method]["ssim_slices"], rtol=1e-6)


def test_run_estimates_every_method_and_guards_the_learned_ones(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--mask", "25pct", "--mask-type", "vd2d", "--slices", "1", "--methods", "zero-filled,cs-tv,csr-gan",
                 "--estimate-folds", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "est. PSNR" in printed and "guard csr-gan: estimably worse than cs-tv on" in printed
    data = json.loads((out / "metrics.json").read_text())
    records = {r["method"]: r for r in data["records"]}
    for record in records.values():
        assert len(record["estimated_fold_nmse"]) == 3 and record["estimated_psnr_spread"] >= 0
        assert 5 < record["estimated_psnr"] < 90
    learned = records["csr-gan"]
    assert learned["guard_reference"] == "cs-tv" and learned["guard_output"] in ("csr-gan", "cs-tv")
    assert learned["guard_flagged"] == (learned["guard_output"] == "cs-tv")  # the guard is on by default
    assert learned["guard_reason"].startswith(f"{learned['guard_output']}: ")
    assert "guard_flagged" not in records["cs-tv"]
    summary = {row["method"]: row for row in data["summary"]}
    assert summary["csr-gan"]["guard_flagged"] in (0, 1) and "estimated_psnr" in summary["zero-filled"]


def test_a_run_with_noise_is_estimated_as_noisy_data_against_its_clean_image(tmp_path, capsys):
    # simulated noise, judged against the noise-free image: the estimate takes the held-out
    # samples' coil noise out and uses the offsets fitted on noisy validation data
    out = tmp_path / "run"
    assert main(["run", "--mask", "25pct", "--mask-type", "poisson", "--coils", "4", "--noise-snr", "25", "--slices", "1",
                 "--methods", "zero-filled,cs-tv", "--estimate-folds", "2", "--out", str(out)]) == 0
    records = {r["method"]: r for r in json.loads((out / "metrics.json").read_text())["records"]}
    assert records["cs-tv"]["estimate_calibration"] == "cs:poisson:mc-noisy"
    assert records["zero-filled"]["estimate_calibration"] == "baseline:poisson:mc-noisy"
    capsys.readouterr()


def test_without_a_calibration_block_the_guard_asks_a_fixed_lead(tmp_path, capsys):
    # no calibration block: the folds' spread is large, so the learned output must lead
    # the best fallback's estimate by NO_CALIBRATION_LEAD_DB whatever the spread
    from recon.trust.guard import NO_CALIBRATION_LEAD_DB

    out = tmp_path / "run"
    assert main(["run", "--mask", "25pct", "--mask-type", "cartesian", "--center-fraction", "0", "--slices", "1",
                 "--methods", "zero-filled,cs-tv,gan-drn", "--estimate-folds", "2", "--out", str(out)]) == 0
    records = {r["method"]: r for r in json.loads((out / "metrics.json").read_text())["records"]}
    learned = records["gan-drn"]
    assert learned["guard_threshold_db"] == pytest.approx(-NO_CALIBRATION_LEAD_DB)
    assert learned["guard_flagged"] == (-learned["guard_gap_db"] < NO_CALIBRATION_LEAD_DB)
    assert f"the {NO_CALIBRATION_LEAD_DB:+.2f} dB the guard asks" in learned["guard_reason"]
    assert "guard gan-drn: estimably worse than" in capsys.readouterr().out


def test_guard_needs_the_estimate(tmp_path, capsys):
    assert main(["run", "--slices", "1", "--estimate-folds", "0", "--guard", "--out", str(tmp_path / "x")]) == 2
    assert "--guard needs the error estimate" in capsys.readouterr().err
    assert main(["batch", str(tmp_path), "--estimate-folds", "0", "--guard", "--out", str(tmp_path / "y")]) == 2
    assert "--guard needs the error estimate" in capsys.readouterr().err
    assert main(["run", "--slices", "1", "--estimate-folds", "1", "--out", str(tmp_path / "x")]) == 2


def test_default_run_folder_names_what_changes_the_acquisition():
    from pipelines.cli.main import default_run_folder
    from pipelines.config import RunConfig

    single = default_run_folder(RunConfig(mask="25pct"))
    coils = default_run_folder(RunConfig(mask="25pct", coils=8, noise_snr=30.0))
    assert single == "recon-output/run-25pct-cartesian" and coils == "recon-output/run-25pct-cartesian-8coils-snr30"
    assert default_run_folder(RunConfig(input="scans/brain.nii.gz")) == "recon-output/run-brain-10pct-cartesian"


def test_progress_lines_never_repeat_the_final_count():
    import io

    from pipelines.common.progress import Progress

    stream = io.StringIO()
    with Progress(3, "recon run: reconstruction", "slices", mode="lines", interval=0.0, stream=stream) as bar:
        for _ in range(3):
            bar.update(1)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3 and sum("3/3 slices" in line for line in lines) == 1


def test_recon_mask_takes_a_lowres_preset_without_a_family(tmp_path, capsys):
    assert main(["mask", "--mask", "lowres-2x", "--shape", "64,64", "--out", str(tmp_path / "m.npy")]) == 0
    assert "lowres lowres-2x 64x64: achieved ratio 0.2500" in capsys.readouterr().out
    assert main(["mask", "--mask", "lowres-2x", "--mask-type", "vd2d", "--out", str(tmp_path / "n.npy")]) == 2


def test_a_mask_that_misses_the_kspace_centre_is_warned_about(tmp_path):
    for centre, warned in (("0", True), (None, False)):
        out = tmp_path / f"run-{centre}"
        argv = ["run", "--mask", "10pct", "--slices", "1", "--methods", "zero-filled", "--estimate-folds", "0",
                "--out", str(out)] + (["--center-fraction", centre] if centre else [])
        assert main(argv) == 0
        config = json.loads((out / "config.json").read_text())
        mask = config["mask"]
        assert any("misses the k-space centre" in note for note in config["notes"]) == warned, (mask, config["notes"])


def test_a_guarded_run_of_a_learned_method_alone_gets_its_fallbacks(tmp_path):
    out, off = tmp_path / "on", tmp_path / "off"
    common = ["run", "--mask", "25pct", "--slices", "1", "--methods", "gan-drn", "--estimate-folds", "2"]
    assert main(common + ["--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["methods"] == ["gan-drn", "cs-tv", "zero-filled"]
    assert any(note.startswith("guard: added cs-tv, zero-filled") for note in config["notes"])
    assert main(common + ["--no-guard", "--out", str(off)]) == 0
    assert json.loads((off / "config.json").read_text())["methods"] == ["gan-drn"]


@pytest.mark.parametrize("argv, named, hint", [
    (["run", "--coil", "8"], "recon run: unrecognized arguments: --coil 8", "did you mean --coils?"),  # no abbreviations
    (["run", "--masks", "10pct"], "recon run: unrecognized arguments: --masks 10pct", "did you mean --mask?"),
    (["batch", "x.nii.gz", "--out", "o", "--worker", "2"], "recon batch: unrecognized arguments: --worker 2",
     "did you mean --workers?"),
])
def test_an_unknown_or_abbreviated_option_names_the_command_and_the_nearest_option(argv, named, hint, capsys):
    assert main(argv) == 2
    error = capsys.readouterr().err.strip()
    assert named in error and hint in error and len(error.splitlines()) == 1


def test_help_names_siemens_twix_and_explains_every_batch_option(capsys):
    assert main(["--help"]) == 0
    assert "Siemens twix" in capsys.readouterr().out
    from pipelines.cli.arguments import build_parser

    batch = build_parser()._subparsers._group_actions[0].choices["batch"]
    missing = [action.option_strings for action in batch._actions if action.option_strings and not action.help]
    assert not missing, missing


def test_the_run_folder_gets_the_usual_mode(tmp_path):
    import os

    out = tmp_path / "run"
    assert main(["run", "--slices", "1", "--methods", "zero-filled", "--estimate-folds", "0", "--out", str(out)]) == 0
    umask = os.umask(0o022)
    os.umask(umask)
    assert (out.stat().st_mode & 0o777) == (0o777 & ~umask)


def test_a_second_sigterm_while_unwinding_is_ignored():
    import signal

    from pipelines.cli import main as cli

    previous = signal.signal(signal.SIGTERM, cli._on_sigterm)
    try:
        with pytest.raises(cli._Terminated):
            cli._on_sigterm(signal.SIGTERM, None)
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_IGN  # the cleanup is not cut short by a traceback
    finally:
        signal.signal(signal.SIGTERM, previous)
