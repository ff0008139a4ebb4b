"""The k-space hold-out on a non-Cartesian trajectory (issue 36): whole shots held out.

A radial or spiral acquisition has no grid lines to hold out; its units are its shots
(spokes or interleaves). The shots are sorted by angle and dealt into K folds, a random
order in each run of K neighbours, so every fold is spread evenly around k-space like
the whole acquisition (holding out a contiguous wedge instead would leave a gap no
reconstruction sees). Each fold's reconstruction runs on the other shots, with their own
density compensation, through the NUFFT, and its prediction at the held-out samples is
compared with what was measured there.

Every grid point of a trajectory's image is reconstructed, none measured, so the error
is summed over the whole Cartesian grid: the held-out residual energy per sample,
binned by its rounded radius (in grid points), stands for the error per grid point at
that radius (an orthonormal NUFFT gives a sample at a grid point the value of the
centred FFT there), and :func:`recon.trust.extrapolation.nmse_from_residuals` carries it
over the radii, with the power law beyond the outermost held-out radius (a radial
trajectory's disc leaves the grid's corners unmeasured). Like the grid hold-out's, the
raw estimate is pessimistic (each fold has fewer shots) by an amount the calibration
fits per method family and trajectory kind (:mod:`recon.trust.calibration`, mask kind
``trajectory``).

Cost: K + 1 reconstructions per slice and method, as on a grid.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from physics.nufft import NUFFT, Trajectory, density_compensation

KIND = "trajectory"
"""The mask kind (:func:`recon.trust.holdout.mask_kind`) of every trajectory."""


def shot_angles(trajectory: Trajectory) -> np.ndarray:
    """The angle of each shot's outermost sample (radians; modulo pi for radial kinds,
    whose spokes run through the centre).

    Shapes
    ------
    returns ``(shots,)``.
    """
    coords = trajectory.coords.detach().cpu().numpy().reshape(trajectory.coords.shape[0], -1, 2)
    outer = coords[np.arange(len(coords)), np.argmax(np.hypot(coords[..., 0], coords[..., 1]), axis=1)]
    angles = np.arctan2(outer[:, 0], outer[:, 1])
    return np.mod(angles, math.pi if trajectory.kind.startswith("radial") else 2 * math.pi)


def shot_folds(trajectory: Trajectory, folds: int, seed: int = 0) -> list[np.ndarray]:
    """``folds`` disjoint sets of shots, each spread evenly over the angles.

    Shapes
    ------
    returns ``folds`` bool arrays ``(shots,)``.
    """
    shots = int(trajectory.coords.shape[0])
    if folds < 2:
        raise ValueError(f"hold-out needs at least 2 folds, got {folds}")
    if shots < 2 * folds:
        raise ValueError(f"the trajectory has only {shots} shots: too few to hold out {folds} folds and keep the rest")
    rng = np.random.default_rng(seed)
    order = np.argsort(shot_angles(trajectory), kind="stable")
    assignment = np.concatenate([rng.permutation(folds) for _ in range(math.ceil(shots / folds))])[:shots]
    result = []
    for fold in range(folds):
        held = np.zeros(shots, dtype=bool)
        held[order[assignment == fold]] = True
        result.append(held)
    return result


def holdout_units(trajectory: Trajectory) -> int:
    """The most folds a hold-out can have: half the shots (each fold holds out 2 at
    least) when there are 8 or more, so the default 4 folds each hold out a quarter;
    none with fewer, since fewer folds would hold out more of each (on the validation
    subjects, a spiral of 5 interleaves in 2 folds of 2 of 5 read 5 to 33 dB low for the
    methods, by amounts no calibration could carry; at 12 interleaves in 4 folds, 0 to
    8 dB), and none when the samples are not grouped in shots (coordinates
    ``(samples, 2)``). Fewer than 2: no estimate (the run says why)."""
    shots = int(trajectory.coords.shape[0])
    return shots // 2 if trajectory.coords.ndim == 3 and shots >= MIN_SHOTS else 0


MIN_SHOTS = 8
"""Shots a trajectory needs for a hold-out estimate: 4 folds of 2."""


def subset(trajectory: Trajectory, shots: np.ndarray, compensated: bool = True) -> Trajectory:
    """The trajectory of the chosen shots, with the density compensation a
    reconstruction from them needs unless ``compensated`` is False: the whole
    trajectory's, scaled by ``shots / chosen`` (the folds are spread evenly over the
    angles, so the density falls by that factor everywhere; a spiral's Voronoi areas
    would cost seconds a fold), or computed anew when the trajectory has none."""
    chosen = torch.from_numpy(np.flatnonzero(shots))
    total = int(trajectory.coords.shape[0])
    part = Trajectory(trajectory.coords[chosen], tuple(trajectory.image_shape), kind=trajectory.kind,
                      ratio=trajectory.ratio * len(chosen) / total, params=dict(trajectory.params))
    if not compensated:
        return part
    if trajectory.dcf is None:
        return part.with_dcf(density_compensation(part))
    return part.with_dcf(trajectory.dcf[chosen] * (total / len(chosen)))


def _radius(trajectory: Trajectory) -> np.ndarray:
    """Rounded radius (grid points) of every sample, ``trajectory.sample_shape``."""
    coords = trajectory.coords.detach().cpu().numpy()
    return np.round(np.hypot(coords[..., 0], coords[..., 1])).astype(int)


def grid_counts(shape: tuple[int, int]) -> np.ndarray:
    """Grid points of an ``(H, W)`` k-space per rounded radius: where the error is summed."""
    height, width = shape
    kh, kw = np.arange(height) - height // 2, np.arange(width) - width // 2
    return np.bincount(np.round(np.hypot(kh[:, None], kw[None, :])).astype(int).ravel()).astype(float)


def fold_residuals(reconstructor, kspace: torch.Tensor, trajectory: Trajectory, coil_maps: torch.Tensor | None,
                   folds: list[np.ndarray]) -> list[np.ndarray]:
    """Reconstruct without each fold's shots and measure the prediction error on them:
    per fold a ``(2, bins)`` array, the held-out samples and their residual energy
    (summed over coils) per rounded radius.

    Shapes
    ------
    kspace ``(1, C, shots, samples)``; coil_maps ``(1, C, H, W)`` or None.
    """
    bins = len(grid_counts(tuple(trajectory.image_shape)))
    radius = np.minimum(_radius(trajectory), bins - 1)
    result = []
    for held in folds:
        kept = subset(trajectory, ~held)
        with torch.no_grad():
            estimate = reconstructor.reconstruct(kspace[:, :, torch.from_numpy(~held)], kept, coil_maps)
            predicted = NUFFT(subset(trajectory, held, compensated=False), coil_maps)(estimate.to(torch.complex64))
        residual = (predicted - kspace[:, :, torch.from_numpy(held)]).abs().pow(2).sum(dim=(0, 1)).cpu().numpy()
        where = radius[held]
        result.append(np.stack([np.bincount(where.ravel(), minlength=bins).astype(float),
                                np.bincount(where.ravel(), weights=residual.ravel().astype(float), minlength=bins)]))
    return result
