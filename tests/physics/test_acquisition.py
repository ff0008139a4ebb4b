import math

import numpy as np
import pytest
import torch

from physics import (
    add_noise,
    estimate_coil_maps,
    fft2c,
    ifft2c,
    rss,
    simulate_coil_maps,
    simulate_kspace,
    smooth_phase,
)


def test_simulated_maps_have_unit_rss():
    maps = simulate_coil_maps(8, (64, 48))
    assert maps.shape == (8, 64, 48) and maps.dtype == torch.complex64
    torch.testing.assert_close(rss(maps.unsqueeze(0))[0], torch.ones(64, 48), atol=1e-5, rtol=1e-5)
    assert not torch.allclose(maps[0].abs(), maps[4].abs())  # coils differ


def test_espirit_recovers_the_maps_up_to_a_common_phase(brain_slice):
    true_maps = simulate_coil_maps(8, brain_slice.shape)
    kspace, _ = simulate_kspace(torch.from_numpy(brain_slice[None]), None, coil_maps=true_maps)
    estimated = estimate_coil_maps(kspace[0], calib_width=24)
    assert estimated.shape == true_maps.shape
    inside = torch.from_numpy(brain_slice > 0.1)
    # per-pixel inner product between estimated and true coil vectors: |<e, t>| ~ 1
    agreement = (estimated.conj() * true_maps).sum(dim=0).abs()
    assert float(agreement[inside].mean()) > 0.95
    # the SENSE combination of the data with the estimated maps recovers the image magnitude
    combined = (estimated.conj() * ifft2c(kspace[0])).sum(dim=0).abs()
    error = (combined - torch.from_numpy(brain_slice))[inside].abs().mean()
    assert float(error) < 0.02


def test_espirit_needs_a_calibration_region():
    with pytest.raises(ValueError, match="centre is only 2 wide"):
        estimate_coil_maps(torch.ones(4, 32, 32, dtype=torch.complex64), calib_width=2)


def test_rss_combination():
    coil_images = torch.tensor([[[[3 + 0j]], [[0 + 4j]]]])
    assert float(rss(coil_images)) == pytest.approx(5.0)


def test_noise_has_the_requested_snr():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(4, 64, 64)
    kspace = fft2c(image.to(torch.complex64)).unsqueeze(1)
    noisy = add_noise(kspace, 20.0, generator)
    noise = noisy - kspace
    sigma = float(noise.abs().pow(2).mean().sqrt())
    rms = float(image.pow(2).mean().sqrt())
    assert 20 * math.log10(rms / sigma) == pytest.approx(20.0, abs=0.1)
    # circular: real and imaginary parts carry equal power
    assert float(noise.real.var() / noise.imag.var()) == pytest.approx(1.0, abs=0.05)


def test_simulation_is_deterministic_and_masks():
    image = torch.rand(2, 32, 32)
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[:, ::3] = True
    runs = [
        simulate_kspace(image, mask, noise_snr=25, phase=True, generator=torch.Generator().manual_seed(5))
        for _ in range(2)
    ]
    torch.testing.assert_close(runs[0][0], runs[1][0])
    kspace, truth = runs[0]
    assert kspace.shape == (2, 1, 32, 32)
    assert torch.all(kspace[..., ~mask] == 0)
    torch.testing.assert_close(truth.abs(), image, atol=1e-6, rtol=1e-6)  # phase keeps the magnitude
    assert float(truth.angle().abs().max()) > 0.1


def test_smooth_phase_is_smooth_and_bounded():
    phase = smooth_phase((64, 64), torch.Generator().manual_seed(1), max_phase=np.pi)
    assert float(phase.abs().max()) == pytest.approx(np.pi, rel=1e-5)
    assert float((phase[1:] - phase[:-1]).abs().max()) < 0.3
    assert float((phase[:, 1:] - phase[:, :-1]).abs().max()) < 0.3
