import shutil

import numpy as np
import pytest
import torch

import recon
from masks import make_mask
from physics import fft2c, simulate_coil_maps, simulate_kspace
from recon import metrics
from recon.classical.bart import read_cfl, write_cfl

HAS_BART = shutil.which("bart") is not None


@pytest.mark.parametrize(
    "preset,method,ssim_gains",
    [
        ("10pct", "cs-tv", True),
        ("50pct", "cs-tv", True),
        ("50pct", "cs-l1", True),
        # L1-wavelet at 10 % Cartesian gains PSNR but leaves wavelet-shaped residue
        # in the background that costs SSIM (as BART's pics -l1 does); see the README.
        ("10pct", "cs-l1", False),
    ],
)
def test_cs_beats_zero_filled_on_a_brain_slice(brain_slice, preset, method, ssim_gains):
    mask = make_mask(preset, brain_slice.shape, "cartesian", seed=11).array
    kspace = fft2c(brain_slice.astype(np.complex64))
    zero_filled = recon.reconstruct(kspace, mask, "zero-filled")
    cs = recon.reconstruct(kspace, mask, method)
    assert cs.shape == brain_slice.shape and cs.dtype == np.complex64
    gain_psnr = metrics.psnr(cs, brain_slice) - metrics.psnr(zero_filled, brain_slice)
    gain_ssim = metrics.ssim(cs, brain_slice) - metrics.ssim(zero_filled, brain_slice)
    assert gain_psnr > 0.3, f"{method} {preset}: PSNR gain {gain_psnr:.2f} dB"
    if ssim_gains:
        assert gain_ssim > 0.0, f"{method} {preset}: SSIM gain {gain_ssim:.3f}"


def test_regularisation_scales_with_the_data(brain_slice):
    mask = make_mask("30pct", brain_slice.shape, "cartesian", seed=2).array
    kspace = fft2c(brain_slice.astype(np.complex64))
    base = recon.reconstruct(kspace, mask, "cs-tv")
    scaled = recon.reconstruct(kspace * 1000, mask, "cs-tv")
    np.testing.assert_allclose(np.abs(scaled) / 1000, np.abs(base), atol=2e-3 * np.abs(base).max())


@pytest.mark.parametrize("mask_type", ["cartesian", "vd2d"])
def test_single_coil_cs_tv_is_sigpy_s_admm(brain_slice, mask_type):
    """cs-tv on single-coil Cartesian data runs SigPy's ``TotalVariationRecon`` ADMM
    (rho 1, 10 CG steps an iteration, from zero) in torch: the same image, step for step."""
    import sigpy.mri.app

    image = brain_slice[::2, ::2].astype(np.complex64)  # 128 x 128: SigPy's numpy run stays quick
    mask = make_mask("25pct", image.shape, mask_type, seed=5).array
    kspace = fft2c(image) * mask
    method = recon.get("cs-tv", max_iter=20)
    ours = method.reconstruct(torch.from_numpy(kspace)[None, None], torch.from_numpy(mask))[0].numpy()
    lamda = method.weight_for(torch.from_numpy(mask)) * float(np.abs(recon.reconstruct(kspace, mask, "zero-filled")).max())
    theirs = sigpy.mri.app.TotalVariationRecon(kspace[None], np.ones((1, *image.shape), np.complex64), lamda,
                                               weights=mask.astype(np.float32), solver="ADMM", rho=1.0, max_iter=20,
                                               show_pbar=False).run()
    np.testing.assert_allclose(ours, theirs, atol=1e-4 * np.abs(theirs).max())


@pytest.mark.parametrize(("mask_type", "coils"), [("cartesian", 1), ("vd2d", 1), ("cartesian", 4)])
def test_cs_l1_is_sigpy_s_fista(brain_slice, mask_type, coils):
    """cs-l1 on Cartesian data runs SigPy's ``L1WaveletRecon`` (FISTA from zero, step
    1 / max eig, db4 wavelets in zero mode) in torch: the same image, step for step."""
    import sigpy.mri.app

    image = brain_slice[::2, ::2].astype(np.complex64)  # 128 x 128: SigPy's numpy run stays quick
    mask = make_mask("25pct", image.shape, mask_type, seed=5).array
    maps = np.ones((1, *image.shape), np.complex64) if coils == 1 else simulate_coil_maps(coils, image.shape).numpy()
    kspace = fft2c(maps * image) * mask
    method = recon.get("cs-l1", max_iter=20)
    ours = method.reconstruct(torch.from_numpy(kspace)[None], torch.from_numpy(mask),
                              None if coils == 1 else torch.from_numpy(maps)[None])[0].numpy()
    zero_filled = recon.reconstruct(kspace if coils > 1 else kspace[0], mask, "zero-filled",
                                    coil_maps=None if coils == 1 else maps)
    lamda = method.weight_for(torch.from_numpy(mask)) * float(np.abs(zero_filled).max())
    theirs = sigpy.mri.app.L1WaveletRecon(kspace, maps, lamda, weights=mask.astype(np.float32), max_iter=20,
                                          show_pbar=False).run()
    if coils > 1:
        theirs = theirs * ((np.abs(maps) ** 2).sum(axis=0) > 1e-6)  # as every multi-coil method: zero outside the maps
    np.testing.assert_allclose(ours, theirs, atol=1e-4 * np.abs(theirs).max())


