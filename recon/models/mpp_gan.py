"""The multi-path progressive GAN: 4x super-resolution in two sub-pixel stages.

Shallow features come from three parallel paths with 3x3, 5x5 and 7x7 kernels and
are concatenated; a ResNet-34-style body (basic residual blocks in stages of 3, 4, 6
and 3) follows, then a sub-pixel 2x upscale, a small residual CNN, and a second
sub-pixel 2x upscale (progressive 4x). It works on the zero-padded image
pixel-unshuffled by 4 (for 4x SR exactly the acquired low-resolution content), and
the measured k-space block is kept exactly (:class:`recon.models.superres.SuperResolution`).
The discriminator judges (low-resolution input, high-resolution image) pairs. Loss:
adversarial + perceptual (our MRI feature network, not VGG) + MSE (NMSE) + L1.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from recon.models.blocks import ResidualBlock
from recon.models.learned import register_model
from recon.models.spec import GanSpec, LossWeights, config_builder
from recon.models.superres import SpectralCritic, SubPixelUp, SuperResolution, zero_last

SCALE = 4
RESNET34 = (3, 4, 6, 3)


@dataclass(frozen=True)
class MppGanConfig:
    """``width`` channels of the body, ``path_width`` per shallow path, ``stages``
    basic blocks per body stage (ResNet-34: 3-4-6-3), ``refine`` residual blocks
    between the two upscales."""

    width: int = 32
    path_width: int = 16
    stages: tuple[int, ...] = RESNET34
    refine: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(int(s) for s in self.stages))
        if min(self.width, self.path_width, self.refine, *self.stages) < 1:
            raise ValueError("width, path_width, refine and every stage must be >= 1")

    def to_dict(self) -> dict:
        data = asdict(self)
        data["stages"] = list(self.stages)
        return data


class MultiPathProgressive(nn.Module):
    def __init__(self, config: MppGanConfig):
        super().__init__()
        inputs, width = 2 * SCALE**2, config.width
        self.paths = nn.ModuleList([nn.Conv2d(inputs, config.path_width, k, padding=k // 2) for k in (3, 5, 7)])
        self.merge = nn.Conv2d(3 * config.path_width, width, 1)
        self.body = nn.ModuleList([nn.Sequential(*[ResidualBlock(width) for _ in range(count)]) for count in config.stages])
        self.body_conv = nn.Conv2d(width, width, 3, padding=1)
        self.up1 = SubPixelUp(width, width // 2)
        self.refine = nn.Sequential(*[ResidualBlock(width // 2) for _ in range(config.refine)])
        self.up2 = SubPixelUp(width // 2, width // 4)
        self.tail = zero_last(nn.Conv2d(width // 4, 2, 3, padding=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shallow = self.merge(torch.cat([F.leaky_relu(path(x), 0.2) for path in self.paths], dim=1))
        out = shallow
        for stage in self.body:
            out = stage(out)
        out = shallow + self.body_conv(out)
        out = self.refine(F.leaky_relu(self.up1(out), 0.2))
        return self.tail(F.leaky_relu(self.up2(out), 0.2))


class MppGanGenerator(SuperResolution):
    """The multi-path progressive generator with data consistency.

    Shapes
    ------
    forward(kspace ``(B, C, H, W)``, operator of a lowres acquisition) -> ``(B, H, W)`` complex.
    """

    def __init__(self, config: MppGanConfig = MppGanConfig()):
        super().__init__(MultiPathProgressive(config), SCALE)
        self.config = config


register_model(GanSpec(
    name="mpp-gan",
    description="multi-path progressive GAN super-resolution, 3/5/7 paths, ResNet-34 body, two sub-pixel 2x stages, "
                "(LR, HR) pair discriminator (lowres masks only; shipped weights)",
    build_generator=config_builder(MppGanGenerator, MppGanConfig, MppGanConfig(width=64, path_width=32)),
    build_critic=lambda: SpectralCritic(width=32, stages=4, paired=True),
    loss_weights=LossWeights(adversarial=1e-3, freq=0.0, nmse=1.0, l1=1.0, perceptual=0.1),
    lipschitz="spectral",
    adversarial="hinge",
    lr_g=5e-4,
    lr_d=2e-4,
    paired_critic=True,
    trained_masks="lowres",
))
