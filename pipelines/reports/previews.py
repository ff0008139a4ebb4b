"""Preview images as viewers show them: radiological orientation from the affine, with
its labels; error maps on a scale that shows the errors; the mask beside them.

A preview is one slice ``(H, W)`` of a volume ``(N, H, W)`` whose voxel axes are the
NIfTI's ``(i, j, k)`` (as :func:`pipelines.formats.nifti.write_nifti` writes them). It
is turned so that, as in radiological viewers: an axial slice has the patient's right
on the left of the screen and anterior at the top; a coronal slice right on the left and
superior at the top; a sagittal slice anterior on the left and superior at the top.
Oblique slices take the nearest of these (``nibabel.aff2axcodes``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipelines.common.output import atomic_file
from pipelines.formats.images import save_png, to_uint8
from pipelines.reports.plots import ERROR_CMAP, colormap

ERROR_SCALES = (0.01, 0.02, 0.05, 0.1, 0.2)
"""The error maps' ranges, as fractions of the data range: the smallest one that holds
the 99th percentile of the errors shown (the largest, 20 %, as before otherwise)."""

PLANES = ("plane1", "plane2")
"""``previews/plane1/``, ``previews/plane2/``: a 3-D volume's central planes across the
stack's H and W axes (its middle slice across N is the preview itself)."""

_LAYOUT = {  # plane: (screen left -> right, screen top -> bottom)
    "axial": (("R", "L"), ("A", "P")),
    "coronal": (("R", "L"), ("S", "I")),
    "sagittal": (("A", "P"), ("S", "I")),
}
_PLANE = {"S": "axial", "I": "axial", "A": "coronal", "P": "coronal", "L": "sagittal", "R": "sagittal"}


def orientation(affine: np.ndarray | None) -> dict[str, Any] | None:
    """How to show slices of a volume with this affine: the plane, the screen's labels,
    and the transpose and flips that get there; None when the geometry is unknown (no
    affine, or the identity that readers give data without geometry)."""
    if affine is None:
        return None
    affine = np.asarray(affine, float)
    if affine.shape != (4, 4) or not np.isfinite(affine).all() or np.allclose(affine, np.eye(4)):
        return None
    import nibabel as nib

    codes = list(nib.aff2axcodes(affine))  # the direction each voxel axis (i, j, k) increases toward
    if None in codes:
        return None
    plane = _PLANE[codes[2]]
    across, down = _LAYOUT[plane]
    transpose = codes[0] in across and codes[1] in down
    rows, columns = (codes[1], codes[0]) if transpose else (codes[0], codes[1])
    if rows not in down or columns not in across:
        return None
    return {"plane": plane, "left": across[0], "right": across[1], "top": down[0], "bottom": down[1],
            "transpose": transpose, "flip_rows": rows != down[1], "flip_columns": columns != across[1]}


def orient(image: np.ndarray, layout: dict[str, Any] | None) -> np.ndarray:
    """``image`` ``(H, W)`` turned as ``layout`` (:func:`orientation`) says; unchanged for None."""
    if layout is None:
        return image
    if layout["transpose"]:
        image = image.T
    if layout["flip_rows"]:
        image = image[::-1]
    if layout["flip_columns"]:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


def error_scale(errors: list[np.ndarray], data_range: float) -> float:
    """The error maps' range as a fraction of ``data_range`` (:data:`ERROR_SCALES`)."""
    values = np.concatenate([np.ravel(error) for error in errors]) if errors else np.zeros(1)
    high = float(np.percentile(values, 99)) / max(float(data_range), 1e-12)
    return next((scale for scale in ERROR_SCALES if high <= scale), ERROR_SCALES[-1])


def write_preview(folder: Path, name: str, magnitude: np.ndarray, reference: np.ndarray | None,
                  layout: dict[str, Any] | None, scale: float) -> list[Path]:
    """``NAME.png``, the middle slice of ``magnitude`` ``(N, H, W)`` scaled like the
    reference, and (when the reference has the same shape) ``NAME_error.png``,
    ``|x - ref|`` on ``[0, scale x the reference's maximum]``, both turned by ``layout``."""
    folder.mkdir(exist_ok=True)
    middle = len(magnitude) // 2
    comparable = reference is not None and reference.shape == magnitude.shape
    vmax = float((reference if comparable else magnitude).max())
    path = folder / f"{name}.png"
    with atomic_file(path) as tmp:
        save_png(tmp, to_uint8(orient(magnitude[middle], layout), vmax))
    written = [path]
    if comparable and not name.endswith("_reference"):
        error = np.abs(magnitude[middle] - reference[middle]) / (scale * max(vmax, 1e-12))
        error_path = folder / f"{name}_error.png"
        with atomic_file(error_path) as tmp:
            save_png(tmp, colormap(orient(error, layout), ERROR_CMAP))
        written.append(error_path)
    return written


def write_mask_picture(path: Path, picture: np.ndarray) -> Path:
    """The sampling pattern as a PNG (white: sampled), as stored: k-space axes, not the
    patient's."""
    with atomic_file(path) as tmp:
        save_png(tmp, np.asarray(picture, np.uint8))
    return path


def labelled(image_html: str, layout: dict[str, Any] | None) -> str:
    """An ``<img>`` with the orientation letters on its four edges, as viewers draw them;
    without a layout, a note that the geometry is unknown (shown as stored)."""
    if layout is None:
        return image_html + '<div class="sublabel">orientation unknown: shown as stored</div>'
    letters = "".join(f'<span class="o{side[0]}">{layout[side]}</span>' for side in ("left", "right", "top", "bottom"))
    return f'<div class="oriented">{image_html}{letters}</div>'


ORIENTED_STYLE = (".oriented{position:relative;max-width:256px}.oriented span{position:absolute;color:#ff0;"
                  "font:bold 13px monospace;text-shadow:0 0 2px #000}.ol{left:3px;top:45%}.or{right:3px;top:45%}"
                  ".ot{top:2px;left:47%}.ob{bottom:6px;left:47%}")
