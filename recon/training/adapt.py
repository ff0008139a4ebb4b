"""Scan-specific adaptation (``--adapt``): fine-tune a shipped learned model on one scan's
own measured k-space, for scans unlike anything in the training corpus.

Self-supervised, as SSDU (Yaman et al., 2020) does it, with early stopping on k-space
the network never sees:

1. One hold-out fold of the measured lines or points outside the calibration block
   (:func:`recon.trust.holdout.holdout_folds`, the split the error estimate uses) is set
   aside as the *validation* set V. The rest, T, is all adaptation may look at.
2. Each step splits T again at random into an input set Θ and a loss set Λ (two of
   five folds). The network reconstructs from Θ alone; the loss is the normalised
   L1 + L2 distance between its k-space and the measured k-space on Λ, points the
   network did not see.
3. Every few steps the network reconstructs from T and is scored on V (the residual
   less the noise's expected energy there: on a noisy scan the raw residual is mostly
   noise no reconstruction can predict); the weights with the lowest V residual are kept, and adaptation stops when V stops improving,
   or at the time limit. Unless V estimates a gain of at least :data:`MIN_GAIN_DB`, the
   shipped weights are kept.
4. The volume is then reconstructed from all measured k-space with the adapted weights
   (the model's own full data consistency).

The weights are shared across the volume's slices. :class:`Adaptation` records the
V residual before and after, the gain it estimates (dB), the steps and seconds.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from physics.coils import compress_coils
from physics.consistency import noise_std
from physics.operators import sampling_operator
from recon.models.learned import VIRTUAL_COILS, load_generator
from recon.registry import Reconstructor, get
from recon.trust.holdout import holdout_folds, holdout_units

ADAPT_MAX_STEPS = 400
"""Default step limit of one adaptation (tests bound it by steps, never by seconds)."""
ADAPT_SECONDS = 150.0
"""Default time limit of one adaptation (a 16-slice 256x256 volume on 2 cores fits in
3 minutes with the final reconstruction)."""

LOSS_FOLDS = 2
"""Of five folds of T, how many form the loss set Λ at each step."""

MIN_GAIN_DB = 0.3
"""Adapted weights are kept only when the validation set V estimates at least this gain;
otherwise the shipped weights are (on one pelvis slice the adapted weights lost 0.40 dB
while V estimated +0.11 dB: a small V is a noisy judge)."""


NOISE_SHARE = 0.9
"""The share of the estimated noise energy taken out of the validation residual: the
noise estimate reads a few per cent high (3 % in sigma at 20 dB on 8 coils), and taking
out more noise than there is would inflate the gain adaptation estimates."""


@dataclass
class Adaptation:
    """The outcome of :func:`adapt_model`.

    Attributes
    ----------
    model, weights : str
        The model and the weights it started from.
    steps, seconds : int, float
        Gradient steps taken and wall time.
    validation_before, validation_after : float
        Relative k-space residual ``||A x - y||^2 / ||y||^2`` on the validation set V
        (never seen by the network), before adaptation and with the kept weights, with
        the noise's expected energy on V taken out of both norms (:func:`_residual`).
    best_step : int
        The step whose weights were kept (0: none beat the shipped weights).
    history : list of (step, residual)
    """

    model: str
    weights: str
    steps: int = 0
    seconds: float = 0.0
    validation_before: float = math.nan
    validation_after: float = math.nan
    best_step: int = 0
    history: list = field(default_factory=list)

    @property
    def gain_db(self) -> float:
        """The gain the validation set estimates: ``10 log10(before / after)``."""
        return float(10 * math.log10(max(self.validation_before, 1e-30) / max(self.validation_after, 1e-30)))

    def to_dict(self) -> dict:
        return {"adapted": self.best_step > 0, "adapt_model": self.model, "adapt_weights": self.weights, "adapt_steps": self.steps,
                "adapt_seconds": self.seconds, "adapt_best_step": self.best_step,
                "adapt_validation_before": self.validation_before, "adapt_validation_after": self.validation_after,
                "adapt_gain_db": self.gain_db}


class AdaptedReconstructor(Reconstructor):
    """A learned model with adapted weights, behind the usual ``reconstruct`` interface."""

    family = "learned"

    def __init__(self, generator: torch.nn.Module, adaptation: Adaptation):
        self.generator = generator.eval()
        self.adaptation = adaptation
        self.name = adaptation.model
        self.description = f"{adaptation.model} adapted to this scan"

    def reconstruct(self, kspace, mask, coil_maps=None):
        if coil_maps is not None:
            kspace, coil_maps = compress_coils(kspace, coil_maps, VIRTUAL_COILS)
        with torch.no_grad():
            return self.generator(kspace, sampling_operator(mask, coil_maps))


def _residual(generator, kspace: torch.Tensor, seen: torch.Tensor, held: torch.Tensor, coil_maps,
              noise_energy: float = 0.0) -> float:
    """Relative residual on ``held`` of the reconstruction from ``seen``, over all slices,
    with the measurement noise's expected energy there (``noise_energy``) taken out of
    both the error and the measured energy: no reconstruction predicts the noise on
    points it did not see, so without this a noisy scan's residual sits on the noise
    floor and hides what adaptation gains or loses on the signal."""
    full = sampling_operator(torch.ones_like(seen), coil_maps)
    with torch.no_grad():
        image = generator(kspace * seen, sampling_operator(seen, coil_maps))
        error = float(((full(image) - kspace) * held).abs().pow(2).sum())
        measured = float((kspace * held).abs().pow(2).sum())
    if noise_energy <= 0:  # single-coil data, or no noise estimate: the plain residual
        return error / max(measured, 1e-30)
    floor = 1e-3 * measured  # the signal error is never taken below 0.1 % of the data
    return max(error - noise_energy, floor) / max(measured - noise_energy, floor, 1e-30)


def held_noise_energy(kspace: torch.Tensor, mask: torch.Tensor, held: torch.Tensor) -> float:
    """The expected noise energy of ``kspace`` on the ``held`` points: each slice's
    noise variance per coil sample (:func:`physics.consistency.noise_std`, 0
    for single-coil data) times the coil samples held there, times :data:`NOISE_SHARE`.

    Shapes
    ------
    kspace ``(N, C, H, W)``; mask, held ``(H, W)`` bool.
    """
    sigma = noise_std(kspace, mask)
    count = float((held & mask).sum()) * kspace.shape[1]
    return NOISE_SHARE * float(sigma.double().pow(2).sum()) * count


def _loss(generator, kspace: torch.Tensor, seen: torch.Tensor, target: torch.Tensor, coil_maps) -> torch.Tensor:
    """Normalised L1 + L2 distance, on ``target``, between the network's k-space (input:
    ``seen`` only) and the measurement."""
    full = sampling_operator(torch.ones_like(seen), coil_maps)
    image = generator(kspace * seen, sampling_operator(seen, coil_maps))
    difference = (full(image) - kspace) * target
    measured = kspace * target
    l2 = difference.abs().pow(2).sum() / measured.abs().pow(2).sum().clamp_min(1e-30)
    l1 = difference.abs().sum() / measured.abs().sum().clamp_min(1e-30)
    return l2.sqrt() + l1


def adapt_model(model: str, kspace: torch.Tensor, mask: torch.Tensor, coil_maps: torch.Tensor | None = None,
                weights: str | None = None, time_limit: float | None = None, max_steps: int | None = None,
                batch_size: int = 2, lr: float = 1e-4, check_every: int = 10, patience: int = 4,
                validation_slices: int = 4, seed: int = 0) -> AdaptedReconstructor:
    """Fine-tune ``model``'s weights on the scan ``kspace`` (see the module doc).

    Parameters
    ----------
    model : str
        A registered learned model (``gan-drn``, ``csr-gan``).
    weights : str, optional
        Start from these weights instead of the shipped ones the mask's ratio selects.
    time_limit : float, optional
        Wall seconds of adaptation, validations included (default :data:`ADAPT_SECONDS`).

    Shapes
    ------
    kspace ``(N, C, H, W)`` complex; mask ``(H, W)`` bool; coil_maps ``(N, C, H, W)`` or None.
    """
    started = time.perf_counter()
    time_limit = ADAPT_SECONDS if time_limit is None else time_limit
    max_steps = ADAPT_MAX_STEPS if max_steps is None else max_steps
    mask = torch.as_tensor(mask, dtype=torch.bool)
    mask_np = mask.cpu().numpy()
    if holdout_units(mask_np) < 5:
        raise ValueError("--adapt needs at least 5 measured lines or points outside the calibration block to hold "
                         f"some out; this mask has {holdout_units(mask_np)}")
    reconstructor = get(model) if weights is None else get(model, weights=weights)
    path = reconstructor._choose(float(mask_np.mean()))
    generator = copy.deepcopy(load_generator(str(path))).to(memory_format=torch.contiguous_format)
    kspace = kspace.to(torch.complex64)
    if coil_maps is not None:
        kspace, coil_maps = compress_coils(kspace, coil_maps, VIRTUAL_COILS)
    kspace = kspace * mask
    rng = np.random.default_rng(seed)
    held = torch.from_numpy(holdout_folds(mask_np, 5, seed=int(rng.integers(2**31)))[0])
    train = mask & ~held
    picks = np.unique(np.linspace(0, kspace.shape[0] - 1, min(validation_slices, kspace.shape[0])).round().astype(int))
    val_kspace = kspace[picks]
    val_maps = None if coil_maps is None else coil_maps[picks]
    adaptation = Adaptation(model, str(path.name))
    generator.eval()
    noise = held_noise_energy(val_kspace, mask, held)
    best = _residual(generator, val_kspace, train, held, val_maps, noise)
    adaptation.validation_before = adaptation.validation_after = best
    adaptation.history.append((0, best))
    best_state = initial_state = copy.deepcopy(generator.state_dict())
    optimiser = torch.optim.Adam(generator.parameters(), lr=lr)
    stale, step = 0, 0
    train_np = train.numpy()
    while step < max_steps and time.perf_counter() - started < time_limit and stale < patience:
        generator.train()
        folds = holdout_folds(train_np, 5, seed=int(rng.integers(2**31)))
        target = torch.from_numpy(np.logical_or.reduce(folds[:LOSS_FOLDS]))
        seen = train & ~target
        chosen = torch.from_numpy(rng.choice(kspace.shape[0], size=min(batch_size, kspace.shape[0]), replace=False))
        maps = None if coil_maps is None else coil_maps[chosen]
        loss = _loss(generator, kspace[chosen], seen, target, maps)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        step += 1
        if step % check_every == 0:
            generator.eval()
            residual = _residual(generator, val_kspace, train, held, val_maps, noise)
            adaptation.history.append((step, residual))
            if residual < best:
                best, stale, adaptation.best_step = residual, 0, step
                best_state = copy.deepcopy(generator.state_dict())
            else:
                stale += 1
    adaptation.steps, adaptation.validation_after = step, best
    if adaptation.gain_db < MIN_GAIN_DB:  # not estimably better: keep what shipped
        best_state, adaptation.best_step = initial_state, 0
        adaptation.validation_after = adaptation.validation_before
    generator.load_state_dict(best_state)
    adaptation.seconds = time.perf_counter() - started
    return AdaptedReconstructor(generator.to(memory_format=torch.channels_last), adaptation)
