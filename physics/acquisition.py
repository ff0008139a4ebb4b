"""Simulating an MRI acquisition from an image: phase, coils, noise and the mask."""

from __future__ import annotations

import math

import torch

from physics.fft import fft2c
from physics.nufft import NUFFT, Trajectory


def smooth_phase(
    shape: tuple[int, int], generator: torch.Generator, max_phase: float = math.pi, order: int = 3
) -> torch.Tensor:
    """A smooth random phase map: a random low-order 2-D polynomial.

    Parameters
    ----------
    shape : (int, int)
        ``(H, W)``.
    generator : torch.Generator
        Source of randomness; no global random state is used.
    max_phase : float
        Largest absolute phase, in radians.
    order : int
        Highest total degree of the polynomial.

    Shapes
    ------
    returns ``(H, W)`` float32 phase in radians.
    """
    ys = torch.linspace(-1, 1, shape[0])[:, None]
    xs = torch.linspace(-1, 1, shape[1])[None, :]
    phase = torch.zeros(shape)
    for i in range(order + 1):
        for j in range(order + 1 - i):
            coefficient = torch.randn((), generator=generator) / (1 + i + j)
            phase = phase + coefficient * ys**i * xs**j
    phase = phase - phase.mean()
    peak = phase.abs().max()
    return phase * (max_phase / peak) if peak > 0 else phase


def add_noise(
    kspace: torch.Tensor, snr_db: float, generator: torch.Generator, reference_rms: float | None = None
) -> torch.Tensor:
    """Add circular complex Gaussian noise at a given SNR.

    The SNR is ``20 log10(rms / sigma)`` where ``rms`` is the root-mean-square of
    the noise-free, fully sampled k-space (equal to the image RMS, as the FFT is
    orthonormal) and ``sigma`` the noise standard deviation of one complex sample
    (``sigma / sqrt(2)`` per real and imaginary part).

    Shapes
    ------
    kspace: ``(B, C, H, W)`` complex; returns the same shape.
    """
    rms = reference_rms if reference_rms is not None else float(kspace.abs().pow(2).mean().sqrt())
    sigma = rms / 10 ** (snr_db / 20)
    real_dtype = kspace.real.dtype
    noise = torch.complex(
        torch.randn(kspace.shape, generator=generator, dtype=real_dtype),
        torch.randn(kspace.shape, generator=generator, dtype=real_dtype),
    ) * (sigma / math.sqrt(2))
    return kspace + noise.to(kspace.device)


def simulate_kspace(
    image: torch.Tensor,
    mask: torch.Tensor | None,
    coil_maps: torch.Tensor | None = None,
    noise_snr: float | None = None,
    phase: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Simulate (undersampled) k-space from an image.

    Parameters
    ----------
    image : torch.Tensor
        Magnitude (real) or complex image.
    mask : torch.Tensor, physics.nufft.Trajectory or None
        Bool sampling mask, or a non-Cartesian trajectory; None returns fully sampled k-space.
    coil_maps : torch.Tensor, optional
        Coil sensitivities; None simulates a single coil (C = 1).
    noise_snr : float, optional
        SNR in dB, see :func:`add_noise`; None adds no noise.
    phase : bool
        Multiply the image by a smooth random phase (:func:`smooth_phase`).
    generator : torch.Generator, optional
        Randomness for the phase and the noise (a fresh one seeded 0 if omitted).

    Returns
    -------
    kspace : torch.Tensor
        complex64 k-space, zero where not sampled.
    truth : torch.Tensor
        The complex64 noise-free image the k-space was made from (with the phase).

    Shapes
    ------
    image: ``(B, H, W)``; mask: ``(H, W)``; coil_maps: ``(B, C, H, W)`` or ``(C, H, W)``.
    Returns kspace ``(B, C, H, W)`` (``(B, C, *trajectory.sample_shape)`` for a
    trajectory) and truth ``(B, H, W)``.
    """
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    if image.ndim != 3:
        raise ValueError(f"image must be (B, H, W), got shape {tuple(image.shape)}")
    truth = image.to(torch.complex64)
    if phase:
        phases = torch.stack([smooth_phase(tuple(image.shape[-2:]), generator) for _ in range(image.shape[0])])
        truth = truth * torch.polar(torch.ones_like(phases), phases).to(truth.device)
    coil_images = truth.unsqueeze(1)
    if coil_maps is not None:
        maps = coil_maps if coil_maps.ndim == 4 else coil_maps.unsqueeze(0)
        coil_images = maps.to(truth.device) * coil_images
    if isinstance(mask, Trajectory):  # non-Cartesian: the NUFFT at the trajectory's samples
        kspace = NUFFT(mask)(coil_images.reshape(-1, *coil_images.shape[-2:])).reshape(
            *coil_images.shape[:2], *mask.sample_shape)
        mask = None
    else:
        kspace = fft2c(coil_images)
    if noise_snr is not None:
        reference = float(truth.abs().pow(2).mean().sqrt())
        kspace = add_noise(kspace, noise_snr, generator, reference_rms=reference)
    if mask is not None:
        kspace = kspace * mask.to(kspace.device)
    return kspace, truth
