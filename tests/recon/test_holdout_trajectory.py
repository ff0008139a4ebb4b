"""The k-space hold-out on radial and spiral trajectories (:mod:`recon.trust.holdout_trajectory`)."""

import math

import numpy as np
import pytest
import torch

import recon
from masks import make_trajectory
from physics import simulate_kspace
from physics.nufft import Trajectory
from recon import metrics
from recon.api import as_sampling
from recon.trust import holdout
from recon.trust import holdout_trajectory as trajectories


def _phantom(size: int = 96) -> torch.Tensor:
    y, x = np.mgrid[:size, :size] / size - 0.5
    image = (x**2 / 0.16 + y**2 / 0.1 < 1).astype(np.float32)
    image -= 0.5 * ((x - 0.1) ** 2 + (y + 0.05) ** 2 < 0.01)
    image += 0.3 * (np.abs(x + 0.15) < 0.04) * (np.abs(y) < 0.15)
    return torch.from_numpy(image)[None]


@pytest.mark.parametrize("kind", ["radial", "radial-uniform", "spiral"])
def test_shot_folds_are_disjoint_cover_every_shot_and_spread_over_the_angles(kind):
    preset = "12interleaves" if kind == "spiral" else "40spokes"
    trajectory = as_sampling(make_trajectory(preset, (64, 64), kind, seed=3))
    folds = holdout.holdout_folds(trajectory, 4, seed=1)
    shots = trajectory.coords.shape[0]
    assert len(folds) == 4 and all(f.shape == (shots,) for f in folds)
    assert np.array_equal(np.sum(folds, axis=0), np.ones(shots))  # disjoint, and every shot once
    period = math.pi if kind.startswith("radial") else 2 * math.pi
    angles = trajectories.shot_angles(trajectory)
    for held in folds:
        assert abs(int(held.sum()) - shots / 4) <= 1
        ordered = np.sort(angles[held])
        gaps = np.diff(np.concatenate([ordered, [ordered[0] + period]]))
        assert gaps.max() <= 2 * 4 * period / shots + 1e-6  # no wedge of k-space left out
    again = holdout.holdout_folds(trajectory, 4, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again))
    assert not all(np.array_equal(a, b) for a, b in zip(folds, holdout.holdout_folds(trajectory, 4, seed=2)))


def test_units_and_grid_counts():
    trajectory = as_sampling(make_trajectory("10spokes", (48, 64), "radial", seed=0))
    assert holdout.holdout_units(trajectory) == 5 and holdout.mask_kind(trajectory) == "trajectory"
    assert holdout.holdout_units(as_sampling(make_trajectory("7interleaves", (48, 64), "spiral"))) == 0  # no estimate
    assert holdout.holdout_units(as_sampling(make_trajectory("8interleaves", (48, 64), "spiral"))) == 4
    flat = Trajectory(trajectory.coords.reshape(-1, 2), (48, 64))  # samples not grouped in shots
    assert holdout.holdout_units(flat) == 0
    assert trajectories.grid_counts((48, 64)).sum() == 48 * 64
    with pytest.raises(ValueError, match="too few"):
        holdout.holdout_folds(as_sampling(make_trajectory("6spokes", (48, 64), "radial")), 4)


def test_a_fold_keeps_the_density_compensation_of_its_shots():
    trajectory = as_sampling(make_trajectory("40spokes", (64, 64), "radial-uniform", seed=0))
    every = np.ones(40, dtype=bool)
    assert torch.allclose(trajectories.subset(trajectory, every).dcf, trajectory.dcf)
    held = holdout.holdout_folds(trajectory, 4, seed=0)[0]
    kept = trajectories.subset(trajectory, ~held)
    fresh = trajectories.subset(Trajectory(trajectory.coords, (64, 64), kind="radial-uniform"), ~held)
    # scaled from the whole trajectory's: the same areas as computed afresh for the kept spokes, on average
    assert float(kept.dcf.sum()) == pytest.approx(float(fresh.dcf.sum()), rel=0.05)


@pytest.mark.parametrize("coils", [1, 4])
def test_the_trajectory_estimate_ranks_methods_and_is_near_the_truth(coils):
    # a pessimistic raw estimate by a few dB (each fold has fewer spokes), the calibration's to correct
    from physics import simulate_coil_maps

    image = _phantom()
    trajectory = as_sampling(make_trajectory("30pct", (96, 96), "radial", seed=0))
    maps = simulate_coil_maps(coils, (96, 96)).unsqueeze(0) if coils > 1 else None
    kspace, truth = simulate_kspace(image, trajectory, coil_maps=maps)
    peak = float(truth.abs().max())
    true, raw = {}, {}
    for name in ("zero-filled", "cs-tv"):
        method = recon.get(name)
        output = method.reconstruct(kspace, trajectory, maps)
        true[name] = metrics.evaluate(output[0].abs(), truth[0].abs(), peak)["psnr"]
        estimate = holdout.estimate_error(method, kspace, trajectory, maps, output, folds=4, data_range=peak,
                                          calibration={"lines": {}})
        raw[name] = estimate.psnr
        assert estimate.calibration == "identity" and len(estimate.fold_nmse) == 4
        assert -1.0 < true[name] - raw[name] < 8.0
    assert true["cs-tv"] > true["zero-filled"] + 3 and raw["cs-tv"] > raw["zero-filled"] + 3
