"""Through-plane interpolation, the classical baselines of thin slices from thick ones.

A thick slice is the average of ``F`` thin slices (:func:`thicken`,
:class:`physics.resolution.SliceAverage`). ``cubic`` interpolates along z from the thick
slices' centres with a not-a-knot cubic spline; ``sinc`` zero-pads the z spectrum.
The learned method, SOUP-GAN's ``soup-gan-z``, starts from the cubic estimate
(:mod:`recon.models.through_plane`).
"""

from __future__ import annotations

import numpy as np
import torch


def thicken(volume: np.ndarray, factor: int) -> np.ndarray:
    """Average every ``factor`` consecutive slices: ``(Z, H, W)`` -> ``(Z // factor, H, W)``
    (trailing slices that do not fill a group are dropped)."""
    count = volume.shape[0] // factor
    if count < 1:
        raise ValueError(f"{volume.shape[0]} slices cannot make a thick slice of {factor}")
    return volume[: count * factor].reshape(count, factor, *volume.shape[1:]).mean(axis=1)


def cubic_rows(thick: torch.Tensor, factor: int) -> torch.Tensor:
    """Cubic-spline interpolation (not-a-knot) of ``(B, h, W)`` rows (thick slices) to
    ``(B, h F, W)``: thick row ``k`` sits at thin row ``k F + (F - 1) / 2``, its group's
    centre; the first and last half groups are extrapolated by the end cubics. It
    reproduces cubic polynomials along z exactly (PyTorch's bicubic kernel, a = -0.75,
    does not even reproduce a straight ramp). No gradient flows through it: it only
    ever interpolates measured data.

    Shapes
    ------
    thick ``(B, h, W)`` real or complex -> ``(B, h F, W)`` of the same dtype.
    """
    from scipy.interpolate import CubicSpline

    count = thick.shape[-2]
    values = thick.detach().cpu().numpy()
    centres = np.arange(count) * factor + (factor - 1) / 2
    thin = np.arange(count * factor, dtype=np.float64)
    if count < 2:
        raise ValueError("through-plane interpolation needs at least 2 thick slices")
    out = CubicSpline(centres, values, axis=-2, bc_type="not-a-knot")(thin)  # 2 or 3 slices: a line or a parabola
    return torch.from_numpy(np.ascontiguousarray(out)).to(device=thick.device, dtype=thick.dtype)


def sinc_rows(thick: torch.Tensor, factor: int) -> torch.Tensor:
    """Band-limited interpolation of ``(B, h, W)`` rows to ``(B, h F, W)``: the z spectrum
    zero-padded, with the half-slice shift that puts each thick slice at its group's
    centre."""
    count = thick.shape[-2]
    spectrum = torch.fft.fftshift(torch.fft.fft(thick.to(torch.complex64), dim=-2), dim=-2)
    frequencies = torch.arange(count) - count // 2
    shift = torch.exp(-2j * torch.pi * frequencies * (factor - 1) / (2 * factor * count)).to(torch.complex64)
    padded = torch.zeros((*thick.shape[:-2], count * factor, thick.shape[-1]), dtype=torch.complex64)
    start = count * factor // 2 - count // 2
    padded[..., start:start + count, :] = spectrum * shift[:, None]
    out = torch.fft.ifft(torch.fft.ifftshift(padded, dim=-2), dim=-2) * factor
    return out if thick.is_complex() else out.real
