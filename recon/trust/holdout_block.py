"""Estimated error without a reference for super-resolution: the hold-out of a
``lowres`` mask (one central block, nothing measured outside), used by
:mod:`recon.trust.holdout`.

There is nothing outside a calibration block to hold out, and a block shrunk by a few
rings is a different SR factor, which learned models trained for 2x and 4x mishandle.
So each fold is the same task at a smaller scale: the central ``g x g`` part of the
measured block (fold k: ``g`` is the block's side less ``k / 16`` of it) is the
"full-resolution" k-space, its central ``g / F`` block the "measurement" (``F`` the
mask's own factor per axis; coil maps resampled to ``g``), and the method's prediction
of the ring between them, which was measured, gives the fraction of the signal it
misses at each relative distance ``t`` beyond an edge, over the same range of ``t`` as
the real task. The energy beyond the real edge is extrapolated from the measured
block's spectrum (a power law of energy per point against ring distance), and the
estimate is their product summed over the unmeasured points (see
:func:`nmse_from_block`), plus the reconstruction's misfit on the measured block. For
zero-filled the missed fraction is exactly 1. Calibrated like the others, with lines
``family:block``.
"""

from __future__ import annotations

import numpy as np
import torch

from physics.operators import sampling_operator


def block_shape(mask: np.ndarray) -> tuple[int, int] | None:
    """``(h, w)`` of a super-resolution (``lowres``) mask: one filled rectangle centred
    on the k-space centre (as :func:`masks.base.centre_slice` places it) that leaves
    part of the grid unmeasured; None for any other mask."""
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    h, w = int(rows[-1] - rows[0] + 1), int(columns[-1] - columns[0] + 1)
    if int(mask.sum()) != h * w or (h, w) == (height, width):
        return None
    if rows[0] != height // 2 - h // 2 or columns[0] != width // 2 - w // 2:
        return None
    return h, w


