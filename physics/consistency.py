"""Data consistency on an operator: hard projection, soft weighting, the exact
least-squares step for multi-coil data, and a module for networks.

- Single-coil Cartesian data has a hard projection: replace the predicted k-space by
  the measurement where it was sampled (:func:`hard_projection`).
- Multi-coil data has none in the image domain: projecting each coil's k-space and
  combining the coils with the conjugate maps leaves ``||M A x - y|| / ||y||`` at a few
  1e-3, because ``S S^H`` is not the identity. :func:`exact_consistency` solves
  ``A^H A d = A^H (y - A x)`` by conjugate gradient from ``d = 0`` and returns
  ``x + d``: the smallest change of ``x`` (its unmeasured content is kept) that fits the
  measurement in the least-squares sense, as MoDL's data-consistency step does with a
  vanishing weight on the prior.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from physics.columns import SampledColumns
from physics.noise_level import (  # noqa: F401  (the estimators stay importable from here)
    NOISE_BAND,
    channel_noise_std,
    estimate_noise_std,
    noise_levels,
)
from physics.operators import LinearOperator
from physics.solvers import conjugate_gradient, least_squares, squared_norms

EXACT_MAX_ITER = 150
EXACT_TOL = 2e-5
EXACT_STALL_WINDOW = 10
"""The exact step also stops when its data residual fell by less than 1 % over this many
iterations (:func:`physics.solvers.least_squares`, ``window``), on noise-free data."""
EXACT_NOISY_FLOOR = 5e-3
"""Data are noisy for the exact step where the residual the noise explains
(:func:`discrepancy_floor`) is at least this fraction of the measured data's norm: 0.4-0.7 %
at 50 dB SNR and 1.2-2 % at 40 dB on the sample's test slices (8 birdcage coils, 15
random maps, ODIN's array; 10 and 25 %), against 4e-5 to 2e-3 on noise-free data, whose
smallest coil eigenvalue is not exactly zero (15 coils compressed to 8 read highest)."""
EXACT_NOISY_WINDOW = 6
"""The same window on noisy data (:data:`EXACT_NOISY_FLOOR`): there a residual that stalls
above the floor is what the estimated maps cannot explain, and the CGLS steps that go on
fit the noise through the operator's ill-conditioned directions (semi-convergence).
Measured on validation images (the sample's val split and the corpus's val subjects, 8
images; 8 and 15 random smooth maps, ODIN's 8 measured channels, 2 birdcage coils;
cartesian and Poisson-disc at 10 and 25 %; maps estimated), see docs/results.md."""
EXACT_NOISY_2D_WINDOW = 0
"""The window on noisy data under a 2-D mask (no hybrid form: Poisson-disc, vd2d, random
2-D): 0, no exact step. There the learned output is already better than what CGLS adds
to it: on validation images at 40 dB (the sample's val split, 8 and 15 random maps,
ESPIRiT maps) the step cost gan-drn / csr-gan 0.59 / 0.67 dB on average at Poisson-disc
25 % (worst 2.3), 0.02 / 0.48 at 10 %, while on 1-D masks it gained 0.5-0.8 dB; at 30 dB
the discrepancy stop comes first either way, and noise-free data keep it (+2.3 to +4.0
dB at Poisson-disc). On a 15-coil 640x368 slice at Poisson-disc 25 % it cost 5.2 dB."""
EXACT_MAX_CHANGE = 0.08
"""The learned models' exact step stops before it changes their output by more than this
fraction of its norm (:func:`physics.solvers.least_squares`, ``max_change``).

A learned output needs a small correction: 0.015-0.09 of its norm on the sample's
multi-coil slices (8 and 15 coils, ESPIRiT maps, noise-free) where the step helps (the one
at 0.09 gained as much when stopped at 0.08). Where the ESPIRiT maps of a narrow
calibration block cannot explain noise-free data (1-D masks at 10 %), CGLS keeps lowering
the residual by about 1 % every 10 iterations, fast enough to pass the stall rule, only
through the operator's ill-conditioned directions: it went on to 0.24 of the norm, and the
slice fell by up to 5.6 dB on the validation slices (7.9 on the test slices) below the
learned output without the step. With 0.08 the step gained +0.63 to +0.95 dB on average at
10 % (worst +0.19) on the sample's val slices, 8 and 15 random maps; at 25 %, at
Poisson-disc (noise-free) and at 40 dB it gained as much as with 0.25 (gan-drn at 10 %,
40 dB: +0.80 against +0.76; docs/results.md, issue 35, fourth part). It was 0.25 before,
set where the maps of a small (ky, kz) calibration block made CGLS go on to 0.66-0.81 and
a plane fell from 32 to 9 dB (issue 37)."""


def hard_projection(
    kspace: torch.Tensor, measured: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Replace predicted samples by measured ones where the mask is set.

    Idempotent: applying it twice equals applying it once.

    Shapes
    ------
    kspace, measured: ``(B, C, H, W)``; mask: bool, broadcastable, normally ``(H, W)``.
    """
    return torch.where(mask.to(kspace.device), measured, kspace)