def test_cs_l1_on_a_trajectory_is_sigpy_s_problem(brain_slice):
    """On radial k-space cs-l1 runs the same FISTA on the project's NUFFT: SigPy's app with
    ``coord`` (its less exact Kaiser-Bessel NUFFT) gives the same image to its NUFFT's
    accuracy."""
    import sigpy.mri.app

    from masks import make_trajectory
    from physics.operators import sampling_operator
    from recon.api import as_sampling

    image = brain_slice[::4, ::4].astype(np.complex64)  # 64 x 64
    trajectory = as_sampling(make_trajectory("25pct", image.shape, "radial", seed=3))
    kspace = sampling_operator(trajectory)(torch.from_numpy(image)[None])
    method = recon.get("cs-l1", max_iter=20)
    ours = method.reconstruct(kspace, trajectory)[0].numpy()
    lamda = method.weight_for(trajectory) * float(sampling_operator(trajectory).gridding(kspace).abs().max())
    theirs = sigpy.mri.app.L1WaveletRecon(kspace[0].numpy(), np.ones((1, *image.shape), np.complex64), lamda,
                                          coord=trajectory.coords.numpy(), max_iter=20, show_pbar=False).run()
    assert np.abs(theirs - ours).max() < 1e-2 * np.abs(theirs).max()
    assert np.abs(theirs - image).max() > 0.05 * np.abs(image).max()  # an undersampled image, not a copy of the truth


@pytest.mark.parametrize("name", ["cs-l1", "cs-tv"])
def test_cs_batch_items_are_independent_and_an_empty_item_gives_zeros(brain_slice, name):
    """Each item of a batch has its own weight (scaled by its own data) and step: the first
    item alone and in a batch with a louder copy and an empty item gives the same image."""
    image = brain_slice[::2, ::2].astype(np.complex64)
    mask = torch.from_numpy(make_mask("25pct", image.shape, "cartesian", seed=5).array)
    kspace = torch.from_numpy(fft2c(image) * mask.numpy())[None, None]
    method = recon.get(name, max_iter=10)
    alone = method.reconstruct(kspace, mask)
    batch = method.reconstruct(torch.cat([kspace, 100 * kspace, torch.zeros_like(kspace)]), mask)
    torch.testing.assert_close(batch[0], alone[0], atol=1e-5 * float(alone.abs().max()), rtol=0)
    torch.testing.assert_close(batch[1] / 100, alone[0], atol=1e-4 * float(alone.abs().max()), rtol=0)
    assert float(batch[2].abs().max()) == 0.0


def test_zero_filled_is_exact_when_fully_sampled(brain_slice):
    kspace = fft2c(brain_slice.astype(np.complex64))
    image = recon.reconstruct(kspace, np.ones(brain_slice.shape, bool), "zero-filled")
    np.testing.assert_allclose(image.real, brain_slice, atol=1e-5)


def test_multicoil_with_espirit_maps_and_cg_sense(brain_slice):
    truth = torch.from_numpy(brain_slice[None])
    maps = simulate_coil_maps(8, brain_slice.shape)
    mask = make_mask("30pct", brain_slice.shape, "cartesian", seed=3).array
    kspace, _ = simulate_kspace(truth, torch.from_numpy(mask), coil_maps=maps)
    zero_filled = recon.reconstruct(kspace[0].numpy(), mask, "zero-filled")
    sense = recon.reconstruct(kspace[0].numpy(), mask, "cg-sense")
    with_true_maps = recon.reconstruct(kspace[0].numpy(), mask, "cg-sense", coil_maps=maps.numpy())
    # ESPIRiT maps are zero outside the object, which also suppresses background
    # aliasing, so they beat the true (full field-of-view) birdcage maps here.
    assert metrics.psnr(sense, brain_slice) > metrics.psnr(zero_filled, brain_slice) + 3
    assert metrics.psnr(with_true_maps, brain_slice) > metrics.psnr(zero_filled, brain_slice) + 2


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"mask": np.ones((10, 10), bool)}, "mask shape"),
        ({"kspace": np.full((32, 32), np.nan, np.complex64)}, "NaN or Inf"),
        ({"kspace": np.zeros((32, 32), np.complex64)}, "all zero"),
        ({"method": "cs-l2"}, "valid methods: .*cs-l1"),
        ({"kspace": np.zeros((2, 3, 32, 32), np.complex64)}, r"\(H, W\) or \(C, H, W\)"),
        ({"mask": np.zeros((32, 32), bool)}, "samples no"),
    ],
)
def test_bad_input_gets_a_clear_error(kwargs, message):
    args = {
        "kspace": np.ones((32, 32), np.complex64),
        "mask": np.ones((32, 32), bool),
        "method": "zero-filled",
    }
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        recon.reconstruct(args["kspace"], args["mask"], args["method"])


