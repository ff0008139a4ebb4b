"""``.npy`` image stacks as studies (never unpickled: ``allow_pickle=False`` in the
stack reader)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipelines.common.limits import MemoryBudget
from pipelines.formats.images import read_image_stack
from pipelines.formats.study import FILE_PROBLEMS, InputError, Study


def read_npy(path: Path, budget: MemoryBudget | None = None) -> Study:
    """A ``.npy`` image stack ``(H, W)`` or ``(N, H, W)`` as a study (complex kept complex)."""
    try:
        images = read_image_stack(path, budget)
    except FILE_PROBLEMS:
        raise
    except ValueError as error:
        raise InputError(str(error)) from error
    images = images.astype(np.complex64) if np.iscomplexobj(images) else np.abs(images).astype(np.float32)
    return Study(name=path.stem, source=path, format="npy", images=images)
