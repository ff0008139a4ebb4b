"""Building blocks shared by the learned models: the residual block, the critic's
block, padding to a multiple, and the data-consistent cascade every generator runs
(``x <- DC(x + refine(x))`` from ``A^H y``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from physics.complex import from_channels, peak, to_channels
from physics.consistency import EXACT_MAX_CHANGE, exact_consistency, hybrid_form
from physics.solvers import least_squares

TRAJECTORY_DC_ITER = 3
"""CGLS steps of the final data consistency on a non-Cartesian trajectory."""


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Pad the last two axes up to a multiple (replicating the border); returns the
    padded tensor and the original ``(H, W)`` to crop back to."""
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate" if min(height, width) > 1 else "constant")
    return x, (height, width)


def global_phase(image: torch.Tensor) -> torch.Tensor:
    """Each image's global phase as a unit complex number: the phase of its sum (1 where
    the sum is zero).

    Shapes
    ------
    image ``(B, H, W)`` complex -> ``(B, 1, 1)`` complex.
    """
    total = image.flatten(1).sum(dim=1)
    magnitude = total.abs()
    unit = torch.where(magnitude > 0, total / magnitude.clamp_min(1e-30), torch.ones_like(total))
    return unit[:, None, None]


def run_cascade(kspace, operator, refinements, consistency, exact: bool | None = None) -> torch.Tensor:
    """``x <- DC(x + refine(x))`` for each refinement, from ``x = A^H y``, on images
    normalised to a peak of 1 and a global phase of 0 (:func:`global_phase`); multi-coil outputs end with the exact least-squares
    data-consistency step (:func:`physics.consistency.exact_consistency`).

    ``refinements`` map ``(B, 2, H, W)`` channels to a residual of the same shape;
    ``consistency`` holds one data-consistency module per refinement. ``exact`` (default:
    when no gradient is being recorded, i.e. at inference and validation) adds the exact
    multi-coil step; training steps keep the per-coil projection of every stage, so no
    gradient flows through the conjugate-gradient iterations.

    Shapes
    ------
    kspace ``(B, C, H, W)``; operator single- or multi-coil with a mask ``(H, W)`` or
    ``(B, 1, H, W)`` -> ``(B, H, W)`` complex.
    """
    gridding = getattr(operator, "gridding", None)  # a trajectory: the density-compensated adjoint
    image = operator.adjoint(kspace) if gridding is None else gridding(kspace)
    # Normalise each image so the network sees a fixed intensity range and a fixed global
    # phase: the phase of its k-space centre (the sum of the image) is taken out and put
    # back at the end. A magnitude image's centre is real and positive, so simulated
    # training data are unchanged; a scanner's image (or ESPIRiT maps, whose global phase
    # is arbitrary) comes with any phase, and an offset of pi/2 cost 3.7 dB (issue 35).
    scale = peak(image) * global_phase(image)
    x = image / scale
    measured = kspace / scale.reshape(-1, *[1] * (kspace.ndim - 1))
    stage_operator, stage_measured = hybrid_form(operator, measured)  # 1-D masks: 1-D FFTs, same images
    for refine, project in zip(refinements, consistency):
        channels = to_channels(x)
        x = from_channels(channels + refine(channels))
        x = project(x, stage_measured, stage_operator)
    final = not torch.is_grad_enabled() if exact is None else exact
    if gridding is not None and final:  # a trajectory: a few CGLS steps on the NUFFT, from x
        x = least_squares(operator, measured, x, max_iter=TRAJECTORY_DC_ITER, tol=1e-6)
    elif operator.coil_maps is not None and final:
        x = exact_consistency(x, measured, operator, max_change=EXACT_MAX_CHANGE)
    return x * scale


class ResidualBlock(nn.Module):
    """conv-LeakyReLU-conv with an identity skip."""

    def __init__(self, channels: int, kernel: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None) -> torch.Tensor:
        """``gamma`` / ``beta`` ``(B, channels)``: optional FiLM of the first convolution's
        output, ``h * (1 + gamma) + beta`` (used by CSR-GAN's conditioning)."""
        hidden = self.conv1(x)
        if gamma is not None:
            hidden = hidden * (1 + gamma[..., None, None]) + beta[..., None, None]
        return x + self.conv2(F.leaky_relu(hidden, 0.1))


class CriticBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))
