"""Frozen, validated configurations of ``recon run`` (loadable from TOML, JSON or YAML)
and ``recon batch``.

Config files are data, never code: YAML is parsed with the safe loader and refused
when it uses aliases (a few hundred bytes of nested aliases expand to gigabytes), files
over 1 MB are refused, and every value's type is checked against the field it sets,
with errors that name the file and the key.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser, packaged as tomli (a dependency there)
    import tomli as tomllib

import masks
import recon
from pipelines.common.limits import MemoryBudget
from pipelines.formats.table import FORMAT_CHOICES as FORMATS

MAX_CONFIG_BYTES = 1 << 20
ESTIMATE_METHODS = ("default", "all")
"""``--estimate-methods``: ``default`` estimates every method but those that run an
external binary (BART: 4-10 s a slice, 4 more times; they are anchors, not candidates
the guard needs), ``all`` estimates them too."""


def check_common(mask: str, mask_type: str, methods: tuple[str, ...] | None, seed: int,
                 max_memory: int | None, estimate_folds: int = 0, estimate_methods: str = "default",
                 device: str = "cpu") -> None:
    """The checks ``recon run`` and ``recon batch`` share: preset, mask family, method
    names, seed, memory budget, the error estimate and the device (``ValueError`` naming the option)."""
    from recon.device import check_device  # torch: only when a run or batch is configured

    check_device(device)
    if mask_type not in masks.ALL_KINDS:
        raise ValueError(f"unknown mask type {mask_type!r}; valid types: {', '.join(masks.ALL_KINDS)}")
    if masks.is_trajectory(mask_type):
        masks.trajectories.shots_for(mask, mask_type, (256, 256))  # Npct, Nspokes or Ninterleaves
    else:
        masks.parse_preset(mask)
        masks.preset_kind(mask, None if mask_type == "cartesian" else mask_type)
    if methods is not None:
        if not methods:
            raise ValueError("no methods given")
        for name in methods:
            recon.registry.info(name)  # an unknown name lists the valid ones
    if not 0 <= seed < 2**32:
        raise ValueError(f"--seed must be in [0, 2^32), got {seed}")
    if max_memory is not None and max_memory < 1:
        raise ValueError(f"--max-memory must be positive, got {max_memory}")
    if estimate_methods not in ESTIMATE_METHODS:
        raise ValueError(f"--estimate-methods must be one of {', '.join(ESTIMATE_METHODS)}, got {estimate_methods!r}")
    if estimate_folds != 0 and not 2 <= estimate_folds <= 16:
        raise ValueError(f"--estimate-folds must be 0 (off) or 2 to 16, got {estimate_folds}")


GUARD_REFERENCES = ("cs-tv", "zero-filled")
"""Added to a guarded run or batch whose methods lack them, so that a learned slice has
something to fall back to (``pipelines.common.evaluation.FALLBACK_FAMILIES``)."""


def guard_additions(methods: tuple[str, ...], mask: str, mask_type: str) -> tuple[str, ...]:
    """The :data:`GUARD_REFERENCES` that a guarded run of ``methods`` adds: none without a
    learned method, on trajectories (no estimate) or on a super-resolution block (no
    guard); ``cs-tv`` only when no CS method is there, ``zero-filled`` when it is missing."""
    families = [recon.registry.info(name).family for name in methods]
    if "learned" not in families or masks.is_trajectory(mask_type):
        return ()
    if masks.preset_kind(mask, None if mask_type == "cartesian" else mask_type) == "lowres":
        return ()
    added = () if "cs" in families else ("cs-tv",)
    return added + (() if "zero-filled" in methods else ("zero-filled",))


def resolve_lowres(config: Any) -> None:
    """A ``lowres-Fx`` preset selects the ``lowres`` family: set ``mask_type`` of a frozen
    config that left it at the default (another explicit family is an error)."""
    if masks.lowres_factor(config.mask) is not None and config.mask_type == "cartesian":
        object.__setattr__(config, "mask_type", "lowres")


ACQUISITIONS = ("2d", "3d")


@dataclass(frozen=True)
class RunConfig:
    """Configuration of ``recon run``.

    Attributes
    ----------
    mask : str
        Preset ``Npct``: N/100 of the k-space grid points sampled, centre included; or
        ``lowres-Fx``: the central ``H/F x W/F`` block (super-resolution by F).
    mask_type : str
        Mask family (``masks.KINDS``).
    methods : tuple of str or None
        Methods to run; None runs every method available here that suits the data.
    input : str or None
        A NIfTI (``.nii``, ``.nii.gz``) or ``.npy`` image; None uses the sample's test split.
    mask_file : str or None
        A ``.npy`` bool mask to use instead of generating one.
    slices : int
        Number of slices, evenly spread (default 4); 0 uses every slice.
    coils : int
        1 for single-coil; more simulates birdcage coil maps.
    noise_snr : float or None
        Complex Gaussian noise, SNR in dB (see ``physics.add_noise``).
    phase : bool
        Add a smooth synthetic phase to the image before simulating k-space.
    center_fraction : float or None
        Override the mask family's default centre size.
    seed : int
        Mixed with the input's name (crc32) to seed the mask, phase and noise.
    out : str
        Output folder.
    force : bool
        Replace an existing output folder.
    estimate_folds : int
        Hold-out folds of the reference-free error estimate (``recon.trust.holdout``); 0
        turns it (and the guard) off.
    estimate_slices : int
        The estimate (and so the guard) runs on this many of the slices, evenly spread
        (default 0: every slice, as the guard needs; each costs every method
        ``estimate_folds`` more reconstructions).
    guard : bool
        On by default: where a learned output is not estimably better than the best CS
        (or zero-filled) output, write that output instead (``recon.trust.guard``);
        ``--no-guard`` turns it off. Explicit ``methods`` with a learned one gain
        :data:`GUARD_REFERENCES` they lack (:func:`guard_additions`).
    adapt : bool
        Fine-tune each learned method on the scan's own measured k-space first
        (``recon.training.adapt``), the weights shared across its slices.
    device : str
        Where the methods compute (``recon.device``): ``cpu`` (the default), ``auto``
        (CUDA when present), ``cuda`` or ``cuda:N``; BART and ``--adapt`` stay on the CPU.
    acquisition : str
        ``2d`` (slice by slice, the default) or ``3d``: a 3-D acquisition of the whole
        volume, undersampled in the (ky, kz) plane (``pipelines.common.volume``, ``pipelines.run.volume``).
    """

    mask: str = "10pct"
    mask_type: str = "cartesian"
    methods: tuple[str, ...] | None = None
    input: str | None = None
    mask_file: str | None = None
    slices: int = 4
    coils: int = 1
    noise_snr: float | None = None
    phase: bool = False
    center_fraction: float | None = None
    seed: int = 0
    out: str = "recon-output"
    force: bool = False
    max_memory: int | None = None
    estimate_folds: int = 4
    estimate_slices: int = 0
    estimate_methods: str = "default"
    guard: bool = True
    adapt: bool = False
    acquisition: str = "2d"
    device: str = "cpu"

    def __post_init__(self) -> None:
        resolve_lowres(self)
        if self.acquisition not in ACQUISITIONS:
            raise ValueError(f"--acquisition must be one of {', '.join(ACQUISITIONS)}, got {self.acquisition!r}")
        if self.acquisition == "3d" and (masks.is_trajectory(self.mask_type) or self.mask_type == "lowres"):
            raise ValueError("--acquisition 3d takes a grid mask of the (ky, kz) plane (poisson, vd2d, random2d, caipi, "
                             "a 1-D family along kz, or --mask-file), not a trajectory or lowres")
        check_common(self.mask, self.mask_type, self.methods, self.seed, self.max_memory, self.estimate_folds,
                     self.estimate_methods, self.device)

    @property
    def guard_added(self) -> tuple[str, ...]:
        """The references the guard adds to explicit ``methods`` (:func:`guard_additions`;
        the default method list already holds them)."""
        if not self.guard or not self.estimate_folds or self.methods is None:
            return ()
        return guard_additions(tuple(self.methods), self.mask, self.mask_type)
        for name in ("slices", "estimate_slices"):
            value = getattr(self, name)
            if value == "all" or value is None:  # "all" from a config file; None from older callers
                object.__setattr__(self, name, value := 0)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"--{name.replace('_', '-')} must be a count >= 1 or all, got {value!r}")
        if self.coils < 1:
            raise ValueError(f"--coils must be >= 1, got {self.coils}")
        if self.center_fraction is not None and not 0 <= self.center_fraction <= 1:
            raise ValueError(f"--center-fraction must be in [0, 1], got {self.center_fraction}")
        if self.noise_snr is not None and not (math.isfinite(self.noise_snr) and -20 <= self.noise_snr <= 200):
            raise ValueError(f"--noise-snr must be a finite SNR in dB between -20 and 200, got {self.noise_snr}")
        if self.coils > 64:
            raise ValueError(f"--coils must be <= 64, got {self.coils}")


    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["methods"] = list(self.methods) if self.methods is not None else None
        return data

    def with_overrides(self, **overrides: Any) -> RunConfig:
        """A copy with the non-None overrides applied (validated again)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


