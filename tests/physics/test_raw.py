"""Raw-data corrections: noise prewhitening and readout oversampling in hybrid space."""

import numpy as np
import pytest
import torch

from physics.fft import ifft2c
from physics.raw import noise_covariance, prewhiten, remove_readout_oversampling, whitening_matrix


def test_prewhitening_decorrelates_correlated_noise_and_keeps_its_mean_variance():
    rng = np.random.default_rng(0)
    mixing = np.array([[1.0, 0.0, 0.0], [0.8, 0.6, 0.0], [0.1, 0.3, 2.0]]) + 0.2j * np.eye(3)
    white = (rng.standard_normal((3, 20000)) + 1j * rng.standard_normal((3, 20000))) / np.sqrt(2)
    noise = torch.from_numpy((mixing @ white).astype(np.complex64))
    covariance = noise_covariance(noise)
    whitening = whitening_matrix(covariance)
    whitened = prewhiten(noise.T.reshape(1, 20000, 3, 1).permute(0, 2, 1, 3), whitening)  # (1, C, samples, 1)
    result = noise_covariance(whitened[0, :, :, 0])
    mean_variance = float(covariance.diagonal().real.mean())
    torch.testing.assert_close(result, torch.eye(3, dtype=torch.complex128) * mean_variance, atol=0.05 * mean_variance,
                               rtol=0)
    assert abs(result[0, 1]) < 0.02 * mean_variance and abs(covariance[0, 1]) > 0.5  # correlated before, not after


def test_a_dead_channel_is_a_clear_error():
    noise = torch.zeros(2, 100, dtype=torch.complex64)
    noise[0] = torch.randn(100, dtype=torch.complex64)
    with pytest.raises(ValueError, match="not positive definite"):
        whitening_matrix(noise_covariance(noise))


@pytest.mark.parametrize("height", [64, 63])
def test_oversampling_removal_keeps_the_image_centre_exactly(height):
    rng = np.random.default_rng(1)
    kspace = torch.from_numpy((rng.standard_normal((1, 2, height, 20)) + 1j * rng.standard_normal((1, 2, height, 20)))
                              .astype(np.complex64))
    kspace[..., 3] = 0  # an unmeasured line stays unmeasured
    out = remove_readout_oversampling(kspace, 2.0)
    keep = round(height / 2)
    assert out.shape == (1, 2, keep, 20) and bool((out[..., 3] == 0).all())
    start = height // 2 - keep // 2
    full = ifft2c(kspace)[..., start:start + keep, :]
    torch.testing.assert_close(ifft2c(out), full, atol=1e-5, rtol=1e-5)


def test_geometric_compression_keeps_rss_when_nothing_is_dropped_and_beats_svd_when_it_is():
    from physics.coils import compress_coils, simulate_coil_maps
    from physics.fft import fft2c
    from physics.raw import geometric_coil_compression

    rng = np.random.default_rng(2)
    image = torch.from_numpy(rng.random((1, 48, 40)).astype(np.float32)).to(torch.complex64)
    maps = simulate_coil_maps(12, (48, 40)).unsqueeze(0)
    kspace = fft2c(maps * image[:, None])
    lines = torch.zeros(40, dtype=torch.bool)
    lines[::3] = True
    lines[16:24] = True
    kspace = kspace * lines
    rss = ifft2c(kspace).abs().pow(2).sum(1)
    same = geometric_coil_compression(kspace, 12)
    torch.testing.assert_close(ifft2c(same).abs().pow(2).sum(1), rss, atol=1e-4, rtol=1e-4)
    kept_gcc = float(geometric_coil_compression(kspace, 4).abs().pow(2).sum() / kspace.abs().pow(2).sum())
    kept_svd = float(compress_coils(kspace, None, 4)[0].abs().pow(2).sum() / kspace.abs().pow(2).sum())
    assert kept_gcc >= kept_svd - 1e-6 and kept_gcc > 0.9
    assert bool((geometric_coil_compression(kspace, 4)[..., ~lines] == 0).all())  # unmeasured lines stay unmeasured


