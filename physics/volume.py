"""3-D Cartesian acquisitions in hybrid space.

A 3-D scan measures k-space ``(C, kx, ky, kz)``: the readout kx is always fully sampled,
the scanner skips points of the (ky, kz) phase-encode plane. After the inverse FFT along
the readout (hybrid space ``(x, C, ky, kz)``) every readout position x is one 2-D
problem over the (ky, kz) plane, with the one (ky, kz) mask shared by all positions
(``CONVENTIONS.md``, raw scanner data). Every 2-D method then applies unchanged to the
stack of planes ``(X, C, ky, kz)``, which has the layout of a 2-D volume ``(N, C, H, W)``.

The simulation works plane by plane: the 3-D FFT of a coil image, inverse-transformed
along x, is the 2-D FFT of each x-plane, so the full 3-D k-space never has to exist.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as functional

from physics.fft import fft1c, fft2c, ifft1c

MAP_GRID = 24
"""Coarse grid (points per axis, at most) on which 3-D coil maps are computed before
trilinear interpolation: birdcage sensitivities are smooth, and the full grid in float64
would take gigabytes for a 1 mm head."""


def to_hybrid(kspace: torch.Tensor) -> torch.Tensor:
    """3-D k-space as read, ``(C, kx, ky, kz)``, to hybrid planes ``(x, C, ky, kz)``.

    Shapes
    ------
    kspace ``(C, X, Y, Z)`` -> ``(X, C, Y, Z)``.
    """
    return ifft1c(kspace.movedim(1, -1), dim=-1).movedim(-1, 0).contiguous()


def from_hybrid(hybrid: torch.Tensor) -> torch.Tensor:
    """Hybrid planes ``(x, C, ky, kz)`` back to 3-D k-space ``(C, kx, ky, kz)``.

    Shapes
    ------
    hybrid ``(X, C, Y, Z)`` -> ``(C, X, Y, Z)``.
    """
    return fft1c(hybrid.movedim(0, -1), dim=-1).movedim(-1, 1).contiguous()


def birdcage_maps_3d(coils: int, shape: tuple[int, int, int], grid: int = MAP_GRID) -> torch.Tensor:
    """3-D birdcage sensitivities (``sigpy.mri.birdcage_maps`` on a 4-D shape: rings of
    up to 8 coils along the first axis), computed on a coarse grid, interpolated
    trilinearly and normalised to a root-sum-of-squares of 1 (so the SENSE-combined image
    of simulated data is the simulated image).

    Shapes
    ------
    returns ``(C, X, Y, Z)`` complex64.
    """
    if coils < 1:
        raise ValueError(f"coils must be >= 1, got {coils}")
    import sigpy.mri

    coarse_shape = tuple(min(size, grid) for size in shape)
    coarse = sigpy.mri.birdcage_maps((coils, *coarse_shape), r=1.5, nzz=min(coils, 8)).astype(np.complex64)
    channels = torch.from_numpy(np.concatenate([coarse.real, coarse.imag]))[None]  # (1, 2C, x, y, z)
    fine = functional.interpolate(channels, size=tuple(shape), mode="trilinear", align_corners=True)[0]
    maps = torch.complex(fine[:coils], fine[coils:])
    return maps / maps.abs().pow(2).sum(dim=0, keepdim=True).sqrt().clamp_min(1e-8)


def smooth_phase_3d(shape: tuple[int, int, int], generator: torch.Generator, max_phase: float = math.pi,
                    order: int = 3) -> torch.Tensor:
    """A smooth random phase over a volume: a random polynomial of total degree
    ``order`` in the three coordinates (the 3-D form of :func:`physics.acquisition.smooth_phase`).

    Shapes
    ------
    returns ``shape`` float32, radians.
    """
    axes = [torch.linspace(-1, 1, size) for size in shape]
    x, y, z = axes[0][:, None, None], axes[1][None, :, None], axes[2][None, None, :]
    phase = torch.zeros(shape)
    for i in range(order + 1):
        for j in range(order + 1 - i):
            for k in range(order + 1 - i - j):
                phase = phase + torch.randn((), generator=generator) / (1 + i + j + k) * x**i * y**j * z**k
    phase = phase - phase.mean()
    peak = phase.abs().max()
    return phase * (max_phase / peak) if peak > 0 else phase


def simulate_hybrid(volume: torch.Tensor, coil_maps: torch.Tensor | None = None, noise_snr: float | None = None,
                    generator: torch.Generator | None = None) -> torch.Tensor:
    """Fully sampled hybrid k-space of a 3-D acquisition of ``volume``, plane by plane.

    Noise is white complex Gaussian at ``noise_snr`` dB relative to the volume's RMS
    (as :func:`physics.acquisition.add_noise`); white noise in 3-D k-space is white in
    hybrid space (the readout transform is orthonormal).

    Shapes
    ------
    volume ``(X, Y, Z)`` real or complex; coil_maps ``(C, X, Y, Z)`` or None (one coil)
    -> ``(X, C, Y, Z)`` complex64.
    """
    if volume.ndim != 3:
        raise ValueError(f"volume must be (X, Y, Z), got shape {tuple(volume.shape)}")
    generator = generator if generator is not None else torch.Generator().manual_seed(0)
    volume = volume.to(torch.complex64)
    coils = 1 if coil_maps is None else coil_maps.shape[0]
    sigma = None
    if noise_snr is not None:
        sigma = float(volume.abs().pow(2).mean().sqrt()) / 10 ** (noise_snr / 20) / math.sqrt(2)
    hybrid = torch.empty((volume.shape[0], coils, *volume.shape[1:]), dtype=torch.complex64)
    for x in range(volume.shape[0]):
        coil_images = volume[x][None] if coil_maps is None else coil_maps[:, x] * volume[x][None]
        plane = fft2c(coil_images)
        if sigma is not None:
            plane = plane + torch.complex(torch.randn(plane.shape, generator=generator),
                                          torch.randn(plane.shape, generator=generator)) * sigma
        hybrid[x] = plane
    return hybrid
