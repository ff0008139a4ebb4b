"""Estimated error without a reference: k-space hold-out cross-validation.

A reconstruction's error lives in the k-space that was not measured. We cannot see it,
but we can imitate it: hold out part of what *was* measured, reconstruct from the rest
with the same method, and compare the prediction with the held-out samples.

**Folds.** The measured points outside the fully sampled calibration block (whole
phase-encode lines for 1-D masks, single points for 2-D masks) are split into K folds,
stratified by distance from the k-space centre, so every fold has the mask's family
and its density profile. The calibration block is never held out (coil maps and the
learned models' conditioning need it, and real unmeasured k-space never lies there).

**From held-out residuals to an image error.** Fold k's prediction error
``e = A x_k - y`` on its held-out points samples the error a reconstruction makes where
nothing was measured, at those points' distances from the centre. Per unit (a line,
or a point; 2-D points averaged in 1-pixel distance rings) the held-out residual energy
of all folds is taken in each distance bin and interpolated linearly in ``log E`` over
``log d`` between the bins that hold held-out units; beyond the first and the last it
follows the power law ``log E(d) = a + b log d`` fitted to them all, from the bin it
reaches (with fewer than 3 such bins, that power law alone). Inward matters most: the
unmeasured lines next to the calibration block hold the largest error, and holding
the level of the innermost held-out line there instead made the first run's estimates
5 dB optimistic. Summed over the *unmeasured* units it estimates the error energy there; each
fold's estimate is that sum scaled by the fold's observed-to-predicted ratio, and
divided by the image's k-space energy it is a raw NMSE estimate. The mean over folds is
the raw estimate and their spread the uncertainty. (Until issue 36 one power law was
fitted to all bins and corrected locally; an image's error spectrum falls off a cliff
where the image has no more detail (a source resampled to a finer grid has an empty
outer k-space), no power law follows it, and the raw estimate was 2 to 8 dB pessimistic
on such subjects for 1-D masks while right on others; the interpolation follows the
held-out spectrum, and the mean |true - raw| over the 1-D and 2-D records of the corpus's
validation and test subjects fell from 4.1 to 2.5 dB. A plain inverse-density
weighting, tried first of all, missed most of the error of 1-D masks.) For multi-coil
data everything is per coil, with the method's own coil maps, and sums run over coils.
When the error is judged against a noise-free object (a simulation's added noise, regime
``noisy``), the held-out samples' coil noise, which the fold never saw, is taken out of
every held-out residual first (:mod:`recon.trust.noise_floor`): on 8-coil data at 30 dB it made
the raw estimate about 8 dB pessimistic on Poisson-disc masks and 3 dB on cartesian ones.

**Bias.** Each fold reconstructs from fewer samples than the real reconstruction, so
the raw estimate is pessimistic, and by a different amount for each kind of method.
:data:`CALIBRATION_FILE` holds a straight line in log-log space per method family
(baseline, cs, learned) and mask dimension, ``log10 NMSE_true = a + b log10 NMSE_raw``,
fitted on the corpus's *validation* subjects by ``python -m benchmarks.trust
--calibrate`` (never on the test subjects, which measure how well the calibrated
estimate works). :func:`calibrate` also takes a ``method:Nd`` line before its family's
when a calibration holds one; without any line the raw estimate is used.

**Super-resolution** (a ``lowres`` mask: one central block, nothing outside it to hold
out): each fold is the same task at a smaller scale, see :mod:`recon.trust.holdout_block`.
**Trajectories** (radial, spiral): whole shots are held out, see
:mod:`recon.trust.holdout_trajectory`; the functions here take a
:class:`physics.nufft.Trajectory` in place of the mask.

Cost: K + 1 reconstructions per slice and method (the full one and one per fold).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from masks.base import calibration_size
from physics.operators import sampling_operator
from recon.trust import holdout_trajectory as trajectories
from recon.trust.calibration import ErrorEstimate, calibrate, checked_interval, psnr_for
from recon.trust.extrapolation import kspace_energy, nmse_from_residuals
from recon.trust.holdout_block import (
    block_bins,
    block_folds,
    block_grids,
    block_misfit,
    block_residuals,
    block_shape,
    measured_spectrum,
    nmse_from_block,
)
from recon.trust.noise_floor import judged_noise_free, noise_floor, subtract_floor

DEFAULT_FOLDS = 4


def mask_dimensions(mask: np.ndarray) -> int:
    """1 when every phase-encode column is either fully sampled or empty (a 1-D line
    mask), else 2."""
    mask = np.asarray(mask, dtype=bool)
    columns = mask.any(axis=0)
    return 1 if bool((mask[:, columns]).all()) else 2


NO_CALIBRATION_SIDE = 4
"""A 1-D mask with fewer contiguous centre lines, or a 2-D mask whose fully sampled
centre is narrower, has no calibration block: kind ``1d-nocal`` / ``2d-nocal``."""


def mask_kind(mask: np.ndarray) -> str:
    """``block`` for a super-resolution mask (:func:`block_shape`), else ``1d`` or ``2d``
    (:func:`mask_dimensions`), with ``-nocal`` when there is no calibration block (its
    hold-out misses the k-space centre's error, so it is calibrated apart): the
    calibration lines are per method family and kind; a trajectory's is ``trajectory``."""
    if isinstance(mask, trajectories.Trajectory):
        return trajectories.KIND
    if block_shape(mask) is not None:
        return "block"
    dimensions = mask_dimensions(mask)
    height, width = calibration_size(mask)
    narrow = (width if dimensions == 1 else min(height, width)) < NO_CALIBRATION_SIDE
    return f"{dimensions}d" + ("-nocal" if narrow else "")


def _distance(shape: tuple[int, int], dimensions: int) -> np.ndarray:
    """Normalised distance of every k-space point from the centre, in [0, ~1.4]:
    ``|kw|`` for 1-D masks, the elliptical radius for 2-D."""
    height, width = shape
    kw = np.abs(np.arange(width) - width // 2) / (width / 2)
    if dimensions == 1:
        return np.broadcast_to(kw[None, :], shape)
    kh = np.abs(np.arange(height) - height // 2) / (height / 2)
    return np.sqrt(kh[:, None] ** 2 + kw[None, :] ** 2)


def calibration_block(mask: np.ndarray) -> np.ndarray:
    """The fully sampled centre (whole columns of it for 1-D masks), never held out.

    Shapes
    ------
    mask ``(H, W)`` bool; returns ``(H, W)`` bool.
    """
    height, width = mask.shape
    h, w = calibration_size(mask)
    block = np.zeros(mask.shape, dtype=bool)
    top, left = height // 2 - h // 2, width // 2 - w // 2
    block[top : top + h, left : left + w] = True
    if mask_dimensions(mask) == 1:
        block[:, left : left + w] = True
    return block


def _units(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """The measured lines (1-D masks: column indices) or points (2-D masks: flat
    indices) outside the calibration block, and the mask's dimension."""
    block = calibration_block(mask)
    if mask_dimensions(mask) == 1:
        return np.flatnonzero(mask.any(axis=0) & ~block.any(axis=0)), 1
    return np.flatnonzero((mask & ~block).ravel()), 2


def holdout_units(mask: np.ndarray) -> int:
    """How many lines (1-D masks) or points (2-D masks) outside the calibration block
    the mask measures, or the folds a super-resolution block allows (a trajectory: half
    its shots, none under 8): the most folds a hold-out can have."""
    if isinstance(mask, trajectories.Trajectory):
        return trajectories.holdout_units(mask)
    mask = np.asarray(mask, dtype=bool)
    if block_shape(mask) is not None:
        return len(block_grids(mask))
    return len(_units(mask)[0])


def holdout_folds(mask: np.ndarray, folds: int = DEFAULT_FOLDS, seed: int = 0) -> list[np.ndarray]:
    """Split the measured points outside the calibration block into ``folds`` disjoint
    sets, each with the mask's family (whole lines for 1-D masks) and density profile.

    Units (lines or points) are sorted by distance from the centre, cut into runs of
    ``folds`` neighbours, and each run deals one unit to every fold in random order.

    A trajectory's folds are sets of shots (:func:`recon.trust.holdout_trajectory.shot_folds`).

    Shapes
    ------
    mask ``(H, W)`` bool; returns ``folds`` bool arrays ``(H, W)`` (a trajectory: ``(shots,)``).
    """
    if isinstance(mask, trajectories.Trajectory):
        return trajectories.shot_folds(mask, folds, seed)
    mask = np.asarray(mask, dtype=bool)
    if folds < 2:
        raise ValueError(f"hold-out needs at least 2 folds, got {folds}")
    if block_shape(mask) is not None:
        return block_folds(mask, folds)
    rng = np.random.default_rng(seed)
    units, dimensions = _units(mask)
    distance = _distance(mask.shape, dimensions)
    keys = distance[0, units] if dimensions == 1 else distance.ravel()[units]
    if len(units) < folds:
        raise ValueError(f"the mask measures only {len(units)} {'lines' if dimensions == 1 else 'points'} outside its "
                         f"calibration block: too few to hold out {folds} folds")
    order = units[np.lexsort((rng.random(len(units)), keys))]
    assignment = np.concatenate([rng.permutation(folds) for _ in range(math.ceil(len(order) / folds))])[: len(order)]
    result = []
    for fold in range(folds):
        chosen = order[assignment == fold]
        held = np.zeros(mask.shape, dtype=bool)
        if dimensions == 1:
            held[:, chosen] = True
        else:
            held.ravel()[chosen] = True
        result.append(held & mask)
    return result


def _unit_distance(mask: np.ndarray) -> np.ndarray:
    """Integer distance bin of every point: ``|w - W/2|`` for 1-D masks, the rounded
    radius (in grid points) for 2-D masks."""
    block = block_shape(mask)
    if block is not None:
        return block_bins(mask.shape, block)[0]
    height, width = mask.shape
    kw = np.abs(np.arange(width) - width // 2)
    if mask_dimensions(mask) == 1:
        return np.broadcast_to(kw[None, :], mask.shape)
    kh = np.abs(np.arange(height) - height // 2)
    return np.round(np.sqrt(kh[:, None] ** 2 + kw[None, :] ** 2)).astype(int)


def unit_counts(mask: np.ndarray, select: np.ndarray) -> np.ndarray:
    """How many units (lines for 1-D masks, points for 2-D) of ``select`` lie in each
    distance bin.

    Shapes
    ------
    mask, select ``(H, W)`` bool; returns ``(bins,)`` float64.
    """
    mask = np.asarray(mask, dtype=bool)
    distance = _unit_distance(mask)
    bins = int(distance.max()) + 1
    if mask_dimensions(mask) == 1 and block_shape(mask) is None:
        columns = np.asarray(select, bool).any(axis=0)
        return np.bincount(distance[0][columns], minlength=bins).astype(float)
    return np.bincount(distance[np.asarray(select, bool)], minlength=bins).astype(float)


def unmeasured_units(mask) -> np.ndarray:
    """Per distance bin, the units whose error the estimate sums: the lines or points
    outside the calibration block that were not measured (:func:`unit_counts`), or
    every grid point of a trajectory's image
    (:func:`recon.trust.holdout_trajectory.grid_counts`).

    Shapes
    ------
    mask ``(H, W)`` bool, or a trajectory; returns ``(bins,)`` float64.
    """
    if isinstance(mask, trajectories.Trajectory):
        return trajectories.grid_counts(tuple(mask.image_shape))
    mask = np.asarray(mask, dtype=bool)
    return unit_counts(mask, ~mask & ~calibration_block(mask))


def fold_residuals(reconstructor, kspace: torch.Tensor, mask: torch.Tensor, coil_maps: torch.Tensor | None,
                   folds: list[np.ndarray], regime: str = "clean") -> list[np.ndarray]:
    """Reconstruct without each fold and measure the prediction error on it.

    Returns per fold a ``(2, bins)`` array: the number of held-out units and their
    residual energy ``sum |A x_k - y|^2`` (over readout points and coils) in each
    distance bin (see :func:`unit_counts`); for a super-resolution block,
    :func:`recon.trust.holdout_block.block_residuals` (a third row: the measured energy).
    ``regime`` (:data:`recon.trust.calibration.REGIMES`): when the error is judged against
    the noise-free object (``noisy``: noise that a simulation added), the held-out
    samples' coil noise is taken out of the residuals (:mod:`recon.trust.noise_floor`);
    otherwise (measured data, judged against its full scan, noise and all) the residuals
    are kept whole.

    Shapes
    ------
    kspace ``(1, C, H, W)``; mask ``(H, W)`` bool; coil_maps ``(1, C, H, W)`` or None. A
    trajectory in place of the mask: :func:`recon.trust.holdout_trajectory.fold_residuals`.
    """
    if isinstance(mask, trajectories.Trajectory):
        return trajectories.fold_residuals(reconstructor, kspace, mask, coil_maps, folds)
    mask_np = mask.cpu().numpy().astype(bool)
    distance = _unit_distance(mask_np)
    bins = int(distance.max()) + 1
    if block_shape(mask_np) is not None:
        return block_residuals(reconstructor, kspace, coil_maps, folds, distance, bins)
    full = sampling_operator(torch.ones_like(mask), coil_maps)
    result = []
    for held in folds:
        held_t = torch.from_numpy(held)
        kept = mask & ~held_t
        with torch.no_grad():
            estimate = reconstructor.reconstruct(kspace * kept, kept, coil_maps)
        residual = ((full(estimate.to(torch.complex64)) - kspace) * held_t).abs().pow(2).sum(dim=(0, 1)).cpu().numpy()
        energy = np.bincount(distance[held], weights=residual[held], minlength=bins)
        result.append(np.stack([unit_counts(mask_np, held), energy]))
    if not judged_noise_free(regime):
        return result
    return without_noise_floor(result, mask_np, noise_floor(kspace, mask_np, coil_maps))


def without_noise_floor(residuals: list[np.ndarray], mask: np.ndarray, floor: float) -> list[np.ndarray]:
    """:func:`fold_residuals` less ``floor`` (:func:`recon.trust.noise_floor.noise_floor`)
    per held-out sample: a line of a 1-D mask holds ``H`` samples, a point of a 2-D mask one.

    Shapes
    ------
    residuals: per fold ``(2, bins)``; mask ``(H, W)`` bool.
    """
    per_unit = mask.shape[0] if mask_dimensions(mask) == 1 else 1
    return [np.stack([r[0], subtract_floor(r[1], r[0] * per_unit, floor)]) for r in residuals]


def raw_estimates(residuals: list[np.ndarray], unmeasured: np.ndarray, energy: float,
                  spectrum: np.ndarray | None = None, inside: float = 0.0) -> list[float]:
    """Raw NMSE estimate of every fold: :func:`nmse_from_block` for a super-resolution
    block (``spectrum`` and ``inside`` given), else :func:`nmse_from_residuals`."""
    if spectrum is not None:
        return nmse_from_block(residuals, np.asarray(spectrum), unmeasured, energy, inside)
    return nmse_from_residuals(residuals, unmeasured, energy)


def fold_errors(reconstructor, kspace: torch.Tensor, mask: torch.Tensor, coil_maps: torch.Tensor | None,
                folds: list[np.ndarray], image: torch.Tensor, regime: str = "clean") -> list[float]:
    """Raw NMSE estimate of every fold (:func:`fold_residuals`, then
    :func:`raw_estimates`).

    Shapes
    ------
    kspace ``(1, C, H, W)``; mask ``(H, W)`` bool; coil_maps ``(1, C, H, W)`` or None;
    image ``(1, H, W)``, the method's reconstruction from all the data; or a trajectory
    in place of the mask.
    """
    residuals = fold_residuals(reconstructor, kspace, mask, coil_maps, folds, regime)
    sampling = mask if isinstance(mask, trajectories.Trajectory) else mask.cpu().numpy().astype(bool)
    unmeasured = unmeasured_units(sampling)
    if isinstance(sampling, trajectories.Trajectory) or block_shape(sampling) is None:
        return raw_estimates(residuals, unmeasured, kspace_energy(image, coil_maps))
    return raw_estimates(residuals, unmeasured, kspace_energy(image, coil_maps), measured_spectrum(kspace, sampling),
                         block_misfit(image, kspace, mask, coil_maps))


def summarise(errors: list[float], reconstructor, mask: np.ndarray, image: torch.Tensor,
              data_range: float | None = None, calibration: dict | None = None, mask_type: str | None = None,
              coils: int = 1, regime: str = "clean") -> ErrorEstimate:
    """Turn the per-fold raw estimates of :func:`fold_errors` into an :class:`ErrorEstimate`
    (calibrated for the method's family, ``mask_type``, coil count and ``regime``; see
    :mod:`recon.trust.calibration`).

    Shapes
    ------
    mask ``(H, W)`` bool; image ``(1, H, W)``.
    """
    magnitude = image[0].abs()
    peak = float(magnitude.max()) if data_range is None else float(data_range)
    return summarise_folds(errors, reconstructor.name, getattr(reconstructor, "family", "cs"), mask_kind(mask),
                           peak, float(magnitude.pow(2).mean()), calibration, mask_type, coils, regime)


def summarise_folds(errors: list[float], method: str, family: str, kind: int | str, peak: float, mean_energy: float,
                    calibration: dict | None = None, mask_type: str | None = None, coils: int = 1,
                    regime: str = "clean") -> ErrorEstimate:
    """:func:`summarise` from the image's ``peak`` and mean energy ``mean|x|^2`` (what
    ``benchmarks.trust`` stores per record)."""
    raw = float(np.mean(errors))
    nmse, key = calibrate(raw, method, family, kind, calibration, mask_type, coils, regime)
    scale = nmse / max(raw, 1e-30)
    fold_psnr = [psnr_for(max(e, 1e-12) * scale, peak, mean_energy) for e in errors]
    psnr = psnr_for(nmse, peak, mean_energy)
    low, high, untrusted = checked_interval(key, coils, calibration)
    return ErrorEstimate(nmse=nmse, psnr=psnr, psnr_spread=float(np.std(fold_psnr)), nmse_raw=raw,
                         fold_nmse=[float(e) for e in errors], calibration=key, psnr_low=psnr + low, psnr_high=psnr + high,
                         untrusted=untrusted)


def estimate_error(reconstructor, kspace: torch.Tensor, mask: torch.Tensor, coil_maps: torch.Tensor | None,
                   image: torch.Tensor, folds: int = DEFAULT_FOLDS, seed: int = 0, data_range: float | None = None,
                   calibration: dict | None = None, mask_type: str | None = None,
                   regime: str = "clean") -> ErrorEstimate:
    """Estimate a method's error on one slice from its own k-space (see the module).

    Parameters
    ----------
    reconstructor : recon.registry.Reconstructor
        The method that made ``image``.
    kspace, mask, coil_maps
        The acquisition, as the method received it.
    image : torch.Tensor
        The method's reconstruction from all the data.
    folds, seed
        Number of hold-out folds and the seed of their split (use the same for every
        method of a slice, so their estimates are paired).
    data_range : float, optional
        For the PSNR estimate (default: the image's maximum).
    mask_type : str, optional
        The mask's family (``cartesian``, ``vd2d:nocal``, ...), which picks its
        calibration; unknown (a mask from a file): the line of its kind.
    regime : str
        What the data and its reference are (:data:`recon.trust.calibration.REGIMES`):
        ``noisy`` (simulated noise, judged against the noise-free object) also takes the
        held-out samples' coil noise out of the residuals (:func:`fold_residuals`).

    Shapes
    ------
    kspace ``(1, C, H, W)``; mask ``(H, W)`` bool; coil_maps ``(1, C, H, W)`` or None;
    image ``(1, H, W)``.
    """
    sampling = mask if isinstance(mask, trajectories.Trajectory) else mask.cpu().numpy().astype(bool)
    errors = fold_errors(reconstructor, kspace, mask, coil_maps, holdout_folds(sampling, folds, seed), image, regime)
    return summarise(errors, reconstructor, sampling, image, data_range, calibration, mask_type, kspace.shape[1], regime)
