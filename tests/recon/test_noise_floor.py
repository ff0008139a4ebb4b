"""The coil noise a hold-out residual carries and no combined image holds
(``recon.trust.noise_floor``), and the calibration regimes that go with it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recon
from masks import make_mask
from physics import simulate_coil_maps, simulate_kspace
from recon.trust import holdout, noise_floor
from recon.trust.calibration import calibrate, offset_keys, on_planes


def _brain(size: int = 128) -> torch.Tensor:
    from skimage.transform import resize

    from pipelines.data.sample import sample

    image = resize(np.asarray(sample("test").images[0], np.float32), (size, size), anti_aliasing=True)
    return torch.from_numpy(image.astype(np.float32))[None]


def _acquisition(coils: int, snr: float | None, preset: str = "25pct", kind: str = "cartesian"):
    image = _brain()
    maps = simulate_coil_maps(coils, (128, 128)).unsqueeze(0) if coils > 1 else None
    mask = torch.from_numpy(make_mask(preset, (128, 128), kind, seed=3).array)
    kspace, truth = simulate_kspace(image, mask, coil_maps=maps, noise_snr=snr, generator=torch.Generator().manual_seed(1))
    return kspace, mask, maps, truth, float(truth.abs().pow(2).mean().sqrt())


def _elliptical(mask: torch.Tensor) -> torch.Tensor:
    """``mask`` without its corners (radius beyond half the grid), as an elliptical scan."""
    height, width = mask.shape
    ky = (torch.arange(height) - height // 2) / height
    kx = (torch.arange(width) - width // 2) / width
    return mask & (torch.hypot(ky[:, None], kx[None, :]) <= 0.5)


@pytest.mark.parametrize("kind", ["cartesian", "vd2d", "elliptical"])
def test_the_floor_is_the_coil_noise_outside_the_maps_span(kind):
    coils, snr = 8, 25.0
    kspace, mask, maps, _, rms = _acquisition(coils, snr, kind="poisson" if kind == "elliptical" else kind)
    if kind == "elliptical":  # no corner sampled: the outermost samples measure the floor
        mask = _elliptical(mask)
        kspace = kspace * mask
    sigma2 = (rms / 10 ** (snr / 20)) ** 2  # the noise energy of one complex sample of one coil
    support = float((maps[0].abs().pow(2).sum(dim=0) > 1e-6).float().mean())
    floor = noise_floor.out_of_span_floor(kspace, mask.numpy(), maps)
    # white coil noise keeps 1/C of its energy inside the span where the maps are, none elsewhere
    assert floor == pytest.approx(sigma2 * (coils - support), rel=0.15)
    # what the hold-out subtracts is all of a held-out sample's noise, every coil's
    assert noise_floor.noise_floor(kspace, mask.numpy(), maps) == pytest.approx(sigma2 * coils, rel=0.15)
    # without noise, the image's own corners are inside the span: next to nothing
    clean, clean_mask, maps, _, _ = _acquisition(coils, None, kind="poisson" if kind == "elliptical" else kind)
    clean_mask = _elliptical(clean_mask) if kind == "elliptical" else clean_mask
    # (the outermost ring inside the ellipse holds more of the image: a few per cent)
    leak = 0.05 if kind == "elliptical" else 0.02
    assert noise_floor.out_of_span_floor(clean * clean_mask, clean_mask.numpy(), maps) < leak * floor
    # one coil, or no maps: nothing is outside the span
    single, mask, _, _, _ = _acquisition(1, snr, kind="cartesian")
    assert noise_floor.out_of_span_floor(single, mask.numpy(), None) == 0.0
    assert noise_floor.noise_floor(single, mask.numpy(), None) == 0.0


def test_the_floor_is_taken_off_each_held_out_sample_never_below_a_twentieth():
    energy, points = np.array([10.0, 4.0, 1.0]), np.array([2.0, 2.0, 2.0])
    assert noise_floor.subtract_floor(energy, points, 0.0) is energy
    assert np.allclose(noise_floor.subtract_floor(energy, points, 1.0), [8.0, 2.0, 0.05])
    mask = np.zeros((16, 16), bool)
    mask[:, [2, 8, 12]] = True  # a 1-D mask: a held-out line is 16 samples
    line = [np.array([[0.0, 1.0], [0.0, 100.0]])]
    assert np.allclose(holdout.without_noise_floor(line, mask, 2.0)[0][1], [0.0, 68.0])


def test_a_noisy_simulation_judged_against_its_clean_image_is_estimated_without_the_coil_noise():
    kspace, mask, maps, truth, _ = _acquisition(8, 20.0, preset="25pct", kind="poisson")
    method = recon.get("cs-tv")
    image = method.reconstruct(kspace, mask, maps)
    true_nmse = float((image.abs() - truth.abs()).pow(2).sum() / truth.abs().pow(2).sum())
    whole = holdout.estimate_error(method, kspace, mask, maps, image, folds=4, seed=0, calibration={})
    clean = holdout.estimate_error(method, kspace, mask, maps, image, folds=4, seed=0, calibration={}, regime="noisy")
    assert clean.nmse_raw < whole.nmse_raw / 2  # most of the residual was coil noise
    assert abs(np.log10(clean.nmse_raw / true_nmse)) < abs(np.log10(whole.nmse_raw / true_nmse))


def test_noisy_and_measured_data_take_their_own_offsets_first():
    assert offset_keys("cs", "poisson", 8, "2d", "noisy") == ["cs:poisson:mc-noisy", "cs:2d:mc-noisy", "cs:poisson:mc",
                                                              "cs:poisson"]
    assert offset_keys("cs", None, 8, "1d", "measured") == ["cs:1d:mc-measured"]  # a mask read from a file
    assert offset_keys("cs", None, 8, "1d") == []
    assert offset_keys("cs", "poisson", 8, "2d") == ["cs:poisson:mc", "cs:poisson"]
    shipped = {"lines": {}, "offsets": {"cs:poisson:mc-measured": {"offset_db": 10.0, "interval_db": [-1.0, 1.0]},
                                        "cs:poisson:mc": {"offset_db": 0.0, "interval_db": [-1.0, 1.0]}}}
    assert calibrate(0.01, "cs-tv", "cs", "2d", shipped, "poisson", 8, "measured") == (pytest.approx(0.001),
                                                                                          "cs:poisson:mc-measured")
    # a regime without an entry of its own falls back to the clean one
    assert calibrate(0.01, "cs-tv", "cs", "2d", shipped, "poisson", 8, "noisy")[1] == "cs:poisson:mc"


def test_the_planes_of_a_3d_acquisition_take_their_own_entry_first_then_the_slices():
    assert on_planes("poisson") == "poisson@planes" == on_planes("poisson@planes") and on_planes(None) == "@planes"
    assert offset_keys("cs", "vd2d:nocal@planes", 8, "2d-nocal", "noisy") == [
        "cs:vd2d:nocal@planes:mc-noisy", "cs:2d-nocal@planes:mc-noisy", "cs:vd2d:nocal:mc-noisy", "cs:2d-nocal:mc-noisy",
        "cs:vd2d:nocal:mc", "cs:vd2d:nocal"]
    # a 3-D scan's own (acquired) mask: its kind's plane entry, then its kind's slice entry
    assert offset_keys("cs", on_planes(None), 8, "2d", "measured") == ["cs:2d@planes:mc-measured", "cs:2d:mc-measured"]
    shipped = {"lines": {}, "offsets": {"learned:poisson@planes:mc-noisy": {"offset_db": 10.0, "interval_db": [-1, 1]},
                                        "learned:poisson:mc-noisy": {"offset_db": 0.0, "interval_db": [-1, 1]}}}
    assert calibrate(0.01, "gan-drn", "learned", "2d", shipped, "poisson@planes", 8, "noisy") == (
        pytest.approx(0.001), "learned:poisson@planes:mc-noisy")
    assert calibrate(0.01, "gan-drn", "learned", "2d", shipped, "poisson", 8, "noisy")[1] == "learned:poisson:mc-noisy"
    del shipped["offsets"]["learned:poisson@planes:mc-noisy"]  # none of their own: the slices'
    assert calibrate(0.01, "gan-drn", "learned", "2d", shipped, "poisson@planes", 8, "noisy")[1] == (
        "learned:poisson:mc-noisy")


def test_the_guard_takes_the_lead_of_the_regime_its_estimate_was_calibrated_in():
    from recon.trust import guard

    fitted = {"guard_lead_db": {"measured": 0.2}}
    assert guard.judging("learned:poisson:mc-measured", "2d", fitted)["lead_db"] == 0.2
    assert guard.judging("learned:1d:1c-measured", "1d", fitted)["lead_db"] == 0.2
    # no lead of its own (noisy), or no regime at all (a clean entry, a -nocal line): the clean lead
    for key, kind in (("learned:poisson:mc-noisy", "2d"), ("learned:poisson:mc", "2d"), ("learned:1d-nocal", "1d-nocal")):
        assert guard.judging(key, kind, fitted)["lead_db"] == guard.REQUIRED_LEAD_DB
    # the planes of a 3-D acquisition take their own, never the slices' noisy one
    fitted = {"guard_lead_db": {"noisy": 3.0, "noisy@planes": 0.1}}
    assert guard.lead_regime("learned:poisson@planes:mc-noisy") == "noisy@planes"
    assert guard.judging("learned:poisson@planes:mc-noisy", "2d", fitted)["lead_db"] == 0.1
    assert guard.judging("learned:poisson:mc-noisy", "2d", fitted)["lead_db"] == 3.0
