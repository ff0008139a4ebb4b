"""CSR-GAN: a compressed-sensing reconstruction GAN conditioned on the acquisition.

One network serves every sampling ratio, mask family and number of coils. The
condition is read from the mask and the coil maps themselves
(:func:`recon.models.condition.mask_condition`), so ``reconstruct(kspace, mask, coil_maps)``
needs no extra metadata: the sampling ratio (as ``r`` and ``sqrt(r)``); the mask
family, as 1-D lines versus 2-D, how much denser the centre is sampled than the rest
(variable density) and how regular the lines are (equispaced); and the number of coils.

The condition is embedded by a small MLP and injected into every residual block by
FiLM (``h * (1 + gamma) + beta`` after the block's first convolution).

Generator: residual blocks with LeakyReLU that predict a residual added to their
input, followed by hard data consistency, in a cascade of ``stages`` (the CPU
default, the same half-resolution stages as GAN-DRN) or as the ``paper``
configuration: one deeper full-resolution network with 5x5 filters.

Discriminator: conditional by projection (Miyato & Koyama, 2018): spectral
normalisation on every layer, a self-attention block (SAGAN), LeakyReLU and global
average pooling, so it takes any H x W.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

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
from recon.models.condition import CONDITION_FEATURES, mask_condition, widen_condition_weights
from recon.models.learned import register_model
from recon.models.spec import GanSpec, LossWeights, config_builder


@dataclass(frozen=True)
class CsrGanConfig:
    """Generator architecture.

    Attributes
    ----------
    kind : str
        ``"cascade"`` (CPU default: half-resolution stages with data consistency
        between them) or ``"paper"`` (deeper, full resolution, larger filters).
    width, blocks, stages : int
        Channels, residual blocks per stage, and stages.
    kernel : int
        Kernel size of the residual blocks (odd).
    embedding : int
        Width of the condition embedding.
    """

    kind: str = "cascade"
    width: int = 32
    blocks: int = 2
    stages: int = 8
    kernel: int = 3
    embedding: int = 64

    def __post_init__(self) -> None:
        if self.kind not in ("cascade", "paper"):
            raise ValueError(f"generator kind must be 'cascade' or 'paper', got {self.kind!r}")
        if min(self.width, self.blocks, self.stages, self.embedding) < 1 or self.kernel % 2 == 0:
            raise ValueError("width, blocks, stages and embedding must be >= 1 and kernel odd")

    def to_dict(self) -> dict:
        return asdict(self)


PAPER = CsrGanConfig(kind="paper", width=64, blocks=8, stages=1, kernel=5)


class ConditionedStage(nn.Module):
    """Residual blocks under FiLM. ``full_resolution=False`` is GAN-DRN's half-resolution
    stage (same parameter names, so GAN-DRN weights can initialise it); the FiLM layer
    starts at zero, i.e. as the identity."""

    def __init__(self, width: int, blocks: int, kernel: int, embedding: int, full_resolution: bool):
        super().__init__()
        self.full_resolution = full_resolution
        if full_resolution:
            self.head = nn.Conv2d(2, width, kernel, padding=kernel // 2)
            self.tail = nn.Conv2d(width, 2, kernel, padding=kernel // 2)
        else:
            self.head = nn.Conv2d(2, width, 4, stride=2, padding=1)
            self.tail = nn.ConvTranspose2d(width, 2, 2, stride=2)
        self.body = nn.ModuleList([ResidualBlock(width, kernel) for _ in range(blocks)])
        self.film = nn.Linear(embedding, 2 * width * blocks)
        for layer in (self.tail, self.film):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        padded, (height, width) = pad_to_multiple(x, 1 if self.full_resolution else 2)
        hidden = leaky(self.head(padded), 0.1)
        film = self.film(embedding).view(x.shape[0], len(self.body), 2, -1)
        for index, block in enumerate(self.body):
            hidden = block(hidden, film[:, index, 0], film[:, index, 1])
        return self.tail(hidden)[..., :height, :width]


class CsrGanGenerator(nn.Module):
    """Conditioned residual generator with hard data consistency.

    Shapes
    ------
    forward(kspace ``(B, C, H, W)``, operator of the acquisition (its mask ``(H, W)`` or
    ``(B, 1, H, W)``), condition ``(B, 8)`` or None = read from the mask and coil maps)
    -> ``(B, H, W)`` complex.
    """

    def __init__(self, config: CsrGanConfig = CsrGanConfig()):
        super().__init__()
        self.config = config
        self.embed = nn.Sequential(
            nn.Linear(CONDITION_FEATURES, config.embedding), nn.LeakyReLU(0.2),
            nn.Linear(config.embedding, config.embedding), nn.LeakyReLU(0.2),
        )
        self.stages = nn.ModuleList([
            ConditionedStage(config.width, config.blocks, config.kernel, config.embedding, config.kind == "paper")
            for _ in range(config.stages)
        ])
        self.consistency = nn.ModuleList([DataConsistency() for _ in range(config.stages)])
        self._register_load_state_dict_pre_hook(self.upgrade_state)

    @staticmethod
    def upgrade_state(state: dict, prefix: str = "", *_) -> None:
        """Weights trained with the first, 4-feature condition load as before (the new
        features get zero weights); used by ``load_state_dict`` and ``--init``."""
        widen_condition_weights(state, prefix, "embed.0.weight")

    def forward(self, kspace: torch.Tensor, operator: LinearOperator, condition: torch.Tensor | None = None) -> torch.Tensor:
        if condition is None:
            # a trajectory is read through the grid cells it passes (the rasterised spokes trained on)
            mask = operator.mask if operator.mask is not None else operator.condition_mask()
            condition = mask_condition(mask, kspace.shape[0], operator.coil_maps)
        embedding = self.embed(condition.to(kspace.device, torch.float32))
        refinements = [lambda channels, stage=stage: stage(channels, embedding) for stage in self.stages]
        reach = stage_reach(self.config.blocks, self.config.kernel, half_resolution=self.config.kind != "paper")
        return run_cascade(kspace, operator, refinements, list(self.consistency), reach=reach)


class SelfAttention(nn.Module):
    """SAGAN self-attention: ``x + gamma * attention(x)``, with ``gamma`` starting at 0."""

    def __init__(self, channels: int):
        super().__init__()
        self.query = nn.Conv2d(channels, max(channels // 8, 1), 1)
        self.key = nn.Conv2d(channels, max(channels // 8, 1), 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        query = self.query(x).flatten(2).transpose(1, 2)
        key = self.key(x).flatten(2)
        attention = torch.softmax(query @ key, dim=-1)
        out = self.value(x).flatten(2) @ attention.transpose(1, 2)
        return x + self.gamma * out.view(batch, channels, height, width)


def _spectral_normalise(module: nn.Module) -> None:
    """Spectral normalisation on every convolution and dense layer of ``module``."""
    for child in list(module.modules()):
        if isinstance(child, (nn.Conv2d, nn.Linear)):
            spectral_norm(child)


class ProjectionCritic(nn.Module):
    """Conditional discriminator: ``D(x, c) = dense(h) + <embed(c), h>``, where ``h``
    is the globally pooled feature vector of a spectrally normalised residual CNN with
    self-attention at 1/8 of the input size.

    Shapes
    ------
    forward(channels ``(B, 2, H, W)``, condition ``(B, 8)`` or None) -> ``(B,)``;
    with ``features=True`` also the feature maps of each stage.
    """

    def __init__(self, width: int = 16, stages: int = 4, attention_stage: int = 1):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(2, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        channels = width
        for index in range(stages):
            out = width * 2 ** min(index + 1, 3)
            layers += [nn.Conv2d(channels, out, 3, stride=2, padding=1), nn.LeakyReLU(0.2), CriticBlock(out)]
            if index == attention_stage:
                layers.append(SelfAttention(out))
            channels = out
        self.layers = nn.Sequential(*layers)
        self.dense = nn.Linear(channels, 1)
        self.project = nn.Linear(CONDITION_FEATURES, channels, bias=False)
        _spectral_normalise(self)
        self._register_load_state_dict_pre_hook(
            lambda state, prefix, *_: widen_condition_weights(state, prefix, "project.parametrizations.weight.original"))

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None, features: bool = False):
        maps, out = [], x
        for layer in self.layers:
            out = layer(out)
            if isinstance(layer, (CriticBlock, SelfAttention)):
                maps.append(out)
        pooled = out.mean(dim=(-2, -1))
        score = self.dense(pooled).squeeze(-1)
        if condition is not None:
            score = score + (self.project(condition.to(pooled.dtype)) * pooled).sum(dim=1)
        return (score, maps) if features else score


register_model(GanSpec(
    name="csr-gan",
    description="CSR-GAN, one residual cascade conditioned on the acquisition (FiLM), for any ratio (shipped weights)",
    build_generator=config_builder(CsrGanGenerator, CsrGanConfig, PAPER),
    build_critic=lambda: ProjectionCritic(width=16, stages=4),
    # Reconstruction (L1 + NMSE), GAN-DRN's k-space term, and the perceptual pair
    # that needs no downloaded network: SSIM and feature matching on the
    # discriminator. The adversarial and feature-matching terms are small because
    # the pixel losses are ~1e-2 at convergence.
    loss_weights=LossWeights(adversarial=1e-3, freq=1.0, nmse=1.0, ssim=1.0, l1=1.0, feature_matching=1e-2),
    # Spectral normalisation is built into the discriminator: no gradient penalty.
    lipschitz="spectral",
    adversarial="hinge",
    # The published learning rates.
    lr_g=1e-4,
    lr_d=2e-4,
))
