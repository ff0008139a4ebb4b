"""``recon run --acquisition 3d``: what a run does with a 3-D acquisition beyond what
:mod:`pipelines.common.volume` shares with the batch: BART's whole-volume anchor, the
guard's whole-volume verdict spread over every plane's record, and the three orthogonal
central planes of each method's volume with their metrics and pictures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from masks import Mask, calibration_region
from pipelines.formats.images import save_png, to_uint8
from pipelines.reports.plots import ERROR_CMAP, colormap
from recon import metrics

AXES = ("x", "y", "z")
"""Names of the volume's axes: x the readout, (y, z) the phase-encode plane."""


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
