"""``recon sr``: through-plane super-resolution of a thick-slice volume (NIfTI or a
DICOM series), written with the new slice spacing in its geometry.

The restored volume has ``F`` times as many slices. In NIfTI the slice axis of the
affine is divided by ``F`` and the origin moved by ``-(F - 1) / (2 F)`` of a thick
slice, so each thick slice's centre stays where it was, between its thin slices. A
DICOM series gets one derived image per thin slice: ImagePositionPatient and
SliceLocation interpolated the same way, SliceThickness and SpacingBetweenSlices
divided by ``F``, each image referencing the thick slice it came from.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pipelines.common.limits import MemoryBudget
from pipelines.common.output import staged_dir
from pipelines.formats import InputError, Study, read_input


@dataclass(frozen=True)
class SrConfig:
    """Configuration of ``recon sr``."""

    input: str
    out: str
    slice_factor: int = 4
    method: str = "soup-gan"
    weights: str | None = None
    force: bool = False
    max_memory: int | None = None

    def __post_init__(self) -> None:
        from recon.models.through_plane import FACTORS, METHODS

        if self.slice_factor not in FACTORS:
            raise ValueError(f"--slice-factor must be one of {', '.join(map(str, FACTORS))}, got {self.slice_factor}")
        if self.method not in METHODS:
            raise ValueError(f"--method must be one of {', '.join(METHODS)}, got {self.method!r}")


def thin_affine(affine: np.ndarray, factor: int) -> np.ndarray:
    """The NIfTI affine of the thin slices: slice axis / F, origin moved by
    ``-(F - 1) / (2 F)`` of a thick slice."""
    out = np.array(affine, dtype=float)
    out[:3, 2] = affine[:3, 2] / factor
    out[:3, 3] = affine[:3, 3] - affine[:3, 2] * (factor - 1) / (2 * factor)
    return out


def nifti_meta(meta: dict[str, Any], factor: int, slices: int) -> dict[str, Any]:
    x, y = meta["shape"][:2]
    header = meta["header"].copy()
    affine = thin_affine(meta["affine"], factor)
    zooms = list(header.get_zooms()[:3])
    header.set_zooms((zooms[0], zooms[1], zooms[2] / factor))
    header.set_qform(affine)
    header.set_sform(affine)
    return {"affine": affine, "header": header, "shape": (x, y, slices)}


def dicom_meta(meta: dict[str, Any], factor: int) -> dict[str, Any]:
    """The series description of the thin slices (see the module docstring)."""
    slices = meta["slices"]
    if any(s["position"] is None or s["orientation"] is None for s in slices):
        raise InputError("the DICOM series has no slice positions; through-plane SR needs its geometry")
    positions = np.array([s["position"] for s in slices], dtype=float)
    if len(slices) > 1:
        steps = np.diff(positions, axis=0)
        step = steps.mean(axis=0)
        if not np.allclose(steps, step, atol=1e-3 * max(np.linalg.norm(step), 1e-6)):
            raise InputError("the DICOM series' slices are not evenly spaced; through-plane SR needs a regular stack")
    else:
        orientation = np.array(slices[0]["orientation"], dtype=float)
        step = np.cross(orientation[:3], orientation[3:]) * (slices[0]["thickness"] or 1.0)
    locations = [s.get("location") for s in slices]
    location_step = (locations[1] - locations[0]) if len(slices) > 1 and None not in locations[:2] else None
    thin = []
    for info, position in zip(slices, positions):
        for index in range(factor):
            offset = (index - (factor - 1) / 2) / factor
            entry = dict(info)
            entry["position"] = list(position + offset * step)
            entry["thickness"] = None if info["thickness"] is None else info["thickness"] / factor
            if info.get("location") is not None and location_step is not None:
                entry["location"] = info["location"] + offset * location_step
            thin.append(entry)
    dataset = copy.deepcopy(meta["dataset"])
    spacing = dataset.get("SpacingBetweenSlices")
    if spacing not in (None, ""):
        dataset.SpacingBetweenSlices = f"{float(spacing) / factor:.6g}"
    return {**meta, "dataset": dataset, "slices": thin}


def read_thick(path: Path, budget: MemoryBudget, factor: int) -> tuple[Study, np.ndarray, list[str]]:
    """Read a thick-slice volume for through-plane SR: the study, its magnitude slices
    ``(N, H, W)`` float32 and the reader's notes. Raises :class:`InputError` for anything
    that is not a 3-D NIfTI volume or a regular DICOM stack, or too large for ``budget``."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    studies, notes = read_input(path, budget)
    study: Study = studies[0]
    if study.images is None or study.format not in ("nifti", "dicom"):
        raise InputError(f"{path}: through-plane SR takes a NIfTI volume or a DICOM series, got {study.format}")
    if study.format == "nifti" and len(study.meta["shape"]) != 3:
        raise InputError(f"{path}: through-plane SR takes a 3-D NIfTI volume, got shape {study.meta['shape']}")
    thick = np.abs(study.images).astype(np.float32)
    if len(thick) < 2:
        raise InputError(f"{path}: one slice; through-plane SR needs a stack of at least 2")
    needed = thick.nbytes * factor * 6  # the thin volume, complex, in two orientations
    if needed > budget.bytes:
        raise InputError(f"{path}: restoring {len(thick)} x {factor} slices needs about "
                         f"{needed / 2**30:.1f} GiB, more than the memory budget ({budget.bytes / 2**30:.1f} GiB; --max-memory)")
    if study.format == "dicom":
        dicom_meta(study.meta, factor)  # a clear error for a series without a regular geometry, before any work
    return study, thick, notes + study.notes


def write_thin(study: Study, thin: np.ndarray, method: str, factor: int, folder: Path, output_format: str = "same",
               method_index: int = 0) -> Path:
    """Write the thin slices into ``folder`` with the thin geometry, as ``recon batch``
    writes any output (:func:`pipelines.formats.writers.write_output`, atomically):
    ``NAME_METHOD_xF.nii.gz``, or a DICOM series folder ``NAME_METHOD_xF`` for a DICOM
    input. ``output_format`` ``nifti`` converts a DICOM series' thin geometry to a NIfTI
    affine; DICOM output needs a DICOM input. Returns the path written."""
    from pipelines.formats.writers import write_output

    meta = nifti_meta(study.meta, factor, len(thin)) if study.format == "nifti" else dicom_meta(study.meta, factor)
    description = f"recon sr {method} x{factor} through-plane"
    return write_output(dataclasses.replace(study, meta=meta), f"{method}_x{factor}", thin, folder, output_format,
                        description, method_index)


def super_resolve(config: SrConfig) -> dict[str, Any]:
    """Read, restore and write; returns the provenance written next to the output."""
    from recon.models.through_plane import resolved_weights, restore

    path = Path(config.input)
    study, thick, notes = read_thick(path, MemoryBudget.of(config.max_memory), config.slice_factor)
    tick = time.perf_counter()
    thin = restore(thick, config.slice_factor, config.method, config.weights)
    seconds = time.perf_counter() - tick
    with staged_dir(config.out, config.force) as staging:
        written = write_thin(study, thin, config.method, config.slice_factor, staging)
        provenance = {"input": str(path), "format": study.format, "output": str(Path(config.out) / written.name),
                      "method": config.method, "slice_factor": config.slice_factor, "slices_in": len(thick),
                      "slices_out": len(thin), "seconds": round(seconds, 3),
                      "weights": resolved_weights(config.slice_factor, config.method, config.weights),
                      "notes": notes}
        (staging / "sr.json").write_text(json.dumps(provenance, indent=1))
    return provenance
