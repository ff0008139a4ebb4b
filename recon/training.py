"""The shared GAN trainer: every learned reconstructor trains through :func:`train`.

It draws a fresh random mask for each training sample and uses fixed masks for
validation, computes validation PSNR/SSIM/NMSE every ``val_every`` steps, keeps the
best checkpoint by validation NMSE (geometric mean over slices), stops early when validation stops improving,
clips gradients, logs to CSV, and can resume exactly (models, optimisers, step and
random-generator states are in the checkpoint). Under ``torchrun`` it runs with
DistributedDataParallel (gloo on CPU, nccl on GPU): each rank draws its own samples
through a DistributedSampler, and rank 0 alone logs and writes checkpoints.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from physics.complex import to_channels
from physics.operators import SingleCoil
from recon import metrics
from recon.augment import AcquisitionDataset, SliceSet
from recon.checkpoints import UnsafeWeightsError, load_state, save_state
from recon.condition import mask_condition
from recon.gans import get_spec
from recon.losses import (
    feature_matching_loss,
    frequency_loss,
    gradient_penalty,
    hinge_critic_loss,
    l1_loss,
    nmse_loss,
    ssim_loss,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
)


@dataclass(frozen=True)
class TrainConfig:
    """Configuration of :func:`train` (see ``recon train --help``)."""

    model: str = "gan-drn"
    ratios: tuple[float, ...] = (0.1,)
    mask_type: str = "cartesian"
    steps: int = 2000
    batch_size: int = 4
    lr_g: float | None = None
    lr_d: float | None = None
    lr_schedule: str = "constant"
    n_critic: int = 1
    lipschitz: str | None = None
    gp_weight: float = 10.0
    clip_value: float = 0.01
    adversarial_weight: float | None = None
    freq_weight: float | None = None
    nmse_weight: float | None = None
    ssim_weight: float | None = None
    l1_weight: float | None = None
    feature_matching_weight: float | None = None
    grad_clip: float = 1.0
    val_every: int = 100
    patience: int = 10
    checkpoint_every: int = 50
    generator: dict = field(default_factory=dict)
    device: str = "auto"
    seed: int = 0
    out: str = "runs/train"
    resume: bool = False
    init: str | None = None
    threads: int | None = None
    time_limit: float | None = None

    def __post_init__(self) -> None:
        get_spec(self.model)
        if self.steps < 1 or self.batch_size < 1 or self.n_critic < 0:
            raise ValueError("steps and batch size must be >= 1 and n_critic >= 0")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.lipschitz not in (None, "gp", "clip", "spectral"):
            raise ValueError(f"lipschitz must be 'gp', 'clip' or 'spectral', got {self.lipschitz!r}")
        if not self.ratios or not all(0 < r <= 1 for r in self.ratios):
            raise ValueError(f"ratios must be in (0, 1], got {self.ratios}")
        if self.val_every < 1 or self.patience < 1 or self.checkpoint_every < 1:
            raise ValueError("--val-every, --patience and the checkpoint interval must be >= 1, got "
                             f"{self.val_every}, {self.patience}, {self.checkpoint_every}")
        for name in ("lr_g", "lr_d", "adversarial_weight", "freq_weight", "nmse_weight", "ssim_weight", "l1_weight",
                     "feature_matching_weight", "time_limit", "gp_weight", "clip_value", "grad_clip"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        check_device(self.device)

    def check_generator(self) -> None:
        """Build the generator once on the meta device, so a bad ``--generator`` option
        is reported before any data is loaded."""
        spec = get_spec(self.model)
        try:
            with torch.device("meta"):
                spec.build_generator(dict(self.generator))
        except TypeError as error:
            import re

            match = re.search(r"keyword argument '(\w+)'", str(error))
            name = match[1] if match else str(error)
            raise ValueError(f"{name!r} is not an option of the {self.model} generator") from None


LR_SCHEDULES = ("constant", "cosine")
COSINE_FLOOR = 0.05


def lr_factor(schedule: str, step: int, steps: int) -> float:
    """Learning-rate multiplier for the step about to be taken (0-based ``step``).

    ``constant`` is 1; ``cosine`` decays from 1 to ``COSINE_FLOOR`` over ``steps``. It is a
    pure function of the step, so ``--resume`` needs no scheduler state to continue exactly.
    """
    if schedule == "constant":
        return 1.0
    progress = min(max(step / max(steps, 1), 0.0), 1.0)
    return COSINE_FLOOR + (1.0 - COSINE_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * progress))


def check_device(name: str) -> None:
    """Raise ``ValueError`` naming ``--device`` unless ``name`` is ``auto``, ``cpu``,
    ``cuda`` or ``cuda:N`` that this machine has."""
    import re

    if name in ("auto", "cpu"):
        return
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if not match:
        raise ValueError(f"--device must be auto, cpu, cuda or cuda:N, got {name!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine (use auto or cpu)")
    if match[1] is not None and int(match[1]) >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU."""
    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _critic_input(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    scale = reference.abs().flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return to_channels(image / scale)


def _unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def validate(generator: torch.nn.Module, dataset: AcquisitionDataset, device: torch.device, batch_size: int = 4) -> dict[str, float]:
    """Mean PSNR / SSIM / NMSE of the generator on a fixed validation set (fastMRI
    conventions: magnitudes, data range = the slice's maximum), and ``log_nmse``, the
    mean of log10(NMSE) over slices, which selects the best checkpoint: when a model is
    validated at several ratios, the arithmetic mean NMSE is dominated by the sparsest
    one, the geometric mean weighs every ratio alike."""
    generator.eval()
    scores = []
    with torch.no_grad():
        for kspace, mask, target, _ in DataLoader(dataset, batch_size=batch_size):
            kspace, mask = kspace.to(device), mask.to(device)
            output = generator(kspace, SingleCoil(mask)).cpu()
            for out, ref in zip(output, target):
                scores.append(metrics.evaluate(out, ref))
    generator.train()
    result = {key: float(np.mean([s[key] for s in scores])) for key in ("psnr", "ssim", "nmse")}
    result["log_nmse"] = float(np.mean([np.log10(max(s["nmse"], 1e-30)) for s in scores]))
    return result


def _rng_state(epoch: int, used_in_epoch: int, generator: torch.Generator) -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "generator": generator.get_state(), "epoch": epoch, "used_in_epoch": used_in_epoch}


