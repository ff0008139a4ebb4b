"""Measured 3-D Cartesian k-space: ISMRMRD with kspace_encode_step_2, BART .cfl with a z
dimension and Siemens twix with partitions, read into hybrid (ky, kz) planes."""

import shutil

import numpy as np
import pytest

from pipelines.formats import InputError, read_input
from tests.toys import ismrmrd_3d, kspace_3d

needs_ismrmrd = pytest.mark.skipif(shutil.which("ismrmrd_generate_cartesian_shepp_logan") is None,
                                   reason="ismrmrd-tools (ismrmrd_generate_cartesian_shepp_logan) is not installed")


def _rss(study) -> np.ndarray:
    from physics.fft import ifft2c

    return np.sqrt((np.abs(ifft2c(study.kspace)) ** 2).sum(axis=1))


@needs_ismrmrd
def test_ismrmrd_3d_reads_hybrid_planes_with_the_acquired_pattern(tmp_path):
    kspace, head = kspace_3d((32, 40, 24), coils=4, oversampling=2)
    noise = np.random.default_rng(0).standard_normal((2, *kspace.shape)) * 1e-3  # scanner data carries noise: the
    kspace = (kspace + noise[0] + 1j * noise[1]).astype(np.complex64)  # margin's noise whitens the coils
    drop = np.ones((40, 24), bool)
    drop[::2, ::2] = False
    drop[16:24, 8:16] = False  # a CAIPI-like lattice plus a calibration block
    path = tmp_path / "scan3d.h5"
    ismrmrd_3d(path, tmp_path, kspace * ~drop[None, None], readout_recon=32, drop=drop)
    (study,), notes = read_input(path)
    assert study.kspace.shape == (32, 4, 40, 24) and study.meta["acquisition"] == "3d"
    assert np.array_equal(study.mask, ~drop)
    assert study.meta["corrections"]["readout_oversampling_removed"] == 2
    assert any("3-D acquisition" in note for note in notes)
    full = tmp_path / "full3d.h5"
    ismrmrd_3d(full, tmp_path, kspace, readout_recon=32)
    (complete,), _ = read_input(full)
    assert complete.mask is None
    assert complete.meta["corrections"]["prewhitened"].startswith("readout oversampling margin")
    np.testing.assert_allclose(_rss(complete), head, atol=0.05 * head.max())
    assert np.abs(_rss(complete) - head).mean() < 0.01


@needs_ismrmrd
def test_ismrmrd_3d_with_a_kz_outside_the_matrix_is_named(tmp_path):
    kspace, _ = kspace_3d((16, 20, 12), coils=2)
    path = tmp_path / "bad.h5"
    ismrmrd_3d(path, tmp_path, kspace, readout_recon=16, partitions=8)
    with pytest.raises(InputError, match=r"bad.h5: .*kz index \(11\) is outside the header's encoded matrix \(8"):
        read_input(path)


def test_bart_cfl_with_a_z_dimension_reads_as_3d_with_acquisition_3d(tmp_path):
    from pipelines.formats.volume3d import as_3d
    from recon.classical.bart import write_cfl

    kspace, head = kspace_3d((24, 28, 20), coils=3)
    write_cfl(tmp_path / "vol", np.transpose(kspace, (1, 2, 3, 0)))  # BART (X, Y, Z, C)
    (study,), _ = read_input(tmp_path / "vol.cfl")
    assert study.kspace.shape == (20, 3, 24, 28)  # read as 2-D slices unless asked
    volume = as_3d(study)
    assert volume.kspace.shape == (24, 3, 28, 20) and volume.mask is None
    np.testing.assert_allclose(_rss(volume), head, atol=2e-3)


