"""1-D Cartesian masks: whole phase-encode lines (columns of W), as in fastMRI.

Every family samples exactly ``round(ratio * W)`` lines (at least one), so the
achieved ratio is within half a line of the target. A centre block of
``round(center_fraction * W)`` lines around the DC line is always sampled.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from masks.base import Mask, as_generator, centre_slice, weighted_choice


def default_center_fraction_1d(ratio: float) -> float:
    """Centre block as a fraction of W: ``min(0.08, 0.4 * ratio)``.

    10pct -> 0.04 (10 of 256 lines), 50pct -> 0.08 (20 of 256 lines). This follows
    fastMRI's pairs (4x: 0.08, 8x: 0.04) and keeps the centre under half the lines.
    """
    return min(0.08, 0.4 * ratio)


def _counts(width: int, ratio: float, center_fraction: float | None) -> tuple[int, int, float]:
    if center_fraction is None:
        center_fraction = default_center_fraction_1d(ratio)
    if not 0.0 <= center_fraction <= 1.0:
        raise ValueError(f"center_fraction must be in [0, 1], got {center_fraction}")
    n_lines = min(width, max(1, round(ratio * width)))
    n_center = min(n_lines, max(1, round(center_fraction * width)))
    return n_lines, n_center, center_fraction


def _finish(
    shape: tuple[int, int], columns: np.ndarray, kind: str, ratio: float, n_center: int, params: dict
) -> Mask:
    array = np.zeros(shape, dtype=bool)
    array[:, columns] = True
    return Mask(
        array=array,
        kind=kind,
        target_ratio=ratio,
        ratio=float(array.mean()),
        center=(shape[0], n_center),
        params=params,
    )


def _split(width: int, n_center: int) -> tuple[np.ndarray, np.ndarray]:
    centre = np.arange(width)[centre_slice(width, n_center)]
    outer = np.setdiff1d(np.arange(width), centre)
    return centre, outer


def _line_mask(
    shape: tuple[int, int],
    ratio: float,
    rng: int | np.random.Generator,
    center_fraction: float | None,
    kind: str,
    choose: Callable[[np.ndarray, int, np.random.Generator], np.ndarray],
    extra: dict | None = None,
) -> Mask:
    """Centre block plus ``choose(outer_lines, count, generator)`` lines outside it."""
    gen = as_generator(rng)
    n_lines, n_center, center_fraction = _counts(shape[1], ratio, center_fraction)
    centre, outer = _split(shape[1], n_center)
    chosen = choose(outer, n_lines - n_center, gen) if n_lines > n_center else outer[:0]
    params = {"center_fraction": center_fraction, "lines": n_lines, "center_lines": n_center, **(extra or {})}
    return _finish(shape, np.concatenate([centre, chosen]), kind, ratio, n_center, params)


def cartesian_mask(
    shape: tuple[int, int],
    ratio: float,
    rng: int | np.random.Generator,
    center_fraction: float | None = None,
) -> Mask:
    """Uniformly random phase-encode lines plus a fully sampled centre block.

    Shapes
    ------
    returns ``Mask.array`` of ``shape = (H, W)``; columns of W are sampled.
    """

    def choose(outer, count, gen):
        return gen.choice(outer, size=count, replace=False)

    return _line_mask(shape, ratio, rng, center_fraction, "cartesian", choose)


def equispaced_mask(
    shape: tuple[int, int],
    ratio: float,
    rng: int | np.random.Generator,
    center_fraction: float | None = None,
) -> Mask:
    """Equally spaced lines outside a centre block, with a random offset.

    Shapes
    ------
    returns ``Mask.array`` of ``shape = (H, W)``.
    """

    def choose(outer, count, gen):
        step = outer.shape[0] / count
        positions = np.floor(gen.uniform(0, step) + step * np.arange(count)).astype(int)
        return outer[np.clip(positions, 0, outer.shape[0] - 1)]

    return _line_mask(shape, ratio, rng, center_fraction, "equispaced", choose)


def gaussian1d_mask(
    shape: tuple[int, int],
    ratio: float,
    rng: int | np.random.Generator,
    center_fraction: float | None = None,
    sigma_fraction: float = 0.2,
) -> Mask:
    """Variable-density lines drawn with Gaussian weights around the centre.

    The centre block is always sampled; the other lines are drawn without
    replacement with weight ``exp(-d^2 / (2 (sigma_fraction W)^2))`` of the distance
    ``d`` from the DC line.

    Shapes
    ------
    returns ``Mask.array`` of ``shape = (H, W)``.
    """
    width = shape[1]

    def choose(outer, count, gen):
        weights = np.exp(-((outer - width // 2) ** 2) / (2 * (sigma_fraction * width) ** 2))
        return weighted_choice(outer, weights, count, gen)

    extra = {"sigma_fraction": sigma_fraction}
    return _line_mask(shape, ratio, rng, center_fraction, "gaussian1d", choose, extra)