# What each key of a config file may hold (bool is not accepted where a number is due).
_TYPES: dict[str, tuple[tuple[type, ...], str]] = {
    "mask": ((str,), "a preset such as '10pct'"),
    "mask_type": ((str,), "a mask family name"),
    "methods": ((list, str), "a list of method names or a comma-separated string"),
    "input": ((str,), "a file path"),
    "mask_file": ((str,), "a file path"),
    "slices": ((int, str), "an integer or 'all'"),
    "estimate_slices": ((int, str), "an integer or 'all'"),
    "coils": ((int,), "an integer"),
    "noise_snr": ((int, float), "a number (dB)"),
    "phase": ((bool,), "true or false"),
    "center_fraction": ((int, float), "a number in [0, 1]"),
    "seed": ((int,), "an integer"),
    "out": ((str,), "a folder path"),
    "force": ((bool,), "true or false"),
    "max_memory": ((int, str), "a size such as '4G' or a number of bytes"),
    "estimate_folds": ((int,), "an integer: 0, or 2 to 16"),
    "estimate_methods": ((str,), "default or all"),
    "guard": ((bool,), "true or false"),
    "adapt": ((bool,), "true or false"),
    "acquisition": ((str,), "2d or 3d"),
    "device": ((str,), "auto, cpu, cuda or cuda:N"),
}


