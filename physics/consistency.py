"""FFT-based data consistency: hard projection, soft weighting, and a module for networks."""

from __future__ import annotations

import math

import torch
from torch import nn

from physics.fft import fft2c, ifft2c


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


class DataConsistency(nn.Module):
    """Image-domain data-consistency layer for networks.

    Takes an image estimate, moves its k-space (per coil, when coil maps are
    given) towards the measurement and returns the image.

    Parameters
    ----------
    weight : float
        Initial consistency weight in ``[0, 1]``; 1 is a hard projection.
    learnable : bool
        Learn the weight. It is stored as a logit so it stays in ``(0, 1)``.

    Shapes
    ------
    image: ``(B, H, W)`` complex; measured: ``(B, C, H, W)``; mask: ``(H, W)`` bool
    (or broadcastable); coil_maps: ``(B, C, H, W)`` or None for single-coil (C = 1).
    Returns ``(B, H, W)`` complex.
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

    def forward(
        self,
        image: torch.Tensor,
        measured: torch.Tensor,
        mask: torch.Tensor,
        coil_maps: torch.Tensor | None = None,
    ) -> torch.Tensor:
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
