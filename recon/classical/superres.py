"""The k-space block of a super-resolution (``lowres``) mask and the classical SR
baseline, ``bicubic``.

A low-resolution acquisition is the central ``h x w`` block of k-space. The helpers
here find that block in a mask (with a clear error when a mask is not one), give the
acquired low-resolution images, and interpolate them bicubically onto the full grid.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from physics.fft import ifft2c
from recon.registry import Reconstructor, register


def central_block(mask: torch.Tensor) -> tuple[slice, slice]:
    """The rows and columns of the central k-space block ``mask`` samples.

    Raises
    ------
    ValueError
        ``mask`` is not one filled rectangle (SR methods need a ``lowres`` mask).

    Shapes
    ------
    mask ``(H, W)`` or broadcastable with leading singleton axes.
    """
    array = torch.as_tensor(mask).bool()
    while array.dim() > 2:
        array = array[0]
    rows = torch.nonzero(array.any(dim=1)).flatten()
    columns = torch.nonzero(array.any(dim=0)).flatten()
    if rows.numel() == 0:
        raise ValueError("the mask samples no k-space point")
    block = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(columns[0]), int(columns[-1]) + 1))
    if not bool(array[block].all()) or int(array.sum()) != array[block].numel():
        raise ValueError("super-resolution methods need a central k-space block (a lowres mask, e.g. --mask lowres-2x); "
                         "this mask is not one")
    return block


def is_central_block(mask) -> bool:
    """Whether ``mask`` (``(H, W)`` bool, numpy or torch) is one central k-space block."""
    try:
        central_block(torch.as_tensor(mask))
    except ValueError:
        return False
    return True


def low_resolution_images(kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The acquired low-resolution images: the inverse FFT of the measured block, scaled
    so that intensities match the full-resolution grid.

    Shapes
    ------
    kspace ``(B, C, H, W)`` -> ``(B, C, h, w)``.
    """
    rows, columns = central_block(mask)
    block = kspace[..., rows, columns]
    height, width = kspace.shape[-2:]
    return ifft2c(block) * (block.shape[-2] * block.shape[-1] / (height * width)) ** 0.5


def bicubic_upsample(images: torch.Tensor, mask: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Bicubic interpolation of low-resolution images onto the full grid, with the
    geometry of the centred FFT: low-resolution pixel ``m`` of a block ``h`` lies at
    full-resolution pixel ``H/2 + (m - h/2) * H/h``.

    Shapes
    ------
    images ``(B, C, h, w)`` complex -> ``(B, C, H, W)``.
    """
    (rows, columns), (height, width) = central_block(mask), shape
    h, w = rows.stop - rows.start, columns.stop - columns.start
    ys = (torch.arange(height, dtype=torch.float64) - height // 2) * h / height + h // 2
    xs = (torch.arange(width, dtype=torch.float64) - width // 2) * w / width + w // 2
    grid_y = (2 * ys + 1) / h - 1  # align_corners=False: pixel m's centre is at (2m + 1) / n - 1
    grid_x = (2 * xs + 1) / w - 1
    grid = torch.stack(torch.meshgrid(grid_x, grid_y, indexing="xy"), dim=-1).float()
    batch, coils = images.shape[:2]
    channels = torch.view_as_real(images.reshape(batch * coils, h, w)).permute(0, 3, 1, 2)
    grid = grid[None].expand(channels.shape[0], -1, -1, -1).to(channels.device)
    out = F.grid_sample(channels, grid, mode="bicubic", padding_mode="reflection", align_corners=False)
    return torch.view_as_complex(out.permute(0, 2, 3, 1).contiguous()).reshape(batch, coils, height, width)


class SuperResolutionOnly:
    """Mixin of methods that need a central k-space block: ``superres_only`` tells
    ``recon run`` to offer them only for ``lowres`` masks."""

    superres_only = True


@register("bicubic")
class Bicubic(SuperResolutionOnly, Reconstructor):
    """Bicubic interpolation of the acquired low-resolution image (per coil, then
    coil-combined with the maps), the classical SR baseline. No data consistency."""

    description = "bicubic interpolation of the low-resolution image (lowres masks only)"
    family = "baseline"

    def reconstruct(self, kspace, mask, coil_maps=None):
        if kspace.dim() == 3:
            kspace = kspace[:, None]
        upsampled = bicubic_upsample(low_resolution_images(kspace, mask), mask, tuple(kspace.shape[-2:]))
        if coil_maps is None:
            return upsampled[:, 0]
        return (coil_maps.conj() * upsampled).sum(1) / (coil_maps.abs().pow(2).sum(1).clamp_min(1e-12))
