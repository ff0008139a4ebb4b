"""Non-Cartesian trajectories: radial (golden-angle, uniform, tiny golden angle) and a
variable-density spiral, with presets stated in spokes or interleaves.

Coordinates are ``(..., 2)`` float32 in units of 1/FOV, from ``-N/2`` to ``N/2`` per
axis, ordered like the image axes ``(H, W)`` (docs/CONVENTIONS). Every generator takes
an explicit seed (a random rotation of the whole trajectory) and never touches global
random state.

Equivalent Nyquist fraction, the ``ratio`` of a trajectory, is its sampling density at
the edge of k-space relative to Nyquist:

- radial: ``S`` full spokes against the ``pi N / 2`` spokes Nyquist needs at the edge of
  an ``N``-wide grid (402 for 256), so ``10pct`` of 256 is 40 spokes;
- spiral: ``K`` interleaves of one variable-density arm against the ``3 N / 16``
  interleaves (48 for 256) that make it Nyquist at the edge. The arm samples the
  centre ``N / 64`` times (12 for 256) more densely than the edge, so from 4 interleaves
  up the centre of k-space is at Nyquist.

Samples along a spoke or an arm are 0.5/FOV apart (the readout's usual 2x oversampling).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from masks.base import as_generator, parse_preset

TRAJECTORY_KINDS = ("radial", "radial-uniform", "radial-tiny-golden", "spiral")
GOLDEN_RATIO = (1 + math.sqrt(5)) / 2
TINY_GOLDEN_INDEX = 7
"""The tiny golden angle used: ``pi / (golden ratio + 7 - 1)``, 23.63 degrees (Wundrak et al.)."""
READOUT_STEP = 0.5
_COUNT = re.compile(r"^\s*(\d+)\s*(spokes|interleaves)\s*$", re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class TrajectoryMask:
    """A non-Cartesian sampling pattern and how it was made.

    Attributes
    ----------
    coords : numpy.ndarray
        float32 ``(shots, samples, 2)`` (spokes or interleaves x readout), units of 1/FOV.
    shape : tuple of int
        The image grid ``(H, W)``.
    kind : str
        One of :data:`TRAJECTORY_KINDS`.
    target_ratio, ratio : float
        Requested and achieved equivalent Nyquist fraction (see the module docstring).
    params : dict
        The parameters that made it (shots, seed, angles, ...).
    """

    coords: np.ndarray
    shape: tuple[int, int]
    kind: str
    target_ratio: float
    ratio: float
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def shots(self) -> int:
        return int(self.coords.shape[0])

    def summary(self) -> str:
        unit = "interleaves" if self.kind == "spiral" else "spokes"
        return (f"{self.shots} {unit} of {self.coords.shape[1]} samples ({self.ratio * 100:.1f}% of the "
                f"{self.params['nyquist_shots']:g} {unit} Nyquist needs at the edge of {self.shape[0]}x{self.shape[1]})")

    def describe(self) -> dict[str, Any]:
        """JSON-ready description (without the coordinates)."""
        return {"kind": self.kind, "shape": list(self.shape), "target_ratio": self.target_ratio, "ratio": self.ratio,
                "shots": self.shots, "samples_per_shot": int(self.coords.shape[1]), "params": dict(self.params)}

    def picture(self, scale: int = 2) -> np.ndarray:
        """uint8 ``(scale H, scale W)``: the trajectory's samples drawn at ``scale`` times
        the grid's resolution (255 where a sample lies), the picture reports show."""
        return draw_samples(self.coords, self.shape, scale)


