"""The acquisition noise in a multi-coil hold-out residual, which a noise-free truth never holds.

A held-out k-space sample of coil c is ``y_c = (F S_c x)(k) + n_c``. The fold's residual
``|A x_k - y|^2`` summed over coils is ``|A (x_k - x)|^2 + |n|^2`` on average: the fold
never saw the held-out samples, so their noise, about ``C sigma^2`` per sample, is
independent of its reconstruction. When the truth is the noise-free object (``recon run
--noise-snr``, 3-D runs) all of it is an error the hold-out counts and the image never
makes: on 8-coil data simulated at 30 dB it made the raw estimate about 8 dB pessimistic
on Poisson-disc masks. Judged against a measured full scan instead, whose RSS image
carries the noise of every coil, it is part of the error, and
:func:`recon.trust.holdout.fold_residuals` keeps it (taking it off made the 8-coil
Shepp-Logan file's estimates 5-9 dB optimistic).

It is measured, not assumed, on the acquisition's own outer k-space: the measured
samples beyond half the k-space radius (the corners of the grid), brought to the image
per coil and split into their part in the maps' span and the rest
(:func:`out_of_span_floor`). White noise leaves ``(C - f) / C`` of its energy outside the
span (``f`` the maps' support fraction); an image's own detail there (signal, or the
noise of a magnitude image that k-space was simulated from) is ``S_c`` times one image,
inside the span up to the maps' smoothness, so a noise-free simulation or a single coil
gets no correction. :func:`noise_floor` scales that to the whole ``C sigma^2``, which
is subtracted from every held-out sample's residual
(:func:`recon.trust.holdout.fold_residuals`). (Until issue 36's fifth part only the
out-of-span share was subtracted, on the argument that an image holds the rest; but the
held-out noise never enters the fold's image. On the validation subjects with noise the
whole floor let the guard catch 22 of 34 losses instead of 12: docs/results.md.)
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
COVERED = 1e-6
"""A pixel the maps cover: ``sum_c |S_c|^2`` above this (ESPIRiT's maps are zero outside the object)."""
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
    weight = _coverage(maps)
    inside = (maps.conj() * images).sum(dim=0).abs().pow(2) / weight.clamp_min(1e-12)
    inside = torch.where(weight > COVERED, inside, torch.zeros_like(inside))
    outside = float(images.abs().pow(2).sum() - inside.sum())
    return max(outside, 0.0) / count


def noise_floor(kspace: torch.Tensor, mask: np.ndarray, coil_maps: torch.Tensor | None) -> float:
    """The acquisition noise per k-space sample summed over coils, ``C sigma^2``, from
    :func:`out_of_span_floor` (``sigma^2 (C - f)``, ``f`` the share of pixels the maps
    cover); 0.0 where that is.

    Shapes
    ------
    kspace ``(1, C, H, W)``; mask ``(H, W)`` bool; coil_maps ``(1, C, H, W)`` or None.
    """
    outside = out_of_span_floor(kspace, mask, coil_maps)
    if outside <= 0:
        return 0.0
    coils = kspace.shape[1]
    covered = float((_coverage(coil_maps[0]) > COVERED).float().mean())
    return outside * coils / (coils - covered)


def _coverage(maps: torch.Tensor) -> torch.Tensor:
    """``sum_c |S_c|^2`` per pixel of maps ``(C, H, W)``: where it exceeds :data:`COVERED`,
    the maps' span holds one dimension of the coil noise."""
    return maps.abs().pow(2).sum(dim=0)


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