@dataclass(frozen=True)
class BatchConfig:
    """Configuration of :func:`run_batch` (see ``recon batch --help``)."""

    inputs: tuple[str, ...]
    out: str
    mask: str = "10pct"
    mask_type: str = "cartesian"
    methods: tuple[str, ...] = ("cs-tv",)
    format: str = "same"
    workers: int = 1
    part: tuple[int, int] = (1, 1)
    resume: bool = False
    force: bool = False
    seed: int = 0
    scheduler: str | None = None
    max_memory: int | None = None
    estimate_folds: int = 4
    estimate_methods: str = "default"
    guard: bool = True
    slice_factor: int | None = None
    virtual_coils: int | None = None
    adapt: bool = False
    acquisition: str = "2d"
    device: str = "cpu"  # where the methods compute (RunConfig.device); not a key field: the same outputs

    def __post_init__(self) -> None:
        resolve_lowres(self)
        if self.acquisition not in ACQUISITIONS:
            raise ValueError(f"--acquisition must be one of {', '.join(ACQUISITIONS)}, got {self.acquisition!r}")
        if self.virtual_coils is not None and not 1 <= self.virtual_coils <= 64:
            raise ValueError(f"--virtual-coils must be 1 to 64, got {self.virtual_coils}")
        through_plane = self.slice_factor is not None  # SR of thick-slice volumes, not k-space: recon sr's methods
        check_common(self.mask, self.mask_type, None if through_plane else tuple(self.methods), self.seed, self.max_memory,
                     self.estimate_folds, self.estimate_methods, self.device)
        if through_plane:
            check_through_plane(self)
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; valid formats: {', '.join(FORMATS)}")
        index, count = self.part
        if not 1 <= index <= count:
            raise ValueError(f"--part must be i/N with 1 <= i <= N, got {index}/{count}")
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")

    @property
    def guard_added(self) -> tuple[str, ...]:
        """The references the guard adds to ``methods`` (:func:`guard_additions`)."""
        if not self.guard or not self.estimate_folds or self.slice_factor is not None:
            return ()
        return guard_additions(tuple(self.methods), self.mask, self.mask_type)

    @property
    def methods_run(self) -> tuple[str, ...]:
        """``methods`` and the references the guard adds."""
        return tuple(self.methods) + self.guard_added

    def budget(self) -> MemoryBudget:
        return MemoryBudget.of(self.max_memory)

    def key_fields(self) -> dict[str, Any]:
        """What makes an output: a change in any of these redoes a unit on ``--resume``."""
        return {"mask": self.mask, "mask_type": self.mask_type, "methods": list(self.methods),
                "format": self.format, "seed": self.seed, "version": recon.__version__,
                "estimate_folds": self.estimate_folds, "guard": self.guard, "adapt": self.adapt, "slice_factor": self.slice_factor,
                "virtual_coils": self.virtual_coils, "acquisition": self.acquisition}


