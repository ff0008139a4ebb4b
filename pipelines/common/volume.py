"""3-D acquisitions, what ``recon run`` and ``recon batch`` share: the volume's readout
axis (:func:`readout_planes`), a 3-D protocol's reference block (:func:`centre_fraction`),
the simulated acquisition in hybrid space (:func:`simulate`), the guard's verdict on a
whole volume (:func:`whole_volume`), and the defaults a 3-D run takes when the command
line does not say.

The volume's readout axis (the one its header calls frequency-encoded, else the slice
stack's H, the readout of its 2-D slices) becomes x; the scanner undersamples the other
two, the (ky, kz) phase-encode plane, with one 2-D mask. The k-space is simulated in
hybrid space (:mod:`physics.volume`), and each readout position's (ky, kz) plane is then
a 2-D problem that every method solves as it solves a slice. ESPIRiT maps are estimated
per plane from the (ky, kz) calibration block of the hybrid data, as BART's ``ecalib``
on hybrid slices does: the readout is fully sampled, so per-position calibration loses
nothing a 3-D kernel would see along x and costs one small 2-D calibration per plane.
Heavy modules (torch, the methods) are imported where they are used, so the command
line reads the defaults without them.
"""

from __future__ import annotations

import math
import time

import numpy as np

COILS = 8
"""A 3-D head acquisition is multi-coil: 8 simulated birdcage coils (``--coils``)."""
SNR = 30.0
"""Noise at this SNR in dB (``--noise-snr``): a scanner's 3-D data always carries noise,
and on noise-free (ky, kz) planes the learned models' exact consistency step fits the
data through ESPIRiT maps that cannot explain it, losing up to 14.5 dB on a plane (with
the simulation's true maps it gains 0.4-1.9 dB: docs/results.md, "3-D acquisitions")."""
ESTIMATE_PLANES = 8
"""The error estimate (and the guard) runs on this many readout planes, the middles of as
many equal runs (``--estimate-slices``; :func:`pipelines.common.evaluation.spread`): the
guard judges the volume as one (:func:`whole_volume`), and every plane would cost each
method its hold-out reconstructions again."""
READOUT_KEEP = 0.05
"""Readout positions below this fraction of the volume's peak are outside the simulated
field of view (the 2-D run's rule for slices without anatomy)."""

REFERENCE_LINES = 24
"""A 3-D protocol's reference (ACS) block: at least this many points along ky and kz, as
vendors' CAIPIRINHA and compressed-sensing 3-D protocols acquire by default."""


def estimate_note(estimates: dict[str, list]) -> str:
    """What a 3-D run's or batch's estimate can be trusted with, said beside it: whether
    the calibration entries that made its figures (``estimates``: per method, its
    :class:`recon.trust.holdout.ErrorEstimate` per judged plane) were fitted on (ky, kz)
    planes (:func:`recon.trust.calibration.on_planes`) or only on 2-D slices."""
    from recon.trust.calibration import PLANES

    keys = {estimate.calibration for per_plane in estimates.values() for estimate in per_plane}
    if keys and all(PLANES in key for key in keys):
        return ("error estimate of a 3-D acquisition: calibrated on the (ky, kz) planes of simulated 3-D acquisitions of "
                "two validation volumes (on the planes of held-out volumes it was within 1.1 dB of the noise-free "
                "truth on average and its intervals held 91 %; within 1.4 dB of a full scan's image, where its "
                "intervals held only 48 %; docs/results.md, \"Trust that holds (issue 36): fifth part\")")
    return ("error estimate of a 3-D acquisition: calibrated on 2-D slices, not on (ky, kz) planes (this data or mask "
            "family has no plane calibration), where its dB read 1.8-3.8 dB high on the sample's 3-D default: take its "
            "figures as a ranking, not as dB (docs/results.md, \"Trust that holds (issue 36): fourth part\")")


def centre_fraction(requested: float | None, shape: tuple[int, int], kind: str, ratio: float) -> float | None:
    """The centre fraction of a (ky, kz) mask: ``requested`` when given
    (``--center-fraction``), else for the 2-D families the larger of the family's default
    and :data:`REFERENCE_LINES` points, the block holding at most half the samples (maps
    from the families' 12 x 12 block on the sample's planes made the learned models'
    exact step diverge: docs/results.md, "3-D acquisitions"); None (the family's own
    default) for 1-D families along kz."""
    from masks import TWO_D_KINDS
    from masks.grid import default_center_fraction_2d

    if requested is not None or kind not in TWO_D_KINDS or kind == "lowres":
        return requested
    largest = math.sqrt(ratio * shape[0] * shape[1] / 2) / min(shape)  # the block holds at most half the samples
    return min(1.0, largest, max(default_center_fraction_2d(ratio), REFERENCE_LINES / min(shape)))