def draw_samples(coords: np.ndarray, shape: tuple[int, int], scale: int = 2) -> np.ndarray:
    """uint8 ``(scale H, scale W)``: trajectory samples ``coords`` ``(..., 2)`` (1/FOV
    units, H then W) drawn at ``scale`` times the resolution of an ``(H, W)`` grid."""
    height, width = shape
    coords = np.asarray(coords)
    rows = np.clip(np.rint((coords[..., 0] + height / 2) * scale).astype(int), 0, scale * height - 1)
    cols = np.clip(np.rint((coords[..., 1] + width / 2) * scale).astype(int), 0, scale * width - 1)
    canvas = np.zeros((scale * height, scale * width), np.uint8)
    canvas[rows.ravel(), cols.ravel()] = 255
    return canvas


def nyquist_shots(kind: str, shape: tuple[int, int]) -> float:
    """Spokes (radial: ``pi N / 2``) or interleaves (spiral: ``3 N / 16``) that sample the
    edge of an ``N = max(H, W)`` grid at Nyquist."""
    size = max(shape)
    return 3 * size / 16 if kind == "spiral" else math.pi * size / 2


def shots_for(preset: str | float, kind: str, shape: tuple[int, int]) -> int:
    """The spokes or interleaves of a preset: ``"40spokes"``, ``"4interleaves"``, or
    ``"Npct"`` / a ratio as that fraction of :func:`nyquist_shots`, at least 1."""
    match = _COUNT.match(preset) if isinstance(preset, str) else None
    if match:
        unit = "interleaves" if kind == "spiral" else "spokes"
        if match.group(2).lower() != unit:
            raise ValueError(f"mask preset {preset!r}: a {kind} trajectory is counted in {unit}")
        count = int(match.group(1))
        if count < 1:
            raise ValueError(f"mask preset {preset!r}: a trajectory needs at least one {unit[:-1]}")
        return count
    return max(1, round(parse_preset(preset) * nyquist_shots(kind, shape)))


def _scale(shape: tuple[int, int]) -> np.ndarray:
    """Per-axis stretch from a disc of radius ``min(H, W) / 2`` to the ``(H, W)`` grid."""
    return np.array(shape, np.float64) / min(shape)


def radial_trajectory(shape: tuple[int, int], spokes: int, rng: int | np.random.Generator = 0,
                      ordering: str = "golden") -> TrajectoryMask:
    """Full spokes through the centre, ``2 min(H, W)`` samples each (0.5/FOV apart).

    ``ordering``: ``golden`` (increments of ``pi / golden ratio``, 111.25 degrees),
    ``tiny-golden`` (``pi / (golden ratio + 6)``, 23.63 degrees) or ``uniform``
    (``pi / S``). The seed rotates the whole set.

    Shapes
    ------
    returns ``coords`` ``(spokes, 2 min(H, W), 2)``.
    """
    if spokes < 1:
        raise ValueError(f"a radial trajectory needs at least one spoke, got {spokes}")
    steps = {"golden": math.pi / GOLDEN_RATIO, "tiny-golden": math.pi / (GOLDEN_RATIO + TINY_GOLDEN_INDEX - 1),
             "uniform": math.pi / spokes}
    if ordering not in steps:
        raise ValueError(f"unknown radial ordering {ordering!r}; valid: {', '.join(steps)}")
    offset = float(as_generator(rng).uniform(0, math.pi))
    angles = offset + steps[ordering] * np.arange(spokes)
    half = min(shape) / 2
    radius = np.arange(-half, half, READOUT_STEP)
    directions = np.stack([np.cos(angles), np.sin(angles)], axis=-1) * _scale(shape)
    coords = (radius[None, :, None] * directions[:, None, :]).astype(np.float32)
    kind = {"golden": "radial", "tiny-golden": "radial-tiny-golden", "uniform": "radial-uniform"}[ordering]
    nyquist = nyquist_shots(kind, shape)
    params = {"spokes": spokes, "ordering": ordering, "angle_step": steps[ordering], "angle_offset": offset,
              "nyquist_shots": round(nyquist, 1)}
    return TrajectoryMask(coords, tuple(shape), kind, spokes / nyquist, spokes / nyquist, params)