def soft_consistency(
    kspace: torch.Tensor, measured: torch.Tensor, mask: torch.Tensor, weight: float | torch.Tensor
) -> torch.Tensor:
    """Move sampled predictions towards the measurement by ``weight``.

    ``k + weight * M (y - k)``: weight 0 leaves the prediction, weight 1 equals
    :func:`hard_projection`, and values between trade noise against fidelity (the
    noise-aware update of Schlemper et al. with ``weight = nu / (1 + nu)``).

    Shapes
    ------
    kspace, measured: ``(B, C, H, W)``; mask: bool, broadcastable, normally ``(H, W)``.
    """
    mask = mask.to(kspace.device)
    return kspace + weight * mask * (measured - kspace)


DISCREPANCY = 1.3
"""Exact consistency stops at this multiple of the residual the noise alone explains.
1.1 until issue 35: on noisy 1-D 10 % data a learned output often starts just above
that floor (1.2 times it on ``gre.dat``), and the few CGLS steps down to it fitted the
noise through the operator's ill-conditioned directions (``gre.dat`` 10 %: 15.5 dB
without the step, 11.8 with it). On the sample's val split (6 slices, 2 and 8 coils,
20 and 30 dB, 10 and 25 % 1-D) 1.3 was never worse than 1.1 and up to 0.5 dB better."""


def exact_consistency(image: torch.Tensor, measured: torch.Tensor, operator: LinearOperator,
                      max_iter: int = EXACT_MAX_ITER, tol: float = EXACT_TOL, noise_stop: bool = True,
                      max_change: float | None = None,
                      hybrid: tuple[LinearOperator, torch.Tensor] | None = None) -> torch.Tensor:
    """``x + d`` with ``d`` the least-squares correction ``A^H A d = A^H (y - A x)``,
    found by CGLS from ``x`` (:func:`physics.solvers.least_squares`), so ``d`` has no
    component in the null space of ``A``. It stops when ``||A x - y|| / ||y||`` is at
    most ``tol`` (noise-free data), when the residual reaches what the noise explains
    (discrepancy principle: ``DISCREPANCY * sigma * sqrt(M)`` for M measured samples and
    the noise level of :func:`estimate_noise_std`), when it stalls (no 1 % fall over
    :data:`EXACT_STALL_WINDOW` iterations, :data:`EXACT_NOISY_WINDOW` on noisy data; none
    at all on noisy data under a 2-D mask, :data:`EXACT_NOISY_2D_WINDOW`), or
    after ``max_iter`` iterations. Without the noise stop, CGLS fits the noise through the
    ill-conditioned directions of a multi-coil operator: at 25pct with 8 coils and
    20 dB SNR a learned cascade fell from 35 to 10 dB. ``noise_stop=False`` fits to
    ``tol`` whatever the noise. ``max_change`` (for an ``image`` that is already a good
    estimate, a learned output: :data:`EXACT_MAX_CHANGE`) stops it before it changes the
    image by more than that fraction of its norm. ``hybrid``: what :func:`hybrid_form`
    gives for ``(operator, measured)``, when the caller has it already (a cascade's stages
    run on it), so the operator's constants are not computed again.

    Shapes
    ------
    image ``(B, H, W)`` complex; measured ``(B, C, H, W)``; returns ``(B, H, W)``.
    """
    floor = discrepancy_floor(measured, operator.mask) if noise_stop else None
    full = operator
    operator, measured = hybrid_form(operator, measured) if hybrid is None else hybrid
    window = EXACT_STALL_WINDOW
    if floor is not None:  # per item
        noisy = noisy_items(floor, measured)
        # a 1-D mask has a hybrid form; a 2-D one keeps its operator
        window = torch.where(noisy, EXACT_NOISY_WINDOW if operator is not full else EXACT_NOISY_2D_WINDOW,
                             EXACT_STALL_WINDOW)
        if not bool((window > 0).any()):  # no item steps: least_squares would return x0 after a forward and an adjoint
            return image.clone()
    return least_squares(operator, measured, image, max_iter=max_iter, tol=tol, floor=floor, max_change=max_change,
                         window=window)


