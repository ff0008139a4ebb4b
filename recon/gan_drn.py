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

from physics.complex import from_channels, peak, to_channels
from physics.consistency import DataConsistency, exact_consistency
from physics.operators import LinearOperator
from recon.gans import GanSpec, LossWeights, config_builder
from recon.learned import register_model


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


def _pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    height, width = x.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    if pad_h or pad_w:
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate" if min(height, width) > 1 else "constant")
    return x, (height, width)


def run_cascade(kspace, operator, refinements, consistency, exact: bool | None = None) -> torch.Tensor:
    """``x <- DC(x + refine(x))`` for each refinement, from ``x = A^H y``, on images
    normalised to a peak of 1; multi-coil outputs end with the exact least-squares
    data-consistency step (:func:`physics.consistency.exact_consistency`).

    ``refinements`` map ``(B, 2, H, W)`` channels to a residual of the same shape;
    ``consistency`` holds one data-consistency module per refinement. ``exact`` (default:
    when no gradient is being recorded, i.e. at inference and validation) adds the exact
    multi-coil step; training steps keep the per-coil projection of every stage, so no
    gradient flows through the conjugate-gradient iterations.

    Shapes
    ------
    kspace ``(B, C, H, W)``; operator single- or multi-coil with a mask ``(H, W)`` or
    ``(B, 1, H, W)`` -> ``(B, H, W)`` complex.
    """
    image = operator.adjoint(kspace)
    # Normalise each image so the network sees a fixed intensity range.
    scale = peak(image)
    x = image / scale
    measured = kspace / scale[:, None]
    for refine, project in zip(refinements, consistency):
        channels = to_channels(x)
        x = from_channels(channels + refine(channels))
        x = project(x, measured, operator)
    if operator.coil_maps is not None and (not torch.is_grad_enabled() if exact is None else exact):
        x = exact_consistency(x, measured, operator)
    return x * scale


class ResidualBlock(nn.Module):
    """conv-LeakyReLU-conv with an identity skip."""

    def __init__(self, channels: int, kernel: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)
        self.conv2 = nn.Conv2d(channels, channels, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor, gamma: torch.Tensor | None = None, beta: torch.Tensor | None = None) -> torch.Tensor:
        """``gamma`` / ``beta`` ``(B, channels)``: optional FiLM of the first convolution's
        output, ``h * (1 + gamma) + beta`` (used by CSR-GAN's conditioning)."""
        hidden = self.conv1(x)
        if gamma is not None:
            hidden = hidden * (1 + gamma[..., None, None]) + beta[..., None, None]
        return x + self.conv2(F.leaky_relu(hidden, 0.1))


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
        padded, (height, width) = _pad_to_multiple(x, 2)
        residual = self.tail(self.body(F.leaky_relu(self.head(padded), 0.1)))
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
        padded, (height, width) = _pad_to_multiple(x, 8)
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
        return run_cascade(kspace, operator, list(self.stages), list(self.consistency))


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
                _CriticBlock(out),
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
            if isinstance(layer, _CriticBlock):
                maps.append(out)
        score = self.dense(out.mean(dim=(-2, -1))).squeeze(-1)
        return (score, maps) if features else score


class _CriticBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.leaky_relu(self.conv1(x), 0.2))


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
