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


def _centred(data: Array, inverse: bool) -> Array:
    if isinstance(data, torch.Tensor):
        transform = torch.fft.ifft2 if inverse else torch.fft.fft2
        shifted = torch.fft.ifftshift(data, dim=_AXES)
        return torch.fft.fftshift(transform(shifted, dim=_AXES, norm="ortho"), dim=_AXES)
    data = np.asarray(data)
    transform = np.fft.ifft2 if inverse else np.fft.fft2
    shifted = np.fft.ifftshift(data, axes=_AXES)
    out = np.fft.fftshift(transform(shifted, axes=_AXES, norm="ortho"), axes=_AXES)
    return out.astype(np.result_type(data.dtype, np.complex64), copy=False)


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
    return _centred(image, inverse=False)


def ifft2c(kspace: Array) -> Array:
    """Centred orthonormal inverse 2-D FFT, k-space -> image.

    Shapes
    ------
    kspace: ``(..., H, W)`` -> image ``(..., H, W)``.
    """
    return _centred(kspace, inverse=True)