def block_bins(shape: tuple[int, int], block: tuple[int, int]) -> tuple[np.ndarray, int]:
    """Ring index of every k-space point around a central block, and the block's edge
    ``R``: the Chebyshev distance from the centre over the axes the block does not fill,
    each normalised to the block's half side, times ``R``, the smaller half side (so a
    ring is one grid point wide along the block's narrower axis). Bins below ``R`` are
    measured; the unmeasured points start at ``R``."""
    scaled = []
    edge = min(side // 2 for side, size in zip(block, shape) if side < size)
    for axis, (side, size) in enumerate(zip(block, shape)):
        if side < size:
            distance = np.abs(np.arange(size) - size // 2) * edge / (side / 2)
            scaled.append(distance[:, None] if axis == 0 else distance[None, :])
    bins = np.broadcast_to(np.maximum.reduce(np.broadcast_arrays(*scaled)) if len(scaled) > 1 else scaled[0], shape)
    return np.floor(bins + 1e-9).astype(int), edge


def block_folds(mask: np.ndarray, folds: int = 4) -> list[np.ndarray]:
    """The folds of a super-resolution block (see the module): fold k (0 to ``folds - 1``)
    is the central ``g_k`` part of the block (``g_k``: the block's side less ``k / 16`` of
    it, a multiple of twice the factor) less its central ``g_k / F`` block, returned as
    that ring (the points the fold's reconstruction predicts); the ring's outer and
    inner edges give the fold's grid and measurement.

    Shapes
    ------
    mask ``(H, W)`` bool (a lowres mask); returns ``folds`` bool arrays ``(H, W)``.
    """
    mask = np.asarray(mask, dtype=bool)
    grids = block_grids(mask)
    if len(grids) < folds:
        raise ValueError(f"the super-resolution block is too small for {folds} hold-out folds (at most {len(grids)})")
    rings = []
    for grid, inner in grids[:folds]:
        ring = np.zeros(mask.shape, dtype=bool)
        ring[_centred(mask.shape, grid)] = True
        ring[_centred(mask.shape, inner)] = False
        rings.append(ring)
    return rings


def _centred(shape: tuple[int, int], extent: tuple[int, int]) -> tuple[slice, slice]:
    return tuple(slice(size // 2 - side // 2, size // 2 - side // 2 + side) for size, side in zip(shape, extent))


def block_grids(mask: np.ndarray) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Every usable fold of a super-resolution block: ``(grid, inner block)`` sizes, the
    grid shrinking by sixteenths of the block, per axis a multiple of ``2 F`` (``F``:
    the grid's size over the block's, 1 along an axis the block fills) with an inner
    block of at least 4 points."""
    block = block_shape(mask)
    factors = [size / side for size, side in zip(mask.shape, block)]
    grids = []
    for step in range(8):
        grid, inner = [], []
        for side, factor in zip(block, factors):
            if factor == 1:
                grid.append(side), inner.append(side)
                continue
            unit = 2 * max(1, round(factor))
            extent = int(side * (1 - step / 16)) // unit * unit
            grid.append(extent), inner.append(int(round(extent / factor / 2)) * 2)
        if min(inner) < 4 or any(i >= g for i, g, f in zip(inner, grid, factors) if f > 1):
            break
        if not grids or grids[-1][0] != tuple(grid):
            grids.append((tuple(grid), tuple(inner)))
    return grids


def block_residuals(reconstructor, kspace: torch.Tensor, coil_maps: torch.Tensor | None, folds: list[np.ndarray],
                     distance: np.ndarray, bins: int) -> list[np.ndarray]:
    """:func:`fold_residuals` of a super-resolution block: each fold's ring (see
    :func:`block_folds`) is predicted from its inner block on the fold's own grid. A
    third row holds the ring's measured energy per bin."""
    from physics.espirit import resize_complex

    result = []
    for ring in folds:
        rows, columns = np.flatnonzero(ring.any(axis=1)), np.flatnonzero(ring.any(axis=0))
        grid = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(columns[0]), int(columns[-1]) + 1))
        inner = torch.from_numpy(~ring[grid])
        data = kspace[..., grid[0], grid[1]]
        maps = None if coil_maps is None else resize_complex(coil_maps[0], tuple(inner.shape))[None]
        with torch.no_grad():
            estimate = reconstructor.reconstruct(data * inner, inner, maps)
        full = sampling_operator(torch.ones_like(inner), maps)
        error, signal = np.zeros(ring.shape), np.zeros(ring.shape)
        error[grid] = (full(estimate.to(torch.complex64)) - data).abs().pow(2).sum(dim=(0, 1)).cpu().numpy()
        signal[grid] = data.abs().pow(2).sum(dim=(0, 1)).cpu().numpy()
        result.append(np.stack([np.bincount(distance[ring], minlength=bins).astype(float),
                                np.bincount(distance[ring], weights=error[ring], minlength=bins),
                                np.bincount(distance[ring], weights=signal[ring], minlength=bins)]))
    return result


def measured_spectrum(kspace: torch.Tensor, mask: np.ndarray) -> np.ndarray:
    """Count and energy (all coils) of the measured points of a super-resolution block in
    each ring (:func:`block_bins`): what :func:`nmse_from_block` extrapolates.

    Shapes
    ------
    kspace ``(1, C, H, W)``; mask ``(H, W)`` bool; returns ``(2, bins)``.
    """
    mask = np.asarray(mask, dtype=bool)
    distance = block_bins(mask.shape, block_shape(mask))[0]
    energy = kspace.abs().pow(2).sum(dim=(0, 1)).cpu().numpy().astype(np.float64)
    bins = int(distance.max()) + 1
    return np.stack([np.bincount(distance[mask], minlength=bins).astype(float),
                     np.bincount(distance[mask], weights=energy[mask], minlength=bins)])


MAX_MISSED = 1.5
"""Cap of the missed fraction extrapolated beyond a super-resolution block (a method may
add error beyond the signal it misses, but not without bound)."""


def nmse_from_block(residuals: list[np.ndarray], spectrum: np.ndarray, unmeasured: np.ndarray,
                    energy: float, inside: float = 0.0) -> list[float]:
    """Raw NMSE estimate of every fold of a super-resolution block (see the module).

    - The energy per unmeasured point: a power law ``exp(a) (d + 0.5)^b`` of ring ``d``,
      fitted (weighted least squares) to the measured spectrum over the outer three
      quarters of the block's rings.
    - The fraction of the signal a method misses at relative distance ``t`` beyond an
      edge: a power law ``c t^p`` (``p`` in [0, 3], at most :data:`MAX_MISSED`), fitted to
      every fold's held-out rings (error over measured energy, ``t`` from that fold's
      own edge).
    - Their product summed over the unmeasured points, scaled per fold by its observed
      to predicted error, plus ``inside`` (the full reconstruction's misfit on the
      measured block, zero for hard data consistency), relative to ``energy``.

    Shapes
    ------
    residuals: per fold ``(3, bins)`` (:func:`fold_residuals` of a block: counts, error
    and measured energy of the fold's ring); spectrum ``(2, bins)``
    (:func:`measured_spectrum`); unmeasured ``(bins,)`` point counts.
    """
    counts, sums = spectrum
    rings = np.arange(len(counts))
    edge = int(np.flatnonzero(unmeasured > 0)[0]) if (unmeasured > 0).any() else len(counts)
    per_point = sums / np.maximum(counts, 1)
    x = np.log(rings + 0.5)
    fitted = (counts > 0) & (sums > 0) & (rings >= max(1, edge // 4)) & (rings < edge)
    intercept, slope = _power_law(x, np.log(np.maximum(per_point, 1e-30)), counts * fitted, (-8.0, 0.0))
    law = np.exp(intercept + slope * x)
    samples = []  # (log t, log missed, weight) of every held-out ring of every fold
    for held_counts, held_error, held_signal in residuals:
        held = np.flatnonzero((held_counts > 0) & (held_signal > 0))
        if held.size == 0:
            continue
        own_edge = held[0]
        t = (held + 0.5 - own_edge) / max(own_edge, 1)
        samples.append(np.stack([np.log(t), np.log(np.maximum(held_error[held] / held_signal[held], 1e-6)),
                                 held_counts[held]]))
    if samples:
        log_t, log_missed, weight = np.concatenate(samples, axis=1)
        missed_law = _power_law(log_t, log_missed, weight, (0.0, 3.0))
    else:
        missed_law = (0.0, 0.0)

    def missed(t: np.ndarray) -> np.ndarray:
        return np.minimum(np.exp(missed_law[0] + missed_law[1] * np.log(np.maximum(t, 1e-6))), MAX_MISSED)

    total = float((law * unmeasured * missed((rings + 0.5 - edge) / max(edge, 1))).sum())
    estimates = []
    for held_counts, held_error, held_signal in residuals:
        held = np.flatnonzero(held_counts > 0)
        own_edge = held[0] if held.size else edge
        predicted = float((held_signal * missed((rings + 0.5 - own_edge) / max(own_edge, 1))).sum())
        ratio = float(held_error.sum()) / predicted if predicted > 0 else 1.0
        estimates.append((total * ratio + inside) / max(energy, 1e-30))
    return estimates


def _power_law(x: np.ndarray, y: np.ndarray, weight: np.ndarray, slopes: tuple[float, float]) -> tuple[float, float]:
    """``(intercept, slope)`` of ``y = intercept + slope x``, weighted by ``weight``
    (rows of zero weight left out), the slope clipped to ``slopes`` and the intercept
    refitted; with fewer than 3 rows or no spread in ``x``, a constant; with no row, a
    negligible constant."""
    used = weight > 0
    if used.sum() >= 3 and np.ptp(x[used]) > 0:
        slope = float(np.clip(np.polyfit(x[used], y[used], 1, w=np.sqrt(weight[used]))[0], *slopes))
    else:
        slope = 0.0
    intercept = float(np.average(y[used] - slope * x[used], weights=weight[used])) if used.any() else -69.0
    return intercept, slope


def block_misfit(image: torch.Tensor, kspace: torch.Tensor, mask: torch.Tensor, coil_maps: torch.Tensor | None) -> float:
    """``||M (F S x - y)||^2``: a reconstruction's error on the measured block (all
    coils), part of its error that a super-resolution hold-out sees directly.

    Shapes
    ------
    image ``(1, H, W)``; kspace ``(1, C, H, W)``; mask ``(H, W)``; coil_maps ``(1, C, H, W)`` or None.
    """
    operator = sampling_operator(mask, coil_maps)
    return float((operator(image.to(torch.complex64)) - kspace * mask).abs().pow(2).sum())
