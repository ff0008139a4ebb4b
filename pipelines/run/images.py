"""The images ``recon run`` writes: the mask, every slice's reconstructions, error maps
and what learned methods added, with a sidecar saying which method's image each holds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from masks import Mask, TrajectoryMask
from pipelines.common import evaluation
from pipelines.common.output import write_json
from pipelines.formats.images import save_png, to_uint8
from pipelines.reports.plots import ADDED_CMAP, ERROR_CMAP, colormap


def write_images(folder: Path, mask: Mask | TrajectoryMask, ids: list[str], methods: list[str], reference: torch.Tensor,
                  outputs: dict[str, list[np.ndarray]], trust_maps: dict[str, list[np.ndarray]],
                  data_range: float, scale: float) -> None:
    """``mask.png`` and, in ``images/``, the reference, every reconstruction, its error map
    and what learned methods added in unmeasured k-space."""
    images = folder / "images"
    images.mkdir()
    picture = mask.picture() if isinstance(mask, TrajectoryMask) else (mask.array * 255).astype(np.uint8)
    save_png(folder / "mask.png", picture)
    for index, slice_id in enumerate(ids):
        safe = slice_id.replace(":", "-").replace("/", "-")
        save_png(images / f"reference_{safe}.png", to_uint8(reference[index].numpy(), data_range))
        for name in methods:
            magnitude = outputs[name][index]
            save_png(images / f"{name}_{safe}.png", to_uint8(magnitude, data_range))
            error = np.abs(magnitude - reference[index].numpy()) / (scale * data_range)
            save_png(images / f"{name}_{safe}_error.png", colormap(error, ERROR_CMAP))
            if name in trust_maps:
                hallucination = trust_maps[name][index] / (scale * data_range)
                save_png(images / f"{name}_{safe}_hallucination.png", colormap(hallucination, ADDED_CMAP))


def write_sidecars(folder: Path, ids: list[str], methods: list[str], records: list[dict[str, Any]]) -> None:
    """``images/METHOD_SLICE.json`` beside each image: what it holds (the guard may have
    written another method's image under a learned method's name; the same rule as a
    batch's outputs, :func:`pipelines.common.evaluation.holding`)."""
    for name in methods:
        mine = [r for r in records if r["method"] == name]
        for slice_id, record in zip(ids, mine):
            safe = slice_id.replace(":", "-").replace("/", "-")
            source = record.get("guard_output", name)
            write_json(folder / f"{name}_{safe}.json", {
                "image": f"{name}_{safe}.png", "slice": slice_id, "method": name, "image_of": source,
                "holds": evaluation.holding(name, [source]), "guard_reason": record.get("guard_reason")})
