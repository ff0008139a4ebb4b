"""GAN-DRN: a deep residual generator with data consistency, and a ResNet critic.

The generator takes the zero-filled complex image as 2 channels, predicts a
residual that is added to its input, and enforces data consistency with the
measured k-space. It runs as a cascade of ``stages`` such generator + consistency
blocks (the default: small blocks that work at half resolution, which is what a
2-core CPU can afford), or as the ``paper`` configuration: one ResNet-50-like
encoder-decoder with bottleneck stages 3-4-6-3.

The critic is a ResNet-style CNN that ends in global average pooling and a dense
layer, so it accepts any input size (instead of the flattening of the original).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from physics.consistency import DataConsistency
from physics.operators import LinearOperator
from recon.models.blocks import (
    CriticBlock,
    ResidualBlock,
    leaky,
    pad_to_multiple,
    run_cascade,
    stage_reach,
)
from recon.models.learned import register_model
from recon.models.spec import GanSpec, LossWeights, config_builder


@dataclass(frozen=True)
class GeneratorConfig:
    """Generator architecture.

    Attributes
    ----------
    kind : str
        ``"cascade"`` (default, CPU-sized) or ``"paper"`` (ResNet-50-like).
    width : int
        Channels of the residual blocks (cascade) or of the first stage (paper).
    blocks : int
        Residual blocks per cascade stage.
    stages : int
        Generator + data-consistency stages in the cascade (K).
    learnable_dc : bool
        Learn a soft data-consistency weight per stage instead of hard projection.
    """

    kind: str = "cascade"
    width: int = 32
    blocks: int = 2
    stages: int = 8
    learnable_dc: bool = False

    def __post_init__(self) -> None:
        if self.kind not in ("cascade", "paper"):
            raise ValueError(f"generator kind must be 'cascade' or 'paper', got {self.kind!r}")
        if min(self.width, self.blocks, self.stages) < 1:
            raise ValueError("width, blocks and stages must be >= 1")

    def to_dict(self) -> dict:
        return asdict(self)


PAPER = GeneratorConfig(kind="paper", width=64, stages=1)


class CascadeStage(nn.Module):
    """One refinement, computed at half resolution: a strided 4x4 convolution from
    the 2 image channels, residual blocks, and a 2x2 transposed convolution straight
    back to a 2-channel full-resolution residual (each output pixel has its own
    weights, so no detail is forced through interpolation). No full-resolution
    feature maps are kept, which makes a stage about 4x cheaper on a CPU than one
    with full-resolution features. Works for any H x W (odd sizes are padded)."""

    def __init__(self, width: int, blocks: int):
        super().__init__()
        self.head = nn.Conv2d(2, width, 4, stride=2, padding=1)
        self.body = nn.Sequential(*[ResidualBlock(width) for _ in range(blocks)])
        self.tail = nn.ConvTranspose2d(width, 2, 2, stride=2)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (height, width) = pad_to_multiple(x, 2)
        residual = self.tail(self.body(leaky(self.head(padded), 0.1)))
        return residual[..., :height, :width]


class Bottleneck(nn.Module):
    """ResNet-50 bottleneck: 1x1 reduce, 3x3, 1x1 expand, with a projected skip."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1):
        super().__init__()
        out_channels = 4 * channels
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.skip = None
        if stride != 1 or in_channels != out_channels:
            self.skip = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.skip is None else self.skip(x)))


