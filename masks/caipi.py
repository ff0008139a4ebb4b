"""CAIPIRINHA-shifted uniform undersampling of the (ky, kz) phase-encode plane.

The pattern vendors ship for 3-D scans (Siemens "CAIPIRINHA", GE "ARC" with a shift,
Philips "SENSE" in two directions): every ``R_y``-th ky line, and on those lines every
``R_z``-th kz position, the kz positions moving by ``shift`` from one sampled ky line to
the next (Breuer et al. 2006). With ``shift`` 0 it is the plain ``R_y x R_z`` lattice.
A separate reference (ACS) scan supplies a fully sampled centre block, as on a scanner.
"""

from __future__ import annotations

import math

import numpy as np

from masks.base import Mask, as_generator, calibration_size, centre_slice

CAIPI_MAX_FACTOR = 64
"""Largest total acceleration ``R_y x R_z`` a preset may ask for."""


def caipi_lattice(shape: tuple[int, int], factors: tuple[int, int], shift: int) -> np.ndarray:
    """The shifted lattice alone: sampled where ``ky % R_y == 0`` and
    ``(kz - shift * (ky // R_y)) % R_z == 0``, counted from the k-space centre so that
    the DC sample is on the lattice.

    Shapes
    ------
    returns bool ``shape = (ny, nz)``.
    """
    rows, columns = factors
    ky = np.arange(shape[0]) - shape[0] // 2
    kz = np.arange(shape[1]) - shape[1] // 2
    on_row = ky % rows == 0
    offset = (ky // rows) * shift
    return on_row[:, None] & ((kz[None, :] - offset[:, None]) % columns == 0)


def factor_pairs(shape: tuple[int, int]) -> list[tuple[int, int]]:
    """``(R_y, R_z)`` pairs a protocol would use, by total acceleration: the two factors
    differ by at most one (2 x 2, 2 x 3, 3 x 3, 3 x 4 ...), the larger along the longer
    axis, as vendors' protocols pick them."""
    pairs = []
    for small in range(1, 9):
        for large in (small, small + 1):
            if small * large <= CAIPI_MAX_FACTOR:
                pairs.append((large, small) if shape[0] >= shape[1] else (small, large))
    return sorted(set(pairs), key=lambda pair: pair[0] * pair[1])


def caipi_mask(
    shape: tuple[int, int],
    ratio: float,
    rng: int | np.random.Generator | None = None,
    center_fraction: float | None = None,
) -> Mask:
    """CAIPI lattice plus a fully sampled centre block (the reference lines).

    The centre block starts at the 2-D families' default side (``sqrt(0.1 ratio)`` of
    the shorter axis; ``center_fraction`` overrides it, 0 for none), at most half the
    target count. The total
    acceleration ``R`` is the smallest integer whose lattice, with that block, stays at
    or under the target count; the block then grows a row or column at a time, the last
    one in part (its points nearest the centre), until the count is met exactly. Without a block the lattice
    alone is returned with ``R = round(1 / ratio)``: a lattice cannot hit every count.
    The shift is ``R_z // 2`` (2 x 2 shift 1, the classic CAIPIRINHA pattern). It is
    deterministic; ``rng`` is accepted for a uniform interface.

    Shapes
    ------
    returns ``Mask.array`` of ``shape = (ny, nz)``.
    """
    if rng is not None:
        as_generator(rng)
    count = min(shape[0] * shape[1], max(1, round(ratio * shape[0] * shape[1])))
    fraction = math.sqrt(0.1 * ratio) if center_fraction is None else center_fraction
    side = min(round(fraction * min(shape)), math.isqrt(count // 2))  # the block leaves room for the lattice
    if side == 0:
        factors = min(factor_pairs(shape), key=lambda pair: abs(math.log(pair[0] * pair[1] * ratio)))
        array = caipi_lattice(shape, factors, factors[1] // 2)
        return _mask(array, ratio, factors, factors[1] // 2, (0, 0), count)
    for factors in factor_pairs(shape):
        lattice = caipi_lattice(shape, factors, factors[1] // 2)
        if int((lattice | _block(shape, side, side)).sum()) <= count:
            break
    else:
        raise ValueError(f"a {ratio:.1%} CAIPI mask of {shape[0]}x{shape[1]} would need an acceleration above "
                         f"{CAIPI_MAX_FACTOR}")
    height, width = side, side
    array = lattice | _block(shape, height, width)
    while int(array.sum()) < count and (height < shape[0] or width < shape[1]):
        grow_rows = height < shape[0] and (height <= width * shape[0] / shape[1] or width >= shape[1])
        bigger = (height + 1, width) if grow_rows else (height, width + 1)
        grown = lattice | _block(shape, *bigger)
        if int(grown.sum()) > count:  # the last row or column only in part: its points nearest the centre
            array = _nearest_centre(array, grown & ~array, count - int(array.sum()))
            break
        array, (height, width) = grown, bigger
    return _mask(array, ratio, factors, factors[1] // 2, (height, width), count)


def _nearest_centre(array: np.ndarray, candidates: np.ndarray, wanted: int) -> np.ndarray:
    """``array`` plus the ``wanted`` points of ``candidates`` nearest the k-space centre."""
    ky, kz = np.nonzero(candidates)
    distance = np.hypot(ky - array.shape[0] // 2, kz - array.shape[1] // 2)
    order = np.argsort(distance, kind="stable")[:wanted]
    result = array.copy()
    result[ky[order], kz[order]] = True
    return result


def _block(shape: tuple[int, int], height: int, width: int) -> np.ndarray:
    block = np.zeros(shape, dtype=bool)
    block[centre_slice(shape[0], height), centre_slice(shape[1], width)] = True
    return block


def _mask(array: np.ndarray, ratio: float, factors: tuple[int, int], shift: int, block: tuple[int, int],
          count: int) -> Mask:
    params = {"acceleration": list(factors), "shift": shift, "reference_block": list(block), "points": count}
    return Mask(array, "caipi", ratio, float(array.mean()), calibration_size(array), params)
