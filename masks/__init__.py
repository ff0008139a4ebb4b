"""Undersampling: 1-D Cartesian lines and 2-D grid patterns (:class:`Mask`, ``Npct``
presets), the CAIPI lattice of 3-D scans' (ky, kz) plane, and non-Cartesian trajectories (:class:`TrajectoryMask`: radial and spiral,
``Npct``, ``Nspokes`` or ``Ninterleaves`` presets).

``make_mask("10pct", (256, 256), kind="cartesian", seed=0)`` returns a :class:`Mask`;
``make_sampling`` returns either, by kind. A generator takes an explicit seed or
``numpy.random.Generator`` and never touches global random state.
"""

from __future__ import annotations

import numpy as np

from masks.base import (
    KINDS,
    ONE_D_KINDS,
    TWO_D_KINDS,
    Mask,
    calibration_region,
    calibration_size,
    lowres_factor,
    parse_preset,
    preset_kind,
    seed_from_name,
    split_family,
)
from masks.caipi import caipi_mask
from masks.grid import lowres_mask, poisson_mask, radial_mask, random2d_mask, vd2d_mask
from masks.lines import cartesian_mask, equispaced_mask, gaussian1d_mask
from masks.trajectories import TRAJECTORY_KINDS, TrajectoryMask, make_trajectory

GENERATORS = {
    "cartesian": cartesian_mask,
    "equispaced": equispaced_mask,
    "gaussian1d": gaussian1d_mask,
    "random2d": random2d_mask,
    "vd2d": vd2d_mask,
    "poisson": poisson_mask,
    "caipi": caipi_mask,
    "radial-raster": radial_mask,
    "lowres": lowres_mask,
}


ALL_KINDS = KINDS + TRAJECTORY_KINDS
"""Every sampling family: the Cartesian grid masks and the non-Cartesian trajectories."""


def is_trajectory(kind: str) -> bool:
    return kind in TRAJECTORY_KINDS


def make_sampling(preset: str | float, shape: tuple[int, int], kind: str | None = None,
                  seed: int | np.random.Generator = 0, center_fraction: float | None = None) -> Mask | TrajectoryMask:
    """A :class:`Mask` for grid kinds, a :class:`TrajectoryMask` for trajectory kinds."""
    if kind in TRAJECTORY_KINDS:
        return make_trajectory(preset, shape, kind, seed=seed)
    return make_mask(preset, shape, kind, seed=seed, center_fraction=center_fraction)


def make_mask(
    preset: str | float,
    shape: tuple[int, int],
    kind: str | None = None,
    seed: int | np.random.Generator = 0,
    center_fraction: float | None = None,
) -> Mask:
    """Make a mask from a preset such as ``"10pct"``.

    Parameters
    ----------
    preset : str or float
        ``"Npct"`` (N/100 of the grid points sampled, centre included), ``"lowres-Fx"``
        (the central ``H/F x W/F`` block: super-resolution by F) or a ratio.
    shape : (int, int)
        ``(H, W)``; H is the fully sampled readout axis for 1-D kinds.
    kind : str, optional
        One of :data:`KINDS` (default ``cartesian``; ``lowres`` for a ``lowres-Fx`` preset).
    seed : int or numpy.random.Generator
        Explicit randomness.
    center_fraction : float, optional
        Override the family's default centre size.

    Shapes
    ------
    returns ``Mask.array`` ``(H, W)`` bool.
    """
    kind = preset_kind(preset, kind)
    if kind in TRAJECTORY_KINDS:
        raise ValueError(f"{kind!r} is a non-Cartesian trajectory, not a grid mask: use make_trajectory or make_sampling")
    if kind not in GENERATORS:
        raise ValueError(f"unknown mask type {kind!r}; valid types: {', '.join(KINDS)}")
    if len(shape) != 2 or min(shape) < 2:
        raise ValueError(f"mask shape must be (H, W) with H, W >= 2, got {tuple(shape)}")
    ratio = parse_preset(preset)
    mask = GENERATORS[kind](tuple(int(s) for s in shape), ratio, seed, center_fraction=center_fraction)
    if not isinstance(seed, np.random.Generator):
        mask.params["seed"] = int(seed)
    mask.params["preset"] = preset if isinstance(preset, str) else f"{ratio * 100:g}pct"
    return mask


__all__ = [
    "ALL_KINDS",
    "GENERATORS",
    "TRAJECTORY_KINDS",
    "TrajectoryMask",
    "is_trajectory",
    "make_sampling",
    "make_trajectory",
    "KINDS",
    "ONE_D_KINDS",
    "TWO_D_KINDS",
    "Mask",
    "calibration_region",
    "calibration_size",
    "split_family",
    "caipi_mask",
    "cartesian_mask",
    "equispaced_mask",
    "gaussian1d_mask",
    "lowres_factor",
    "lowres_mask",
    "make_mask",
    "parse_preset",
    "preset_kind",
    "radial_mask",
    "random2d_mask",
    "seed_from_name",
    "vd2d_mask",
]
