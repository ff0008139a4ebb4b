"""Losses for the learned reconstructors, as functions and as named loss objects.

The trainer sums named :class:`GeneratorTerm` objects with weights (``--loss
NAME=WEIGHT``) and logs every term by name; :class:`AdversarialLoss` pairs the critic's
and the generator's sides of one game (Wasserstein, hinge or relativistic average).

``L_G = adversarial_weight * L_adv + freq_weight * L_freq + nmse_weight * L_nmse
+ ssim_weight * (1 - SSIM) + l1_weight * L_l1 + feature_matching_weight * L_fm
+ perceptual_weight * L_perc`` (``L_perc`` on our MRI feature network, not VGG)
(terms whose weight is 0 are skipped; each model's weights are in ``recon.models.spec``)
(the form ``L_adv + a L_freq + b L_nmse`` of GAN-DRN, scaled by ``1 / adversarial_weight``;
Adam is invariant to that overall scale).

Note that with the orthonormal FFT, Parseval makes ``L_freq`` on complex images equal
to the image-domain relative L2 error; the two terms differ here because ``L_nmse``
is computed on magnitudes (as the metrics are) and ``L_freq`` on complex data.
"""

from __future__ import annotations

import torch

from physics.complex import peak
from physics.fft import fft2c


def frequency_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||F(x_hat) - F(x)||_2 / ||F(x)||_2``, averaged over the batch.

    Shapes
    ------
    prediction, target: ``(B, H, W)`` complex.
    """
    error = (fft2c(prediction) - fft2c(target)).abs().pow(2).flatten(1).sum(dim=1).sqrt()
    norm = fft2c(target).abs().pow(2).flatten(1).sum(dim=1).sqrt().clamp_min(1e-12)
    return (error / norm).mean()


def nmse_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||x_hat - x||^2 / ||x||^2`` of the magnitude images, averaged over the batch.

    Shapes
    ------
    prediction, target: ``(B, H, W)`` (complex or real).
    """
    return _image_nmse(prediction, target).mean()


