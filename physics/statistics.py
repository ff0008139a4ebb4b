"""What measured multi-coil k-space looks like, in numbers, and noise that looks like it.

The statistics compare a simulated acquisition with a scanner's (tests compare the
training simulation with ``gre.dat`` and ISMRMRD files): all are computed from fully
sampled k-space ``(C, H, W)`` alone, so they apply to both.

- :func:`kspace_snr`: the image's RMS over one coil's noise standard deviation, in dB;
- :func:`noise_correlation`: the largest correlation coefficient between two coils' noise;
- :func:`map_smoothness`: how much of the coil sensitivities' spectrum lies in the
  central k-space (1 for maps that vary no faster than a few cycles per field of view);
- :func:`map_coverage`: how evenly the coils see the object (the mean participation
  ratio of the coils' low-passed images, over ``C``);
- :func:`phase_roughness`: the mean phase step between neighbouring object pixels.

:func:`random_noise_covariance` and :func:`correlated_noise` make noise with a real
array's channel covariance (correlated neighbours, unequal channel gains);
:func:`add_array_noise` adds it to k-space and prewhitens the result as the readers do.
"""

from __future__ import annotations

import math

import torch

from physics.consistency import estimate_noise_std
from physics.fft import fft2c, ifft2c
from physics.raw import whiten


def _coil_images(kspace: torch.Tensor) -> torch.Tensor:
    if kspace.ndim != 3:
        raise ValueError(f"k-space must be (C, H, W), got shape {tuple(kspace.shape)}")
    return ifft2c(kspace.to(torch.complex64))


def object_region(kspace: torch.Tensor, fraction: float = 0.15) -> torch.Tensor:
    """Where the root-sum-of-squares image passes ``fraction`` of its 99th percentile.

    Shapes
    ------
    kspace ``(C, H, W)``; returns ``(H, W)`` bool.
    """
    combined = _coil_images(kspace).abs().pow(2).sum(0).sqrt()
    return combined > fraction * torch.quantile(combined.flatten(), 0.99)


def noise_std(kspace: torch.Tensor) -> float:
    """One coil's complex noise standard deviation, from the outermost readout rows
    (:func:`physics.consistency.estimate_noise_std`)."""
    return float(estimate_noise_std(kspace[None], torch.ones(kspace.shape[-2:], dtype=torch.bool))[0])


def kspace_snr(kspace: torch.Tensor) -> float:
    """``20 log10(rms / sigma)``: ``rms`` the root-mean-square of the noise-free
    combined image (the RSS image's mean power less the noise's ``C sigma^2``),
    ``sigma`` one coil's noise standard deviation (:func:`noise_std`). This is the SNR
    :func:`physics.acquisition.add_noise` takes, for maps with a root-sum-of-squares of 1.

    Shapes
    ------
    kspace ``(C, H, W)`` fully sampled, prewhitened channels.
    """
    sigma = noise_std(kspace)
    power = float(kspace.abs().pow(2).sum(0).mean()) - kspace.shape[0] * sigma**2
    return 20 * math.log10(max(power, 1e-30) ** 0.5 / max(sigma, 1e-30))


def noise_correlation(noise: torch.Tensor) -> float:
    """The largest magnitude of a correlation coefficient between two channels of noise
    samples ``(C, ...)``; 0 for one channel."""
    samples = noise.reshape(noise.shape[0], -1).to(torch.complex128)
    if samples.shape[0] < 2:
        return 0.0
    covariance = samples @ samples.conj().T / samples.shape[1]
    scale = covariance.diagonal().real.sqrt()
    correlation = (covariance / (scale[:, None] * scale[None, :])).abs()
    correlation.fill_diagonal_(0)
    return float(correlation.max())


