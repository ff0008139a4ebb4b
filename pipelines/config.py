"""Frozen, validated run configuration, loadable from TOML, JSON or YAML."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

import tomllib

import masks
import recon


@dataclass(frozen=True)
class RunConfig:
    """Configuration of ``recon run``.

    Attributes
    ----------
    mask : str
        Preset ``Npct``: N/100 of the k-space grid points sampled, centre included.
    mask_type : str
        Mask family (``masks.KINDS``).
    methods : tuple of str or None
        Methods to run; None runs every method available here that suits the data.
    input : str or None
        A NIfTI (``.nii``, ``.nii.gz``) or ``.npy`` image; None uses the sample's test split.
    mask_file : str or None
        A ``.npy`` bool mask to use instead of generating one.
    slices : int or None
        Number of slices (evenly spread); None uses all.
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
    """

    mask: str = "10pct"
    mask_type: str = "cartesian"
    methods: tuple[str, ...] | None = None
    input: str | None = None
    mask_file: str | None = None
    slices: int | None = None
    coils: int = 1
    noise_snr: float | None = None
    phase: bool = False
    center_fraction: float | None = None
    seed: int = 0
    out: str = "recon-output"
    force: bool = False

    def __post_init__(self) -> None:
        masks.parse_preset(self.mask)
        if self.mask_type not in masks.KINDS:
            raise ValueError(f"unknown mask type {self.mask_type!r}; valid types: {', '.join(masks.KINDS)}")
        if self.methods is not None:
            if not self.methods:
                raise ValueError("no methods given")
            for name in self.methods:
                recon.registry.method_class(name)
        if self.slices is not None and self.slices < 1:
            raise ValueError(f"--slices must be >= 1, got {self.slices}")
        if self.coils < 1:
            raise ValueError(f"--coils must be >= 1, got {self.coils}")
        if self.center_fraction is not None and not 0 <= self.center_fraction <= 1:
            raise ValueError(f"--center-fraction must be in [0, 1], got {self.center_fraction}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["methods"] = list(self.methods) if self.methods is not None else None
        return data

    def with_overrides(self, **overrides: Any) -> RunConfig:
        """A copy with the non-None overrides applied (validated again)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_config(path: str | Path) -> RunConfig:
    """Read a :class:`RunConfig` from a ``.toml``, ``.json`` or ``.yaml`` file.

    Unknown keys are an error, so a typo cannot silently fall back to a default.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            data = tomllib.loads(text)
        elif path.suffix == ".json":
            data = json.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            try:
                import yaml
            except ImportError as error:
                raise ValueError(f"{path}: reading YAML needs PyYAML (pip install pyyaml)") from error
            data = yaml.safe_load(text)
        else:
            raise ValueError(f"{path}: config must be .toml, .json or .yaml")
    except (tomllib.TOMLDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: cannot parse config: {error}") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path}: config must be a table of keys")
    data = {key.replace("-", "_"): value for key, value in data.items()}
    known = {f.name for f in fields(RunConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{path}: unknown config keys {unknown}; known keys: {sorted(known)}")
    if isinstance(data.get("methods"), (list, str)):
        methods = data["methods"]
        data["methods"] = tuple(methods.split(",") if isinstance(methods, str) else methods)
    return RunConfig(**data)
