"""2-D masks over the whole k-space grid: random, variable-density, rasterised radial, low-resolution.

They model acquisitions with two phase-encode directions (3-D Cartesian) or
non-Cartesian sampling rasterised onto the grid. ``random2d``, ``vd2d`` and
``radial`` sample exactly ``round(ratio * H * W)`` points; ``lowres`` takes the
closest rectangle (within 0.5 % on grids of 64x64 and larger).
"""

from __future__ import annotations

import math

import numpy as np

from masks.base import Mask, as_generator, calibration_size, centre_slice, weighted_choice


def default_center_fraction_2d(ratio: float) -> float:
    """Side of the fully sampled centre square, as a fraction of ``min(H, W)``.

    ``sqrt(0.1 * ratio)``: the square holds about 10 % of the samples. On 256x256,
    10pct -> 26x26, 50pct -> 57x57, enough for ESPIRiT calibration.
    """
    return math.sqrt(0.1 * ratio)


def _target_count(shape: tuple[int, int], ratio: float) -> int:
    return min(shape[0] * shape[1], max(1, round(ratio * shape[0] * shape[1])))


def _radius(shape: tuple[int, int]) -> np.ndarray:
    """Distance of each grid point from the DC sample, normalised so the edge midpoints are 1."""
    ky = (np.arange(shape[0]) - shape[0] // 2) / (shape[0] / 2)
    kx = (np.arange(shape[1]) - shape[1] // 2) / (shape[1] / 2)
    return np.sqrt(ky[:, None] ** 2 + kx[None, :] ** 2)


def _centre_square(shape: tuple[int, int], ratio: float, center_fraction: float | None
                   ) -> tuple[float, int, int, np.ndarray]:
    """``(center_fraction, count, side, centre)``: the family's centre fraction (its
    default when None), the points to sample, and the fully sampled centre square (no
    larger than the count allows) as a bool ``(H, W)`` array."""
    if center_fraction is None:
        center_fraction = default_center_fraction_2d(ratio)
    count = _target_count(shape, ratio)
    side = min(round(center_fraction * min(shape)), math.isqrt(count))
    centre = np.zeros(shape, dtype=bool)
    centre[centre_slice(shape[0], side), centre_slice(shape[1], side)] = True
    return center_fraction, count, side, centre


def _with_centre(
    shape: tuple[int, int],
    ratio: float,
    gen: np.random.Generator,
    center_fraction: float | None,
    weights: np.ndarray,
    kind: str,
    extra: dict,
) -> Mask:
    center_fraction, count, side, array = _centre_square(shape, ratio, center_fraction)
    outer = np.flatnonzero(~array)
    chosen = weighted_choice(outer, weights.ravel()[outer], count - int(array.sum()), gen)
    array.ravel()[chosen] = True
    params = {"center_fraction": center_fraction, "center_side": side, "points": count, **extra}
    return Mask(array, kind, ratio, float(array.mean()), calibration_size(array), params)


def random2d_mask(
    shape: tuple[int, int],
    ratio: float,
    rng: int | np.random.Generator,
    center_fraction: float | None = None,
) -> Mask:
    """Uniformly random grid points plus a fully sampled centre square.

    Shapes
    ------
    returns ``Mask.array`` of ``shape = (H, W)``.
    """
    weights = np.ones(shape)
    return _with_centre(shape, ratio, as_generator(rng), center_fraction, weights, "random2d", {})


def vd2d_mask(
    shape: tuple[int, int],
    ratio: float,
    rng: int | np.random.Generator,
    center_fraction: float | None = None,
    sigma: float = 0.35,
    floor: float = 0.02,
) -> Mask:
    """Variable-density random points: Gaussian density in the k-space radius.

    Points are drawn without replacement with weight ``exp(-r^2 / (2 sigma^2)) + floor``,
    ``r`` being the radius normalised to 1 at the edge midpoints.

    Shapes
    ------
    returns ``Mask.array`` of ``shape = (H, W)``.
    """
    weights = np.exp(-(_radius(shape) ** 2) / (2 * sigma**2)) + floor
    extra = {"sigma": sigma, "floor": floor}
    return _with_centre(shape, ratio, as_generator(rng), center_fraction, weights, "vd2d", extra)


POISSON_MAX_RATIO = 0.55
"""Above this ratio a Poisson-disc mask is drawn by density alone (see :func:`poisson_mask`)."""
POISSON_SEARCH = 14
"""Most Poisson-disc draws the slope bisection of :func:`poisson_mask` makes."""


def _disc_points(shape: tuple[int, int], side: int, slope: float, seed: int) -> np.ndarray:
    """One Poisson-disc draw: minimum distance ``(1 + slope * r)`` grid points, ``r`` the
    radius outside the ``side`` square (1 at the edge midpoints), corners beyond r = 1 cut.
    Bridson's dart throwing is SigPy's (compiled with numba)."""
    from sigpy.mri.samp import _poisson

    height, width = shape
    ys, xs = np.mgrid[:height, :width]
    ry = np.maximum(np.abs(ys - height / 2) - side / 2, 0)
    rx = np.maximum(np.abs(xs - width / 2) - side / 2, 0)
    radius = np.sqrt((ry / max(ry.max(), 1e-9)) ** 2 + (rx / max(rx.max(), 1e-9)) ** 2)
    scale = 1 + radius * slope
    drawn = _poisson(width, height, 30, np.clip(scale * width / max(shape), 1, None),
                     np.clip(scale * height / max(shape), 1, None), (side, side), seed)
    return (np.asarray(drawn) > 0) & (radius < 1)


def poisson_mask(
    shape: tuple[int, int],
    ratio: float,
    rng: int | np.random.Generator,
    center_fraction: float | None = None,
) -> Mask:
    """Variable-density Poisson-disc points (the pattern of BART ``poisson`` and of
    scanners' compressed-sensing protocols), plus a fully sampled centre square.

    The minimum distance between points grows as ``1 + s r`` with the radius; ``s`` is
    found by bisection (at most :data:`POISSON_SEARCH` draws) so the count comes close
    to the target, which is then met exactly by dropping random points outside the
    centre, or adding points drawn with the density ``1 / (1 + 4 r)``. Above
    :data:`POISSON_MAX_RATIO` the disc spacing would fall under 1.4 grid points, there is
    no disc pattern left to draw, so all points are drawn with that density.
    ``center_fraction=0`` gives no calibration block. Randomness comes from ``rng`` only.

    Shapes
    ------
    returns ``Mask.array`` of ``shape = (H, W)``.
    """
    gen = as_generator(rng)
    center_fraction, count, side, centre = _centre_square(shape, ratio, center_fraction)
    array = centre.copy()
    if ratio <= POISSON_MAX_RATIO:
        seed, low, high = int(gen.integers(2**31 - 1)), 0.0, float(max(shape))
        best = None
        for _ in range(POISSON_SEARCH):
            slope = (low + high) / 2
            drawn = _disc_points(shape, side, slope, seed) | centre
            if best is None or abs(int(drawn.sum()) - count) < abs(int(best.sum()) - count):
                best = drawn
            if abs(int(drawn.sum()) - count) <= 0.02 * count:
                break
            low, high = (slope, high) if drawn.sum() > count else (low, slope)
        array = best
    excess = int(array.sum()) - count
    if excess > 0:
        removable = np.flatnonzero(array & ~centre)
        array.ravel()[gen.choice(removable, size=min(excess, removable.size), replace=False)] = False
    elif excess < 0:
        free = np.flatnonzero(~array)
        array.ravel()[weighted_choice(free, 1.0 / (1.0 + 4.0 * _radius(shape).ravel()[free]), -excess, gen)] = True
    params = {"center_fraction": center_fraction, "center_side": side, "points": count}
    return Mask(array, "poisson", ratio, float(array.mean()), calibration_size(array), params)


def _spokes(shape: tuple[int, int], n_spokes: int, offset: float) -> np.ndarray:
    height, width = shape
    reach = math.hypot(height, width) / 2
    t = np.arange(-reach, reach + 0.5, 0.5)
    angles = offset + np.pi * np.arange(n_spokes) / n_spokes
    ys = np.rint(height // 2 + np.outer(np.sin(angles), t)).astype(int).ravel()
    xs = np.rint(width // 2 + np.outer(np.cos(angles), t)).astype(int).ravel()
    inside = (ys >= 0) & (ys < height) & (xs >= 0) & (xs < width)
    array = np.zeros(shape, dtype=bool)
    array[ys[inside], xs[inside]] = True
    return array


def radial_mask(
    shape: tuple[int, int],
    ratio: float,
    rng: int | np.random.Generator,
    center_fraction: float | None = None,
) -> Mask:
    """Straight spokes through the k-space centre at uniform angles, rasterised onto the
    Cartesian grid (``radial-raster``; true radial sampling is ``radial``, a trajectory
    in :mod:`masks.trajectories`).

    The number of spokes is the smallest that reaches the target count; the excess
    points farthest from the centre are then dropped so the count is exact.
    ``center_fraction`` is accepted for a uniform interface and ignored: radial
    sampling is naturally dense at the centre.

    Shapes
    ------
    returns ``Mask.array`` of ``shape = (H, W)``.
    """
    gen = as_generator(rng)
    count = _target_count(shape, ratio)
    offset = float(gen.uniform(0, np.pi))
    low, high = 1, 4 * max(shape)
    while low < high:
        middle = (low + high) // 2
        if _spokes(shape, middle, offset).sum() >= count:
            high = middle
        else:
            low = middle + 1
    array = _spokes(shape, low, offset)
    excess = int(array.sum()) - count
    if excess > 0:
        points = np.flatnonzero(array)
        order = np.lexsort((gen.random(points.shape[0]), -_radius(shape).ravel()[points]))
        array.ravel()[points[order[:excess]]] = False
    params = {"spokes": low, "angle_offset": offset, "points": count}
    return Mask(array, "radial-raster", ratio, float(array.mean()), calibration_size(array), params)


def lowres_mask(
    shape: tuple[int, int],
    ratio: float,
    rng: int | np.random.Generator | None = None,
    center_fraction: float | None = None,
) -> Mask:
    """A central k-space block: the low-resolution acquisition of super-resolution.

    Among blocks ``h x w`` within 0.2 % of ``ratio * H * W`` points, the one
    closest to the grid's aspect ratio is used (81x81 for 10pct on 256x256). A
    rectangle cannot hit every count: on grids smaller than about 64x64 the
    closest block may miss the target by more than 0.5 %. A ratio of ``1 / F**2`` on a grid
    whose sides F divides (the ``lowres-Fx`` presets) gives exactly the ``H/F x W/F``
    block. It is deterministic; ``rng`` and
    ``center_fraction`` are accepted for a uniform interface.

    Shapes
    ------
    returns ``Mask.array`` of ``shape = (H, W)``.
    """
    height, width = shape
    count = _target_count(shape, ratio)
    factor = 1.0 / np.sqrt(ratio)
    if abs(factor - round(factor)) < 1e-9 and height % round(factor) == 0 and width % round(factor) == 0:
        # A ratio of 1/F^2 on a grid that F divides is super-resolution by F: the
        # H/F x W/F block, whatever the aspect ratio.
        h, w = height // round(factor), width // round(factor)
        array = np.zeros(shape, dtype=bool)
        array[centre_slice(height, h), centre_slice(width, w)] = True
        return Mask(array, "lowres", ratio, float(array.mean()), (h, w), {"block": [h, w], "points": h * w, "factor": round(factor)})
    best = None
    for h in range(1, height + 1):
        w = min(width, max(1, round(count / h)))
        # Within 0.2 % of the grid, prefer the block closest to the grid's aspect.
        off = abs(h * w - count)
        score = (off > 0.002 * height * width, abs(h / w - height / width), off)
        if best is None or score < best[0]:
            best = (score, h, w)
    _, h, w = best
    array = np.zeros(shape, dtype=bool)
    array[centre_slice(height, h), centre_slice(width, w)] = True
    params = {"block": [h, w], "points": count}
    return Mask(array, "lowres", ratio, float(array.mean()), (h, w), params)
