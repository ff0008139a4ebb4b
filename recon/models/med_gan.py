"""Med-GAN: an ESRGAN-style generator of residual-in-residual dense blocks (RRDB, no
batch normalisation) with multi-scale fusion, and a relativistic average
discriminator.

The main stream runs RRDBs on the zero-padded image pixel-unshuffled by 4; a
parallel stream at half that resolution (a strided convolution, its own RRDB) is
merged back by a transposed convolution (deconvolution) and fused with the main
stream by a 1x1 convolution. Two 2x deconvolutions return to full resolution, and
the measured k-space block is kept exactly (:class:`recon.models.superres.SuperResolution`).
Loss: relativistic average adversarial + perceptual (our MRI feature network, not
VGG) + L1, as ESRGAN weighs them, with an NMSE term for fidelity.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recon.models.learned import register_model
from recon.models.spec import GanSpec, LossWeights, config_builder
from recon.models.superres import RRDB, SpectralCritic, SuperResolution, zero_last


@dataclass(frozen=True)
class MedGanConfig:
    """``width`` channels, dense ``growth``, ``blocks`` RRDBs in the main stream and
    ``low_blocks`` in the half-resolution stream."""

    width: int = 32
    growth: int = 16
    blocks: int = 2
    low_blocks: int = 1

    def __post_init__(self) -> None:
        if min(self.width, self.growth, self.blocks, self.low_blocks) < 1:
            raise ValueError("width, growth, blocks and low_blocks must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


SCALE = 4


class MultiScaleRRDB(nn.Module):
    def __init__(self, config: MedGanConfig):
        super().__init__()
        width = config.width
        self.head = nn.Conv2d(2 * SCALE**2, width, 3, padding=1)
        self.main = nn.Sequential(*[RRDB(width, config.growth) for _ in range(config.blocks)])
        self.down = nn.Conv2d(width, width, 4, stride=2, padding=1)
        self.low = nn.Sequential(*[RRDB(width, config.growth) for _ in range(config.low_blocks)])
        self.merge = nn.ConvTranspose2d(width, width, 2, stride=2)
        self.fuse = nn.Conv2d(2 * width, width, 1)
        self.up1 = nn.ConvTranspose2d(width, width // 2, 2, stride=2)
        self.up2 = nn.ConvTranspose2d(width // 2, width // 2, 2, stride=2)
        self.tail = zero_last(nn.Conv2d(width // 2, 2, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        head = self.head(x)
        main = self.main(head)
        low = self.low(F.leaky_relu(self.down(head), 0.2))
        low = self.merge(low)[..., : main.shape[-2], : main.shape[-1]]
        fused = head + self.fuse(torch.cat([main, low], dim=1))
        out = F.leaky_relu(self.up1(fused), 0.2)
        out = F.leaky_relu(self.up2(out), 0.2)
        return self.tail(out)


class MedGanGenerator(SuperResolution):
    """Med-GAN's generator with data consistency.

    Shapes
    ------
    forward(kspace ``(B, C, H, W)``, operator of a lowres acquisition) -> ``(B, H, W)`` complex.
    """

    def __init__(self, config: MedGanConfig = MedGanConfig()):
        super().__init__(MultiScaleRRDB(config), SCALE, multiple=2 * SCALE)  # the half-resolution stream
        self.config = config


register_model(GanSpec(
    name="med-gan",
    description="Med-GAN super-resolution, RRDB without batch norm, multi-scale fusion, relativistic average "
                "discriminator (lowres masks only; shipped weights)",
    build_generator=config_builder(MedGanGenerator, MedGanConfig, MedGanConfig(width=64, growth=32, blocks=8, low_blocks=4)),
    build_critic=lambda: SpectralCritic(width=32, stages=4),
    loss_weights=LossWeights(adversarial=1e-3, freq=0.0, nmse=1.0, l1=1.0, perceptual=0.1),
    lipschitz="spectral",
    adversarial="relativistic",
    lr_g=5e-4,
    lr_d=2e-4,
    trained_masks="lowres",
))
