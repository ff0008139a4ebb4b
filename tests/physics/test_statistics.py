import math

import pytest
import torch

from physics.coils import simulate_coil_maps
from physics.fft import fft2c
from physics.raw import whiten
from physics.statistics import (
    correlated_noise,
    kspace_snr,
    map_coverage,
    map_smoothness,
    noise_correlation,
    phase_roughness,
    random_noise_covariance,
)


def disk(size: int = 96) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.arange(size) - size / 2, torch.arange(size) - size / 2, indexing="ij")
    return ((ys**2 + xs**2) < (0.35 * size) ** 2).to(torch.complex64) * (1 + 0.3 * (ys > 0))


@pytest.mark.parametrize("snr", [15.0, 25.0, 35.0])
def test_kspace_snr_reads_the_noise_level_it_was_given(snr):
    image = disk()
    maps = simulate_coil_maps(8, image.shape)
    kspace = fft2c(maps * image)
    sigma = float(image.abs().pow(2).mean().sqrt()) / 10 ** (snr / 20)
    noise = torch.complex(torch.randn(kspace.shape, generator=torch.Generator().manual_seed(1)),
                          torch.randn(kspace.shape, generator=torch.Generator().manual_seed(2))) * sigma / math.sqrt(2)
    assert kspace_snr(kspace + noise) == pytest.approx(snr, abs=1.0)


def test_noise_covariance_is_a_receive_arrays():
    generator = torch.Generator().manual_seed(3)
    covariance = random_noise_covariance(8, generator, correlation=(0.3, 0.3))
    assert torch.allclose(covariance, covariance.conj().T)
    assert float(torch.linalg.eigvalsh(covariance)[0]) > 0
    assert float(covariance.diagonal().real.mean()) == pytest.approx(1.0)
    noise = correlated_noise(covariance, (20000,), generator)
    measured = noise_correlation(noise)
    assert 0.2 < measured < 0.45  # the nearest neighbours' coefficient, sampled
    # prewhitening with a noise scan of the same covariance removes it
    scan = correlated_noise(covariance, (4096,), generator)
    assert noise_correlation(whiten(noise[None, :, None, :], scan)[0]) < 0.05
    assert noise_correlation(noise[:1]) == 0.0


def test_map_statistics_tell_smooth_from_rough():
    image = disk()
    smooth = fft2c(simulate_coil_maps(8, image.shape) * image)
    generator = torch.Generator().manual_seed(4)
    rough_maps = torch.polar(torch.rand((8, *image.shape), generator=generator) + 0.5,
                             torch.rand((8, *image.shape), generator=generator) * 6.28)
    rough = fft2c(rough_maps * image)
    assert map_smoothness(smooth) > 0.5 > map_smoothness(rough)
    assert phase_roughness(smooth) < 0.3 < phase_roughness(rough)
    one_coil_sees_all = fft2c(torch.ones((8, *image.shape), dtype=torch.complex64) * image)
    assert map_coverage(one_coil_sees_all) == pytest.approx(1.0, abs=1e-3)
    assert map_coverage(smooth) < 0.9
