"""The ``Mask`` result type, presets (``Npct``), seeding, and shared helpers."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

ONE_D_KINDS = ("cartesian", "equispaced", "gaussian1d")
TWO_D_KINDS = ("random2d", "vd2d", "poisson", "caipi", "radial-raster", "lowres")
KINDS = ONE_D_KINDS + TWO_D_KINDS

_PRESET = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*pct\s*$", re.IGNORECASE)
_LOWRES = re.compile(r"^\s*lowres-(\d+)x\s*$", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class Mask:
    """A sampling mask and how it was made.

    Attributes
    ----------
    array : numpy.ndarray
        Bool ``(H, W)``; True where k-space is sampled. H is the readout axis.
    kind : str
        The mask family, one of :data:`KINDS`.
    target_ratio : float
        Requested fraction of sampled grid points.
    ratio : float
        Achieved fraction of sampled grid points, centre included.
    center : tuple of int
        ``(h, w)`` of the fully sampled block centred in k-space.
    params : dict
        The parameters that made it (seed, centre fraction, ...).
    """

    array: np.ndarray
    kind: str
    target_ratio: float
    ratio: float
    center: tuple[int, int]
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.array.shape)

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (without the array)."""
        return {
            "kind": self.kind,
            "shape": list(self.shape),
            "target_ratio": self.target_ratio,
            "ratio": self.ratio,
            "center": list(self.center),
            "params": dict(self.params),
        }


def lowres_factor(preset: str | float) -> int | None:
    """The in-plane super-resolution factor F of a ``lowres-Fx`` preset (2 for
    ``"lowres-2x"``), or None for any other preset. F must be 1 to 16."""
    match = _LOWRES.match(preset) if isinstance(preset, str) else None
    if match is None:
        return None
    factor = int(match.group(1))
    if not 1 <= factor <= 16:
        raise ValueError(f"mask preset {preset!r}: the super-resolution factor must be 1 to 16")
    return factor


def preset_kind(preset: str | float, kind: str | None) -> str:
    """The mask family a preset implies: ``lowres-Fx`` presets are ``lowres`` (an
    explicit other family is an error); other presets keep ``kind`` (default cartesian)."""
    if lowres_factor(preset) is None:
        return kind or "cartesian"
    if kind not in (None, "lowres"):
        raise ValueError(f"mask preset {preset!r} is a lowres (super-resolution) mask; --mask-type {kind} conflicts with it")
    return "lowres"


def parse_preset(preset: str | float) -> float:
    """Turn a preset such as ``"10pct"`` into a ratio (0.10).

    ``Npct`` means N/100 of the k-space grid points are sampled, centre included;
    N may be fractional (``"12.5pct"``). ``lowres-Fx`` (super-resolution by F in each
    in-plane axis, the central ``H/F x W/F`` block) is ``1 / F**2``. A float in
    ``(0, 1]`` passes through.
    """
    factor = lowres_factor(preset)
    if isinstance(preset, (int, float)) and not isinstance(preset, bool):
        ratio = float(preset)
    elif factor is not None:
        ratio = 1.0 / factor**2
    else:
        match = _PRESET.match(str(preset))
        if not match:
            raise ValueError(
                f"unknown mask preset {preset!r}: use Npct with 0 < N <= 100 (e.g. 10pct or 50pct) "
                "or lowres-Fx (e.g. lowres-2x)"
            )
        ratio = float(match.group(1)) / 100.0
    if not 0.0 < ratio <= 1.0:
        raise ValueError(f"mask preset {preset!r} gives ratio {ratio}; it must be in (0, 1]")
    return ratio


NO_CALIBRATION = ":nocal"
"""Suffix of a training family without a calibration block (``vd2d:nocal``): the mask is
drawn with ``center_fraction=0``."""


def split_family(token: str) -> tuple[str, float | None]:
    """``"vd2d:nocal"`` -> ``("vd2d", 0.0)``; ``"vd2d"`` -> ``("vd2d", None)`` (the
    family's default centre)."""
    token = token.strip()
    if token.endswith(NO_CALIBRATION):
        return token[: -len(NO_CALIBRATION)], 0.0
    return token, None


def seed_from_name(name: str, seed: int = 0) -> int:
    """A deterministic seed for evaluation masks: ``crc32(name)`` mixed with ``seed``.

    Every run and every method then sees the same mask for the same file.
    """
    return int(np.random.SeedSequence([zlib.crc32(name.encode("utf-8")), int(seed)]).generate_state(1)[0])


def as_generator(rng: int | np.random.Generator | None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from a seed or generator; never the global state."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        raise ValueError("masks need an explicit seed or numpy.random.Generator")
    return np.random.default_rng(rng)


def weighted_choice(
    candidates: np.ndarray, weights: np.ndarray, count: int, rng: np.random.Generator
) -> np.ndarray:
    """Draw exactly ``count`` distinct candidates, with probability growing with weight.

    Uses the Efraimidis-Spirakis keys ``log(u) / w``: sampling without replacement
    proportionally to ``weights``, in O(n log n).
    """
    if count <= 0:
        return candidates[:0]
    if count >= candidates.shape[0]:
        return candidates
    keys = np.log(rng.random(candidates.shape[0])) / np.maximum(weights, 1e-12)
    return candidates[np.argpartition(-keys, count - 1)[:count]]


def centred_run(line: np.ndarray) -> int:
    """Length of the run of True values centred on index ``len // 2`` of a bool line."""
    centre = line.shape[0] // 2
    size = 0
    while size < line.shape[0]:
        candidate = size + 1
        lo = centre - candidate // 2
        if not line[lo : lo + candidate].all() or lo + candidate > line.shape[0]:
            break
        size = candidate
    return size


def calibration_size(array: np.ndarray) -> tuple[int, int]:
    """``(h, w)`` of the fully sampled block centred on the k-space centre.

    This is the autocalibration region that ESPIRiT can use.

    Shapes
    ------
    array: ``(H, W)`` bool.
    """
    array = np.asarray(array, dtype=bool)
    height, width = array.shape
    h, w = centred_run(array[:, width // 2]), centred_run(array[height // 2])
    while h > 0 and w > 0:
        top, left = height // 2 - h // 2, width // 2 - w // 2
        if array[top : top + h, left : left + w].all():
            break
        h, w = (h - 1, w) if h >= w else (h, w - 1)
    return h, w


def calibration_region(array: np.ndarray, limit: int = 24) -> tuple[int, int]:
    """``(h, w)`` of the calibration region ESPIRiT uses: the fully sampled centre
    (:func:`calibration_size`), each side capped at ``limit`` (BART ``ecalib -r``).

    For a 1-D mask that is ``limit`` readout points by the centre's lines, a rectangle,
    as BART's ``ecalib`` takes it; the square inside it (6 × 6 for 6 centre lines)
    throws away most of what the centre measured.

    Shapes
    ------
    array: ``(H, W)`` bool.
    """
    height, width = calibration_size(array)
    return min(limit, height), min(limit, width)


def centre_slice(size: int, extent: int) -> slice:
    """Slice of length ``extent`` centred on index ``size // 2`` (the DC sample)."""
    start = size // 2 - extent // 2
    return slice(start, start + extent)