def readout_planes(stack: np.ndarray, frequency_axis: int | None, notes: list[str]) -> tuple[np.ndarray, list[str], int]:
    """The volume ``(X, Y, Z)`` with the readout first, its planes' ids and the stack
    axis used as the readout. ``stack`` is a reader's slice stack ``(N, H, W)``;
    ``frequency_axis`` the stack axis its header calls frequency-encoded (None: H).

    Shapes
    ------
    stack ``(N, H, W)`` -> ``(X, Y, Z)``: X the readout axis, then the other two in order.
    """
    axis = 1 if frequency_axis is None else int(frequency_axis)
    names = ("slice stack N", "H (rows)", "W (columns)")
    how = "its header's frequency-encoding axis" if frequency_axis is not None else "the default, rows of the slices"
    volume = np.moveaxis(stack, axis, 0)
    peaks = np.abs(volume).reshape(len(volume), -1).max(axis=1)
    inside = np.flatnonzero(peaks >= READOUT_KEEP * peaks.max())
    first, last = int(inside[0]), int(inside[-1]) + 1
    notes.append(f"3-D acquisition: readout along {names[axis]} ({how}); each (ky, kz) plane of {volume.shape[1]} x "
                 f"{volume.shape[2]} is reconstructed as a 2-D problem (hybrid space)")
    if (first, last) != (0, len(volume)):
        notes.append(f"readout field of view: positions {first}-{last - 1} of {len(volume)}, those with at least "
                     f"{READOUT_KEEP:.0%} of the volume's peak (the empty margin holds nothing to score)")
    volume = volume[first:last]
    return np.ascontiguousarray(volume), [f"x{index:03d}" for index in range(first, last)], axis


def simulate(volume: np.ndarray, mask, coils: int, noise_snr: float | None, phase: bool, seed: int,
             notes: list[str], fully_sampled=None) -> tuple:
    """The undersampled hybrid k-space ``(X, C, Y, Z)``, the complex truth ``(X, Y, Z)``
    and the ESPIRiT maps ``(X, C, Y, Z)`` (None for one coil) of a 3-D acquisition.
    ``fully_sampled``: called with the fully sampled hybrid k-space before the mask
    (``benchmarks.trust`` judges the planes against the full scan's image too)."""
    import torch

    from masks import calibration_region
    from physics.volume import birdcage_maps_3d, simulate_hybrid, smooth_phase_3d
    from pipelines.common.planes import plane_maps

    generator = torch.Generator().manual_seed(seed)
    truth = torch.from_numpy(np.ascontiguousarray(volume)).to(torch.complex64)
    if phase:
        truth = truth * torch.polar(torch.ones(truth.shape), smooth_phase_3d(tuple(truth.shape), generator))
    maps = birdcage_maps_3d(coils, tuple(truth.shape)) if coils > 1 else None
    kspace = simulate_hybrid(truth, maps, noise_snr, generator)
    del maps
    if fully_sampled is not None:
        fully_sampled(kspace)
    kspace *= torch.from_numpy(mask.array)
    if coils == 1:
        return kspace, truth, None
    started = time.perf_counter()
    recon_maps = plane_maps(kspace, mask.array)
    notes.append("ESPIRiT coil maps estimated per readout position from the {} x {} (ky, kz) centre in {:.3f} s/plane "
                 "(not in the method times)".format(*calibration_region(mask.array),
                                                    (time.perf_counter() - started) / len(kspace)))
    return kspace, truth, recon_maps


def whole_volume(verdicts: dict[str, list]) -> dict[str, list]:
    """The guard's verdicts on a 3-D volume: one for the whole volume, copied to each
    judged plane. A volume mixing methods from one readout position to the next would
    show stripes along x, so a learned volume is written from its reference when most of
    its judged planes are flagged (the most frequent reference), else kept whole."""
    from collections import Counter
    from dataclasses import replace

    decided = {}
    for name, per_plane in verdicts.items():
        flagged = [verdict for verdict in per_plane if verdict.flagged]
        if 2 * len(flagged) > len(per_plane):
            reference = Counter(v.reference for v in flagged).most_common(1)[0][0]
            decided[name] = [replace(v, flagged=True, reference=reference) for v in per_plane]
        else:
            decided[name] = [replace(v, flagged=False) for v in per_plane]
    return decided
