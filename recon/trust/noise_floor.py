"""The share of a multi-coil hold-out residual that no coil-combined image can hold.

A held-out k-space sample of coil c is ``y_c = (F S_c x)(k) + n_c``. The fold's residual
``|A x_k - y|^2`` summed over coils carries the acquisition noise of every coil, about
``C sigma^2`` per sample. An image made with the coil maps lives in their span, one
complex value per pixel, so only a ``1 / C`` share of white coil noise (and none outside
the maps' support) can ever appear in it. The rest, ``sigma^2 (C - f)`` per sample with
``f`` the maps' support fraction, is an error the hold-out counts and the image never
makes when the truth is the noise-free object: on 8-coil data simulated at 30 dB it made
the raw estimate about 8 dB pessimistic on Poisson-disc masks. Judged against a measured
full scan instead, whose RSS image carries the noise of every coil, it is part of the
error, and :func:`recon.trust.holdout.fold_residuals` keeps it (taking it off made the
8-coil Shepp-Logan file's estimates 5-9 dB optimistic).

It is measured, not assumed, on the acquisition's own outer k-space: the measured
samples beyond half the k-space radius (the corners of the grid), brought to the image
per coil and split into their part in the maps' span and the rest. Noise leaves
``(C - f) / C`` of its energy outside the span; an image's own detail there (signal, or
the noise of a magnitude image that k-space was simulated from) is ``S_c`` times one
image, inside the span up to the maps' smoothness, so a noise-free simulation or a
single coil gets no correction. The floor is that out-of-span energy per corner sample,
subtracted from every held-out sample's residual (:func:`recon.trust.holdout.fold_residuals`).
"""

from __future__ import annotations

import numpy as np
import torch

from physics.fft import ifft2c

CORNER_RADIUS = 0.5
"""Samples beyond this radius (in units of the grid's extent, 0.5 at the edge's middle)
measure the floor: the corners of a Cartesian grid, where an image's own energy is
lowest. A mask that leaves the corners out (an elliptical Poisson-disc plane of a 3-D
scan) lends its outermost :data:`OUTER_SHARE` of measured samples instead, down to
:data:`MIN_RADIUS`."""
MIN_CORNER_SAMPLES = 64
OUTER_SHARE = 0.05
MIN_RADIUS = 0.4


def judged_noise_free(regime: str) -> bool:
    """Whether data of ``regime`` (:data:`recon.trust.calibration.REGIMES`) carry noise
    their truth does not (``noisy``): then the floor comes out of the hold-out residuals."""
    return regime == "noisy"


def out_of_span_floor(kspace: torch.Tensor, mask: np.ndarray, coil_maps: torch.Tensor | None) -> float:
    """Energy per k-space sample (summed over coils) outside the coil maps' span, on the
    measured corner samples (or the outermost ones, :data:`CORNER_RADIUS`); 0.0 for a
    single coil, without maps, or with fewer than :data:`MIN_CORNER_SAMPLES` of them.

    Shapes
    ------
    kspace ``(1, C, H, W)``; mask ``(H, W)`` bool; coil_maps ``(1, C, H, W)`` or None.
    """
    if coil_maps is None or kspace.shape[1] < 2:
        return 0.0
    height, width = mask.shape
    ky = (np.arange(height) - height // 2) / height
    kx = (np.arange(width) - width // 2) / width
    measured = np.asarray(mask, bool)
    radius = np.hypot(ky[:, None], kx[None, :])
    corner = measured & (radius > CORNER_RADIUS)
    if corner.sum() < MIN_CORNER_SAMPLES and measured.any():  # the corners were not sampled: the outermost samples
        wanted = max(MIN_CORNER_SAMPLES, int(OUTER_SHARE * measured.sum()))
        edge = float(np.sort(radius[measured])[::-1][min(wanted, int(measured.sum())) - 1])
        corner = measured & (radius >= max(edge, MIN_RADIUS))
    count = int(corner.sum())
    if count < MIN_CORNER_SAMPLES:
        return 0.0
    images = ifft2c(kspace[0] * torch.from_numpy(corner).to(kspace.device))  # (C, H, W)
    maps = coil_maps[0].to(images.dtype)
    weight = maps.abs().pow(2).sum(dim=0)
    inside = (maps.conj() * images).sum(dim=0).abs().pow(2) / weight.clamp_min(1e-12)
    inside = torch.where(weight > 1e-6, inside, torch.zeros_like(inside))
    outside = float(images.abs().pow(2).sum() - inside.sum())
    return max(outside, 0.0) / count


def subtract_floor(energy: np.ndarray, points: np.ndarray, floor: float, keep: float = 0.05) -> np.ndarray:
    """Binned residual energy less ``floor`` per held-out sample (``points`` samples per
    bin), never below ``keep`` of what it was (a bin the floor explains is still an error
    the method may make, only a small one).

    Shapes
    ------
    energy, points ``(bins,)``.
    """
    if floor <= 0:
        return energy
    return np.maximum(energy - floor * points, keep * energy)