TRAJECTORY_CG_ITER = 8
"""Conjugate-gradient steps of a cascade stage's data consistency on a trajectory."""


def trajectory_correction(image: torch.Tensor, measured: torch.Tensor, operator: LinearOperator,
                          iterations: int = TRAJECTORY_CG_ITER) -> torch.Tensor:
    """The change ``d`` that moves ``image`` towards a non-Cartesian measurement: a few
    CG steps on ``A^H A d = A^H (y - A x)`` from ``d = 0`` (the NUFFT's Toeplitz normal
    operator). Non-Cartesian data has no hard projection, and a density-compensated
    gradient step diverges where spokes are sparse (its weights exceed the samples'
    local overlap), so this is the cascade's step: with many iterations it is the exact
    least-squares fit of :func:`exact_consistency`.

    Shapes
    ------
    image ``(B, H, W)``; measured ``(B, C, *samples)`` -> ``(B, H, W)``.
    """
    rhs = operator.adjoint(measured - operator(image))
    return conjugate_gradient(operator.normal(), rhs, max_iter=iterations, tol=0.0)


def coil_energy(operator: LinearOperator) -> torch.Tensor:
    """``sum_c |S_c|^2`` of a multi-coil operator's maps, ``(B, H, W)`` real, computed once
    per operator (a cascade applies it at every stage)."""
    cached = getattr(operator, "_coil_energy", None)
    if cached is None or cached.device != operator.coil_maps.device:
        cached = torch.view_as_real(operator.coil_maps).pow(2).sum(dim=(1, -1))
        operator._coil_energy = cached
    return cached


def hybrid_form(operator: LinearOperator, measured: torch.Tensor) -> tuple[LinearOperator, torch.Tensor]:
    """``(A_h, F_H^H y)`` when the operator has a hybrid form (a 1-D Cartesian mask:
    :class:`~physics.operators.HybridCartesian`), else ``(A, y)`` unchanged. Least squares
    and data consistency give the same images with either, at a third of the FFT cost.
    When the batch shares its columns and samples at most a third of them, ``A_h`` keeps
    only those columns (:class:`~physics.columns.SampledColumns`, data ``(B, C, H, K)``).

    Shapes
    ------
    measured ``(B, C, H, W)`` -> ``(B, C, H, W)``, or ``(B, C, H, K)`` for the compact form.
    """
    hybrid = operator.hybrid() if hasattr(operator, "hybrid") else None
    if hybrid is None:
        return operator, measured
    compact = SampledColumns.of(hybrid.mask, hybrid.coil_maps)
    if compact is not None:
        hybrid = compact
    return hybrid, hybrid.measurement(measured)


def noisy_items(floor: torch.Tensor, measured: torch.Tensor) -> torch.Tensor:
    """Per batch item, whether the data are noisy for the exact step: the residual the
    noise explains (``floor``, :func:`discrepancy_floor`) is more than
    :data:`EXACT_NOISY_FLOOR` of the measured data's norm.

    Shapes
    ------
    floor ``(B,)``; measured ``(B, C, ...)``; returns ``(B,)`` bool.
    """
    return floor.to(measured.device) > EXACT_NOISY_FLOOR * squared_norms(measured).sqrt()


