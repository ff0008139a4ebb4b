"""Image quality metrics, following fastMRI's conventions.

- Metrics are computed on magnitude images (complex inputs are turned into magnitudes).
- The data range is the target's maximum: over the whole stack for a volume
  ``(N, H, W)`` and over the slice for one ``(H, W)`` slice (fastMRI's
  ``evaluate.py`` uses ``gt.max()`` of the volume).
- SSIM uses a 7x7 uniform window, k1 = 0.01, k2 = 0.03 and the sample covariance,
  identical to ``skimage.metrics.structural_similarity(..., win_size=7,
  data_range=max)`` which fastMRI calls; for a volume it is the mean over slices.
- NMSE = ||x - y||^2 / ||y||^2; PSNR = 10 log10(range^2 / MSE).

Inputs may be numpy arrays or torch tensors; the work is done in torch float64.
The SSIM here is differentiable, so it also serves as a training loss.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

ArrayLike = np.ndarray | torch.Tensor


def _magnitude(x: ArrayLike) -> torch.Tensor:
    tensor = torch.as_tensor(x) if isinstance(x, np.ndarray) else x
    if torch.is_complex(tensor):
        tensor = tensor.abs()
    return tensor.to(torch.float64) if not tensor.requires_grad else tensor


def _pair(prediction: ArrayLike, target: ArrayLike) -> tuple[torch.Tensor, torch.Tensor]:
    pred, gt = _magnitude(prediction), _magnitude(target)
    if pred.shape != gt.shape:
        raise ValueError(f"prediction shape {tuple(pred.shape)} != target shape {tuple(gt.shape)}")
    return pred, gt.to(pred.dtype)


def _range(gt: torch.Tensor, data_range: float | None) -> float:
    value = float(gt.max()) if data_range is None else float(data_range)
    if value <= 0:
        raise ValueError("metrics need a target with a positive maximum (the data range); got an all-zero target")
    return value


def mse(prediction: ArrayLike, target: ArrayLike) -> float:
    """Mean squared error of the magnitudes."""
    pred, gt = _pair(prediction, target)
    return float(((pred - gt) ** 2).mean())


def rmse(prediction: ArrayLike, target: ArrayLike) -> float:
    """Root mean squared error of the magnitudes."""
    return math.sqrt(mse(prediction, target))


def nmse(prediction: ArrayLike, target: ArrayLike) -> float:
    """Normalised MSE ``||x - y||^2 / ||y||^2`` of the magnitudes."""
    pred, gt = _pair(prediction, target)
    denominator = float((gt**2).sum())
    if denominator == 0:
        raise ValueError("NMSE is undefined for an all-zero target")
    return float(((pred - gt) ** 2).sum()) / denominator


def psnr(prediction: ArrayLike, target: ArrayLike, data_range: float | None = None) -> float:
    """Peak SNR in dB with the data range of the target (see module docstring)."""
    pred, gt = _pair(prediction, target)
    peak = _range(gt, data_range)
    error = float(((pred - gt) ** 2).mean())
    return math.inf if error == 0 else 10 * math.log10(peak**2 / error)


def ssim_map(
    prediction: torch.Tensor,
    target: torch.Tensor,
    data_range: float | torch.Tensor,
    win_size: int = 7,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """SSIM map over valid 7x7 windows (skimage's cropped region), differentiable.

    Shapes
    ------
    prediction, target: ``(N, H, W)`` real -> ``(N, H - win + 1, W - win + 1)``.
    """
    x = prediction.unsqueeze(1)
    y = target.unsqueeze(1)
    kernel = torch.ones(1, 1, win_size, win_size, dtype=x.dtype, device=x.device) / win_size**2
    n_points = win_size**2
    cov_norm = n_points / (n_points - 1)
    ux, uy = F.conv2d(x, kernel), F.conv2d(y, kernel)
    uxx, uyy, uxy = F.conv2d(x * x, kernel), F.conv2d(y * y, kernel), F.conv2d(x * y, kernel)
    vx, vy, vxy = cov_norm * (uxx - ux * ux), cov_norm * (uyy - uy * uy), cov_norm * (uxy - ux * uy)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    numerator = (2 * ux * uy + c1) * (2 * vxy + c2)
    denominator = (ux**2 + uy**2 + c1) * (vx + vy + c2)
    return (numerator / denominator)[:, 0]


def ssim(prediction: ArrayLike, target: ArrayLike, data_range: float | None = None) -> float:
    """Structural similarity (7x7 uniform window, k1 = 0.01, k2 = 0.03), fastMRI style.

    For a stack ``(N, H, W)`` this is the mean of the per-slice SSIMs, all with the
    stack's data range.
    """
    pred, gt = _pair(prediction, target)
    if pred.ndim == 2:
        pred, gt = pred[None], gt[None]
    if pred.ndim != 3 or min(pred.shape[-2:]) < 7:
        raise ValueError(f"SSIM needs (H, W) or (N, H, W) images of at least 7x7, got {tuple(pred.shape)}")
    peak = _range(gt, data_range)
    return float(ssim_map(pred, gt, peak).mean(dim=(-2, -1)).mean())


def evaluate(prediction: ArrayLike, target: ArrayLike, data_range: float | None = None) -> dict[str, float]:
    """All metrics at once: psnr, ssim, nmse, mse, rmse."""
    error = mse(prediction, target)
    return {
        "psnr": psnr(prediction, target, data_range),
        "ssim": ssim(prediction, target, data_range),
        "nmse": nmse(prediction, target),
        "mse": error,
        "rmse": math.sqrt(error),
    }
