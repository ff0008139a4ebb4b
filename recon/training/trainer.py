"""The shared GAN trainer: every learned reconstructor trains through :func:`train`.

It draws a fresh random mask for each training sample and uses fixed masks for
validation, computes validation PSNR/SSIM/NMSE every ``val_every`` steps, keeps the
best checkpoint by validation NMSE (geometric mean over slices), stops early when
validation stops improving, clips gradients, logs to CSV, and can resume exactly
(models, optimisers, step and random-generator states are in the checkpoint). Under
``torchrun`` it runs with DistributedDataParallel (gloo on CPU, nccl on GPU): each rank
draws its own samples through a DistributedSampler, and rank 0 alone logs and writes
checkpoints.

The loop runs in steps: a critic step, a generator step (the weighted sum of named loss
terms, each logged by name), validation, checkpoint, and a per-step hook a model may
use. The configuration is :mod:`recon.training.config`; batch helpers and validation
are :mod:`recon.training.batches`.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from recon.device import resolve_device
from recon.models.condition import mask_condition
from recon.models.learned import VIRTUAL_COILS
from recon.models.spec import get_spec
from recon.training.augment import AcquisitionDataset, SliceSet, collate_acquisitions, mix_images
from recon.training.batches import acquisition_operator, critic_input, rng_state, unwrap, validate
from recon.training.checkpoints import generator_weights, load_matching, truncate_log
from recon.training.config import TrainConfig, config_dict, lr_factor
from recon.training.losses import generator_terms, gradient_penalty
from recon.training.slice_data import SliceAverageDataset
from recon.training.trajectory_data import TrajectoryDataset, trajectory_families
from recon.weights.loading import UnsafeWeightsError, load_state, save_state


def subsample(images: SliceSet, count: int | None) -> SliceSet:
    """``count`` evenly spread slices of ``images`` (all when None or more)."""
    if count is None or count >= len(images):
        return images
    picks = np.unique(np.linspace(0, len(images) - 1, count).round().astype(int))
    return SliceSet(images.images[picks], coil_sets=images.coil_sets)


def validation_coils(coils: tuple[int, ...]) -> tuple[int, ...]:
    """Validation alternates single-coil items with the largest trained coil count (at
    most the virtual coils), so multi-coil training is validated without repeating
    every drawn count."""
    largest = min(max(coils), VIRTUAL_COILS)
    return (1,) if largest == 1 else (1, largest) if 1 in coils else (largest,)


class Trainer:
    """One training run, in steps: :meth:`critic_step`, :meth:`generator_step`,
    :meth:`validate_and_keep` and :meth:`checkpoint`, driven by :meth:`run`."""

    def __init__(self, config: TrainConfig, train_set: SliceSet, val_set: SliceSet, progress: bool | None):
        self.config, self.progress = config, progress
        self._setup_process()
        self.spec = get_spec(config.model)
        self.weights = loss_weights(config, self.spec)
        self.terms = {name: term for name, term in generator_terms(self.spec.adversarial).items() if self.weights.get(name, 0) > 0}
        self.terms.setdefault("nmse", generator_terms()["nmse"])  # always logged
        self.adversarial = generator_terms(self.spec.adversarial)["adv"]
        self.uses_critic = any(term.needs_critic for term in self.terms.values())
        self.lipschitz = config.lipschitz or self.spec.lipschitz
        self.lr_g = self.spec.lr_g if config.lr_g is None else config.lr_g
        self.lr_d = self.spec.lr_d if config.lr_d is None else config.lr_d
        torch.manual_seed(config.seed)
        self.generator = self.spec.build_generator(dict(config.generator)).to(self.device)
        self.critic = self.spec.build_critic().to(self.device)
        self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.lr_g, betas=(0.9, 0.999))
        self.opt_d = torch.optim.Adam(self.critic.parameters(), lr=self.lr_d, betas=(0.5, 0.9))
        self.sampling = torch.Generator().manual_seed(config.seed + 7919 * self.rank)
        self.out = Path(config.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.step, self.epoch, self.used_in_epoch, self.best, self.history, self.stale = 0, 0, 0, math.inf, [], 0
        self.elapsed = 0.0  # seconds spent by earlier runs of a resumed training
        self._restore_or_initialise()
        if self.distributed:
            self.generator = DistributedDataParallel(self.generator)
            self.critic = DistributedDataParallel(self.critic)
        if config.mix:
            train_set = mix_images(train_set, config.mix, seed=config.seed)
        if self.spec.trained_masks == "slices":  # through-plane SR: thick slices, not k-space
            self.dataset = SliceAverageDataset(train_set, config.slice_factors, seed=config.seed)
            self.val_dataset = SliceAverageDataset(subsample(val_set, config.val_slices), config.slice_factors,
                                                   seed=config.seed + 1, train=False)
            return
        # trajectory families (radial, spiral): NUFFT k-space, one trajectory per item
        dataset = TrajectoryDataset if trajectory_families(config.mask_types) else AcquisitionDataset
        self.dataset = dataset(train_set, config.ratios, config.mask_types, seed=config.seed, coils=config.coils,
                               resample_probability=config.resample, resample_shrink=config.resample_shrink,
                               measured=config.measured, measured_snr=config.measured_snr)
        self.val_dataset = dataset(
            subsample(val_set, config.val_slices), config.val_ratios or config.ratios, tuple(dict.fromkeys(config.mask_types)),
            seed=config.seed + 1, train=False, coils=validation_coils(config.coils), measured=config.measured,
            measured_snr=config.measured_snr)

    def _setup_process(self) -> None:
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        self.device = resolve_device(self.config.device)
        self.rank, self.world = 0, 1
        if self.distributed:
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        if self.config.threads:
            torch.set_num_threads(self.config.threads)
        self.main_process = self.rank == 0

    def _restore_or_initialise(self) -> None:
        config, path = self.config, self.out / "checkpoint.pt"
        if not config.resume:
            if config.init:
                initialised = load_matching(self.generator, generator_weights(Path(config.init), self.device), config.init)
                if self.main_process:
                    (self.out / "init.json").write_text(json.dumps({"from": config.init, **initialised}, indent=1))
            if self.main_process and (self.out / "log.csv").exists():
                (self.out / "log.csv").unlink()
            return
        if not path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {path}")
        state = load_state(path, self.device, "checkpoint")
        missing = sorted({"generator", "critic", "opt_g", "opt_d", "step", "best", "history", "stale", "rng"} - set(state))
        if missing:
            raise UnsafeWeightsError(f"{path}: not a trainer checkpoint (missing {', '.join(missing)})")
        self.generator.load_state_dict(state["generator"])
        self.critic.load_state_dict(state["critic"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.step, self.best, self.history, self.stale = state["step"], state["best"], state["history"], state["stale"]
        torch.set_rng_state(state["rng"]["torch"])
        self.sampling.set_state(state["rng"]["generator"])
        self.epoch, self.used_in_epoch = state["rng"]["epoch"], state["rng"].get("used_in_epoch", 0)
        self.elapsed = float(state.get("seconds", 0.0))
        if self.main_process:
            truncate_log(self.out / "log.csv", self.step)

    def _batches(self):
        """Batches from the epoch the run stopped in, skipping those already used."""
        current, config = self.epoch, self.config
        skip = self.used_in_epoch
        while True:
            self.dataset.set_epoch(current)
            if self.distributed:
                sampler = DistributedSampler(self.dataset, num_replicas=self.world, rank=self.rank, seed=config.seed)
                sampler.set_epoch(current)
            else:
                sampler = RandomSampler(self.dataset, generator=torch.Generator().manual_seed(config.seed * 100_003 + current))
            loader = DataLoader(self.dataset, batch_size=config.batch_size, sampler=sampler,
                                collate_fn=getattr(self.dataset, "collate", collate_acquisitions),
                                drop_last=len(self.dataset) >= config.batch_size)
            for position, batch in enumerate(loader, start=1):
                if skip:
                    skip -= 1
                    continue
                yield current, position, batch
            current += 1

    def critic_step(self, kspace, operator, target, real, condition) -> torch.Tensor:
        """One update of the critic on a batch (its side of the adversarial loss, plus
        the gradient penalty or weight clipping)."""
        with torch.no_grad():
            fake = critic_input(self.generator(kspace, operator), target)
        loss_d = self.adversarial.critic_loss(self.critic(real, condition), self.critic(fake, condition))
        if self.lipschitz == "gp":
            judge = functools.partial(self.critic, condition=condition)
            loss_d = loss_d + self.config.gp_weight * gradient_penalty(judge, real, fake, self.sampling)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        torch.nn.utils.clip_grad_norm_(self.critic.parameters(), self.config.grad_clip * 10)
        self.opt_d.step()
        if self.lipschitz == "clip":
            with torch.no_grad():
                for parameter in self.critic.parameters():
                    parameter.clamp_(-self.config.clip_value, self.config.clip_value)
        return loss_d

    def generator_step(self, kspace, operator, target, real, condition) -> dict[str, torch.Tensor]:
        """One update of the generator: the weighted sum of its named loss terms."""
        output = self.generator(kspace, operator)
        context: dict[str, Any] = {"output": output, "target": target}
        if self.uses_critic:
            context["fake_scores"], context["fake_maps"] = self.critic(critic_input(output, target), condition, features=True)
            with torch.no_grad():
                context["real_scores"], context["real_maps"] = self.critic(real, condition, features=True)
        values = {name: term(context) for name, term in self.terms.items()}
        loss_g = sum(self.weights.get(name, 0.0) * value for name, value in values.items())
        self.opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        torch.nn.utils.clip_grad_norm_(self.generator.parameters(), self.config.grad_clip)
        self.opt_g.step()
        return {"g": loss_g, **values}

    def validate_and_keep(self) -> bool:
        """Validate; keep ``best.pt`` when the geometric-mean NMSE improved. Returns True
        when patience has run out."""
        scores = validate(unwrap(self.generator), self.val_dataset, self.device)
        scores["step"] = self.step
        self.history.append(scores)
        (self.out / "val.json").write_text(json.dumps(self.history, indent=1))
        self.bar.write(f"step {self.step}: val psnr {scores['psnr']:.2f} ssim {scores['ssim']:.4f} nmse {scores['nmse']:.5f}")
        if scores["log_nmse"] < self.best:
            self.best, self.stale = scores["log_nmse"], 0
            save_state(self.out / "best.pt", {"generator": unwrap(self.generator).state_dict(),
                                              "config": config_dict(self.config), "step": self.step, "val": scores})
            return False
        self.stale += 1
        return self.stale >= self.config.patience

    def checkpoint(self) -> None:
        save_state(self.out / "checkpoint.pt", {
            "generator": unwrap(self.generator).state_dict(), "critic": unwrap(self.critic).state_dict(),
            "opt_g": self.opt_g.state_dict(), "opt_d": self.opt_d.state_dict(), "step": self.step, "best": self.best,
            "history": self.history, "stale": self.stale, "config": config_dict(self.config),
            "seconds": time.time() - self.started, "rng": rng_state(self.epoch, self.used_in_epoch, self.sampling),
        })

    def _one_step(self, batch) -> dict[str, float]:
        kspace, mask, target, _, coil_maps = (item.to(self.device) for item in batch)
        operator = getattr(self.dataset, "operator", acquisition_operator)(mask, coil_maps)
        if self.spec.paired_critic:
            condition = critic_input(operator.adjoint(kspace), target)
        elif self.spec.trained_masks == "slices":
            condition = None
        else:
            if getattr(operator, "cartesian", True) is False:  # a trajectory: the grid cells it passes
                mask = operator.condition_mask()
            condition = mask_condition(mask, kspace.shape[0], operator.coil_maps).to(self.device)
        real = critic_input(target, target)
        config = self.config
        for optimiser, base in ((self.opt_g, self.lr_g), (self.opt_d, self.lr_d)):
            for group in optimiser.param_groups:
                group["lr"] = base * lr_factor(config.lr_schedule, self.step, config.steps, config.lr_warmup)
        if self.spec.on_step is not None:
            self.spec.on_step(self.step, unwrap(self.generator))
        loss_d = torch.zeros(())
        for _ in range(self.config.n_critic if self.uses_critic else 0):
            loss_d = self.critic_step(kspace, operator, target, real, condition)
        losses = self.generator_step(kspace, operator, target, real, condition)
        return {"d": loss_d.item(), **{name: value.item() for name, value in losses.items()}}

    def run(self) -> dict[str, Any]:
        config = self.config
        stream = self._batches()
        show = self.main_process and (self.progress if self.progress is not None else os.isatty(2))
        self.started = time.time() - self.elapsed
        columns = ["g", "d", *self.terms]
        log_file = open(self.out / "log.csv", "a", newline="") if self.main_process else None
        writer = csv.writer(log_file) if log_file else None
        if writer and self.step == 0:
            writer.writerow(["step", "epoch", *(f"loss_{name}" for name in columns), "seconds"])
        self.bar = tqdm(total=config.steps, initial=self.step, disable=not show, desc=f"train {config.model}")
        if self.main_process and self.step == 0 and config.init and not config.resume:
            # a fine-tune is validated before its first step: best.pt starts as the weights it
            # came from, so a run that only makes them worse on validation returns them unchanged
            self.validate_and_keep()
        try:
            while self.step < config.steps:
                self.epoch, self.used_in_epoch, batch = next(stream)
                losses = self._one_step(batch)
                self.step += 1
                self.bar.update(1)
                self.bar.set_postfix(g=f"{losses['g']:.4f}", nmse=f"{losses['nmse']:.4f}", d=f"{losses['d']:.3f}")
                if writer:
                    writer.writerow([self.step, self.epoch, *(losses[name] for name in columns), round(time.time() - self.started, 2)])
                    log_file.flush()
                if self._after_step():
                    break
        finally:
            self.bar.close()
            if log_file:
                log_file.close()
        return {"steps": self.step, "seconds": time.time() - self.started, "best_val_log10_nmse": self.best,
                "history": self.history}

    def _after_step(self) -> bool:
        """Validation and checkpoint when due; True when training should stop."""
        config = self.config
        # A wall-time budget (seconds, resumed runs included) ends training after this step.
        stop = config.time_limit is not None and time.time() - self.started >= config.time_limit
        last = self.step == config.steps
        if self.main_process and (self.step % config.val_every == 0 or last or stop):
            stop = self.validate_and_keep() or stop
        if self.main_process and (self.step % config.checkpoint_every == 0 or last or stop):
            self.checkpoint()
        if self.distributed:
            flag = torch.tensor(int(stop))
            dist.broadcast(flag, 0)
            stop = bool(flag.item())
        return stop


def loss_weights(config: TrainConfig, spec) -> dict[str, float]:
    """Each named loss term's weight: the model's, then the config's overrides
    (``--adversarial-weight``, ``--ssim-weight``, ``--loss NAME=WEIGHT``)."""
    base = spec.loss_weights
    weights = {"adv": base.adversarial, "freq": base.freq, "nmse": base.nmse, "ssim": base.ssim,
               "l1": base.l1, "fm": base.feature_matching, "perceptual": base.perceptual}
    for name, field_name in (("adv", "adversarial_weight"), ("freq", "freq_weight"), ("nmse", "nmse_weight"),
                             ("ssim", "ssim_weight"), ("l1", "l1_weight"), ("fm", "feature_matching_weight")):
        if getattr(config, field_name) is not None:
            weights[name] = getattr(config, field_name)
    weights.update(config.losses)
    return weights


def train(config: TrainConfig, train_set: SliceSet, val_set: SliceSet, progress: bool | None = None) -> dict[str, Any]:
    """Train ``config.model``; returns a summary (steps, seconds, best validation metrics).

    Writes to ``config.out``: ``checkpoint.pt`` (latest, for ``resume``), ``best.pt``
    (generator weights with the best validation NMSE), ``log.csv`` (every loss term by
    name) and ``val.json``.
    """
    return Trainer(config, train_set, val_set, progress).run()
