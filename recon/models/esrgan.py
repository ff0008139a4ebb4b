"""The ESRGAN framework: an RRDB generator (no batch normalisation) that upsamples by
nearest-neighbour interpolation and convolution, a relativistic average
discriminator, and the loss MSE + perceptual + adversarial.

The generator works on the zero-padded image pixel-unshuffled by 4 and returns to
full resolution in two interpolate-and-convolve 2x stages; the measured k-space
block is kept exactly (:class:`recon.models.superres.SuperResolution`). Its perceptual term
is on our MRI feature network (:mod:`recon.training.features`), not VGG. The framework's
evaluation (PSNR, SSIM and the NIQE-like and FID-like scores, ours) is in
``python -m benchmarks.superres``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recon.models.learned import register_model
from recon.models.spec import GanSpec, LossWeights, config_builder
from recon.models.superres import RRDB, SpectralCritic, SuperResolution, zero_last

SCALE = 4


@dataclass(frozen=True)
class EsrganConfig:
    """``width`` channels, dense ``growth`` and ``blocks`` RRDBs."""

    width: int = 32
    growth: int = 16
    blocks: int = 3

    def __post_init__(self) -> None:
        if min(self.width, self.growth, self.blocks) < 1:
            raise ValueError("width, growth and blocks must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


class RRDBNet(nn.Module):
    def __init__(self, config: EsrganConfig):
        super().__init__()
        width = config.width
        self.head = nn.Conv2d(2 * SCALE**2, width, 3, padding=1)
        self.trunk = nn.Sequential(*[RRDB(width, config.growth) for _ in range(config.blocks)])
        self.trunk_conv = nn.Conv2d(width, width, 3, padding=1)
        self.up1 = nn.Conv2d(width, width // 2, 3, padding=1)
        self.up2 = nn.Conv2d(width // 2, width // 2, 3, padding=1)
        self.tail = zero_last(nn.Conv2d(width // 2, 2, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        out = head + self.trunk_conv(self.trunk(head))
        out = F.leaky_relu(self.up1(F.interpolate(out, scale_factor=2, mode="nearest")), 0.2)
        out = F.leaky_relu(self.up2(F.interpolate(out, scale_factor=2, mode="nearest")), 0.2)
        return self.tail(out)


class EsrganGenerator(SuperResolution):
    """ESRGAN's generator with data consistency.

    Shapes
    ------
    forward(kspace ``(B, C, H, W)``, operator of a lowres acquisition) -> ``(B, H, W)`` complex.
    """

    def __init__(self, config: EsrganConfig = EsrganConfig()):
        super().__init__(RRDBNet(config), SCALE)
        self.config = config


register_model(GanSpec(
    name="esrgan",
    description="ESRGAN framework super-resolution, RRDB generator, MSE + perceptual + relativistic adversarial "
                "(lowres masks only; shipped weights)",
    build_generator=config_builder(EsrganGenerator, EsrganConfig, EsrganConfig(width=64, growth=32, blocks=23)),
    build_critic=lambda: SpectralCritic(width=32, stages=4),
    loss_weights=LossWeights(adversarial=1e-3, freq=0.0, nmse=1.0, perceptual=0.1),
    lipschitz="spectral",
    adversarial="relativistic",
    lr_g=5e-4,
    lr_d=2e-4,
    trained_masks="lowres",
))
