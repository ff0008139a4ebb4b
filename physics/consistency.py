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

from physics.fft import fft2c, ifft2c
from physics.operators import LinearOperator
from physics.solvers import least_squares

EXACT_MAX_ITER = 150
EXACT_TOL = 2e-5


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


def exact_consistency(image: torch.Tensor, measured: torch.Tensor, operator: LinearOperator,
                      max_iter: int = EXACT_MAX_ITER, tol: float = EXACT_TOL) -> torch.Tensor:
    """``x + d`` with ``d`` the least-squares correction ``A^H A d = A^H (y - A x)``,
    found by CGLS from ``x`` (:func:`physics.solvers.least_squares`), so ``d`` has no
    component in the null space of ``A``. It stops when ``||A x - y|| / ||y||`` is at
    most ``tol`` (noise-free data), when the residual stalls (noisy data), or after
    ``max_iter`` iterations.

    Shapes
    ------
    image ``(B, H, W)`` complex; measured ``(B, C, H, W)``; returns ``(B, H, W)``.
    """
    return least_squares(operator, measured, image, max_iter=max_iter, tol=tol)


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
        mask, coil_maps = operator.mask, operator.coil_maps
        coil_images = image.unsqueeze(1) if coil_maps is None else coil_maps * image.unsqueeze(1)
        kspace = fft2c(coil_images)
        if not self.learnable and float(self.fixed_weight) == 1.0:
            kspace = hard_projection(kspace, measured, mask)
        else:
            kspace = soft_consistency(kspace, measured, mask, self.weight.to(kspace.real.dtype))
        coil_images = ifft2c(kspace)
        if coil_maps is None:
            return coil_images[:, 0]
        return (coil_maps.conj() * coil_images).sum(dim=1)