def test_twix_3d_reads_partitions_and_batch_reconstructs_it(tmp_path):
    import json

    import nibabel as nib

    from pipelines.cli.main import main
    from tests.toys import twix_3d

    path = twix_3d(tmp_path / "scan3d.dat", partitions=32)
    (study,), notes = read_input(path)
    assert study.kspace.shape == (160, 2, 160, 32) and study.mask is None  # readout oversampling removed, fully sampled
    assert study.meta["corrections"]["prewhitened"].startswith("readout oversampling margin")  # gre.dat has no noise scan
    out = tmp_path / "out"
    assert main(["batch", str(path), "--mask", "25pct", "--mask-type", "poisson", "--methods", "zero-filled",
                 "--estimate-folds", "0", "--out", str(out)]) == 0
    written = nib.load(out / "scan3d_zero-filled.nii.gz")
    assert written.shape == (160, 160, 32)  # (readout, ky, kz): the scanner's volume axes
    assert np.allclose(written.affine, study.meta["affine"])
    metrics = json.loads((out / "scan3d.metrics.json").read_text())
    assert abs(metrics["ratio"] - 0.25) < 0.01 and 10 < metrics["methods"]["zero-filled"]["psnr"] < 60


def test_a_separate_3d_reference_scan_fills_its_central_block(tmp_path):
    from tests.toys import twix_3d

    full = read_input(twix_3d(tmp_path / "full.dat", partitions=16))[0][0]
    (study,), notes = read_input(twix_3d(tmp_path / "ipat.dat", partitions=16, reference=8))
    mask = study.mask
    assert mask is not None and mask[::2, ::2].all() and not mask[1::2, 1::2][:30].any()  # 2 x 2 outside the block
    centre = np.s_[76:84, 4:12]  # the 8 x 8 (line, partition) block around line 80, partition 8
    assert mask[centre].all() and mask.sum() == mask[::2, ::2].size + 8 * 8 - 4 * 4
    assert study.meta["corrections"]["reference_positions"] == 8 * 8 - 4 * 4
    assert any("48 reference (ACS) (line, partition) positions fill" in note for note in study.notes + notes)
    # the same samples as the full scan's, to its prewhitening (estimated from each file's data: one coil mixing)
    ours, theirs = (np.moveaxis(k[:, :, mask], 1, 0).reshape(2, -1) for k in (study.kspace, full.kspace))
    mixing = np.linalg.lstsq(theirs.T, ours.T, rcond=None)[0]
    assert np.abs(theirs.T @ mixing - ours.T).max() < 1e-4 * np.abs(ours).max()


@pytest.mark.parametrize(("options", "problem"), [
    ({"declared": 6}, r"8 partitions in the data, but the protocol declares 6"),
    ({"partial_fourier": True}, r"partial Fourier along kz"),
])
def test_bad_3d_twix_files_are_one_clear_line(tmp_path, options, problem):
    from tests.toys import twix_3d

    path = twix_3d(tmp_path / "bad3d.dat", partitions=8, **options)
    with pytest.raises(InputError, match=rf"bad3d.dat: {problem}"):
        read_input(path)


def test_a_plane_of_a_3d_scan_gives_what_the_2d_path_gives_for_that_plane(tmp_path):
    """Known answer: a fully sampled 3-D scan, retrospectively undersampled over (ky, kz),
    reconstructs each readout position's plane exactly as the 2-D path reconstructs that
    plane given as a single-slice file (same name, so the same seeded mask)."""
    import nibabel as nib
    import torch

    from physics.volume import to_hybrid
    from pipelines.cli.main import main
    from recon.classical.bart import write_cfl

    kspace, _ = kspace_3d((16, 36, 64), coils=3)
    noise = np.random.default_rng(1).standard_normal((2, *kspace.shape)) * 1e-3
    kspace = (kspace + noise[0] + 1j * noise[1]).astype(np.complex64)
    (tmp_path / "3d").mkdir()
    (tmp_path / "2d").mkdir()
    write_cfl(tmp_path / "3d" / "scan", np.transpose(kspace, (1, 2, 3, 0)))  # BART (X, Y, Z, C)
    position = 8
    plane = to_hybrid(torch.from_numpy(kspace))[position].numpy()  # (C, ky, kz)
    write_cfl(tmp_path / "2d" / "scan", np.transpose(plane, (1, 2, 0))[:, :, None, :])  # a 2-D slice (ky, kz)
    # a 1-D family along kz: the same mask on both paths (a 2-D family gets a 3-D protocol's 24-point reference block)
    common = ["--mask", "25pct", "--mask-type", "cartesian", "--methods", "zero-filled,cs-tv", "--estimate-folds", "0",
              "--format", "nifti"]
    assert main(["batch", str(tmp_path / "3d" / "scan.cfl"), "--acquisition", "3d", *common, "--out", str(tmp_path / "o3")]) == 0
    assert main(["batch", str(tmp_path / "2d" / "scan.cfl"), *common, "--out", str(tmp_path / "o2")]) == 0
    for method in ("zero-filled", "cs-tv"):
        volume = np.asarray(nib.load(tmp_path / "o3" / f"scan_{method}.nii.gz").dataobj)  # (X, ky, kz)
        single = np.asarray(nib.load(tmp_path / "o2" / f"scan_{method}.nii.gz").dataobj)[..., 0]  # (ky, kz)
        np.testing.assert_allclose(volume[position], single, rtol=1e-4, atol=1e-5 * single.max())