def _image_nmse(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image ``||x_hat - x||^2 / ||x||^2`` of the magnitude images, ``(B,)``."""
    pred, true = prediction.abs(), target.abs()
    return (pred - true).pow(2).flatten(1).sum(dim=1) / true.pow(2).flatten(1).sum(dim=1).clamp_min(1e-12)


def log_nmse_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``log10(||x_hat - x||^2 / ||x||^2)`` per image, averaged over the batch: minus a
    tenth of the PSNR gap, so an image reconstructed at 55 dB pulls as hard toward 56 dB
    as one at 30 dB toward 31. NMSE alone stops counting once the error is small, which
    left the models with an error floor on easy (high-ratio, smooth) acquisitions.

    Shapes
    ------
    prediction, target: ``(B, H, W)`` (complex or real).
    """
    return torch.log10(_image_nmse(prediction, target) + 1e-10).mean()


def l1_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||x_hat - x||_1 / ||x||_1`` of the magnitude images, averaged over the batch.

    Shapes
    ------
    prediction, target: ``(B, H, W)`` (complex or real).
    """
    pred, true = prediction.abs(), target.abs()
    return ((pred - true).abs().flatten(1).sum(dim=1) / true.flatten(1).sum(dim=1).clamp_min(1e-12)).mean()


def ssim_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``1 - SSIM`` of the magnitudes (7x7 window, data range = each target's maximum).

    Shapes
    ------
    prediction, target: ``(B, H, W)`` (complex or real).
    """
    from recon.metrics import ssim_map

    pred, true = prediction.abs(), target.abs()
    scale = peak(true)
    return 1 - ssim_map(pred / scale, true / scale, 1.0).mean()


def wasserstein_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The critic maximises ``E[D(real)] - E[D(fake)]``; this returns its negative."""
    return fake_scores.mean() - real_scores.mean()


def wasserstein_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The generator maximises ``E[D(fake)]``."""
    return -fake_scores.mean()


def hinge_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator: ``E[relu(1 - D(real))] + E[relu(1 + D(fake))]``.
    (Its generator loss is ``-E[D(fake)]``, as for the Wasserstein loss.)"""
    return torch.relu(1 - real_scores).mean() + torch.relu(1 + fake_scores).mean()


def feature_matching_loss(fake_features: list[torch.Tensor], real_features: list[torch.Tensor]) -> torch.Tensor:
    """Perceptual term without a downloaded network: the mean L1 distance between the
    discriminator's feature maps of the output and of the target, per layer, averaged
    over layers. The real features are treated as constants."""
    terms = [(fake - real.detach()).abs().mean() for fake, real in zip(fake_features, real_features)]
    return torch.stack(terms).mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP: ``E[(||grad D(x_interp)||_2 - 1)^2]`` on random interpolates.

    Shapes
    ------
    real, fake: ``(B, 2, H, W)`` real.
    """
    alpha = torch.rand((real.shape[0], 1, 1, 1), generator=generator).to(real.device, real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    scores = critic(mixed)
    (grads,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)
    return (grads.flatten(1).norm(dim=1) - 1).pow(2).mean()


# --- Named loss objects: what the shared trainer sums, each term logged by its name ---

class GeneratorTerm:
    """A named term of the generator's loss. ``needs_critic`` terms read the critic's
    scores or features from the context; the others compare output and target."""

    name = ""
    needs_critic = False

    def __call__(self, context: dict) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class PixelTerm(GeneratorTerm):
    """``fn(output, target)``: a loss on the reconstruction itself."""

    def __init__(self, name: str, fn):
        self.name, self.fn = name, fn

    def __call__(self, context: dict) -> torch.Tensor:
        return self.fn(context["output"], context["target"])


class AdversarialLoss(GeneratorTerm):
    """One adversarial game, both sides: :meth:`critic_loss` for the critic's step and
    the generator's side when called. ``wasserstein`` (WGAN: the critic maximises
    ``E[D(real)] - E[D(fake)]``), ``hinge`` (SAGAN/BigGAN), or ``relativistic`` (the
    relativistic average loss of ESRGAN: each side judges whether real data is more
    realistic than the average fake, and the reverse)."""

    name = "adv"
    needs_critic = True
    KINDS = ("wasserstein", "hinge", "relativistic")

    def __init__(self, kind: str = "wasserstein"):
        if kind not in self.KINDS:
            raise ValueError(f"adversarial loss must be one of {', '.join(self.KINDS)}, got {kind!r}")
        self.kind = kind

    def critic_loss(self, real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
        if self.kind == "hinge":
            return hinge_critic_loss(real_scores, fake_scores)
        if self.kind == "relativistic":
            return _relativistic(real_scores, fake_scores)
        return wasserstein_critic_loss(real_scores, fake_scores)

    def __call__(self, context: dict) -> torch.Tensor:
        if self.kind == "relativistic":
            return _relativistic(context["fake_scores"], context["real_scores"].detach())
        return wasserstein_generator_loss(context["fake_scores"])  # -E[D(fake)], for hinge too


def _relativistic(better: torch.Tensor, worse: torch.Tensor) -> torch.Tensor:
    """Relativistic average loss: ``better`` should score above the mean of ``worse``
    and ``worse`` below the mean of ``better`` (binary cross-entropy on the logits)."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    return (bce(better - worse.mean(), torch.ones_like(better)) + bce(worse - better.mean(), torch.zeros_like(worse))) / 2


class FeatureMatching(GeneratorTerm):
    """:func:`feature_matching_loss` on the critic's feature maps of output and target."""

    name = "fm"
    needs_critic = True

    def __call__(self, context: dict) -> torch.Tensor:
        return feature_matching_loss(context["fake_maps"], context["real_maps"])


def perceptual_term(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """:func:`recon.training.features.perceptual_loss` on the shipped MRI feature network (ours,
    not VGG), imported when first used."""
    from recon.training.features import perceptual_loss

    return perceptual_loss(prediction, target)


def generator_terms(adversarial: str = "wasserstein") -> dict[str, GeneratorTerm]:
    """Every term the trainer knows, by name (``--loss NAME=WEIGHT``)."""
    return {
        "perceptual": PixelTerm("perceptual", perceptual_term),
        "freq": PixelTerm("freq", frequency_loss),
        "nmse": PixelTerm("nmse", nmse_loss),
        "lognmse": PixelTerm("lognmse", log_nmse_loss),
        "ssim": PixelTerm("ssim", ssim_loss),
        "l1": PixelTerm("l1", l1_loss),
        "adv": AdversarialLoss(adversarial),
        "fm": FeatureMatching(),
    }
