"""Centred, orthonormal 2-D FFT over the last two axes.

Both functions do ``ifftshift -> FFT(norm="ortho") -> fftshift``, the convention of
fastMRI, SigPy (``sigpy.fft(..., center=True)``), BART (``fft -u``) and DeepInverse.
They accept torch tensors or numpy arrays and return the same kind.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", torch.Tensor, np.ndarray)

_AXES = (-2, -1)


def fft2c(image: Array) -> Array:
    """Centred orthonormal 2-D FFT, image -> k-space.

    Parameters
    ----------
    image : torch.Tensor or numpy.ndarray
        Complex (or real) data; the transform runs over the last two axes.

    Returns
    -------
    Same type as ``image``, complex.

    Shapes
    ------
    image: ``(..., H, W)`` -> k-space ``(..., H, W)``.
    """
    if isinstance(image, torch.Tensor):
        shifted = torch.fft.ifftshift(image, dim=_AXES)
        return torch.fft.fftshift(torch.fft.fft2(shifted, dim=_AXES, norm="ortho"), dim=_AXES)
    image = np.asarray(image)
    shifted = np.fft.ifftshift(image, axes=_AXES)
    out = np.fft.fftshift(np.fft.fft2(shifted, axes=_AXES, norm="ortho"), axes=_AXES)
    return out.astype(np.result_type(image.dtype, np.complex64), copy=False)


def ifft2c(kspace: Array) -> Array:
    """Centred orthonormal inverse 2-D FFT, k-space -> image.

    Shapes
    ------
    kspace: ``(..., H, W)`` -> image ``(..., H, W)``.
    """
    if isinstance(kspace, torch.Tensor):
        shifted = torch.fft.ifftshift(kspace, dim=_AXES)
        return torch.fft.fftshift(torch.fft.ifft2(shifted, dim=_AXES, norm="ortho"), dim=_AXES)
    kspace = np.asarray(kspace)
    shifted = np.fft.ifftshift(kspace, axes=_AXES)
    out = np.fft.fftshift(np.fft.ifft2(shifted, axes=_AXES, norm="ortho"), axes=_AXES)
    return out.astype(np.result_type(kspace.dtype, np.complex64), copy=False)
