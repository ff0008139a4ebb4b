"""k-space physics: centred orthonormal FFT, forward operators (Cartesian and NUFFT),
data consistency, coil maps, noise and acquisition simulation.

Complex tensors are torch ``complex64``; k-space and coil maps are ``(B, C, H, W)``
and complex images ``(B, H, W)``. H is the readout axis, W the phase-encode axis.
"""

from physics.acquisition import add_noise, simulate_kspace, smooth_phase
from physics.coils import (
    coil_support,
    compress_coils,
    estimate_coil_maps,
    random_coil_maps,
    resample_coil_maps,
    rss,
    simulate_coil_maps,
)
from physics.complex import from_channels, to_channels
from physics.consistency import (
    DataConsistency,
    channel_noise_std,
    discrepancy_floor,
    estimate_noise_std,
    exact_consistency,
    hard_projection,
    noise_std,
    soft_consistency,
)
from physics.fft import fft2c, ifft2c
from physics.nufft import NUFFT, Trajectory
from physics.operators import MultiCoil, SingleCoil
from physics.resolution import SliceAverage

__all__ = [
    "DataConsistency",
    "MultiCoil",
    "NUFFT",
    "Trajectory",
    "SingleCoil",
    "SliceAverage",
    "add_noise",
    "coil_support",
    "compress_coils",
    "estimate_coil_maps",
    "fft2c",
    "from_channels",
    "hard_projection",
    "ifft2c",
    "random_coil_maps",
    "resample_coil_maps",
    "rss",
    "simulate_coil_maps",
    "simulate_kspace",
    "smooth_phase",
    "soft_consistency",
    "exact_consistency",
    "estimate_noise_std",
    "channel_noise_std",
    "noise_std",
    "discrepancy_floor",
    "to_channels",
]
