"""The configuration of a training run (:class:`TrainConfig`, validated when built) and
the pure helpers that read it: the learning-rate schedule and the device.

The shared GAN trainer (:mod:`recon.training.trainer`) runs every learned model from
one such config.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from recon.device import check_device
from recon.models.spec import get_spec
from recon.training.losses import generator_terms


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
    lr_warmup: int = 0
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
    losses: dict = field(default_factory=dict)
    device: str = "auto"
    seed: int = 0
    out: str = "runs/train"
    resume: bool = False
    init: str | None = None
    threads: int | None = None
    time_limit: float | None = None
    coils: int | tuple[int, ...] = 1
    val_ratios: tuple[float, ...] | None = None
    mix: tuple[str, ...] = ()
    val_slices: int | None = None
    slice_factors: tuple[int, ...] = (2, 4)
    resample: float = 0.0
    resample_shrink: tuple[float, float] = (1.1, 2.4)
    measured: float = 0.0
    measured_snr: tuple[float, float] = (15.0, 40.0)

    def __post_init__(self) -> None:
        spec = get_spec(self.model)
        from masks import ALL_KINDS, TRAJECTORY_KINDS, split_family

        object.__setattr__(self, "coils", (self.coils,) if isinstance(self.coils, int) else tuple(self.coils))
        families = [(token, *split_family(token)) for token in self.mask_types]
        unknown = [token for token, kind, centre in families  # :nocal is for grid families only
                   if kind not in ALL_KINDS or (centre is not None and kind in TRAJECTORY_KINDS)]
        if unknown or not self.mask_types:
            raise ValueError(f"--mask-type: unknown family {', '.join(unknown) or repr(self.mask_type)}; "
                             f"families: {', '.join(ALL_KINDS)} (a comma-separated list trains on several; a grid family with "
                             "the suffix :nocal is drawn without a calibration block)")
        from recon.training.trajectory_data import trajectory_families

        if trajectory_families(self.mask_types) and self.measured:  # grid masks or trajectories, not both
            raise ValueError("--measured simulates grid (Cartesian) acquisitions; trajectory families are not supported")
        object.__setattr__(self, "slice_factors", tuple(int(f) for f in self.slice_factors))
        if not self.slice_factors or not all(f in (2, 4) for f in self.slice_factors):
            raise ValueError(f"--slice-factors must be 2 and/or 4, got {self.slice_factors}")
        if spec.trained_masks == "lowres" and set(self.mask_types) != {"lowres"}:
            raise ValueError(f"{self.model} is a super-resolution model: train it with --mask-type lowres "
                             "(and --mask lowres-2x,lowres-4x)")
        unknown = [name for name in self.mix if name not in MIX_SOURCES]
        if unknown:
            raise ValueError(f"--mix: unknown image source {', '.join(unknown)}; sources: {', '.join(MIX_SOURCES)}")
        if not 0 <= self.resample <= 1:
            raise ValueError(f"--resample must be a probability in [0, 1], got {self.resample}")
        object.__setattr__(self, "resample_shrink", tuple(float(f) for f in self.resample_shrink))
        low, high = self.resample_shrink if len(self.resample_shrink) == 2 else (0.0, 0.0)
        if not 1 <= low <= high <= 8:
            raise ValueError(f"--resample-shrink: expected LOW-HIGH with 1 <= LOW <= HIGH <= 8, got {self.resample_shrink}")
        if not 0 <= self.measured <= 1:
            raise ValueError(f"--measured must be a probability in [0, 1], got {self.measured}")
        object.__setattr__(self, "measured_snr", tuple(float(f) for f in self.measured_snr))
        if len(self.measured_snr) != 2 or not -10 <= self.measured_snr[0] <= self.measured_snr[1] <= 80:
            raise ValueError(f"--measured-snr: expected LOW-HIGH dB with -10 <= LOW <= HIGH <= 80, got {self.measured_snr}")
        if self.val_slices is not None and self.val_slices < 1:
            raise ValueError(f"--val-slices must be >= 1, got {self.val_slices}")
        if self.val_ratios is not None and (not self.val_ratios or not all(0 < r <= 1 for r in self.val_ratios)):
            raise ValueError(f"validation ratios must be in (0, 1], got {self.val_ratios}")
        if self.steps < 1 or self.batch_size < 1 or self.n_critic < 0:
            raise ValueError("steps and batch size must be >= 1 and n_critic >= 0")
        if self.lr_warmup < 0:
            raise ValueError(f"--lr-warmup: expected a number of steps >= 0, got {self.lr_warmup}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {self.lr_schedule!r}")
        if self.lipschitz not in (None, "gp", "clip", "spectral"):
            raise ValueError(f"lipschitz must be 'gp', 'clip' or 'spectral', got {self.lipschitz!r}")
        if not self.ratios or not all(0 < r <= 1 for r in self.ratios):
            raise ValueError(f"ratios must be in (0, 1], got {self.ratios}")
        if not self.coils or not all(1 <= c <= 64 for c in self.coils):
            raise ValueError(f"--coils must be in [1, 64], got {self.coils}")
        if self.val_every < 1 or self.patience < 1 or self.checkpoint_every < 1:
            raise ValueError("--val-every, --patience and the checkpoint interval must be >= 1, got "
                             f"{self.val_every}, {self.patience}, {self.checkpoint_every}")
        for name in ("lr_g", "lr_d", "adversarial_weight", "freq_weight", "nmse_weight", "ssim_weight", "l1_weight",
                     "feature_matching_weight", "time_limit", "gp_weight", "clip_value", "grad_clip"):
            value = getattr(self, name)
            if value is not None and (not math.isfinite(value) or value < 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {value}")
        known = set(generator_terms())
        for name, weight in self.losses.items():
            if name not in known:
                raise ValueError(f"--loss: unknown term {name!r}; terms: {', '.join(sorted(known))}")
            if not isinstance(weight, (int, float)) or not math.isfinite(weight) or weight < 0:
                raise ValueError(f"--loss {name}: weight must be a finite number >= 0, got {weight!r}")
        check_device(self.device)

    @property
    def mask_types(self) -> tuple[str, ...]:
        """The mask families, from the comma-separated ``mask_type``. (The shipped cards'
        commands say ``radial`` for the rasterised spokes, now ``radial-raster``: ``radial``
        is a true radial trajectory.)"""
        return tuple(part.strip() for part in self.mask_type.split(",") if part.strip())

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
# Images that are not MRI, mixed into training with --mix (recon.training.augment.mix_images).
MIX_SOURCES = ("shapes", "photos")
COSINE_FLOOR = 0.05


def lr_factor(schedule: str, step: int, steps: int, warmup: int = 0) -> float:
    """Learning-rate multiplier for the step about to be taken (0-based ``step``).

    ``constant`` is 1; ``cosine`` decays from 1 to ``COSINE_FLOOR`` over ``steps``. A
    ``warmup`` of N steps ramps the factor linearly from 1/N to 1 over the first N steps:
    a fine-tune's fresh Adam moments otherwise take full-size steps in every parameter at
    once. It is a pure function of the step, so ``--resume`` needs no scheduler state to
    continue exactly.
    """
    ramp = min(1.0, (step + 1) / warmup) if warmup > 0 else 1.0
    if schedule == "constant":
        return ramp
    progress = min(max(step / max(steps, 1), 0.0), 1.0)
    return ramp * (COSINE_FLOOR + (1.0 - COSINE_FLOOR) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def config_dict(config: TrainConfig) -> dict[str, Any]:
    data = asdict(config)
    data["ratios"] = list(config.ratios)
    data["coils"] = list(config.coils)
    data["mix"] = list(config.mix)
    data["slice_factors"] = list(config.slice_factors)
    data["measured_snr"] = list(config.measured_snr)
    if config.val_ratios is not None:
        data["val_ratios"] = list(config.val_ratios)
    return data