def check_through_plane(config: BatchConfig) -> None:
    """``--slice-factor``: its methods are recon sr's, its formats the volume formats
    (the checks it shares with k-space batches are :func:`check_common`'s)."""
    from recon.models.through_plane import FACTORS, METHODS

    if config.slice_factor not in FACTORS:
        raise ValueError(f"--slice-factor must be one of {', '.join(map(str, FACTORS))}, got {config.slice_factor}")
    unknown = [name for name in config.methods if name not in METHODS]
    if unknown or not config.methods:
        raise ValueError(f"--slice-factor restores thin slices with {', '.join(METHODS)}; not {', '.join(unknown) or 'no method'}")
    if config.format not in ("same", "nifti", "dicom"):
        raise ValueError(f"--slice-factor writes volumes: --format same, nifti or dicom, got {config.format!r}")


def _load_yaml(text: str, path: Path) -> Any:
    try:
        import yaml
    except ImportError as error:
        raise ValueError(f"{path}: reading YAML needs PyYAML (pip install pyyaml)") from error
    try:  # aliases are refused before anything is built from the document
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise ValueError(f"{path}: YAML aliases (*name) are not allowed in a config file")
        return yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: cannot parse YAML: {' '.join(str(error).split())}") from None


def _check_value(path: Path, key: str, value: Any) -> Any:
    if value is None:
        return None
    types, expected = _TYPES[key]
    if isinstance(value, bool) and bool not in types or not isinstance(value, types):
        raise ValueError(f"{path}: key {key!r} must be {expected}, got {type(value).__name__} {str(value)[:40]!r}")
    if key == "methods":
        names = value.split(",") if isinstance(value, str) else value
        if not all(isinstance(name, str) for name in names):
            raise ValueError(f"{path}: key 'methods' must list method names (strings), got {str(value)[:60]!r}")
        return tuple(name.strip() for name in names if name.strip())
    if key in ("slices", "estimate_slices") and isinstance(value, str) and value.strip().lower() != "all":
        raise ValueError(f"{path}: key {key!r} must be an integer or 'all', got {value[:40]!r}")
    if key in ("noise_snr", "center_fraction") and not math.isfinite(value):
        raise ValueError(f"{path}: key {key!r} must be finite, got {value}")
    if key == "max_memory":
        from pipelines.common.limits import parse_size

        return parse_size(str(value))
    return value


def load_config(path: str | Path) -> RunConfig:
    """Read a :class:`RunConfig` from a ``.toml``, ``.json`` or ``.yaml`` file.

    Unknown keys are an error, so a typo cannot silently fall back to a default; so is
    a value of the wrong type, naming the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ValueError(f"{path}: config file of {path.stat().st_size} bytes is too large (at most {MAX_CONFIG_BYTES})")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: config file is not UTF-8 text ({error.reason})") from None
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            data = _load_yaml(text, path)
        else:
            raise ValueError(f"{path}: config must be .toml, .json or .yaml")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"{path}: cannot parse config: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: config must be a table of keys")
    if not all(isinstance(key, str) for key in data):
        raise ValueError(f"{path}: config keys must be strings")
    data = {key.replace("-", "_"): value for key, value in data.items()}
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown config keys {unknown}; known keys: {sorted(known)}")
    data = {key: _check_value(path, key, value) for key, value in data.items()}
    try:
        return RunConfig(**data)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
