"""Our own MRI feature network: the perceptual loss and the FID-like score without any
downloaded network.

Perceptual losses usually compare VGG-19 features of ImageNet photographs; nothing may
be downloaded here, and VGG never saw an MR image. :class:`FeatureNet` is a small CNN
(3 stages, 16-32-64 channels, 1/1, 1/2 and 1/4 resolution) trained as a *denoising and
inpainting autoencoder* on the training corpus's magnitude images
(``scripts/train_features.py``); its encoder's features serve as

- the perceptual loss of the super-resolution GANs (:func:`perceptual_loss`, the
  mean squared feature difference per stage, each stage normalised by the target's
  feature energy), and
- the FID-like distribution distance (:func:`feature_distance`): the Fréchet distance
  between Gaussians fitted to the deepest stage's feature vectors of two image sets.

It is **not VGG**, and its scores are not comparable with published perceptual, LPIPS
or FID values: they are ours, on our features.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from recon.models.blocks import pad_to_multiple
from recon.weights import WEIGHTS_DIR
from recon.weights.loading import load_state

WEIGHTS = WEIGHTS_DIR / "mri-features.pt"
CHANNELS = (16, 32, 64)


class FeatureNet(nn.Module):
    """Encoder (3 stages) and decoder of the feature autoencoder.

    Shapes
    ------
    features(magnitude ``(B, 1, H, W)`` in about [0, 1]) -> a list of 3 maps
    ``(B, 16, H, W)``, ``(B, 32, H/2, W/2)``, ``(B, 64, H/4, W/4)``;
    forward(``(B, 1, H, W)``) -> the restored ``(B, 1, H, W)`` (training only).
    """

    def __init__(self, channels: tuple[int, int, int] = CHANNELS):
        super().__init__()
        a, b, c = channels
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv2d(1, a, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(a, a, 3, padding=1), nn.LeakyReLU(0.2)),
            nn.Sequential(nn.Conv2d(a, b, 4, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(b, b, 3, padding=1),
                          nn.LeakyReLU(0.2)),
            nn.Sequential(nn.Conv2d(b, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(c, c, 3, padding=1),
                          nn.LeakyReLU(0.2)),
        ])
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(c, b, 2, stride=2), nn.LeakyReLU(0.2), nn.Conv2d(b, b, 3, padding=1), nn.LeakyReLU(0.2),
            nn.ConvTranspose2d(b, a, 2, stride=2), nn.LeakyReLU(0.2), nn.Conv2d(a, 1, 3, padding=1),
        )

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        maps, (out, _) = [], pad_to_multiple(x, 4)
        for stage in self.stages:
            out = stage(out)
            maps.append(out)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        return self.decoder(self.features(x)[-1])[..., :height, :width]


@lru_cache(maxsize=2)
def load_feature_net(path: str = str(WEIGHTS)) -> FeatureNet:
    """The shipped feature network (frozen, eval mode)."""
    net = FeatureNet()
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: the MRI feature network's weights are missing (scripts/train_features.py makes them)")
    net.load_state_dict(load_state(path))
    net.eval()
    for parameter in net.parameters():
        parameter.requires_grad_(False)
    return net


def _magnitudes(images: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``(B, H, W)`` complex or real -> ``(B, 1, H, W)`` magnitudes scaled by each
    reference image's maximum (the metrics' data range)."""
    scale = reference.abs().flatten(1).amax(dim=1).clamp_min(1e-12)
    return (images.abs() / scale[:, None, None]).unsqueeze(1)


def perceptual_loss(prediction: torch.Tensor, target: torch.Tensor, net: FeatureNet | None = None) -> torch.Tensor:
    """Mean over the three stages of ``||phi(x_hat) - phi(x)||^2 / ||phi(x)||^2`` on
    magnitudes (each image scaled by its target's maximum), averaged over the batch.

    Shapes
    ------
    prediction, target: ``(B, H, W)`` (complex or real).
    """
    net = load_feature_net() if net is None else net
    net = net.to(prediction.device)
    fake = net.features(_magnitudes(prediction, target))
    with torch.no_grad():
        real = net.features(_magnitudes(target, target))
    terms = [(f - r).pow(2).flatten(1).sum(1) / r.pow(2).flatten(1).sum(1).clamp_min(1e-12) for f, r in zip(fake, real)]
    return torch.stack(terms).mean()


def feature_vectors(images: torch.Tensor, references: torch.Tensor | None = None, per_image: int = 256,
                    net: FeatureNet | None = None) -> np.ndarray:
    """Deepest-stage feature vectors of each image at ``per_image`` fixed positions on
    a regular grid (one 64-vector per 4x4 patch), magnitudes scaled by the reference's
    maximum (the image's own by default).

    Shapes
    ------
    images ``(B, H, W)`` -> ``(B * per_image, 64)``.
    """
    net = load_feature_net() if net is None else net
    references = images if references is None else references
    with torch.no_grad():
        deep = net.features(_magnitudes(images, references).float().cpu())[-1]
    flat = deep.flatten(2).transpose(1, 2)  # (B, positions, 64)
    picks = np.unique(np.linspace(0, flat.shape[1] - 1, min(per_image, flat.shape[1])).round().astype(int))
    return flat[:, picks].reshape(-1, flat.shape[-1]).double().numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to the rows of ``a`` and of ``b``:
    ``|mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))``."""
    from scipy import linalg

    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = linalg.sqrtm(cov_a @ cov_b)
    root = root.real if np.iscomplexobj(root) else root
    return float(max(((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * root), 0.0))


def feature_distance(outputs: torch.Tensor, targets: torch.Tensor) -> float:
    """FID-like score (ours, on our MRI feature network, not Inception): the Fréchet
    distance between the deep-feature distributions of ``outputs`` and ``targets``,
    both scaled by the targets' maxima. 0 for identical sets; lower is closer.

    Shapes
    ------
    outputs, targets: ``(B, H, W)``.
    """
    return frechet_distance(feature_vectors(outputs, targets), feature_vectors(targets, targets))
