"""From held-out residuals to an image error (:mod:`recon.trust.holdout`): the residual
energy per held-out unit, binned by distance from the k-space centre, carried to the
units nobody measured; shared by the grid hold-out and the trajectory hold-out
(:mod:`recon.trust.holdout_trajectory`)."""

from __future__ import annotations

import numpy as np
import torch

from physics.operators import sampling_operator


def kspace_energy(image: torch.Tensor, coil_maps: torch.Tensor | None) -> float:
    """``||F S x||^2``: the energy the NMSE estimate is relative to.

    Shapes
    ------
    image ``(1, H, W)``; coil_maps ``(1, C, H, W)`` or None.
    """
    full = sampling_operator(torch.ones(image.shape[-2:], dtype=torch.bool), coil_maps)
    return float(full(image.to(torch.complex64)).abs().pow(2).sum())


def nmse_from_residuals(residuals: list[np.ndarray], unmeasured: np.ndarray, energy: float) -> list[float]:
    """Raw NMSE estimate of every fold (see the module): the held-out residual energy per
    unit in each distance bin, interpolated in ``log E`` over ``log d`` between the bins
    that hold held-out units (beyond them, and when fewer than 3 do, the power law
    fitted to them), summed over the unmeasured units and scaled by each fold's
    observed-to-predicted ratio.

    Shapes
    ------
    residuals: per fold ``(2, bins)`` (:func:`recon.trust.holdout.fold_residuals`); unmeasured
    ``(bins,)`` unit counts (:func:`recon.trust.holdout.unmeasured_units`).
    """
    counts = np.sum([r[0] for r in residuals], axis=0)
    sums = np.sum([r[1] for r in residuals], axis=0)
    used = counts > 0
    x = np.log(np.arange(len(counts)) + 0.5)
    y = np.log(np.maximum(sums[used] / counts[used], 1e-30))  # used: counts > 0
    if used.sum() >= 3:
        # Between held-out bins: their spectrum. Beyond them, inward (the unmeasured lines
        # next to the calibration block, where the error is largest) and outward: the
        # power law through all of them, from the last bin it reaches.
        slope = float(np.clip(np.polyfit(x[used], y, 1, w=np.sqrt(counts[used]))[0], -8.0, 0.0))
        logged = np.interp(x, x[used], y)
        inner, outer = x < x[used][0], x > x[used][-1]
        logged[inner] = y[0] + slope * (x[inner] - x[used][0])
        logged[outer] = y[-1] + slope * (x[outer] - x[used][-1])
        law = np.exp(logged)
    elif used.sum() == 2 and np.ptp(x[used]) > 0:
        slope, intercept = np.polyfit(x[used], y, 1)
        law = np.exp(intercept + float(np.clip(slope, -8.0, 2.0)) * x)
    else:
        law = np.full(len(counts), float(np.exp(y.mean())) if used.any() else 0.0)
    total = float((law * unmeasured).sum())
    estimates = []
    for counts_k, sums_k in residuals:
        predicted = float((law * counts_k).sum())
        ratio = float(sums_k.sum()) / predicted if predicted > 0 else 1.0
        estimates.append(total * ratio / max(energy, 1e-30))
    return estimates
