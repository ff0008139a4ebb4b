"""What the shared trainer knows of a GAN: its spec names its generator, its critic
and its loss weights. The trainer itself (``recon.training.trainer``) is model-agnostic; each
model's module registers its spec with :func:`recon.models.learned.register_model`, which
also registers its reconstructor, so adding a model is one new file (plus weights)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field

from torch import nn


@dataclass(frozen=True)
class LossWeights:
    """``L_G = adversarial * L_adv + freq * L_freq + nmse * L_nmse + ssim * (1 - SSIM)
    + l1 * L_l1 + feature_matching * L_fm + perceptual * L_perc`` (see ``recon.training.losses``;
    ``L_perc`` is on our MRI feature network, :mod:`recon.training.features`, not VGG)."""

    adversarial: float = 1e-3
    freq: float = 1.0
    nmse: float = 1.0
    ssim: float = 0.0
    l1: float = 0.0
    feature_matching: float = 0.0
    perceptual: float = 0.0


@dataclass(frozen=True)
class GanSpec:
    """What makes one GAN: builders for its generator and critic, and its loss weights."""

    name: str
    description: str
    build_generator: Callable[[dict], nn.Module]
    build_critic: Callable[[], nn.Module]
    loss_weights: LossWeights = field(default_factory=LossWeights)
    lipschitz: str = "gp"
    adversarial: str = "wasserstein"
    lr_g: float = 1e-3
    lr_d: float = 1e-4
    on_step: Callable[[int, nn.Module], None] | None = None
    """A hook called with (step, generator) before each training step, e.g. a stage
    schedule for a progressive model."""
    paired_critic: bool = False
    """The critic judges (input, image) pairs: its condition is the normalised
    zero-filled input ``A^H y`` as 2 channels instead of the mask's description."""
    trained_masks: str = "undersampled"
    """``undersampled`` (any mask family), ``lowres`` (in-plane super-resolution: central
    k-space blocks only) or ``slices`` (through-plane super-resolution: thick slices,
    trained on :class:`recon.training.slice_data.SliceAverageDataset`)."""


SPECS: dict[str, GanSpec] = {}
"""Every trainable model, filled by :func:`recon.models.learned.register_model` when a
model's module is imported (a built-in one when :func:`get_spec` first asks for it)."""

MODEL_MODULES: dict[str, str] = {
    "gan-drn": "recon.models.gan_drn",
    "csr-gan": "recon.models.csr_gan",
    "esrgan": "recon.models.esrgan",
    "med-gan": "recon.models.med_gan",
    "mpp-gan": "recon.models.mpp_gan",
    "soup-gan": "recon.models.soup_gan",
    "soup-gan-z": "recon.models.through_plane",
}
"""The module of every built-in trainable model, imported on first use (no package
scanning)."""


def get_spec(name: str) -> GanSpec:
    """The spec registered as ``name``; an unknown name lists the trainable models."""
    if name not in SPECS and name in MODEL_MODULES:
        importlib.import_module(MODEL_MODULES[name])
    if name not in SPECS:
        raise ValueError(f"unknown model {name!r}; trainable models: {', '.join(sorted(SPECS))}")
    return SPECS[name]


def trainable_models() -> list[str]:
    """Every registered model name, the built-in ones imported first."""
    for module in MODEL_MODULES.values():
        importlib.import_module(module)
    return sorted(SPECS)


def config_builder(generator_class: type, config_class: type, paper: object) -> Callable[[dict], nn.Module]:
    """The ``build_generator`` of a model whose generator takes a config dataclass:
    ``--generator kind=paper`` builds the published configuration ``paper``, other
    options fill the dataclass."""

    def build(options: dict) -> nn.Module:
        if options.get("kind") == "paper":
            return generator_class(paper)
        return generator_class(config_class(**options))

    return build