@needs_ismrmrd
def test_a_3d_volume_over_the_memory_budget_is_refused_before_allocation(tmp_path):
    from pipelines.common.limits import MemoryBudget, TooLargeError

    kspace, _ = kspace_3d((16, 20, 12), coils=2)
    path = tmp_path / "big.h5"
    ismrmrd_3d(path, tmp_path, kspace, readout_recon=16, partitions=4000)  # declares 4000 partitions
    with pytest.raises(TooLargeError, match=r"big.h5: .*partitions\) declares shape \(1, 2, 16, 20, 4000\).*memory budget"):
        read_input(path, MemoryBudget(50_000_000))


def test_batch_judges_a_3d_file_as_one_volume_on_spread_planes(tmp_path):
    import json

    from pipelines.cli.main import main
    from recon.classical.bart import write_cfl

    kspace, _ = kspace_3d((20, 40, 40), coils=4)
    noise = np.random.default_rng(2).standard_normal((2, *kspace.shape)) * 1e-3
    write_cfl(tmp_path / "vol", np.transpose(kspace + noise[0] + 1j * noise[1], (1, 2, 3, 0)))
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "vol.cfl"), "--acquisition", "3d", "--mask", "25pct", "--mask-type", "poisson",
                 "--methods", "gan-drn", "--estimate-folds", "2", "--out", str(out)]) == 0
    metrics = json.loads((out / "vol.metrics.json").read_text())
    assert len(metrics["estimate_planes"]) == 8
    record = metrics["methods"]["gan-drn"]
    assert len(record["estimated_psnr_slices"]) == 8 and len(set(record["guard_output_slices"])) == 1
    # a scanner's planes (judged against the full scan) take the measured regime's plane entries, and the note says so
    assert any(note.startswith("error estimate of a 3-D acquisition: calibrated on the (ky, kz) planes")
               for note in metrics["notes"])
    assert record["estimate_calibration"].endswith("@planes:mc-measured")


def test_elliptical_scanning_corners_are_support_not_undersampling(tmp_path):
    from pipelines.formats.volume3d import hybrid_study

    kspace, _ = kspace_3d((16, 32, 32), coils=2)
    ky, kz = np.meshgrid(np.linspace(-1, 1, 32), np.linspace(-1, 1, 32), indexing="ij")
    ellipse = ky**2 + kz**2 <= 1
    study = hybrid_study(tmp_path / "e.dat", "e", "twix", kspace * ellipse, support=ellipse)
    assert study.mask is None and np.array_equal(study.meta["support"], ellipse)  # fully sampled within the ellipse
    assert any("elliptical scanning" in note for note in study.notes)
    holes = ellipse.copy()
    holes[::2, ::2] = False
    undersampled = hybrid_study(tmp_path / "e.dat", "e", "twix", kspace * holes, support=ellipse)
    assert np.array_equal(undersampled.mask, holes)


def test_a_complex_4d_npy_is_3d_kspace(tmp_path):
    kspace, head = kspace_3d((16, 24, 20), coils=2)
    np.save(tmp_path / "k3d.npy", kspace.astype(np.complex64))
    (study,), notes = read_input(tmp_path / "k3d.npy")
    assert study.kspace.shape == (16, 2, 24, 20) and study.meta["acquisition"] == "3d"
    np.testing.assert_allclose(_rss(study), head, atol=2e-3)