def map_smoothness(kspace: torch.Tensor, band: float = 1 / 16) -> float:
    """The fraction of the spectral energy of the relative sensitivities (each coil's
    image over the RSS image, inside the object, zero outside, smoothed edges) that lies
    within ``band`` of the field of view's frequencies around the centre.

    Shapes
    ------
    kspace ``(C, H, W)``.
    """
    images = _coil_images(kspace)
    combined = images.abs().pow(2).sum(0).sqrt()
    region = object_region(kspace)
    relative = torch.where(region, images / combined.clamp_min(1e-30), torch.zeros_like(images))
    spectrum = fft2c(relative).abs().pow(2).sum(0)
    height, width = spectrum.shape
    half_h, half_w = max(1, int(band * height)), max(1, int(band * width))
    centre = spectrum[height // 2 - half_h: height // 2 + half_h + 1, width // 2 - half_w: width // 2 + half_w + 1]
    return float(centre.sum() / spectrum.sum().clamp_min(1e-30))


def map_coverage(kspace: torch.Tensor, band: float = 1 / 8) -> float:
    """How evenly the array's coils see the object: the mean over object pixels of the
    participation ratio ``(sum_c |s_c|^2)^2 / sum_c |s_c|^4`` over ``C``, with ``s_c``
    the coil images low-passed to the central ``band`` of k-space (the maps' scale). 1
    when every coil sees every pixel alike, ``1/C`` when one coil dominates everywhere.

    Shapes
    ------
    kspace ``(C, H, W)``.
    """
    height, width = kspace.shape[-2:]
    half_h, half_w = max(1, int(band * height / 2)), max(1, int(band * width / 2))
    low = torch.zeros_like(kspace, dtype=torch.complex64)
    rows = slice(height // 2 - half_h, height // 2 + half_h + 1)
    columns = slice(width // 2 - half_w, width // 2 + half_w + 1)
    low[:, rows, columns] = kspace[:, rows, columns].to(torch.complex64)
    power = ifft2c(low).abs().pow(2)
    ratio = power.sum(0).pow(2) / power.pow(2).sum(0).clamp_min(1e-30)
    return float(ratio[object_region(kspace)].mean() / kspace.shape[0])


def phase_roughness(kspace: torch.Tensor) -> float:
    """The mean absolute phase difference, in radians, between horizontally and
    vertically neighbouring object pixels of the first coil's image (object and coil
    phase together): small for smooth phase, about pi/2 for random phase.

    Shapes
    ------
    kspace ``(C, H, W)``.
    """
    image = _coil_images(kspace)[0]
    region = object_region(kspace)
    steps = []
    for axis in (0, 1):
        rolled = torch.roll(image, 1, dims=axis)
        both = region & torch.roll(region, 1, dims=axis)
        steps.append(torch.angle(image * rolled.conj())[both].abs())
    return float(torch.cat(steps).mean())


def random_noise_covariance(coils: int, generator: torch.Generator, correlation: tuple[float, float] = (0.05, 0.35),
                            gain: tuple[float, float] = (0.6, 1.6)) -> torch.Tensor:
    """A channel noise covariance like a receive array's: neighbouring channels (on a
    ring) correlated by a coefficient drawn from ``correlation`` that decays with their
    distance on the ring, random phases, and channel gains (standard deviations) drawn
    from ``gain``; Hermitian positive definite, mean variance 1.

    Shapes
    ------
    returns ``(coils, coils)`` complex128.
    """
    if coils < 1:
        raise ValueError(f"coils must be >= 1, got {coils}")
    strength = float(torch.empty(()).uniform_(*correlation, generator=generator))
    index = torch.arange(coils)
    distance = (index[:, None] - index[None, :]).abs()
    distance = torch.minimum(distance, coils - distance).to(torch.float64)
    magnitude = strength ** distance
    phases = torch.rand((coils, coils), generator=generator, dtype=torch.float64) * 2 * math.pi
    phases = torch.triu(phases, 1)
    phases = phases - phases.T
    correlation_matrix = torch.polar(magnitude, phases)
    # A ring of decaying correlations can lose definiteness: lift its smallest eigenvalue.
    smallest = float(torch.linalg.eigvalsh(correlation_matrix)[0])
    if smallest < 0.05:
        correlation_matrix = (correlation_matrix + (0.05 - smallest) * torch.eye(coils)) / (1.05 - smallest)
    gains = torch.empty(coils, dtype=torch.float64).uniform_(*gain, generator=generator)
    covariance = gains[:, None] * correlation_matrix * gains[None, :]
    return covariance / covariance.diagonal().real.mean()


def correlated_noise(covariance: torch.Tensor, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Complex Gaussian noise with channel covariance ``covariance``: ``L z`` with
    ``covariance = L L^H`` and ``z`` white of unit complex variance.

    Shapes
    ------
    covariance ``(C, C)``; returns ``(C, *shape)`` complex64.
    """
    lower = torch.linalg.cholesky(covariance.to(torch.complex128))
    count = math.prod(shape)
    white = torch.complex(torch.randn((covariance.shape[0], count), generator=generator, dtype=torch.float64),
                          torch.randn((covariance.shape[0], count), generator=generator, dtype=torch.float64))
    return (lower @ white / math.sqrt(2)).reshape(covariance.shape[0], *shape).to(torch.complex64)


def add_array_noise(kspace: torch.Tensor, sigma: float, generator: torch.Generator,
                    scan_samples: int = 2048) -> tuple[torch.Tensor, torch.Tensor]:
    """``kspace`` with noise of standard deviation ``sigma`` and a random receive array's
    channel covariance (:func:`random_noise_covariance`), prewhitened with a simulated
    noise scan of ``scan_samples`` per channel (:func:`physics.raw.whiten`), as the raw
    readers prewhiten a scanner's data; and the noise-free ``kspace`` under the same
    whitening (the reference of what was measured).

    Shapes
    ------
    kspace ``(C, H, W)`` noise-free; returns ``(noisy, clean)``, each ``(C, H, W)``.
    """
    covariance = random_noise_covariance(kspace.shape[0], generator)
    noisy = kspace + sigma * correlated_noise(covariance, tuple(kspace.shape[1:]), generator)
    scan = sigma * correlated_noise(covariance, (scan_samples,), generator)
    noisy, clean = whiten(torch.stack([noisy, kspace]), scan)  # the same whitening for both
    return noisy, clean