def test_registry():
    names = recon.registered()
    for name in ("zero-filled", "cs-l1", "cs-tv", "cg-sense", "bart-l1", "bart-tv"):
        assert name in names
    assert set(recon.available()) <= set(names)
    assert ("bart-l1" in recon.available()) == HAS_BART
    with pytest.raises(ValueError, match="unknown method 'nope'; valid methods"):
        recon.get("nope")
    with pytest.raises(ValueError, match="already registered"):
        recon.register("cs-l1")(type("Dup", (recon.Reconstructor,), {}))


def test_bart_missing_gives_clear_error(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "bart-l1" not in recon.available()
    with pytest.raises(recon.MethodUnavailable, match="Debian package `bart`"):
        recon.get("bart-tv")


def test_cfl_round_trip(tmp_path, rng):
    data = (rng.standard_normal((5, 4, 1, 3)) + 1j * rng.standard_normal((5, 4, 1, 3))).astype(np.complex64)
    write_cfl(tmp_path / "x", data)
    assert (tmp_path / "x.hdr").read_text().startswith("# Dimensions\n5 4 1 3 1")
    np.testing.assert_array_equal(read_cfl(tmp_path / "x"), data)


@pytest.mark.skipif(not HAS_BART, reason="the bart binary is not installed (Debian package bart)")
def test_bart_methods_agree_with_our_fft_and_scale(brain_slice):
    mask = make_mask("50pct", brain_slice.shape, "cartesian", seed=4).array
    kspace = fft2c(brain_slice.astype(np.complex64))
    zero_filled = recon.reconstruct(kspace, mask, "zero-filled")
    for method in ("bart-l1", "bart-tv"):
        image = recon.reconstruct(kspace, mask, method)
        # same orientation and intensity scale as the truth, and better than zero-filled
        assert metrics.psnr(image, brain_slice) > metrics.psnr(zero_filled, brain_slice) + 3, method
        assert 0.8 < np.abs(image).max() / brain_slice.max() < 1.2


def test_multicoil_cs_is_restricted_to_the_coil_support(brain_slice):
    # Without the support restriction, TV smeared the brain's edge into the
    # unobserved background and SSIM fell far below zero-filled (0.27 vs 0.82).
    maps = simulate_coil_maps(8, brain_slice.shape)
    mask = make_mask("10pct", brain_slice.shape, "cartesian", seed=3).array
    kspace, _ = simulate_kspace(torch.from_numpy(brain_slice[None]), torch.from_numpy(mask), coil_maps=maps)
    zero_filled = recon.reconstruct(kspace[0].numpy(), mask, "zero-filled")
    tv = recon.reconstruct(kspace[0].numpy(), mask, "cs-tv")
    assert metrics.ssim(tv, brain_slice) > metrics.ssim(zero_filled, brain_slice)
    assert metrics.psnr(tv, brain_slice) > metrics.psnr(zero_filled, brain_slice) + 2


@pytest.mark.skipif(not HAS_BART, reason="BART is not installed")
def test_bart_on_an_odd_grid_matches_the_even_grid_conventions():
    """bart pics reconstructs wrongly on odd grids; the adapter pads them to even and back
    (25.1 dB before, 32.1 after, on a 255 x 233 slice with cs-tv at 32.8)."""
    from physics import MultiCoil, simulate_coil_maps

    grid = np.meshgrid(np.linspace(-1, 1, 45), np.linspace(-1, 1, 39), indexing="ij")
    truth = torch.from_numpy(((grid[0] ** 2 + grid[1] ** 2 < 0.6) * 1.0 + (np.abs(grid[0]) < 0.2) * 0.5).astype(np.float32))
    mask = torch.zeros(45, 39, dtype=torch.bool)
    mask[:, ::2] = True
    mask[:, 14:25] = True
    maps = simulate_coil_maps(4, (45, 39)).unsqueeze(0)
    kspace = MultiCoil(mask, maps)(truth.to(torch.complex64)[None])
    image = recon.get("bart-tv").reconstruct(kspace, mask, maps)[0].abs()
    assert image.shape == (45, 39)
    assert float((image - truth).pow(2).mean().sqrt()) < 0.05
