"""Scan-specific adaptation (recon.training.adapt): a known-answer test on a shifted input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import recon
from masks import make_mask
from physics import simulate_kspace
from recon import metrics
from recon.training.adapt import adapt_model


def _inverted_volume(count: int = 4) -> np.ndarray:
    """Sample slices, halved to 128x128, with the contrast inverted inside the head: a
    contrast the shipped models never saw (dark tissue bright, bright tissue dark)."""
    from scipy.ndimage import binary_dilation, binary_fill_holes

    from pipelines.data.sample import sample

    images = np.asarray(sample("test").images, dtype=np.float32)
    images = images[np.linspace(2, len(images) - 3, count).round().astype(int)]
    images = images.reshape(count, 128, 2, 128, 2).mean(axis=(2, 4))
    inverted = []
    for image in images:
        support = binary_fill_holes(binary_dilation(image > 0.08 * image.max(), iterations=2))
        inverted.append(np.where(support, 1.05 * image.max() - image, 0.0))
    return np.stack(inverted).astype(np.float32)


def _psnr(reconstructor, kspace, mask, truth) -> float:
    data_range = float(truth.abs().max())
    return float(np.mean([metrics.psnr(reconstructor.reconstruct(kspace[i : i + 1], mask)[0].abs(), truth[i].abs(), data_range)
                          for i in range(len(kspace))]))


def test_adapt_gains_on_inverted_contrast():
    torch.manual_seed(0)
    images = _inverted_volume()
    mask = torch.from_numpy(make_mask("25pct", images.shape[-2:], "cartesian", seed=3).array)
    kspace, truth = simulate_kspace(torch.from_numpy(images), mask, generator=torch.Generator().manual_seed(1))
    shipped = _psnr(recon.get("gan-drn"), kspace, mask, truth)
    # bounded by steps (20), never by seconds: the same result on a loaded machine
    adapted = adapt_model("gan-drn", kspace, mask, time_limit=float("inf"), max_steps=20, batch_size=2, lr=2e-4,
                          check_every=5, patience=6)
    after = _psnr(adapted, kspace, mask, truth)
    record = adapted.adaptation
    assert record.steps > 0 and record.best_step > 0
    assert record.validation_after < record.validation_before  # the held-out k-space says it gained
    assert after > shipped + 0.5, (shipped, after, record.to_dict())  # and the truth agrees


def test_adapt_refuses_a_mask_with_nothing_to_hold_out():
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[:, 14:18] = True  # only the calibration block
    with pytest.raises(ValueError, match="--adapt needs"):
        adapt_model("gan-drn", torch.zeros(1, 1, 32, 32, dtype=torch.complex64), mask)


def test_the_validation_residual_takes_the_noise_out():
    """A perfect reconstruction of a noisy scan leaves only noise on the held-out points:
    the raw residual reads that noise, the noise-corrected one reads (almost) nothing."""
    from masks import make_mask
    from physics.acquisition import simulate_kspace
    from physics.coils import simulate_coil_maps
    from recon.training.adapt import _residual, held_noise_energy
    from recon.trust.holdout import holdout_folds

    yy, xx = torch.meshgrid(torch.arange(96) - 48, torch.arange(96) - 48, indexing="ij")
    image = ((yy**2 + xx**2) < 30**2).float()[None] * (1 + 0.5 * (yy > 0))
    maps = simulate_coil_maps(8, (96, 96))[None]
    mask = torch.from_numpy(make_mask(0.4, (96, 96), "cartesian", seed=0).array)
    kspace, truth = simulate_kspace(image, mask, coil_maps=maps, noise_snr=20.0, generator=torch.Generator().manual_seed(1))
    held = torch.from_numpy(holdout_folds(mask.numpy(), 5, seed=2)[0])
    seen = mask & ~held

    def perfect(data, operator):
        return truth

    noise = held_noise_energy(kspace, mask, held)
    raw, corrected = (_residual(perfect, kspace, seen, held, maps, energy) for energy in (0.0, noise))
    assert raw > 0.5 and corrected < 0.2 * raw  # the held points are mostly noise at 20 dB
    # a worse image (60 % of the truth) against the perfect one: a gain of a fraction of
    # a dB on the noise floor, several dB once the noise is out
    worse_raw, worse = (_residual(lambda data, operator: 0.6 * truth, kspace, seen, held, maps, energy)
                        for energy in (0.0, noise))
    assert 10 * np.log10(worse / corrected) > 5 * 10 * np.log10(worse_raw / raw) > 0
