"""The built-in sample dataset: real brain anatomy from the MNI ICBM152 2009a template.

``sample(split)`` returns axial slices, zero-padded to 256x256, as float32 in
[0, 1]: the T1-weighted average and the grey- and white-matter probability maps
(from which training can synthesise other contrasts). Rows run anterior to
posterior (H, the readout axis), columns left to right (W, phase encode).

The split is fixed by axial position (template z index, 1 mm apart). Neighbouring
slices are nearly identical, so every validation and test block is separated from
training slices by a gap of 4 slices on each side that no split uses:

=========  ======================================  ======
split      z indices                               slices
=========  ======================================  ======
test       56-63 (temporal lobes, midbrain),       16
           100-107 (lateral ventricles)
val        80-85 (basal ganglia), 124-129 (cortex) 12
train      every other z in 24-148                 65
=========  ======================================  ======

All slices come from one averaged brain: "test" means unseen anatomy, not an
unseen subject. See ``pipelines/data/LICENSE-ICBM152.txt`` for the licence.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

DATA_FILE = Path(__file__).resolve().parent / "icbm152_2009a_axial.npz"
SHAPE = (256, 256)
GAP = 4
TEST_BLOCKS = ((56, 63), (100, 107))
VAL_BLOCKS = ((80, 85), (124, 129))
SPLITS = ("train", "val", "test")


@dataclass(frozen=True, eq=False)
class SampleSlices:
    """Slices of the sample dataset.

    Attributes
    ----------
    images : numpy.ndarray
        float32 ``(N, 256, 256)`` T1-weighted magnitude in [0, 1].
    grey_matter, white_matter : numpy.ndarray
        float32 ``(N, 256, 256)`` tissue probabilities in [0, 1].
    z : numpy.ndarray
        int ``(N,)`` template axial index of each slice.
    ids : tuple of str
        ``"icbm152-z{z:03d}"`` per slice.
    split : str
    """

    images: np.ndarray
    grey_matter: np.ndarray
    white_matter: np.ndarray
    z: np.ndarray
    ids: tuple[str, ...]
    split: str

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _in_blocks(z: np.ndarray, blocks, margin: int = 0) -> np.ndarray:
    inside = np.zeros(z.shape, dtype=bool)
    for first, last in blocks:
        inside |= (z >= first - margin) & (z <= last + margin)
    return inside


def split_indices(z: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean selection of each split for template z indices."""
    held_out = TEST_BLOCKS + VAL_BLOCKS
    return {
        "test": _in_blocks(z, TEST_BLOCKS),
        "val": _in_blocks(z, VAL_BLOCKS),
        "train": ~_in_blocks(z, held_out, margin=GAP),
    }


def _pad(stack: np.ndarray) -> np.ndarray:
    n, h, w = stack.shape
    out = np.zeros((n, *SHAPE), dtype=np.float32)
    top, left = (SHAPE[0] - h) // 2, (SHAPE[1] - w) // 2
    out[:, top : top + h, left : left + w] = stack.astype(np.float32) / 255.0
    return out


@lru_cache(maxsize=4)
def _load(split: str) -> SampleSlices:
    with np.load(DATA_FILE) as data:
        z = data["z"].astype(int)
        chosen = split_indices(z)[split]
        return SampleSlices(
            images=_pad(data["t1"][chosen]),
            grey_matter=_pad(data["gm"][chosen]),
            white_matter=_pad(data["wm"][chosen]),
            z=z[chosen],
            ids=tuple(f"icbm152-z{int(v):03d}" for v in z[chosen]),
            split=split,
        )


def sample_volume() -> np.ndarray:
    """The whole T1-weighted template as one volume, float32 ``(125, 233, 197)`` in
    [0, 1] (axial slices z 24-148, rows anterior to posterior, columns left to right),
    unpadded: the built-in sample of a 3-D acquisition (``recon run --acquisition 3d``).

    It holds the slices of every split, training's included: a demonstration of the 3-D
    path, not a benchmark (``benchmarks/volume.py`` judges held-out subjects)."""
    with np.load(DATA_FILE) as data:
        return data["t1"].astype(np.float32) / 255.0


def sample(split: str = "test") -> SampleSlices:
    """The sample dataset's slices for ``split`` (``train``, ``val`` or ``test``).

    The arrays are read-only views shared between calls; copy before changing them.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")
    result = _load(split)
    for array in (result.images, result.grey_matter, result.white_matter):
        array.setflags(write=False)
    return result