class PaperGenerator(nn.Module):
    """The published configuration: a ResNet-50-like encoder (bottleneck stages 3-4-6-3)
    and a decoder that upsamples back with skip connections, predicting a residual."""

    LAYERS = (3, 4, 6, 3)

    def __init__(self, width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(2, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU())
        encoders, channels, skips = [], width, []
        for index, count in enumerate(self.LAYERS):
            stride = 1 if index == 0 else 2
            blocks = [Bottleneck(channels, width * 2**index, stride)]
            channels = 4 * width * 2**index
            blocks += [Bottleneck(channels, width * 2**index) for _ in range(count - 1)]
            encoders.append(nn.Sequential(*blocks))
            skips.append(channels)
        self.encoders = nn.ModuleList(encoders)
        decoders = []
        for skip in reversed(skips[:-1]):
            decoders.append(nn.ModuleDict({
                "reduce": nn.Conv2d(channels, skip, 1),
                "fuse": nn.Sequential(nn.Conv2d(2 * skip, skip, 3, padding=1), nn.BatchNorm2d(skip), nn.ReLU()),
            }))
            channels = skip
        self.decoders = nn.ModuleList(decoders)
        self.head = nn.Conv2d(channels + width, 2, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, (height, width) = pad_to_multiple(x, 8)
        stem = self.stem(padded)
        features, out = [], stem
        for encoder in self.encoders:
            out = encoder(out)
            features.append(out)
        for decoder, skip in zip(self.decoders, reversed(features[:-1])):
            out = F.interpolate(decoder["reduce"](out), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            out = decoder["fuse"](torch.cat([out, skip], dim=1))
        return self.head(torch.cat([out, stem], dim=1))[..., :height, :width]


class GanDrnGenerator(nn.Module):
    """Residual generator with data consistency, optionally cascaded.

    Shapes
    ------
    forward(kspace ``(B, C, H, W)``, operator of the acquisition) -> ``(B, H, W)`` complex.
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig()):
        super().__init__()
        self.config = config
        if config.kind == "paper":
            self.stages = nn.ModuleList([PaperGenerator(config.width) for _ in range(config.stages)])
        else:
            self.stages = nn.ModuleList([CascadeStage(config.width, config.blocks) for _ in range(config.stages)])
        self.consistency = nn.ModuleList(
            [DataConsistency(weight=0.9 if config.learnable_dc else 1.0, learnable=config.learnable_dc) for _ in range(config.stages)]
        )

    def forward(self, kspace: torch.Tensor, operator: LinearOperator) -> torch.Tensor:
        reach = None if self.config.kind == "paper" else stage_reach(self.config.blocks)
        return run_cascade(kspace, operator, list(self.stages), list(self.consistency), reach=reach)


class ResNetCritic(nn.Module):
    """ResNet-style critic: strided residual stages, global average pooling, dense.

    Shapes
    ------
    forward(magnitude-and-phase channels ``(B, 2, H, W)``) -> ``(B,)``; any H x W.
    """

    def __init__(self, width: int = 32, stages: int = 4):
        super().__init__()
        # The first convolution is strided: the critic judges texture at half
        # resolution, which keeps its gradient penalty affordable on a CPU.
        layers: list[nn.Module] = [nn.Conv2d(2, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        channels = width
        for index in range(stages):
            out = width * 2 ** min(index + 1, 3)
            layers += [
                nn.Conv2d(channels, out, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                CriticBlock(out),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        self.dense = nn.Linear(channels, 1)

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None, features: bool = False):
        """Scores ``(B,)``; with ``features=True`` also the list of the stages' feature
        maps (for feature matching). ``condition`` is accepted and ignored: this critic
        is unconditional, but the shared trainer calls every critic the same way."""
        maps, out = [], x
        for layer in self.features:
            out = layer(out)
            if isinstance(layer, CriticBlock):
                maps.append(out)
        score = self.dense(out.mean(dim=(-2, -1))).squeeze(-1)
        return (score, maps) if features else score


register_model(GanSpec(
    name="gan-drn",
    description="GAN-DRN, residual cascade with data consistency, trained adversarially (shipped weights)",
    build_generator=config_builder(GanDrnGenerator, GeneratorConfig, PAPER),
    build_critic=lambda: ResNetCritic(width=16, stages=4),
    # The adversarial term is kept small: on 65 training slices it mainly
    # sharpens texture; NMSE and the k-space loss carry the fidelity.
    loss_weights=LossWeights(adversarial=1e-3, freq=1.0, nmse=1.0),
    # Gradient penalty (WGAN-GP) is the default: weight clipping, as published,
    # limits the critic's capacity and was less stable in our short runs.
    lipschitz="gp",
))
