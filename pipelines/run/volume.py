"""``recon run --acquisition 3d``: a 3-D multi-coil acquisition simulated from a volume.

The volume's readout axis (the one its header calls frequency-encoded, else the slice
stack's H, the readout of its 2-D slices) becomes x; the scanner would undersample the
other two, the (ky, kz) phase-encode plane, with one 2-D mask. The k-space is simulated
in hybrid space (:mod:`physics.volume`), and each readout position's (ky, kz) plane is
then a 2-D problem that every method solves as it solves a slice: the run's "slices"
are these planes. ESPIRiT maps are estimated per plane from the (ky, kz) calibration
block of the hybrid data, as BART's ``ecalib`` on hybrid slices does: the readout is
fully sampled, so per-position calibration loses nothing a 3-D kernel would see along x
and costs one small 2-D calibration per plane. The report shows the three orthogonal
central planes of each method's volume.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from masks import Mask, calibration_region
from physics.volume import birdcage_maps_3d, simulate_hybrid, smooth_phase_3d
from pipelines.formats.images import save_png, to_uint8
from pipelines.reports.plots import ERROR_CMAP, colormap
from recon import metrics
from recon.api import coil_maps_for

READOUT_KEEP = 0.05
"""Readout positions below this fraction of the volume's peak are outside the simulated
field of view (the 2-D run's rule for slices without anatomy)."""
AXES = ("x", "y", "z")
"""Names of the volume's axes: x the readout, (y, z) the phase-encode plane."""


REFERENCE_LINES = 24
"""A 3-D protocol's reference (ACS) block: at least this many points along ky and kz, as
vendors' CAIPIRINHA and compressed-sensing 3-D protocols acquire by default."""


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


def simulate(volume: np.ndarray, mask: Mask, coils: int, noise_snr: float | None, phase: bool, seed: int,
             notes: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The undersampled hybrid k-space ``(X, C, Y, Z)``, the complex truth ``(X, Y, Z)``
    and the ESPIRiT maps ``(X, C, Y, Z)`` (None for one coil) of a 3-D acquisition."""
    generator = torch.Generator().manual_seed(seed)
    truth = torch.from_numpy(np.ascontiguousarray(volume)).to(torch.complex64)
    if phase:
        truth = truth * torch.polar(torch.ones(truth.shape), smooth_phase_3d(tuple(truth.shape), generator))
    maps = birdcage_maps_3d(coils, tuple(truth.shape)) if coils > 1 else None
    kspace = simulate_hybrid(truth, maps, noise_snr, generator)
    del maps
    kspace *= torch.from_numpy(mask.array)
    if coils == 1:
        return kspace, truth, None
    started = time.perf_counter()
    recon_maps = coil_maps_for(kspace, mask.array)
    notes.append("ESPIRiT coil maps estimated per readout position from the {} x {} (ky, kz) centre in {:.3f} s/plane "
                 "(not in the method times)".format(*calibration_region(mask.array),
                                                    (time.perf_counter() - started) / len(kspace)))
    return kspace, truth, recon_maps


def bart_anchor(method: str, kspace: torch.Tensor, mask: Mask) -> torch.Tensor:
    """``bart-l1`` / ``bart-tv`` of a 3-D acquisition: BART's 3-D ESPIRiT and 3-D
    ``pics`` on the whole volume (:func:`recon.classical.bart.pics_volume`), not plane
    by plane with our maps; zero where BART's maps are (``ecalib``'s crop).

    Shapes
    ------
    kspace ``(X, C, Y, Z)`` -> ``(X, Y, Z)``.
    """
    from recon.classical.bart import pics_volume

    image, _ = pics_volume(kspace, mask.array, method, calibration=calibration_region(mask.array))
    return image


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


def spread_guard(outputs: dict[str, list], records: list[dict[str, Any]], replaced: dict[str, list]) -> list[str]:
    """Write a flagged 3-D volume (:func:`whole_volume`) from its reference on every
    readout position, not only the judged ones, and say so in every plane's record;
    returns the notes."""
    notes = []
    for name, written in replaced.items():
        reference = next((cs for cs in written if cs), None)
        if reference is None:
            continue
        outputs[name] = list(outputs[reference])
        scores = {r["slice"]: r for r in records if r["method"] == reference}
        for record in (r for r in records if r["method"] == name):
            record["guard_output"] = reference
            record["written_psnr"], record["written_ssim"] = scores[record["slice"]]["psnr"], scores[record["slice"]]["ssim"]
        notes.append(f"guard: the whole {name} volume is written from {reference} (most of its judged planes were "
                     "flagged; a 3-D volume is judged as one, --no-guard writes the learned output)")
    return notes


def cut(volume: np.ndarray, axis: int) -> np.ndarray:
    """The central plane of ``volume`` across ``axis`` (0: the (y, z) plane at the middle
    readout position)."""
    return np.take(volume, volume.shape[axis] // 2, axis=axis)


def plane_scores(outputs: dict[str, list[np.ndarray]], reference: np.ndarray, data_range: float, first: int
                 ) -> dict[str, dict[str, Any]]:
    """Per method: the volume's PSNR, SSIM and NMSE (fastMRI's volume conventions: one
    data range, the reference's maximum; SSIM the mean over readout planes) and the PSNR
    and SSIM of the three central orthogonal planes."""
    scores: dict[str, dict[str, Any]] = {}
    target = torch.from_numpy(reference)
    for name, planes in outputs.items():
        volume = np.stack(planes)
        error = float(((volume - reference) ** 2).mean())
        record: dict[str, Any] = {
            "volume_psnr": float(10 * np.log10(data_range**2 / max(error, 1e-30))),
            "volume_nmse": float(((volume - reference) ** 2).sum() / max(float((reference**2).sum()), 1e-30)),
            "volume_ssim": float(np.mean([metrics.ssim(torch.from_numpy(p), target[i], data_range=data_range)
                                          for i, p in enumerate(planes)])),
            "planes": {},
        }
        for axis, plane in enumerate(plane_names(reference.shape, first)):
            mine, truth = torch.from_numpy(cut(volume, axis)), torch.from_numpy(cut(reference, axis))
            record["planes"][plane] = {
                "psnr": float(metrics.psnr(mine, truth, data_range=data_range)),
                "ssim": float(metrics.ssim(mine, truth, data_range=data_range))}
        scores[name] = record
    return scores


def plane_names(shape: tuple[int, int, int], first: int) -> list[str]:
    """Names of the three central planes, ``x116``, ``y62``, ``z98``: the axis and the
    index in the input's volume (``first``: the readout position of the volume's first
    plane, :func:`readout_planes` leaves the empty margin out)."""
    return [f"{label}{shape[axis] // 2 + (first if axis == 0 else 0)}" for axis, label in enumerate(AXES)]


def write_planes(folder: Path, methods: list[str], reference: np.ndarray, outputs: dict[str, list[np.ndarray]],
                 data_range: float, scale: float, first: int) -> list[str]:
    """``images/PLANE_reference.png`` and ``images/PLANE_METHOD.png`` with its error map,
    for the three central orthogonal planes; returns their names (:func:`plane_names`)."""
    images = folder / "images"
    images.mkdir(exist_ok=True)
    names = plane_names(reference.shape, first)
    volumes = {name: np.stack(outputs[name]) for name in methods}
    for axis, plane in enumerate(names):
        truth = cut(reference, axis)
        save_png(images / f"{plane}_reference.png", to_uint8(truth, data_range))
        for name in methods:
            magnitude = cut(volumes[name], axis)
            save_png(images / f"{plane}_{name}.png", to_uint8(magnitude, data_range))
            save_png(images / f"{plane}_{name}_error.png", colormap(np.abs(magnitude - truth) / (scale * data_range),
                                                                     ERROR_CMAP))
    return names