def train(config: TrainConfig, train_set: SliceSet, val_set: SliceSet, progress: bool | None = None) -> dict[str, Any]:
    """Train ``config.model``; returns a summary (steps, seconds, best validation metrics).

    Writes to ``config.out``: ``checkpoint.pt`` (latest, for ``resume``), ``best.pt``
    (generator weights with the best validation NMSE), ``log.csv`` and ``val.json``.
    """
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = resolve_device(config.device)
    if distributed:
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    else:
        rank, world = 0, 1
    if config.threads:
        torch.set_num_threads(config.threads)
    main_process = rank == 0
    spec = get_spec(config.model)
    weights = spec.loss_weights
    adv_w = weights.adversarial if config.adversarial_weight is None else config.adversarial_weight
    freq_w = weights.freq if config.freq_weight is None else config.freq_weight
    nmse_w = weights.nmse if config.nmse_weight is None else config.nmse_weight
    ssim_w = weights.ssim if config.ssim_weight is None else config.ssim_weight
    l1_w = weights.l1 if config.l1_weight is None else config.l1_weight
    fm_w = weights.feature_matching if config.feature_matching_weight is None else config.feature_matching_weight
    lipschitz = config.lipschitz or spec.lipschitz
    lr_g = spec.lr_g if config.lr_g is None else config.lr_g
    lr_d = spec.lr_d if config.lr_d is None else config.lr_d
    critic_loss = hinge_critic_loss if spec.adversarial == "hinge" else wasserstein_critic_loss

    torch.manual_seed(config.seed)
    generator = spec.build_generator(dict(config.generator)).to(device)
    critic = spec.build_critic().to(device)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr_g, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(critic.parameters(), lr=lr_d, betas=(0.5, 0.9))
    sampling = torch.Generator().manual_seed(config.seed + 7919 * rank)

    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    start_step, epoch, used_in_epoch, best, history, stale = 0, 0, 0, math.inf, [], 0
    elapsed = 0.0  # seconds spent by earlier runs of a resumed training
    checkpoint_path = out / "checkpoint.pt"
    if config.resume:
        if not checkpoint_path.is_file():
            raise FileNotFoundError(f"--resume: no checkpoint at {checkpoint_path}")
        state = load_state(checkpoint_path, device, "checkpoint")
        missing = sorted({"generator", "critic", "opt_g", "opt_d", "step", "best", "history", "stale", "rng"} - set(state))
        if missing:
            raise UnsafeWeightsError(f"{checkpoint_path}: not a trainer checkpoint (missing {', '.join(missing)})")
        generator.load_state_dict(state["generator"])
        critic.load_state_dict(state["critic"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        start_step, best, history, stale = state["step"], state["best"], state["history"], state["stale"]
        torch.set_rng_state(state["rng"]["torch"])
        sampling.set_state(state["rng"]["generator"])
        epoch, used_in_epoch = state["rng"]["epoch"], state["rng"].get("used_in_epoch", 0)
        elapsed = float(state.get("seconds", 0.0))
        if main_process:
            _truncate_log(out / "log.csv", start_step)
    else:
        if config.init:
            initialised = load_matching(generator, _generator_weights(Path(config.init), device), config.init)
            if main_process:
                (out / "init.json").write_text(json.dumps({"from": config.init, **initialised}, indent=1))
        if main_process and (out / "log.csv").exists():
            (out / "log.csv").unlink()

    if distributed:
        generator = DistributedDataParallel(generator)
        critic = DistributedDataParallel(critic)

    dataset = AcquisitionDataset(train_set, config.ratios, config.mask_type, seed=config.seed)
    val_dataset = AcquisitionDataset(val_set, config.ratios, config.mask_type, seed=config.seed + 1, train=False)

    def batches(first_epoch: int):
        current = first_epoch
        while True:
            dataset.set_epoch(current)
            if distributed:
                sampler = DistributedSampler(dataset, num_replicas=world, rank=rank, seed=config.seed)
                sampler.set_epoch(current)
            else:
                sampler = RandomSampler(dataset, generator=torch.Generator().manual_seed(config.seed * 100_003 + current))
            loader = DataLoader(dataset, batch_size=config.batch_size, sampler=sampler, drop_last=len(dataset) >= config.batch_size)
            for position, batch in enumerate(loader, start=1):
                yield current, position, batch
            current += 1

    # On resume, skip the batches of the interrupted epoch that were already used.
    stream = batches(epoch)
    for _ in range(used_in_epoch):
        next(stream)

    show = main_process and (progress if progress is not None else os.isatty(2))
    started = time.time() - elapsed
    log_file = open(out / "log.csv", "a", newline="") if main_process else None
    writer = csv.writer(log_file) if log_file else None
    if writer and start_step == 0:
        writer.writerow(["step", "epoch", "loss_g", "loss_adv", "loss_freq", "loss_nmse", "loss_d", "seconds"])
    bar = tqdm(total=config.steps, initial=start_step, disable=not show, desc=f"train {config.model}")
    step = start_step
    try:
        while step < config.steps:
            epoch, used_in_epoch, (kspace, mask, target, _) = next(stream)
            kspace, mask, target = kspace.to(device), mask.to(device), target.to(device)
            operator = SingleCoil(mask)
            condition = mask_condition(mask, kspace.shape[0]).to(device)
            real = _critic_input(target, target)
            loss_d = torch.zeros(())
            for optimiser, base in ((opt_g, lr_g), (opt_d, lr_d)):
                for group in optimiser.param_groups:
                    group["lr"] = base * lr_factor(config.lr_schedule, step, config.steps)
            for _ in range(config.n_critic if adv_w > 0 or fm_w > 0 else 0):
                with torch.no_grad():
                    fake = _critic_input(generator(kspace, operator), target)
                loss_d = critic_loss(critic(real, condition), critic(fake, condition))
                if lipschitz == "gp":
                    judge = functools.partial(critic, condition=condition)
                    loss_d = loss_d + config.gp_weight * gradient_penalty(judge, real, fake, sampling)
                opt_d.zero_grad(set_to_none=True)
                loss_d.backward()
                torch.nn.utils.clip_grad_norm_(critic.parameters(), config.grad_clip * 10)
                opt_d.step()
                if lipschitz == "clip":
                    with torch.no_grad():
                        for parameter in critic.parameters():
                            parameter.clamp_(-config.clip_value, config.clip_value)
            output = generator(kspace, operator)
            loss_adv = torch.zeros(())
            loss_freq = frequency_loss(output, target)
            loss_nmse = nmse_loss(output, target)
            loss_g = freq_w * loss_freq + nmse_w * loss_nmse
            if adv_w > 0 or fm_w > 0:
                fake_scores, fake_maps = critic(_critic_input(output, target), condition, features=True)
                loss_adv = wasserstein_generator_loss(fake_scores)  # -E[D(fake)], for hinge too
                loss_g = loss_g + adv_w * loss_adv
                if fm_w > 0:
                    with torch.no_grad():
                        _, real_maps = critic(real, condition, features=True)
                    loss_g = loss_g + fm_w * feature_matching_loss(fake_maps, real_maps)
            if ssim_w > 0:
                loss_g = loss_g + ssim_w * ssim_loss(output, target)
            if l1_w > 0:
                loss_g = loss_g + l1_w * l1_loss(output, target)
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            torch.nn.utils.clip_grad_norm_(generator.parameters(), config.grad_clip)
            opt_g.step()
            step += 1
            bar.update(1)
            bar.set_postfix(g=f"{loss_g.item():.4f}", nmse=f"{loss_nmse.item():.4f}", d=f"{loss_d.item():.3f}")
            if writer:
                writer.writerow([step, epoch, loss_g.item(), loss_adv.item(), loss_freq.item(), loss_nmse.item(), loss_d.item(), round(time.time() - started, 2)])
                log_file.flush()
            # A wall-time budget (seconds, resumed runs included) ends training after this step.
            stop = config.time_limit is not None and time.time() - started >= config.time_limit
            if main_process and (step % config.val_every == 0 or step == config.steps or stop):
                scores = validate(_unwrap(generator), val_dataset, device)
                scores["step"] = step
                history.append(scores)
                (out / "val.json").write_text(json.dumps(history, indent=1))
                if scores["log_nmse"] < best:
                    best, stale = scores["log_nmse"], 0
                    _save(out / "best.pt", {"generator": _unwrap(generator).state_dict(), "config": _config_dict(config), "step": step, "val": scores})
                else:
                    stale += 1
                    stop = stop or stale >= config.patience
                bar.write(f"step {step}: val psnr {scores['psnr']:.2f} ssim {scores['ssim']:.4f} nmse {scores['nmse']:.5f}")
            if main_process and (step % config.checkpoint_every == 0 or step == config.steps or stop):
                _save(checkpoint_path, {
                    "generator": _unwrap(generator).state_dict(), "critic": _unwrap(critic).state_dict(),
                    "opt_g": opt_g.state_dict(), "opt_d": opt_d.state_dict(), "step": step, "best": best,
                    "history": history, "stale": stale, "config": _config_dict(config),
                    "seconds": time.time() - started,
                    "rng": _rng_state(epoch, used_in_epoch, sampling),
                })
            if distributed:
                flag = torch.tensor(int(stop))
                dist.broadcast(flag, 0)
                stop = bool(flag.item())
            if stop:
                break
    finally:
        bar.close()
        if log_file:
            log_file.close()
    return {"steps": step, "seconds": time.time() - started, "best_val_log10_nmse": best, "history": history}


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint a run resumes from, so that every step
    appears once in ``log.csv``."""
    if not path.is_file():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    kept = [row for row in rows if not row or not row[0].isdigit() or int(row[0]) <= step]
    if len(kept) != len(rows):
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", newline="") as handle:
            csv.writer(handle).writerows(kept)
        os.replace(tmp, path)


def load_matching(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> dict[str, Any]:
    """Load every tensor of ``state`` whose name and shape match one of ``model``
    (warm start, e.g. CSR-GAN from GAN-DRN weights: the FiLM layers the source lacks
    keep their identity initialisation). Raises when nothing matches."""
    own = model.state_dict()
    matching = {key: value for key, value in state.items() if key in own and own[key].shape == value.shape}
    if not matching:
        raise ValueError(f"--init: no parameter of {source} fits this model")
    model.load_state_dict(matching, strict=False)
    return {"loaded": sorted(matching), "kept_initial": sorted(set(own) - set(matching)),
            "ignored": sorted(set(state) - set(matching))}


def _generator_weights(path: Path, device: torch.device) -> dict[str, torch.Tensor]:
    """Generator weights from a shipped ``.pt`` state dict or a trainer checkpoint."""
    if not path.is_file():
        raise FileNotFoundError(f"--init: no weights at {path}")
    state = load_state(path, device, "--init weights file")
    weights = state["generator"] if "generator" in state else state
    if not isinstance(weights, dict) or not all(isinstance(value, torch.Tensor) for value in weights.values()):
        raise UnsafeWeightsError(f"{path}: --init needs a state dict of tensors (a shipped .pt, best.pt or checkpoint.pt)")
    return weights


def _config_dict(config: TrainConfig) -> dict[str, Any]:
    data = asdict(config)
    data["ratios"] = list(config.ratios)
    return data


def _save(path: Path, state: dict[str, Any]) -> None:
    save_state(path, state)