def noise_reading(measured: torch.Tensor, mask: torch.Tensor,
                  covariances: list[tuple[torch.Tensor, int] | None] | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per batch item, the weakest noise direction's level (:func:`estimate_noise_std`), a
    typical coil's (:func:`channel_noise_std`), and whether the data are noisy: the
    residual the weakest level explains is more than :data:`EXACT_NOISY_FLOOR` of the data
    (:func:`noisy_items`; the typical level may be signal on noise-free data).
    ``covariances``: :func:`physics.noise_level.band_covariances` of these data, when the
    caller has it already.

    Shapes
    ------
    measured ``(B, C, H, W)``; mask broadcastable to it; returns three ``(B,)`` (float,
    float, bool).
    """
    weakest, typical = noise_levels(measured, mask, covariances)
    noisy = noisy_items(DISCREPANCY * weakest * _measured_count(measured, mask).sqrt(), measured)
    return weakest, typical, noisy.to(weakest.device)


def noise_std(measured: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per batch item, the noise standard deviation per coil sample that a data residual
    holds: :func:`estimate_noise_std` (the weakest noise direction's level) where the data
    are noise-free, and :func:`channel_noise_std` (a typical coil's) where they are noisy
    (:func:`noise_reading`). The noise energy in a residual is every coil's: with
    correlated coil noise that was never prewhitened the weakest direction's level is
    0.3-0.6 times too low (docs/results.md, issue 35, sixth part). The discrepancy floor,
    the adaptation's held-out noise and the trust check's residual-to-noise ratio use it.

    Shapes
    ------
    measured ``(B, C, H, W)``; mask broadcastable to it; returns ``(B,)`` float.
    """
    weakest, typical, noisy = noise_reading(measured, mask)
    return torch.where(noisy, typical, weakest)


def _measured_count(measured: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per batch item, the measured samples over all coils, float32."""
    count = torch.broadcast_to(mask.to(measured.device).bool(), measured.shape).reshape(measured.shape[0], -1).sum(dim=1)
    return count.to(torch.float32)


def discrepancy_floor(measured: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per batch item, the data residual ``||A x - y||`` the noise alone explains:
    ``DISCREPANCY * sigma * sqrt(M)`` for the M measured samples (all coils) and ``sigma``
    of :func:`noise_std`: the weakest noise direction's level where the data are
    noise-free, a typical coil's where they are noisy. With the weakest one on noisy
    data, correlated coil noise that was never prewhitened set the floor 0.3-0.6 times
    too low, and the exact step fitted the noise (8 coils, 1-D 25 %, 30 dB: the learned
    models 1.7-2.0 dB below cs-tv instead of 1.2-2.0 above; docs/results.md, issue 35,
    sixth part). Prewhitened data keep the floor they had.

    Shapes
    ------
    measured ``(B, C, H, W)``; mask broadcastable to it; returns ``(B,)`` float.
    """
    sigma = noise_std(measured, mask)
    return DISCREPANCY * sigma * _measured_count(measured, mask).to(sigma.device).sqrt()


class DataConsistency(nn.Module):
    """Image-domain data-consistency layer for networks.

    Takes an image estimate and the acquisition's operator (single- or multi-coil
    Cartesian), moves the estimate's k-space (per coil, for multi-coil data) towards
    the measurement and returns the image. For an exact multi-coil step use
    :func:`exact_consistency`.

    Parameters
    ----------
    weight : float
        Initial consistency weight in ``[0, 1]``; 1 is a hard projection.
    learnable : bool
        Learn the weight. It is stored as a logit so it stays in ``(0, 1)``.

    Shapes
    ------
    image: ``(B, H, W)`` complex; measured: ``(B, C, H, W)``; operator: a
    :class:`~physics.operators.SingleCoil` or :class:`~physics.operators.MultiCoil`
    (its ``mask`` and ``coil_maps``). Returns ``(B, H, W)`` complex.
    """

    def __init__(self, weight: float = 1.0, learnable: bool = False):
        super().__init__()
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"data-consistency weight must be in [0, 1], got {weight}")
        self.learnable = learnable
        if learnable:
            clipped = min(max(weight, 1e-4), 1 - 1e-4)
            self.logit = nn.Parameter(torch.tensor(math.log(clipped / (1 - clipped))))
        else:
            self.register_buffer("fixed_weight", torch.tensor(float(weight)))

    @property
    def weight(self) -> torch.Tensor:
        return torch.sigmoid(self.logit) if self.learnable else self.fixed_weight

    def forward(self, image: torch.Tensor, measured: torch.Tensor, operator: LinearOperator) -> torch.Tensor:
        if operator.mask is None and hasattr(operator, "project"):  # an image-domain projection (slice averages)
            return operator.project(image, measured)
        # Per coil, k' = k + w M (y - k) with k = F S x; back in the image,
        # S^H F^H k' = (S^H S) x + w A^H (y - A x). So any Cartesian operator works,
        # including the hybrid one of a 1-D mask (1-D FFTs, physics.operators.HybridCartesian).
        if getattr(operator, "cartesian", True) is False:  # a trajectory: CG on the Toeplitz normal operator
            return image + self.weight.to(image.real.dtype) * trajectory_correction(image, measured, operator)
        correction = operator.adjoint(measured - operator(image))
        if operator.coil_maps is not None:
            image = image * coil_energy(operator)
        return image + self.weight.to(image.real.dtype) * correction
