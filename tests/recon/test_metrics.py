import numpy as np
import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from recon import metrics


@pytest.fixture
def pair(rng):
    target = rng.random((48, 40)).astype(np.float32) * 3.0
    prediction = target + 0.2 * rng.standard_normal(target.shape).astype(np.float32)
    return prediction, target


def test_psnr_ssim_match_scikit_image(pair):
    prediction, target = pair
    assert metrics.psnr(prediction, target) == pytest.approx(
        peak_signal_noise_ratio(target, prediction, data_range=target.max()), rel=1e-6
    )
    assert metrics.ssim(prediction, target) == pytest.approx(
        structural_similarity(target, prediction, win_size=7, data_range=target.max(), K1=0.01, K2=0.03),
        abs=1e-6,
    )
    assert metrics.mse(prediction, target) == pytest.approx(mean_squared_error(target, prediction), rel=1e-6)


def test_volume_uses_volume_max_and_mean_slice_ssim(rng):
    target = rng.random((3, 32, 32))
    target[0] *= 0.5  # slices with different maxima
    prediction = target + 0.05 * rng.standard_normal(target.shape)
    peak = target.max()
    expected = np.mean(
        [structural_similarity(t, p, win_size=7, data_range=peak) for t, p in zip(target, prediction)]
    )
    assert metrics.ssim(prediction, target) == pytest.approx(expected, abs=1e-6)
    assert metrics.psnr(prediction, target) == pytest.approx(
        peak_signal_noise_ratio(target, prediction, data_range=peak), rel=1e-6
    )


def test_complex_inputs_use_magnitude(pair):
    prediction, target = pair
    prediction = np.abs(prediction)
    phase = np.exp(1j * 0.7)
    assert metrics.psnr(prediction * phase, target) == pytest.approx(metrics.psnr(prediction, target))
    assert metrics.nmse(torch.from_numpy(prediction * phase), target) == pytest.approx(
        metrics.nmse(prediction, target), rel=1e-6
    )


def test_nmse_definition(pair):
    prediction, target = pair
    expected = np.sum((prediction.astype(float) - target) ** 2) / np.sum(target.astype(float) ** 2)
    assert metrics.nmse(prediction, target) == pytest.approx(expected, rel=1e-6)
    assert metrics.rmse(prediction, target) == pytest.approx(np.sqrt(metrics.mse(prediction, target)))


def test_perfect_and_errors(pair):
    _, target = pair
    assert metrics.psnr(target, target) == float("inf")
    assert metrics.ssim(target, target) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="all-zero"):
        metrics.psnr(target, np.zeros_like(target))
    with pytest.raises(ValueError, match="shape"):
        metrics.psnr(target[:10], target)


def test_ssim_is_differentiable():
    target = torch.rand(1, 16, 16, dtype=torch.float64)
    prediction = (target + 0.1 * torch.rand(1, 16, 16, dtype=torch.float64)).requires_grad_()
    value = metrics.ssim_map(prediction, target, 1.0).mean()
    value.backward()
    assert prediction.grad is not None and prediction.grad.abs().sum() > 0
