"""Building blocks shared by the learned models: the residual block, the critic's
block, padding to a multiple, and the data-consistent cascade every generator runs
(``x <- DC(x + refine(x))`` from ``A^H y``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from physics.complex import from_channels, peak, to_channels
from physics.consistency import EXACT_MAX_CHANGE, coil_energy, exact_consistency, hybrid_form
from physics.map_refinement import exact_consistency_refining_maps
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


def stage_reach(blocks: int, kernel: int = 3, half_resolution: bool = True) -> int:
    """How far (in full-resolution pixels) a cascade stage's output depends on its input:
    the head, ``2 * blocks`` convolutions of ``kernel`` and the tail. At half resolution:
    the strided 4x4 head reaches 2 pixels, each body convolution ``kernel // 2`` half-
    resolution pixels, the 2x2 transposed tail 1."""
    body = 2 * blocks * (kernel // 2)
    return 2 + 2 * body + 1 if half_resolution else (2 + 2 * blocks) * (kernel // 2)


WINDOW_ALIGN = 8
"""A support window starts on a multiple of this (the strides of every stage divide it),
so a stage sees the pixels on the same grid as in the whole frame."""


def support_window(operator, reach: int) -> tuple[slice, slice] | None:
    """Rows and columns of the smallest window, widened by ``reach`` and started on a
    multiple of :data:`WINDOW_ALIGN`, that holds every pixel where a Cartesian multi-coil
    operator's maps are non-zero (ESPIRiT maps are zero outside the object); None for
    any other operator, or when the window is the whole frame.

    The cascade's data consistency sets every pixel outside the maps' support to zero
    (``S^H S x`` and ``A^H r`` vanish there), so a stage whose output reaches ``reach``
    pixels sees zeros beyond the window either way, and its output inside the support is
    the same when it runs on the window alone (to float rounding).

    Shapes
    ------
    the operator's maps ``(B, C, H, W)``.
    """
    if operator.coil_maps is None or getattr(operator, "cartesian", True) is False:
        return None
    covered = coil_energy(operator).flatten(0, -3).amax(dim=0) > 0  # (H, W), any batch item
    height, width = covered.shape
    rows, columns = covered.any(dim=1).nonzero(), covered.any(dim=0).nonzero()
    if rows.numel() == 0:
        return None
    top = max(0, int(rows[0]) - reach) // WINDOW_ALIGN * WINDOW_ALIGN
    left = max(0, int(columns[0]) - reach) // WINDOW_ALIGN * WINDOW_ALIGN
    bottom, right = min(height, int(rows[-1]) + 1 + reach), min(width, int(columns[-1]) + 1 + reach)
    if (top, left, bottom, right) == (0, 0, height, width):
        return None
    return slice(top, bottom), slice(left, right)


def run_cascade(kspace, operator, refinements, consistency, exact: bool | None = None,
                reach: int | None = None) -> torch.Tensor:
    """``x <- DC(x + refine(x))`` for each refinement, from ``x = A^H y``, on images
    normalised to a peak of 1 and a global phase of 0 (:func:`global_phase`); multi-coil outputs end with the exact least-squares
    data-consistency step (:func:`physics.consistency.exact_consistency`; on noise-free
    data whose maps cannot explain them, with maps refined from the image:
    :func:`physics.map_refinement.exact_consistency_refining_maps`).

    ``refinements`` map ``(B, 2, H, W)`` channels to a residual of the same shape;
    ``consistency`` holds one data-consistency module per refinement. ``exact`` (default:
    when no gradient is being recorded, i.e. at inference and validation) adds the exact
    multi-coil step; training steps keep the per-coil projection of every stage, so no
    gradient flows through the conjugate-gradient iterations.

    ``reach``: how far each refinement's output depends on its input (:func:`stage_reach`),
    for refinements that are local; with it, a Cartesian multi-coil cascade refines only
    the window around the coil maps' support (:func:`support_window`), which gives the
    same images.

    Shapes
    ------
    kspace ``(B, C, H, W)``; operator single- or multi-coil with a mask ``(H, W)`` or
    ``(B, 1, H, W)`` -> ``(B, H, W)`` complex.
    """
    gridding = getattr(operator, "gridding", None)  # a trajectory: the density-compensated adjoint
    stage_operator, stage_kspace = hybrid_form(operator, kspace)  # 1-D masks: 1-D FFTs, same images
    image = stage_operator.adjoint(stage_kspace) if gridding is None else gridding(kspace)
    # Normalise each image so the network sees a fixed intensity range and a fixed global
    # phase: the phase of its k-space centre (the sum of the image) is taken out and put
    # back at the end. A magnitude image's centre is real and positive, so simulated
    # training data are unchanged; a scanner's image (or ESPIRiT maps, whose global phase
    # is arbitrary) comes with any phase, and an offset of pi/2 cost 3.7 dB (issue 35).
    scale = peak(image) * global_phase(image)
    x = image / scale
    measured = kspace / scale.reshape(-1, *[1] * (kspace.ndim - 1))
    stage_measured = stage_kspace / scale.reshape(-1, *[1] * (stage_kspace.ndim - 1))
    window = None if reach is None or gridding is not None else support_window(stage_operator, reach)
    for refine, project in zip(refinements, consistency):
        channels = to_channels(x)
        if window is None:
            x = from_channels(channels + refine(channels))
        else:
            residual = torch.zeros_like(channels)
            residual[..., window[0], window[1]] = refine(channels[..., window[0], window[1]])
            x = from_channels(channels + residual)
        x = project(x, stage_measured, stage_operator)
    final = not torch.is_grad_enabled() if exact is None else exact
    if gridding is not None and final:  # a trajectory: a few CGLS steps on the NUFFT, from x
        x = least_squares(operator, measured, x, max_iter=TRAJECTORY_DC_ITER, tol=1e-6)
    elif operator.coil_maps is not None and final:
        stepped = exact_consistency(x, measured, operator, max_change=EXACT_MAX_CHANGE, hybrid=(stage_operator, stage_measured))
        # noise-free data whose maps cannot explain them: refine the maps and step again
        x = exact_consistency_refining_maps(x, stepped, measured, operator)
    return x * scale


def leaky(x: torch.Tensor, slope: float) -> torch.Tensor:
    """LeakyReLU, in place when no gradient is being recorded (inference): a generator's
    activations are fresh tensors, and not allocating another of each cut a single-coil
    256x256 gan-drn slice from 111 to 102 ms. Training keeps the out-of-place op."""
    return F.leaky_relu(x, slope, inplace=not torch.is_grad_enabled())


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
        return x + self.conv2(leaky(hidden, 0.1))


class CriticBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))
