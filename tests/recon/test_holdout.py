"""k-space hold-out: the folds, the error estimate, its calibration, and the guard."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import recon
from masks import make_mask
from physics import simulate_kspace
from recon.registry import Reconstructor
from recon.trust import calibration, guard, holdout


@pytest.mark.parametrize("kind", ["cartesian", "equispaced", "gaussian1d", "random2d", "vd2d", "radial-raster"])
def test_folds_partition_the_measured_points_outside_the_centre(kind):
    mask = make_mask("25pct", (96, 96), kind, seed=3).array
    folds = holdout.holdout_folds(mask, 4, seed=1)
    block = holdout.calibration_block(mask)
    union = np.zeros_like(mask)
    for fold in folds:
        assert fold.any() and not (fold & union).any()  # disjoint, none empty
        assert not (fold & block).any()  # the calibration block is never held out
        assert not (fold & ~mask).any()  # only measured points
        union |= fold
    assert (union == (mask & ~block)).all()
    if holdout.mask_dimensions(mask) == 1:  # whole phase-encode lines, as the family measures them
        for fold in folds:
            assert (fold[:, fold.any(axis=0)]).all()
    assert all((a == b).all() for a, b in zip(folds, holdout.holdout_folds(mask, 4, seed=1)))  # seeded


def test_folds_keep_the_density_profile():
    mask = make_mask("25pct", (128, 128), "vd2d", seed=0).array
    radius = np.hypot(*np.meshgrid(np.arange(128) - 64, np.arange(128) - 64, indexing="ij"))
    means = [radius[fold].mean() for fold in holdout.holdout_folds(mask, 4, seed=0)]
    assert max(means) - min(means) < 0.05 * np.mean(means)  # stratified by distance


def test_too_few_lines_is_a_clear_error():
    mask = np.zeros((32, 32), bool)
    mask[:, 14:18] = True
    mask[:, 2] = True
    with pytest.raises(ValueError, match="too few to hold out"):
        holdout.holdout_folds(mask, 4)
    assert holdout.holdout_units(mask) == 1


class _Oracle(Reconstructor):
    """Returns the truth whatever it is given: its estimated error must be tiny."""

    family = "cs"

    def __init__(self, truth):
        self.truth = truth

    def reconstruct(self, kspace, mask, coil_maps=None):
        return self.truth[None]


def _brain(size: int = 128) -> np.ndarray:
    from skimage.transform import resize

    from pipelines.data.sample import sample

    return resize(np.asarray(sample("test").images[0], np.float32), (size, size), anti_aliasing=True).astype(np.float32)


def _case(kind="cartesian", preset="25pct", coils=None, seed=0):
    image = torch.from_numpy(_brain())[None]
    mask = torch.from_numpy(make_mask(preset, (128, 128), kind, seed=seed).array)
    kspace, truth = simulate_kspace(image, mask, coil_maps=coils)
    return kspace, mask, truth


@pytest.mark.parametrize("kind", ["cartesian", "vd2d"])
def test_estimate_tracks_the_true_error_of_zero_filled_and_sees_a_perfect_method(kind):
    kspace, mask, truth = _case(kind)
    zero_filled = recon.get("zero-filled")
    image = zero_filled.reconstruct(kspace, mask)
    true_nmse = float((image - truth).abs().pow(2).sum() / truth.abs().pow(2).sum())
    estimate = holdout.estimate_error(zero_filled, kspace, mask, None, image, folds=4, seed=0, calibration={})
    assert estimate.calibration == "identity" and estimate.nmse == estimate.nmse_raw
    assert true_nmse / 4 < estimate.nmse < true_nmse * 4  # the raw estimate is of the right size
    oracle = holdout.estimate_error(_Oracle(truth[0]), kspace, mask, None, truth, folds=4, seed=0, calibration={})
    assert oracle.nmse < 1e-6 * estimate.nmse
    assert oracle.psnr > estimate.psnr + 40


def test_multicoil_estimate_uses_the_coil_maps():
    from physics import simulate_coil_maps

    maps = simulate_coil_maps(4, (128, 128)).unsqueeze(0)
    kspace, mask, truth = _case("cartesian", coils=maps)
    method = recon.get("cg-sense")
    image = method.reconstruct(kspace, mask, maps)
    true_nmse = float((image - truth).abs().pow(2).sum() / truth.abs().pow(2).sum())
    estimate = holdout.estimate_error(method, kspace, mask, maps, image, folds=4, seed=0, calibration={})
    assert len(estimate.fold_nmse) == 4 and estimate.psnr_spread >= 0
    assert true_nmse / 10 < estimate.nmse < true_nmse * 10


def test_calibration_lines_apply_by_method_then_family():
    lines = {"lines": {"cs-tv:1d": [0.0, 1.0], "cs:1d": [1.0, 1.0], "learned:2d": [-1.0, 2.0]}}
    assert calibration.calibrate(0.01, "cs-tv", "cs", 1, lines) == (pytest.approx(0.01), "cs-tv:1d")
    assert calibration.calibrate(0.01, "cs-l1", "cs", 1, lines) == (pytest.approx(0.1), "cs:1d")
    assert calibration.calibrate(0.01, "gan-drn", "learned", 2, lines) == (pytest.approx(1e-5), "learned:2d")
    assert calibration.calibrate(0.01, "gan-drn", "learned", 1, lines) == (0.01, "identity")


def test_shipped_calibration_is_fitted_for_every_builtin_family():
    shipped = calibration.load_calibration()
    for key in ("cs:1d", "cs:2d", "learned:1d", "learned:2d", "baseline:1d", "baseline:2d",
                "cs:block", "learned:block", "baseline:block"):
        a, b = shipped["lines"][key]
        assert math.isfinite(a) and 0.2 < b < 3  # a monotone map from raw to calibrated


def test_guard_flags_only_beyond_the_spread():
    cs = [("cs-l1", 30.0, 0.3), ("cs-tv", 32.0, 0.4)]
    worse = guard.compare(29.0, 0.3, cs)
    assert worse.flagged and worse.reference == "cs-tv" and worse.gap_db == pytest.approx(3.0)
    assert worse.threshold_db == pytest.approx(0.5 - guard.REQUIRED_LEAD_DB)
    assert guard.compare(32.3, 0.3, cs).flagged  # ahead by less than the required lead
    assert not guard.compare(33.0, 0.3, cs).flagged  # ahead by the lead, less the spread
    assert not guard.compare(32.3, 1.4, cs).flagged  # estimates too loose to tell
    assert not guard.compare(35.0, 0.3, cs).flagged  # clearly better
    assert not guard.compare(20.0, 0.3, []).flagged  # nothing to compare with
    # an estimate that cannot judge the output: flagged whatever the gap, and says why
    untrusted = guard.compare(35.0, 0.3, cs, untrusted="no calibration block")
    assert untrusted.flagged and untrusted.reference == "cs-tv" and untrusted.untrusted == "no calibration block"
    assert untrusted.to_dict()["guard_untrusted"] == "no calibration block"
    assert "guard_untrusted" not in guard.compare(35.0, 0.3, cs).to_dict()
    # folds that disagree by more than MAX_SPREAD_DB excuse no more than it
    assert guard.compare(31.8, 5.0, cs).flagged and not guard.compare(32.3, 5.0, cs).flagged
    assert guard.compare(32.3, 5.0, cs).threshold_db == pytest.approx(guard.MAX_SPREAD_DB - guard.REQUIRED_LEAD_DB)
    # a fixed lead whatever the spread (masks without a calibration block)
    assert guard.compare(31.8, 5.0, cs, strict_lead_db=0.5).flagged
    assert not guard.compare(32.6, 5.0, cs, strict_lead_db=0.5).flagged


def test_more_coils_than_were_checked_get_no_interval_and_the_guard_falls_back():
    from pipelines.common.evaluation import guard_verdicts

    limit = calibration.CHECKED_COILS

    def estimate(method, family, coils, nmse):
        return holdout.summarise_folds([nmse] * 4, method, family, "1d", 1.0, 0.1, mask_type="cartesian", coils=coils)

    checked = estimate("gan-drn", "learned", limit, 1e-3)
    assert checked.untrusted == "" and math.isfinite(checked.psnr_low) and checked.psnr_low < checked.psnr_high
    unchecked = estimate("gan-drn", "learned", limit + 1, 1e-3)
    assert f"{limit + 1} coils, more than the {limit}" in unchecked.untrusted
    assert unchecked.psnr == checked.psnr and math.isnan(unchecked.psnr_low) and math.isnan(unchecked.psnr_high)
    assert unchecked.to_dict()["estimate_untrusted"] == unchecked.untrusted
    assert "estimate_untrusted" not in checked.to_dict()
    # the learned output leads cs-tv's estimate by far: passed within the checked range, not beyond it
    for coils, flagged in ((limit, False), (limit + 1, True)):
        verdict = guard_verdicts({"gan-drn": [estimate("gan-drn", "learned", coils, 1e-4)],
                                  "cs-tv": [estimate("cs-tv", "cs", coils, 1e-2)]})["gan-drn"][0]
        assert verdict.flagged == flagged and bool(verdict.untrusted) == flagged


def test_super_resolution_blocks_are_recognised_and_folded_as_smaller_copies_of_the_task():
    mask = make_mask("lowres-4x", (128, 128), "lowres").array
    assert holdout.block_shape(mask) == (32, 32) and holdout.mask_kind(mask) == "block"
    assert holdout.mask_kind(make_mask("25pct", (128, 128), "cartesian", seed=0).array) == "1d"
    assert holdout.block_shape(np.ones((16, 16), bool)) is None  # fully sampled: nothing to estimate
    off_centre = np.zeros((64, 64), bool)
    off_centre[:16, :16] = True
    assert holdout.block_shape(off_centre) is None
    folds = holdout.holdout_folds(mask, 3)
    assert holdout.holdout_units(mask) >= 3
    sizes = []
    for ring in folds:
        assert not (ring & ~mask).any()  # only measured points are predicted
        rows, columns = np.flatnonzero(ring.any(axis=1)), np.flatnonzero(ring.any(axis=0))
        grid = ring[rows[0]: rows[-1] + 1, columns[0]: columns[-1] + 1]
        hole = ~grid
        side, inner = grid.shape[0], int(hole.any(axis=1).sum())
        assert grid.shape[0] == grid.shape[1] and inner * 4 == side  # the mask's own factor, 4x
        assert holdout.block_shape(hole) == (inner, inner)  # what the fold measures is again a central block
        sizes.append(side)
    assert sizes[0] == 32 and sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
    with pytest.raises(ValueError, match="too small"):
        holdout.holdout_folds(make_mask("lowres-4x", (32, 32), "lowres").array, 4)


class _BlockOracle(Reconstructor):
    """Knows the full k-space: on any centred grid it returns the true image there."""

    family = "learned"

    def __init__(self, kspace):
        self.kspace = kspace

    def reconstruct(self, kspace, mask, coil_maps=None):
        from physics.fft import ifft2c

        height, width = kspace.shape[-2:]
        full_height, full_width = self.kspace.shape[-2:]
        top, left = full_height // 2 - height // 2, full_width // 2 - width // 2
        return ifft2c(self.kspace[:, 0, top: top + height, left: left + width])


@pytest.mark.parametrize("preset", ["lowres-2x", "lowres-4x"])
def test_super_resolution_estimate_sizes_zero_padding_and_sees_a_perfect_method(preset):
    image = torch.from_numpy(_brain())[None]
    full = torch.ones((128, 128), dtype=torch.bool)
    complete, truth = simulate_kspace(image, full)
    mask = torch.from_numpy(make_mask(preset, (128, 128), "lowres").array)
    kspace = complete * mask
    zero_filled = recon.get("zero-filled")
    padded = zero_filled.reconstruct(kspace, mask)
    true_nmse = float((padded - truth).abs().pow(2).sum() / truth.abs().pow(2).sum())
    estimate = holdout.estimate_error(zero_filled, kspace, mask, None, padded, folds=3, calibration={})
    assert true_nmse / 4 < estimate.nmse_raw < true_nmse * 4  # the extrapolated energy beyond the block
    assert max(estimate.fold_nmse) == pytest.approx(min(estimate.fold_nmse), rel=0.02)  # zero-filled misses all of each ring
    oracle = holdout.estimate_error(_BlockOracle(complete), kspace, mask, None, truth, folds=3, calibration={})
    assert oracle.nmse_raw < 1e-4 * estimate.nmse_raw


def test_super_resolution_estimate_counts_a_misfit_on_the_measured_block():
    image = torch.from_numpy(_brain())[None]
    mask = torch.from_numpy(make_mask("lowres-2x", (128, 128), "lowres").array)
    kspace, _ = simulate_kspace(image, mask)
    zero_filled = recon.get("zero-filled")
    padded = zero_filled.reconstruct(kspace, mask)
    exact = holdout.estimate_error(zero_filled, kspace, mask, None, padded, folds=2, calibration={})
    shifted = holdout.estimate_error(zero_filled, kspace, mask, None, padded * 1.1, folds=2, calibration={})
    assert shifted.nmse_raw > exact.nmse_raw + 0.005  # 10 % off everywhere: 1 % NMSE on the block alone
    assert calibration.calibrate(0.01, "mpp-gan", "learned", "block", {"lines": {"learned:block": [0.0, 1.0]}}) == (
        pytest.approx(0.01), "learned:block")


def test_masks_without_a_calibration_block_have_their_own_kind_and_fall_back_to_its_line():
    from masks import make_mask
    from recon.trust.calibration import calibrate
    from recon.trust.holdout import mask_kind

    assert mask_kind(make_mask("25pct", (64, 64), "vd2d", seed=1).array) == "2d"
    assert mask_kind(make_mask("25pct", (64, 64), "vd2d", seed=1, center_fraction=0.0).array) == "2d-nocal"
    assert mask_kind(make_mask("25pct", (64, 64), "cartesian", seed=1, center_fraction=0.0).array) == "1d-nocal"
    lines = {"lines": {"cs:2d": [0.0, 1.0], "cs:2d-nocal": [1.0, 1.0]}}
    assert calibrate(0.01, "cs-tv", "cs", "2d-nocal", lines) == (pytest.approx(0.1), "cs:2d-nocal")
    assert calibrate(0.01, "cg", "learned", "1d-nocal", {"lines": {"learned:1d": [0.0, 1.0]}})[1] == "learned:1d"


def test_offsets_per_mask_family_and_coil_group_come_before_the_lines():
    from recon.trust.calibration import calibrate, interval_for, offset_keys

    shipped = {"lines": {"cs:1d": [1.0, 1.0]},
               "offsets": {"cs:equispaced:mc": {"offset_db": 10.0, "interval_db": [-2.0, 3.0], "points": 9},
                           "cs:equispaced": {"offset_db": -10.0, "interval_db": [-1.0, 1.0], "points": 20},
                           "learned:vd2d:nocal:1c": {"offset_db": 0.0, "interval_db": [-4.0, 4.0], "points": 8}}}
    # +10 dB of PSNR: a tenth of the NMSE; the multi-coil entry first, then the family's
    assert calibrate(0.01, "cs-tv", "cs", "1d", shipped, "equispaced", 8) == (pytest.approx(0.001), "cs:equispaced:mc")
    assert calibrate(0.01, "cs-tv", "cs", "1d", shipped, "equispaced", 1) == (pytest.approx(0.1), "cs:equispaced")
    assert interval_for("cs:equispaced:mc", shipped) == (-2.0, 3.0)
    # no entry for the family, or no family known (a mask from a file): the kind's line
    assert calibrate(0.01, "cs-tv", "cs", "1d", shipped, "cartesian", 1) == (pytest.approx(0.1), "cs:1d")
    assert calibrate(0.01, "cs-tv", "cs", "1d", shipped, None, 8)[1] == "cs:1d"
    # a mask without a calibration block is its family's ":nocal", whatever the family was asked for
    assert offset_keys("learned", "vd2d", 1, "2d-nocal") == ["learned:vd2d:nocal:1c", "learned:vd2d:nocal"]
    assert calibrate(0.01, "gan-drn", "learned", "2d-nocal", shipped, "vd2d", 1)[1] == "learned:vd2d:nocal:1c"


def test_a_method_s_own_offsets_come_before_its_family_s():
    """CG-SENSE is a ``baseline`` like zero-filled, but its hold-out is unlike it: its
    own entries (``cg-sense:cartesian:mc``) calibrate it first; zero-filled keeps the
    family's."""
    from recon.trust.calibration import calibrate

    shipped = {"lines": {}, "offsets": {"cg-sense:cartesian:mc": {"offset_db": -10.0, "interval_db": [-1.0, 1.0]},
                                        "baseline:cartesian:mc": {"offset_db": 0.0, "interval_db": [-1.0, 1.0]}}}
    assert calibrate(0.01, "cg-sense", "baseline", "1d", shipped, "cartesian", 8) == (pytest.approx(0.1),
                                                                                      "cg-sense:cartesian:mc")
    assert calibrate(0.01, "zero-filled", "baseline", "1d", shipped, "cartesian", 8) == (pytest.approx(0.01),
                                                                                         "baseline:cartesian:mc")
    assert calibrate(0.01, "cg-sense", "baseline", "1d", shipped, "cartesian", 1)[1] == "identity"  # no 1c entry
    # the data's condition comes first: a method's clean entry never takes noisy data, or a
    # 3-D acquisition's planes, from its family's entries of that condition
    noisy = {"offset_db": 0.0, "interval_db": [-1.0, 1.0]}
    shipped["offsets"].update({"baseline:cartesian:mc-noisy": noisy, "baseline:poisson@planes:mc-noisy": noisy})
    assert calibrate(0.01, "cg-sense", "baseline", "1d", shipped, "cartesian", 8, "noisy")[1] == "baseline:cartesian:mc-noisy"
    assert calibrate(0.01, "cg-sense", "baseline", "1d", shipped, "cartesian", 8, "clean")[1] == "cg-sense:cartesian:mc"
    shipped["offsets"]["cg-sense:cartesian:mc-noisy"] = {"offset_db": -10.0, "interval_db": [-1.0, 1.0]}
    assert calibrate(0.01, "cg-sense", "baseline", "1d", shipped, "cartesian", 8, "noisy")[1] == "cg-sense:cartesian:mc-noisy"
    shipped["offsets"]["cg-sense:poisson:mc-noisy"] = shipped["offsets"]["cg-sense:cartesian:mc-noisy"]
    assert calibrate(0.01, "cg-sense", "baseline", "2d", shipped, "poisson@planes", 8,
                     "noisy")[1] == "baseline:poisson@planes:mc-noisy"


def test_the_raw_estimate_follows_an_error_spectrum_that_falls_off_a_cliff():
    # Held-out lines at distances 8..48: error 1 per line up to 16, none beyond 24 (an
    # image with no detail there). The unmeasured lines beyond 24 hold no error, so the
    # estimate is about the 6 unmeasured lines from 9 to 15 plus the fall from 16 to 24;
    # a power law through all the bins put most of it beyond 24.
    bins = 64
    held = [8, 12, 16, 24, 32, 48]
    counts = np.zeros(bins)
    energy = np.zeros(bins)
    counts[held] = 1
    energy[held] = [1.0, 1.0, 1.0, 1e-8, 1e-8, 1e-8]
    unmeasured = np.zeros(bins)
    unmeasured[8:] = 1
    unmeasured[held] = 0
    (estimate,) = holdout.nmse_from_residuals([np.stack([counts, energy])], unmeasured, 1.0)
    assert 6.0 < estimate < 9.0