def _arm(size: int) -> np.ndarray:
    """One variable-density arm from the centre to radius ``size / 2``, as complex
    ``r exp(i theta)`` sampled 0.5/FOV apart along its length. With ``K_n = 3 size / 16``
    arms the spacing between neighbouring arms at radius r would be
    ``d(r) = 1/c + (1 - 1/c) (r / R)^2`` (``c = K_n / 4``), so each arm grows by
    ``K_n d(r)`` per turn: ``d theta / d r = 2 pi / (K_n d(r))``."""
    outer = size / 2
    arms = 3 * size / 16
    centre = arms / 4
    radius = np.linspace(0, outer, 20 * size + 1)
    spacing = 1 / centre + (1 - 1 / centre) * (radius / outer) ** 2
    slope = 2 * math.pi / (arms * spacing)
    theta = np.concatenate([[0.0], np.cumsum((slope[1:] + slope[:-1]) / 2 * np.diff(radius))])
    length = np.concatenate([[0.0], np.cumsum(np.hypot(np.diff(radius), radius[1:] * np.diff(theta)))])
    positions = np.arange(0, length[-1], READOUT_STEP)
    r = np.interp(positions, length, radius)
    return r * np.exp(1j * np.interp(positions, length, theta))


def spiral_trajectory(shape: tuple[int, int], interleaves: int, rng: int | np.random.Generator = 0) -> TrajectoryMask:
    """A variable-density spiral: ``interleaves`` copies of one arm (:func:`_arm`),
    rotated ``2 pi / K`` apart and together by a seeded angle.

    Shapes
    ------
    returns ``coords`` ``(interleaves, samples, 2)``.
    """
    if interleaves < 1:
        raise ValueError(f"a spiral needs at least one interleave, got {interleaves}")
    offset = float(as_generator(rng).uniform(0, 2 * math.pi))
    arm = _arm(min(shape))
    rotations = np.exp(1j * (offset + 2 * math.pi * np.arange(interleaves) / interleaves))
    points = rotations[:, None] * arm[None, :]
    coords = (np.stack([points.real, points.imag], axis=-1) * _scale(shape)).astype(np.float32)
    nyquist = nyquist_shots("spiral", shape)
    params = {"interleaves": interleaves, "angle_offset": offset, "nyquist_shots": round(nyquist, 1),
              "centre_oversampling": round(nyquist / 4, 2)}
    return TrajectoryMask(coords, tuple(shape), "spiral", interleaves / nyquist, interleaves / nyquist, params)


def make_trajectory(preset: str | float, shape: tuple[int, int], kind: str = "radial",
                    seed: int | np.random.Generator = 0) -> TrajectoryMask:
    """A trajectory from a preset: ``"10pct"`` (that fraction of Nyquist at the edge),
    ``"40spokes"`` (radial kinds) or ``"4interleaves"`` (spiral).

    Shapes
    ------
    returns ``coords`` ``(shots, samples, 2)``.
    """
    if kind not in TRAJECTORY_KINDS:
        raise ValueError(f"unknown trajectory {kind!r}; valid: {', '.join(TRAJECTORY_KINDS)}")
    if len(shape) != 2 or min(shape) < 4:
        raise ValueError(f"trajectory grid must be (H, W) with H, W >= 4, got {tuple(shape)}")
    shots = shots_for(preset, kind, shape)
    if kind == "spiral":
        result = spiral_trajectory(tuple(shape), shots, seed)
    else:
        ordering = {"radial": "golden", "radial-uniform": "uniform", "radial-tiny-golden": "tiny-golden"}[kind]
        result = radial_trajectory(tuple(shape), shots, seed, ordering)
    target = parse_preset(preset) if not (isinstance(preset, str) and _COUNT.match(preset)) else result.ratio
    result.params["preset"] = preset if isinstance(preset, str) else f"{target * 100:g}pct"
    if not isinstance(seed, np.random.Generator):
        result.params["seed"] = int(seed)
    return TrajectoryMask(result.coords, result.shape, result.kind, target, result.ratio, result.params)
