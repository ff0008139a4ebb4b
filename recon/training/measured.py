"""Simulated acquisitions that look like a scanner's: what a learned model meets in a
measured multi-coil file, reproduced in training (issue 35).

``benchmarks/ablation.py`` found what cost the learned models on measured data. Most
of it was the arbitrary global phase of ESPIRiT maps, which the models now take out
(:func:`recon.models.blocks.global_phase`). The rest is what this module reproduces:
the estimated maps' cropped support and edges (1.6 to 1.8 dB against CS at 25 %), noise
(1.4 to 1.8 dB more than CS loses at 30 dB) and few coils. A measured-like item has:

1. noise in every coil at a scanner's SNR (``snr`` dB, 20 log10 of the image RMS over
   one coil's noise standard deviation; ``gre.dat`` measures 18.7 dB), with a receive
   array's channel covariance, and
2. prewhitening from a simulated noise scan, as the raw-data readers do
   (:func:`physics.statistics.add_array_noise`, both);
3. coil compression to the model's coils (:func:`physics.coils.compress_coils`, as the
   models compress at inference);
4. ESPIRiT maps estimated from the undersampled data's calibration region, as
   ``recon.reconstruct`` estimates them (after the compression here, which gives the
   same maps up to the dropped components, in a fraction of the time);
5. as its target, the noise-free coil images combined with the estimated maps
   (``sum_c conj(S_c) x_c``): the image the data and the maps can give, with the maps'
   phase, which at the object is the root-sum-of-squares image that measured data are
   scored against.
"""

from __future__ import annotations

import numpy as np
import torch

from masks import calibration_region, calibration_size
from physics.coils import (
    compress_coils,
    estimate_coil_maps,
    random_coil_maps,
    resample_coil_maps,
    simulate_coil_maps,
)
from physics.fft import fft2c, ifft2c
from physics.statistics import add_array_noise

NOISE_SCAN_SAMPLES = 2048
"""Samples per channel of the simulated noise scan the data are prewhitened with."""

MIN_CALIBRATION = 8
"""Fewer fully sampled central lines than this estimate no usable maps: such items keep the simulation's maps."""


def draw_coil_maps(coils: int, shape: tuple[int, int], rng: np.random.Generator,
                   coil_sets: tuple[np.ndarray, ...] = ()) -> torch.Tensor:
    """Coil maps for one simulated acquisition: a measured set with this many coils
    (resampled, randomly flipped) a third of the time when there is one, else birdcage
    maps of a random radius or random smooth maps (:func:`physics.coils.random_coil_maps`).

    Shapes
    ------
    returns ``(C, H, W)`` complex64 with a root-sum-of-squares of 1.
    """
    matching = [maps for maps in coil_sets if maps.shape[0] == coils]
    choice = rng.random()
    if matching and choice < 1 / 3:
        maps = matching[int(rng.integers(len(matching)))]
        if rng.random() < 0.5:
            maps = maps[..., ::-1]
        if rng.random() < 0.5:
            maps = maps[..., ::-1, :]
        return resample_coil_maps(torch.from_numpy(np.ascontiguousarray(maps)), shape)
    if choice < 2 / 3:
        return simulate_coil_maps(coils, shape, relative_radius=float(rng.uniform(1.0, 2.0)))
    return random_coil_maps(coils, shape, torch.Generator().manual_seed(int(rng.integers(2**62))))


def measured_acquisition(truth: torch.Tensor, mask: np.ndarray, coil_maps: torch.Tensor, snr: float,
                         generator: torch.Generator, virtual_coils: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One measured-like acquisition (see the module docstring).

    Parameters
    ----------
    truth : complex image ``(H, W)`` (with its phase, if any).
    mask : bool ``(H, W)``.
    coil_maps : the array's true sensitivities ``(C, H, W)``, C >= 2.
    snr : noise level in dB.
    generator : randomness for the noise and its covariance.
    virtual_coils : coils after compression.

    Returns
    -------
    kspace ``(1, V, H, W)`` (zero where not sampled), target ``(1, H, W)`` complex64,
    maps ``(1, V, H, W)``; V = min(C, virtual_coils).
    """
    sigma = float(truth.abs().pow(2).mean().sqrt()) / 10 ** (snr / 20)
    noisy, clean = add_array_noise(fft2c(coil_maps * truth), sigma, generator, NOISE_SCAN_SAMPLES)
    mask_t = torch.from_numpy(np.asarray(mask, dtype=bool))
    measured = (noisy[None] * mask_t).to(torch.complex64)
    calibration = calibration_region(np.asarray(mask, dtype=bool))
    if min(calibration) < MIN_CALIBRATION:
        raise ValueError(f"a calibration region of {min(calibration)} lines estimates no maps")
    # Compressing before ESPIRiT instead of after gives the same maps up to the dropped
    # components (ESPIRiT commutes with a unitary coil combination) at a fraction of the time.
    # The noise-free part takes the same projection (compress_coils applies the data's to its second argument).
    measured, clean = compress_coils(measured, clean[None].to(torch.complex64), virtual_coils)
    maps = estimate_coil_maps(measured, calib_width=calibration)
    target = (maps[0].conj() * ifft2c(clean[0])).sum(0)[None]
    return measured, target.to(torch.complex64), maps


def has_calibration(mask: np.ndarray) -> bool:
    """Whether ``mask`` has a calibration region that maps can be estimated from."""
    return min(calibration_size(np.asarray(mask, dtype=bool))) >= MIN_CALIBRATION
