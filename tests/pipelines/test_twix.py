"""Siemens twix raw data: twixtools' real example scan, and broken files."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pipelines.cli.main import main
from pipelines.formats import InputError, read_input

GRE = Path(__file__).resolve().parents[1] / "data" / "twix" / "gre.dat"


def test_a_real_twix_scan_reads_with_oversampling_removed_and_its_geometry():
    (study,), notes = read_input(GRE)
    assert study.format == "twix" and study.kspace.shape == (1, 2, 160, 160) and study.mask is None
    assert study.meta["corrections"]["readout_oversampling_removed"] == 2.0
    # no noise scan in the file: the noise of the oversampled readout margin whitens the channels, and a note says so
    assert any("oversampled margin" in note for note in notes) and study.meta["corrections"]["prewhitened"]
    affine = study.meta["affine"]
    assert np.allclose(np.linalg.norm(affine[:3, :3], axis=0), [1.25, 1.25, 4.0], atol=1e-3)  # the protocol's voxels
    normal = np.array([6.58423005e-09, 0.0383878015, 0.9992629886]) * [-1, -1, 1]  # the slice normal, LPS -> RAS
    assert abs(abs(np.dot(affine[:3, 2] / 4.0, normal)) - 1) < 1e-6


def test_an_accelerated_scan_that_skips_the_last_line_keeps_the_protocols_grid(tmp_path):
    from tests.toys import twix_even_lines

    (full,), _ = read_input(GRE)
    (study,), notes = read_input(twix_even_lines(tmp_path / "r2.dat"))
    assert study.kspace.shape == full.kspace.shape and "lines: the protocol's 160, the last 1 not acquired" in notes
    assert study.mask is not None and study.mask.sum(axis=0).nonzero()[0].tolist() == list(range(0, 160, 2))
    assert study.mask[:, 80].all()  # the centre line is the grid's centre, where fft2c puts it
    ours, theirs = (np.moveaxis(k[0][:, :, ::2], 0, -1).reshape(-1, 2) for k in (study.kspace, full.kspace))
    mixing = np.linalg.lstsq(theirs, ours, rcond=None)[0]  # the same lines, to each file's own prewhitening
    assert np.abs(theirs @ mixing - ours).max() < 1e-4 * np.abs(ours).max()


def test_recon_batch_reconstructs_a_twix_file_to_nifti_with_a_report(tmp_path):
    out = tmp_path / "out"
    assert main(["batch", str(GRE), "--mask", "25pct", "--out", str(out), "--methods", "zero-filled,cs-tv",
                 "--estimate-folds", "0"]) == 0
    metrics = json.loads((out / "gre.metrics.json").read_text())
    assert metrics["kspace"] == "measured" and abs(metrics["ratio"] - 0.25) < 0.01
    assert metrics["methods"]["cs-tv"]["psnr"] > metrics["methods"]["zero-filled"]["psnr"]  # against the RSS of the full scan
    image = nib.load(out / "gre_cs-tv.nii.gz")
    assert image.shape == (160, 160, 1) and np.allclose(image.header.get_zooms(), (1.25, 1.25, 4.0))
    assert int(image.header["sform_code"]) == 1 and (out / "report.html").is_file()


@pytest.mark.parametrize("make, problem", [
    (lambda data: data[:800_000], "cannot read twix file"),
    (lambda data: bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8)), "cannot read twix file"),
    (lambda data: data[:3000], "too small"),
])
def test_broken_twix_files_are_one_clear_line(tmp_path, capsys, make, problem):
    broken = tmp_path / "scan.dat"
    broken.write_bytes(make(GRE.read_bytes()))
    with pytest.raises(InputError, match=problem):
        read_input(broken)
    assert main(["batch", str(broken), "--out", str(tmp_path / "out"), "--methods", "zero-filled"]) == 3
    printed = capsys.readouterr()
    failed = [line for line in printed.out.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "scan.dat" in failed[0] and problem in failed[0] and "Traceback" not in printed.err


def test_virtual_coils_compress_measured_multicoil_data_and_say_how(tmp_path, capsys):
    import h5py
    import torch

    from physics.coils import simulate_coil_maps
    from physics.fft import fft2c

    image = torch.from_numpy(np.random.default_rng(0).random((2, 48, 48)).astype(np.float32)).to(torch.complex64)
    kspace = fft2c(simulate_coil_maps(8, (48, 48)).unsqueeze(0) * image[:, None]).numpy()
    raw = tmp_path / "multi.h5"
    with h5py.File(raw, "w") as handle:
        handle.create_dataset("kspace", data=kspace)
    for mask_type, how in (("cartesian", "geometric"), ("vd2d", "SVD")):
        out = tmp_path / mask_type
        assert main(["batch", str(raw), "--out", str(out), "--mask", "50pct", "--mask-type", mask_type, "--methods",
                     "zero-filled", "--virtual-coils", "4", "--estimate-folds", "0"]) == 0
        assert f"coils compressed 8 -> 4 ({how}" in capsys.readouterr().out
    assert main(["batch", str(raw), "--out", str(tmp_path / "x"), "--virtual-coils", "0"]) == 2


def test_a_non_cartesian_protocol_is_refused_by_the_cartesian_reader(tmp_path):
    radial = tmp_path / "radial.dat"  # the same scan, its protocol edited to a radial trajectory
    radial.write_bytes(GRE.read_bytes().replace(b"sKSpace.ucTrajectory\t = \t1", b"sKSpace.ucTrajectory\t = \t2"))
    with pytest.raises(InputError, match="radial.dat: non-Cartesian trajectory"):
        read_input(radial)


def _relabelled(tmp_path, name: str, lines: int | None) -> Path:
    """``gre.dat`` rewritten by twixtools with its first ``lines`` imaging lines (all when
    None) flagged as noise-adjustment scans."""
    import contextlib
    import io

    import twixtools

    with contextlib.redirect_stdout(io.StringIO()):  # twixtools prints progress
        scans = twixtools.read_twix(str(GRE), verbose=False, keep_acqend=True)
        images = [mdb for mdb in scans[-1]["mdb"] if mdb.is_image_scan()]
        for mdb in images[:lines]:
            mdb.add_flag("NOISEADJSCAN")
        twixtools.write_twix(scans, str(tmp_path / name), version_is_ve=scans[-1]["mdb"][0].version_is_ve)
    return tmp_path / name


def test_a_file_with_only_a_noise_scan_is_named_as_such(tmp_path):
    with pytest.raises(InputError, match="noise.dat: holds no imaging scan \\(only a noise scan\\)"):
        read_input(_relabelled(tmp_path, "noise.dat", None))


def test_a_noise_scan_whitens_the_channels_and_its_lines_are_not_imaging_lines(tmp_path):
    (study,), _ = read_input(_relabelled(tmp_path, "with_noise.dat", 4))
    assert study.meta["corrections"]["prewhitened"].startswith("noise scan, 1280 samples")  # 4 lines x 320 samples
    assert study.mask is not None and int(study.mask.any(axis=0).sum()) == 156  # the acquired lines are the mask


def test_a_scan_whose_lines_declare_no_coil_channels_is_refused_by_name(tmp_path):
    import contextlib
    import io

    import twixtools

    with contextlib.redirect_stdout(io.StringIO()):
        scans = twixtools.read_twix(str(GRE), verbose=False, keep_acqend=True)
        lines = scans[-1]["mdb"]
        for index, mdb in enumerate(lines):
            if mdb.is_image_scan():  # the same line with its channel data taken out: 0 channels
                empty = mdb.convert_to_local()
                empty.data = np.zeros((0, mdb.mdh.SamplesInScan), np.complex64)
                lines[index] = empty
        twixtools.write_twix(scans, str(tmp_path / "nocoils.dat"), version_is_ve=lines[0].version_is_ve)
    with pytest.raises(InputError, match=r"nocoils.dat: its imaging lines declare \[0\] coil channels"):
        read_input(tmp_path / "nocoils.dat")
