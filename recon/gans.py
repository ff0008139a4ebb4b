"""The GAN models the shared trainer knows: each names its generator, its critic and
its loss weights. The trainer itself (``recon.training``) is model-agnostic."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn

from recon import csr_gan
from recon.gan_drn import PAPER, GanDrnGenerator, GeneratorConfig, ResNetCritic


@dataclass(frozen=True)
class LossWeights:
    """``L_G = adversarial * L_adv + freq * L_freq + nmse * L_nmse + ssim * (1 - SSIM)
    + l1 * L_l1 + feature_matching * L_fm`` (see ``recon.losses``)."""

    adversarial: float = 1e-3
    freq: float = 1.0
    nmse: float = 1.0
    ssim: float = 0.0
    l1: float = 0.0
    feature_matching: float = 0.0


@dataclass(frozen=True)
class GanSpec:
    """What makes one GAN: builders for its generator and critic, and its loss weights."""

    name: str
    build_generator: Callable[[dict], nn.Module]
    build_critic: Callable[[], nn.Module]
    loss_weights: LossWeights = field(default_factory=LossWeights)
    lipschitz: str = "gp"
    adversarial: str = "wasserstein"
    lr_g: float = 1e-3
    lr_d: float = 1e-4


def _gan_drn_generator(options: dict) -> nn.Module:
    if options.get("kind") == "paper":
        return GanDrnGenerator(PAPER)
    return GanDrnGenerator(GeneratorConfig(**options))


def _csr_gan_generator(options: dict) -> nn.Module:
    if options.get("kind") == "paper":
        return csr_gan.CsrGanGenerator(csr_gan.PAPER)
    return csr_gan.CsrGanGenerator(csr_gan.CsrGanConfig(**options))


SPECS: dict[str, GanSpec] = {
    "gan-drn": GanSpec(
        name="gan-drn",
        build_generator=_gan_drn_generator,
        build_critic=lambda: ResNetCritic(width=16, stages=4),
        # The adversarial term is kept small: on 65 training slices it mainly
        # sharpens texture; NMSE and the k-space loss carry the fidelity.
        loss_weights=LossWeights(adversarial=1e-3, freq=1.0, nmse=1.0),
        # Gradient penalty (WGAN-GP) is the default: weight clipping, as published,
        # limits the critic's capacity and was less stable in our short runs.
        lipschitz="gp",
    ),
    "csr-gan": GanSpec(
        name="csr-gan",
        build_generator=_csr_gan_generator,
        build_critic=lambda: csr_gan.ProjectionCritic(width=16, stages=4),
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
    ),
}


def get_spec(name: str) -> GanSpec:
    if name not in SPECS:
        raise ValueError(f"unknown model {name!r}; trainable models: {', '.join(sorted(SPECS))}")
    return SPECS[name]