def test_the_oversampled_margin_gives_the_noise_covariance_of_data_without_a_noise_scan():
    from physics.fft import fft2c
    from physics.raw import noise_from_oversampling

    rng = np.random.default_rng(3)
    mixing = torch.tensor([[1.0, 0.0], [0.7, 0.5]], dtype=torch.complex64)
    image = torch.zeros(2, 128, 64, dtype=torch.complex64)
    image[:, 40:88, 10:54] = torch.from_numpy(rng.random((2, 48, 44)).astype(np.float32)) * 20  # inside the FOV
    white = torch.from_numpy((rng.standard_normal((2, 128 * 64)) + 1j * rng.standard_normal((2, 128 * 64)))
                             .astype(np.complex64))
    noise = (mixing @ white).reshape(2, 128, 64)
    kspace = fft2c(image)[None] + noise[None]
    samples = noise_from_oversampling(kspace, 2.0)
    estimated = noise_covariance(samples)
    true = (mixing @ mixing.conj().T).to(torch.complex128) * 2
    torch.testing.assert_close(estimated, true, atol=0.1 * float(true.abs().max()), rtol=0)
    assert noise_from_oversampling(kspace, 1.0) is None  # no margin without oversampling


def test_noise_never_prewhitened_is_whitened_from_the_outer_readout_band():
    """An array's correlated noise of unequal gains is whitened from the band's covariance
    (the maps get the same mixing, normalised, and ``gain`` brings the image back); white
    noise, noise-free data and two coils are left alone."""
    from physics import MultiCoil, simulate_coil_maps
    from physics.consistency import channel_noise_std, estimate_noise_std
    from physics.raw import whiten_from_band
    from physics.statistics import correlated_noise, random_noise_covariance

    size = 96
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    image = (((xx / 0.8) ** 2 + (yy / 0.9) ** 2 < 1).float() * (1 + 0.3 * xx)).to(torch.complex64)[None]
    maps = simulate_coil_maps(8, (size, size))[None]
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[:, ::3] = True
    mask[:, 40:56] = True
    clean = MultiCoil(mask, maps)(image)
    sigma = 0.2 * float(clean.abs().pow(2).sum() / mask.sum() / 8) ** 0.5
    array = random_noise_covariance(8, torch.Generator().manual_seed(1), gain=(0.3, 3.0))
    noisy = clean + sigma * correlated_noise(array, (size, size), torch.Generator().manual_seed(2))[None] * mask
    kspace, whitened_maps, gain = whiten_from_band(noisy, mask, maps)
    assert float(channel_noise_std(kspace, mask)) < 1.15 * float(estimate_noise_std(kspace, mask))  # white now
    assert float(channel_noise_std(noisy, mask)) > 2 * float(estimate_noise_std(noisy, mask))  # it was not
    rss = whitened_maps.abs().pow(2).sum(1).sqrt()
    assert torch.allclose(rss[gain > 0], torch.ones_like(rss[gain > 0]), atol=1e-4)
    # the whitened data are the whitened maps' scan of gain x, to the noise (the whitening
    # keeps the mean noise variance): a wrong mixing of the maps would leave signal behind
    residual = float((MultiCoil(mask, whitened_maps)(gain * image) - kspace).norm())
    assert abs(residual / (sigma * float(mask.sum() * 8) ** 0.5) - 1) < 0.2
    white = clean + sigma * correlated_noise(torch.eye(8, dtype=torch.complex128), (size, size),
                                             torch.Generator().manual_seed(2))[None] * mask
    assert whiten_from_band(white, mask, maps) is None
    assert whiten_from_band(clean, mask, maps) is None
    assert whiten_from_band(noisy[:, :2], mask, maps[:, :2]) is None
