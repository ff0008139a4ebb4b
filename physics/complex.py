"""Mapping between complex images and the real 2-channel tensors that networks see."""

from __future__ import annotations

import torch


def to_channels(image: torch.Tensor) -> torch.Tensor:
    """Split a complex image into real and imaginary channels.

    Parameters
    ----------
    image : torch.Tensor
        Complex image.

    Returns
    -------
    torch.Tensor
        Real tensor with the real part in channel 0 and the imaginary part in channel 1.

    Shapes
    ------
    image: ``(B, H, W)`` complex -> ``(B, 2, H, W)`` real.
    """
    if not torch.is_complex(image):
        raise TypeError(f"to_channels expects a complex tensor, got {image.dtype}")
    if image.ndim != 3:
        raise ValueError(f"to_channels expects (B, H, W), got shape {tuple(image.shape)}")
    return torch.stack((image.real, image.imag), dim=1)


def from_channels(channels: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`to_channels`.

    Shapes
    ------
    channels: ``(B, 2, H, W)`` real -> ``(B, H, W)`` complex.
    """
    if channels.ndim != 4 or channels.shape[1] != 2:
        raise ValueError(f"from_channels expects (B, 2, H, W), got shape {tuple(channels.shape)}")
    return torch.complex(channels[:, 0].contiguous(), channels[:, 1].contiguous())


def peak(images: torch.Tensor) -> torch.Tensor:
    """Each image's largest magnitude, shaped to divide the batch by it (never below
    1e-12): the normalisation the networks, the critic and the SSIM loss share.

    Shapes
    ------
    images ``(B, H, W)`` (complex or real) -> ``(B, 1, 1)`` real.
    """
    return images.abs().flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
