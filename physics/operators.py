"""Linear MRI forward operators as ``torch.nn.Module``.

``forward(image) -> kspace``, ``adjoint(kspace) -> image`` and ``normal(image)``
(``A^H A``). Masks and coil maps are buffers; :meth:`with_mask` returns a new
operator instead of mutating this one.
"""

from __future__ import annotations

import torch
from torch import nn

from physics.fft import fft2c, ifft2c


def _mask_buffer(mask: torch.Tensor) -> torch.Tensor:
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be bool, got {mask.dtype}")
    if mask.ndim < 2:
        raise ValueError(f"mask must be at least (H, W), got shape {tuple(mask.shape)}")
    return mask


class SingleCoil(nn.Module):
    """Single-coil Cartesian operator ``A x = M F x``.

    Parameters
    ----------
    mask : torch.Tensor
        Bool sampling mask broadcastable to ``(B, 1, H, W)``, normally ``(H, W)``.

    Shapes
    ------
    forward: image ``(B, H, W)`` -> k-space ``(B, 1, H, W)``.
    adjoint: k-space ``(B, 1, H, W)`` -> image ``(B, H, W)``.
    """

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", _mask_buffer(mask))

    def with_mask(self, mask: torch.Tensor) -> SingleCoil:
        """A new operator with another mask."""
        return SingleCoil(mask)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        kspace = fft2c(image.unsqueeze(1))
        return kspace * self.mask.to(kspace.device)

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        return ifft2c(kspace * self.mask.to(kspace.device))[:, 0]

    def normal(self, image: torch.Tensor) -> torch.Tensor:
        return self.adjoint(self.forward(image))


class MultiCoil(nn.Module):
    """Multi-coil SENSE operator ``A x = M F S x``.

    Parameters
    ----------
    mask : torch.Tensor
        Bool sampling mask broadcastable to ``(B, C, H, W)``, normally ``(H, W)``.
    coil_maps : torch.Tensor
        Complex coil sensitivities.

    Shapes
    ------
    coil_maps: ``(B, C, H, W)``.
    forward: image ``(B, H, W)`` -> k-space ``(B, C, H, W)``.
    adjoint: k-space ``(B, C, H, W)`` -> image ``(B, H, W)``.
    """

    def __init__(self, mask: torch.Tensor, coil_maps: torch.Tensor):
        super().__init__()
        if not torch.is_complex(coil_maps) or coil_maps.ndim != 4:
            raise ValueError(
                f"coil_maps must be complex (B, C, H, W), got {coil_maps.dtype} {tuple(coil_maps.shape)}"
            )
        self.register_buffer("mask", _mask_buffer(mask))
        self.register_buffer("coil_maps", coil_maps)

    def with_mask(self, mask: torch.Tensor) -> MultiCoil:
        """A new operator with another mask and the same coil maps."""
        return MultiCoil(mask, self.coil_maps)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        kspace = fft2c(self.coil_maps * image.unsqueeze(1))
        return kspace * self.mask.to(kspace.device)

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        coil_images = ifft2c(kspace * self.mask.to(kspace.device))
        return (self.coil_maps.conj() * coil_images).sum(dim=1)

    def normal(self, image: torch.Tensor) -> torch.Tensor:
        return self.adjoint(self.forward(image))
