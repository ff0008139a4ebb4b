"""SOUP-GAN: super-resolution optimised with a perceptual-tuned GAN.

The generator is a deep plain convolutional network with LeakyReLU (12 3x3
convolutions, with a skip over every pair to keep such depth trainable on a short
budget) working on the zero-padded image pixel-unshuffled by 2, and a sub-pixel
convolution back to full resolution (see :class:`recon.models.superres.SuperResolution`:
the measured k-space block is kept exactly). The discriminator is spectrally
normalised. Loss: adversarial (hinge) + perceptual (our MRI feature network,
:mod:`recon.training.features`, not VGG) + pixel (NMSE).

In-plane it completes a ``lowres`` acquisition; through-plane (``recon sr
--slice-factor 2|4``, :mod:`recon.models.through_plane`) the same architecture restores thin slices
from thick ones.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recon.models.learned import register_model
from recon.models.spec import GanSpec, LossWeights, config_builder
from recon.models.superres import SpectralCritic, SuperResolution, zero_last


@dataclass(frozen=True)
class SoupGanConfig:
    """Generator architecture: ``width`` channels, ``layers`` convolutions (even), on a
    grid ``scale`` times coarser than the image."""

    width: int = 32
    layers: int = 12
    scale: int = 2

    def __post_init__(self) -> None:
        if self.width < 1 or self.layers < 2 or self.layers % 2 or self.scale not in (1, 2, 4):
            raise ValueError("width >= 1, an even number of layers >= 2 and scale 1, 2 or 4 are needed")

    def to_dict(self) -> dict:
        return asdict(self)


class DeepConvBody(nn.Module):
    """head convolution, ``layers`` 3x3 convolutions with LeakyReLU (a skip over each
    pair), tail convolution to ``2 scale^2`` channels and a pixel shuffle."""

    def __init__(self, config: SoupGanConfig):
        super().__init__()
        inputs = 2 * config.scale**2
        self.scale = config.scale
        self.head = nn.Conv2d(inputs, config.width, 3, padding=1)
        self.convs = nn.ModuleList([nn.Conv2d(config.width, config.width, 3, padding=1) for _ in range(config.layers)])
        self.tail = zero_last(nn.Conv2d(config.width, inputs, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.leaky_relu(self.head(x), 0.2)
        for first, second in zip(self.convs[::2], self.convs[1::2]):
            out = out + second(F.leaky_relu(first(out), 0.2))
            out = F.leaky_relu(out, 0.2)
        return F.pixel_shuffle(self.tail(out), self.scale)


class SoupGanGenerator(SuperResolution):
    """SOUP-GAN's generator with data consistency.

    Shapes
    ------
    forward(kspace ``(B, C, H, W)``, operator of a lowres acquisition) -> ``(B, H, W)`` complex.
    """

    def __init__(self, config: SoupGanConfig = SoupGanConfig()):
        super().__init__(DeepConvBody(config), config.scale)
        self.config = config


SPEC = GanSpec(
    name="soup-gan",
    description="SOUP-GAN super-resolution, deep LeakyReLU CNN, perceptual-tuned GAN (lowres masks only; shipped weights)",
    build_generator=config_builder(SoupGanGenerator, SoupGanConfig, SoupGanConfig(width=64, layers=16)),
    build_critic=lambda: SpectralCritic(width=32, stages=4),
    loss_weights=LossWeights(adversarial=1e-3, freq=0.0, nmse=1.0, perceptual=0.1),
    lipschitz="spectral",
    adversarial="hinge",
    lr_g=5e-4,
    lr_d=2e-4,
    trained_masks="lowres",
)
"""SOUP-GAN's spec; the through-plane model (``soup-gan-z``, :mod:`recon.models.through_plane`) reuses it."""
register_model(SPEC)
