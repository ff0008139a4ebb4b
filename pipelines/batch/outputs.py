"""What one study of a ``recon batch`` unit leaves beside its outputs: the scores, the
oriented previews and error maps, the mask picture, and the sidecar JSON that says what
each output holds (the guard may have written another method's image on some slices)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from masks.trajectories import draw_samples
from physics.nufft import Trajectory
from pipelines.common.output import write_json
from pipelines.formats import Study
from pipelines.reports.previews import ERROR_SCALES, PLANES, write_mask_picture, write_preview
from recon import metrics


def score(record: dict[str, Any], magnitude: np.ndarray, reference: np.ndarray | None) -> None:
    """PSNR, SSIM and NMSE against the reference (when there is one of the same shape),
    the mean over slices and per slice, and the whole volume's PSNR and NMSE (fastMRI's
    volume figures: one error over every voxel); the data range is the reference's
    maximum."""
    if reference is None or reference.shape != magnitude.shape:
        return
    data_range = float(reference.max())
    scores = [metrics.evaluate(torch.from_numpy(a), torch.from_numpy(b), data_range=data_range)
              for a, b in zip(magnitude, reference)]
    for key in ("psnr", "ssim", "nmse"):
        record[key] = float(np.mean([s[key] for s in scores]))
        record[f"{key}_slices"] = [float(s[key]) for s in scores]
    whole, target = torch.from_numpy(np.ascontiguousarray(magnitude)), torch.from_numpy(np.ascontiguousarray(reference))
    record["volume_psnr"] = float(metrics.psnr(whole, target, data_range=data_range))
    if float(target.abs().sum()) > 0:
        record["volume_nmse"] = float(metrics.nmse(whole, target))


def remove_outputs(out: Path, entry: dict[str, Any]) -> None:
    """Remove what a failed unit wrote, so nothing the manifest does not record is left."""
    import shutil

    for relative in entry["outputs"]:
        target = out / relative
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        elif target.suffix == ".cfl":
            target.unlink(missing_ok=True)
            target.with_suffix(".hdr").unlink(missing_ok=True)
        else:
            target.unlink(missing_ok=True)
    entry["outputs"] = []


def preview(out: Path, name: str, magnitude: np.ndarray, reference: np.ndarray | None,
             layout: dict | None = None, scale: float = ERROR_SCALES[-1]) -> list[str]:
    """The middle slice's preview and error map (:func:`pipelines.reports.previews.write_preview`,
    turned by ``layout``), as paths relative to ``out``."""
    return [str(path.relative_to(out)) for path in write_preview(out / "previews", name, magnitude, reference, layout, scale)]


def plane_previews(out: Path, name: str, magnitude: np.ndarray, reference: np.ndarray | None,
                   scale: float = ERROR_SCALES[-1]) -> list[str]:
    """A 3-D volume's two other central orthogonal planes and their error maps, in
    :data:`PLANES`' folders as stored (no turn: the geometry names one plane), as paths
    relative to ``out``.

    Shapes
    ------
    magnitude ``(N, H, W)``; reference the same or None.
    """
    written = []
    for axis, folder in enumerate(PLANES, start=1):
        across = None if reference is None else np.moveaxis(reference, axis, 0)
        written += write_preview(out / "previews" / folder, name, np.moveaxis(magnitude, axis, 0), across, None, scale)
    return [str(path.relative_to(out)) for path in written]


def mask_picture(out: Path, name: str, mask) -> str:
    """``previews/NAME_mask.png``: the mask (or the trajectory's picture), relative to ``out``."""
    if isinstance(mask, Trajectory):  # the samples, drawn as recon run draws a trajectory
        picture = draw_samples(mask.coords.detach().cpu().numpy(), tuple(mask.image_shape))
    else:
        picture = np.asarray(mask, bool).astype(np.uint8) * 255
    (out / "previews").mkdir(exist_ok=True)
    return str(write_mask_picture(out / "previews" / f"{name}_mask.png", picture).relative_to(out))


def sidecar(out: Path, written: Path, study: Study, method: str, sources: list[str], record: dict[str, Any],
             description: str) -> str:
    """``OUTPUT.json`` beside an output: what it holds, per slice (the guard's choice and
    reason); returns its path relative to ``out``."""
    name = written.name
    for suffix in (".nii.gz", ".npy", ".h5", ".cfl"):  # an output file, or a DICOM series' folder
        name = name[: -len(suffix)] if name.endswith(suffix) else name
    path = written.with_name(f"{name}.json")
    reasons = record.get("guard_reasons") or [None] * len(sources)
    write_json(path, {"output": str(written.relative_to(out)), "input": str(study.source), "method": method,
                      "holds": record["holds"], "description": description,
                      "slices": [{"index": index, "image_of": source, "guard_reason": reason}
                                 for index, (source, reason) in enumerate(zip(sources, reasons))]})
    return str(path.relative_to(out))
