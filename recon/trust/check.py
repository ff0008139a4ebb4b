"""The trust check of a learned reconstruction: does it agree with what was measured,
and what did it add where nothing was measured?

- **Data-consistency residual**: ``||M (A x_hat) - y||_2 / ||y||_2`` over the sampled
  locations (A the single- or multi-coil forward operator). With hard data consistency
  it is at float precision.
- **Hallucination map**: ``h = F^-1[(1 - M) F(x_hat - x_cs)]``, the difference from the
  best compressed-sensing reconstruction restricted to the k-space that was *not*
  measured, i.e. the content the network added beyond what the data and the CS prior
  support. It is summarised as an energy fraction ``||h||^2 / ||x_hat||^2`` and flagged
  above :data:`HALLUCINATION_THRESHOLD`.

The threshold is a documented convention, not a proof of correctness: the README's
trust-check section gives the energies measured for the shipped models on the sample's
test split (e.g. GAN-DRN against cs-tv at 10pct cartesian: about 0.01), so 0.05 flags
outputs that add several times more unmeasured content than the models do on data like
their training data.
"""

from __future__ import annotations

import torch

from physics.fft import fft2c, ifft2c
from physics.operators import LinearOperator

HALLUCINATION_THRESHOLD = 0.05


def consistency_residual(image: torch.Tensor, kspace: torch.Tensor, operator: LinearOperator) -> float:
    """Relative k-space error on the sampled locations, ``||A x - M y|| / ||M y||``.

    Shapes
    ------
    image ``(H, W)`` complex; kspace ``(C, H, W)``; ``operator`` the acquisition's, for
    a batch of one (``sampling_operator(mask, coil_maps[None])``).
    """
    predicted = operator(image[None])[0]
    measured = kspace if operator.mask is None else kspace * operator.mask.reshape(-1, *kspace.shape[-2:])[0]
    return float((predicted - measured).abs().pow(2).sum().sqrt() / measured.abs().pow(2).sum().sqrt().clamp_min(1e-30))


def residual_to_noise(image: torch.Tensor, kspace: torch.Tensor, operator: LinearOperator) -> float | None:
    """The data-consistency residual against the noise the data show,
    ``||A x - M y|| / (sigma sqrt(M))`` with ``M`` the measured samples (all coils) and
    ``sigma`` one sample's noise level estimated from the data
    (:func:`physics.consistency.noise_std`). About 1: the image fits the data
    to the noise; much more: it ignores the data; much less: it reproduces the noise
    (hard data consistency does, by design). None when the noise cannot be estimated
    (single-coil data) or is zero (noise-free simulations, where
    :func:`consistency_residual` is the measure).

    Shapes
    ------
    as :func:`consistency_residual`.
    """
    from physics.consistency import noise_std

    if operator.mask is None:  # a trajectory: no outer readout band to read the noise from
        return None
    mask = operator.mask.reshape(-1, *kspace.shape[-2:])[0].bool()
    sigma = float(noise_std(kspace[None], mask)[0])
    if kspace.shape[0] < 2 or sigma <= 1e-8 * float(kspace.abs().max()):
        return None
    measured = kspace * mask
    residual = float((operator(image[None])[0] - measured).abs().pow(2).sum().sqrt())
    samples = int(mask.sum()) * kspace.shape[0]
    return residual / (sigma * samples**0.5)


def hallucination_map(image: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``F^-1[(1 - M) F(image - reference)]``: their difference in unmeasured k-space.

    Shapes
    ------
    image, reference ``(H, W)`` complex; mask ``(H, W)`` bool; returns ``(H, W)`` complex.
    """
    difference = fft2c((image - reference).to(torch.complex64))
    return ifft2c(difference * (~mask.bool()))


def hallucination(image: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The map ``h`` of :func:`hallucination_map` and its energy fraction ``||h||^2 / ||image||^2``."""
    h = hallucination_map(image, reference, mask)
    return h, float(h.abs().pow(2).sum() / image.abs().pow(2).sum().clamp_min(1e-30))


def hallucination_energy(image: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor) -> float:
    """``||h||^2 / ||image||^2`` for the map ``h`` of :func:`hallucination_map`."""
    return hallucination(image, reference, mask)[1]
