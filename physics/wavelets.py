"""Two-dimensional discrete wavelet transforms in torch, as SigPy's ``Wavelet`` linop
computes them with PyWavelets, and the L1-wavelet proximal step built on them.

SigPy's L1-wavelet reconstruction (``sigpy.mri.app.L1WaveletRecon``) thresholds the
coefficients of ``pywt.wavedecn(x, "db4", mode="zero")`` on the image zero-padded to even
sizes, at the most levels PyWavelets allows, and maps them back with ``pywt.waverecn``.
PyWavelets runs on the CPU, one slice at a time, in numpy; here each level is two matrix
products, ``A_H x A_W^T``, with the banded matrix of each axis (cached per length), so a
batch of slices (and the real and imaginary parts) go through together, on any device.

**The transform, per axis.** With the decomposition filters ``h`` (low) and ``g`` (high)
of length ``L``, PyWavelets' ``zero`` mode keeps the odd samples of the full convolution
of the signal with each filter: ``(N + L - 1) // 2`` coefficients of each kind from ``N``
samples. The inverse upsamples both by two, convolves them with the reconstruction
filters, adds them and keeps the samples ``L - 2 .. 2n - 1``; where a level's inverse is
one sample longer than the finer level's coefficients, its end is dropped (as
``waverecn`` does). The zero mode's transform is redundant and not unitary; like SigPy's
``UnitaryTransform``, :func:`soft_threshold_wavelet` maps back with the inverse.

**Layout.** Each level's coefficients are one real array ``(B, 2, 2 n_H, 2 n_W)`` (the
real and imaginary parts as two channels, so a complex magnitude is a norm over dim 1)
whose quadrants are PyWavelets' bands: ``[:n_H, :n_W]`` the approximation (``aa``, which
the next level decomposes), ``[:n_H, n_W:]`` ``ad``, ``[n_H:, :n_W]`` ``da`` and
``[n_H:, n_W:]`` ``dd`` (axis 0 first, as PyWavelets names them).

Shapes
------
Images ``(B, H, W)`` complex.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F


@lru_cache(maxsize=8)
def _filter_bank(name: str) -> tuple[tuple[float, ...], ...]:
    import pywt  # PyWavelets, SigPy's own dependency: read only for the filter taps

    wavelet = pywt.Wavelet(name)
    return tuple(wavelet.dec_lo), tuple(wavelet.dec_hi), tuple(wavelet.rec_lo), tuple(wavelet.rec_hi)


@lru_cache(maxsize=64)
def _matrices(name: str, length: int, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """One level along an axis of ``length`` N: the analysis matrix ``(2 n, N)``, rows
    ``:n`` the low band and ``n:`` the high (``n = (N + L - 1) // 2``, the odd samples of
    the full convolution with each filter: PyWavelets' ``zero`` mode), and the synthesis
    matrix ``(N, 2 n)`` that inverts it (the bands upsampled, convolved with the
    reconstruction filters and summed; samples ``L - 2 ..`` kept, cut to N)."""
    dec_lo, dec_hi, rec_lo, rec_hi = _filter_bank(name)
    taps = len(dec_lo)
    half = (length + taps - 1) // 2
    analysis = torch.zeros(2 * half, length, dtype=torch.float64)
    synthesis = torch.zeros(length, 2 * half, dtype=torch.float64)
    for index in range(half):
        for tap in range(taps):
            sample, output = 2 * index + 1 - tap, 2 * index + tap - (taps - 2)
            if 0 <= sample < length:
                analysis[index, sample], analysis[half + index, sample] = dec_lo[tap], dec_hi[tap]
            if 0 <= output < length:
                synthesis[output, index], synthesis[output, half + index] = rec_lo[tap], rec_hi[tap]
    return analysis.to(dtype=dtype, device=device), synthesis.to(dtype=dtype, device=device)


def max_level(shape: tuple[int, ...], name: str = "db4") -> int:
    """The most levels PyWavelets decomposes an array of ``shape`` into (``dwt_max_level``
    of its shortest axis), after SigPy's padding to even sizes."""
    length = len(_filter_bank(name)[0])
    shortest = min(((size + 1) // 2) * 2 for size in shape)
    if shortest < length - 1:
        return 0
    return int((shortest // (length - 1)).bit_length() - 1)


def _padded(image: torch.Tensor) -> torch.Tensor:
    """Complex ``(B, H, W)`` as real ``(B, 2, H', W')``, zero-padded to even sizes as SigPy's
    ``resize`` does (an odd axis gains one zero before its first sample)."""
    height, width = image.shape[-2:]
    return F.pad(torch.view_as_real(image.contiguous()).movedim(-1, 1), (width % 2, 0, height % 2, 0))


def _cropped(padded: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """The inverse of :func:`_padded`."""
    height, width = shape
    return torch.view_as_complex(padded[..., height % 2 : height % 2 + height, width % 2 : width % 2 + width]
                                 .movedim(1, -1).contiguous())


def forward(image: torch.Tensor, name: str = "db4", levels: int | None = None) -> list[torch.Tensor]:
    """``pywt.wavedecn(image, name, mode="zero")`` of each slice, zero-padded to even sizes
    (:func:`_padded`): one array per level, finest first, in the module's layout
    (:func:`_matrices` along each axis).

    Shapes
    ------
    image ``(B, H, W)`` complex; a level ``(B, 2, 2 n_H, 2 n_W)`` real.
    """
    levels = max_level(tuple(image.shape[-2:]), name) if levels is None else levels
    approximation = _padded(image)
    arrays = []
    for _ in range(levels):
        rows, _ = _matrices(name, approximation.shape[-2], approximation.dtype, approximation.device)
        columns, _ = _matrices(name, approximation.shape[-1], approximation.dtype, approximation.device)
        arrays.append(rows @ approximation @ columns.T)
        approximation = arrays[-1][..., : rows.shape[0] // 2, : columns.shape[0] // 2]
    return arrays


def _level_sizes(shape: tuple[int, int], levels: int, name: str) -> list[tuple[int, int]]:
    """The (rows, columns) each level decomposes, finest first, from the even-padded shape."""
    taps = len(_filter_bank(name)[0])
    sizes = [tuple(((size + 1) // 2) * 2 for size in shape)]
    while len(sizes) < levels:
        sizes.append(tuple((size + taps - 1) // 2 for size in sizes[-1]))
    return sizes


def inverse(arrays: list[torch.Tensor], shape: tuple[int, int], name: str = "db4") -> torch.Tensor:
    """``pywt.waverecn`` of :func:`forward`'s arrays of an image of ``shape`` ``(H, W)``,
    cropped back to it. Each level's approximation is the coarser level's inverse (only
    the coarsest level's is read; the finer ones are overwritten in ``arrays``). Returns
    complex ``(B, H, W)``."""
    restored = None
    for level, (height, width) in zip(reversed(arrays), reversed(_level_sizes(shape, len(arrays), name))):
        if restored is not None:
            level[..., : level.shape[-2] // 2, : level.shape[-1] // 2] = restored
        _, rows = _matrices(name, height, level.dtype, level.device)
        _, columns = _matrices(name, width, level.dtype, level.device)
        restored = rows @ level @ columns.T
    return _cropped(restored, shape)


def soft_threshold_wavelet(image: torch.Tensor, threshold: torch.Tensor | float, name: str = "db4") -> torch.Tensor:
    """``W^H soft(W image, threshold)``: SigPy's ``UnitaryTransform(L1Reg, Wavelet)``
    proximal step, every band (the coarsest approximation too) soft-thresholded as complex
    numbers.

    Shapes
    ------
    image ``(B, H, W)`` complex; threshold a float or ``(B,)``.
    """
    level = torch.as_tensor(threshold, dtype=image.real.dtype, device=image.device).reshape(-1, 1, 1, 1)
    arrays = forward(image, name)
    if not arrays:  # too small to decompose: PyWavelets' coefficients are the image itself
        return _cropped(_shrink(_padded(image), level), tuple(image.shape[-2:]))
    return inverse([_shrink(array, level) for array in arrays], tuple(image.shape[-2:]), name)


def _shrink(array: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
    """Complex soft threshold of ``(B, 2, ...)`` coefficients at ``threshold`` ``(B, 1, ...)``."""
    magnitude = array.pow(2).sum(dim=1, keepdim=True).sqrt()
    return array * torch.clamp(1 - threshold / magnitude.clamp_min(1e-30), min=0.0)
