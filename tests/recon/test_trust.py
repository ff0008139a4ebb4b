import torch

from physics.consistency import hard_projection
from physics.fft import fft2c, ifft2c
from physics.operators import MultiCoil, SingleCoil
from recon.trust import check as trust


def _setup(seed=0):
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn(32, 32, dtype=torch.complex64, generator=generator)
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[:, ::3] = True
    return image, mask, fft2c(image) * mask


def test_consistency_residual_is_zero_after_hard_projection_and_positive_before():
    image, mask, kspace = _setup()
    guess = torch.randn(32, 32, dtype=torch.complex64, generator=torch.Generator().manual_seed(1))
    assert trust.consistency_residual(guess, kspace[None], SingleCoil(mask)) > 0.5
    projected = ifft2c(hard_projection(fft2c(guess), kspace, mask))
    assert trust.consistency_residual(projected, kspace[None], SingleCoil(mask)) < 1e-6


def test_multicoil_residual_uses_the_coil_maps():
    image, mask, _ = _setup()
    maps = torch.stack([torch.ones(32, 32), 0.5 * torch.ones(32, 32)]).to(torch.complex64)
    kspace = fft2c(maps * image) * mask
    assert trust.consistency_residual(image, kspace, MultiCoil(mask, maps[None])) < 1e-6
    assert trust.consistency_residual(image, kspace.flip(0), MultiCoil(mask, maps[None])) > 0.1


def test_hallucination_sees_only_unmeasured_differences():
    image, mask, _ = _setup()
    measured_change = ifft2c(fft2c(torch.randn(32, 32, dtype=torch.complex64)) * mask)
    assert trust.hallucination_energy(image + measured_change, image, mask) < 1e-10
    unmeasured = torch.zeros(32, 32, dtype=torch.complex64)
    unmeasured[5, 4] = 3.0  # column 4 is not sampled
    added = ifft2c(unmeasured)
    energy = trust.hallucination_energy(image + added, image, mask)
    expected = float(added.abs().pow(2).sum() / (image + added).abs().pow(2).sum())
    assert abs(energy - expected) < 1e-6
    torch.testing.assert_close(trust.hallucination_map(image + added, image, mask), added, atol=1e-5, rtol=1e-5)


def test_the_residual_against_the_noise_level_reads_one_for_the_truth():
    from physics.coils import simulate_coil_maps
    from physics.operators import MultiCoil, SingleCoil

    generator = torch.Generator().manual_seed(0)
    image = torch.rand(64, 64, generator=generator).to(torch.complex64)
    maps = simulate_coil_maps(8, (64, 64))
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[:, ::2] = True
    operator = MultiCoil(mask, maps[None])
    sigma = 0.05
    noise = sigma * torch.complex(torch.randn(8, 64, 64, generator=generator), torch.randn(8, 64, 64, generator=generator))
    kspace = (operator(image[None])[0] + noise / 2**0.5) * mask
    truth = trust.residual_to_noise(image, kspace, operator)  # the truth misses the data by exactly the noise
    assert truth is not None and 0.8 < truth < 1.25
    assert trust.residual_to_noise(image, kspace[:1], SingleCoil(mask)) is None  # no noise estimate from one coil
