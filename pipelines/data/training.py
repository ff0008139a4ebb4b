"""Training data for ``recon train``: the sample dataset or a folder of images."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np

from pipelines.data.sample import sample
from pipelines.formats.images import read_image_stack
from recon.training.augment import SliceSet, combine_slice_sets


def _resize_to(stack: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Centre-crop or zero-pad each image to ``shape``."""
    out = np.zeros((stack.shape[0], *shape), dtype=np.float32)
    h, w = stack.shape[-2:]
    ch, cw = min(h, shape[0]), min(w, shape[1])
    sy, sx = (h - ch) // 2, (w - cw) // 2
    dy, dx = (shape[0] - ch) // 2, (shape[1] - cw) // 2
    out[:, dy : dy + ch, dx : dx + cw] = stack[:, sy : sy + ch, sx : sx + cw]
    return out


def load_training_data(data: str, shape: tuple[int, int] = (256, 256), val_fraction: float = 0.15,
                       through_plane: bool = False) -> tuple[SliceSet, SliceSet, str]:
    """Several sources separated by commas are loaded one by one and used together
    (their train sets, and their val sets, concatenated).

    ``through_plane`` (a model that restores thin slices, ``soup-gan-z``): when a corpus
    among the sources has val subjects with a contiguous volume, validation runs on
    those volumes' planes that contain z (:func:`pipelines.data.corpus.planes_containing_z`),
    thickened along z as ``recon sr`` sees them, instead of on 2-D slices thickened
    along an in-plane axis; the two disagreed on which checkpoint is best."""
    parts = [part.strip() for part in data.split(",") if part.strip()]
    if len(parts) > 1:
        loaded = [_load_one(part, shape, val_fraction) for part in parts]
        train, val, description = (combine_slice_sets([item[0] for item in loaded]),
                                   combine_slice_sets([item[1] for item in loaded]), "; ".join(item[2] for item in loaded))
    else:
        train, val, description = _load_one(data, shape, val_fraction)
    if through_plane:
        from pipelines.data.corpus import load_volumes

        corpora = [part for part in parts if (Path(part) / "manifest.json").is_file()]
        volumes = {name: volume for part in corpora for name, volume in load_volumes(part, "val").items()}
        planes = _z_planes(volumes)
        if len(planes):
            val = SliceSet(planes)
            description += (f"; through-plane validation on the planes containing z of the val volumes "
                            f"({', '.join(volumes)}: {len(planes)} planes of {planes.shape[1]}x{planes.shape[2]})")
        volumes = {name: volume for part in corpora for name, volume in load_volumes(part, "train").items()}
        planes = _z_planes(volumes)
        if len(planes) and planes.shape[2] == train.images.shape[-1] and planes.shape[1] <= train.images.shape[-2]:
            train = replace(train, planes=planes)
            used = [name for name, volume in volumes.items() if len(volume) >= planes.shape[1]]
            description += (f"; half the training items are planes containing z of the train volumes "
                            f"({', '.join(used)}: {len(planes)} planes of {planes.shape[1]}x{planes.shape[2]}), "
                            f"the other half slices cropped to {planes.shape[1]} rows")
    return train, val, description


def _z_planes(volumes: dict[str, np.ndarray]) -> np.ndarray:
    """The planes containing z of ``volumes`` (:func:`pipelines.data.corpus.planes_containing_z`),
    z cut to a multiple of every through-plane factor (each thin slice belongs to a thick
    one) and to the deepest volume's depth, which thinner volumes lack and are left out
    (a plane far thinner than a test volume is mostly border to a deep network); none
    when that leaves fewer than two thick slices of the largest factor (the cubic start
    needs two)."""
    from pipelines.data.corpus import planes_containing_z
    from recon.models.through_plane import FACTORS

    step = math.lcm(*FACTORS)
    depth = max((len(volume) for volume in volumes.values()), default=0) // step * step
    if depth < 2 * max(FACTORS):
        return np.zeros((0, 0, 0), np.float32)
    return np.concatenate([planes_containing_z(volume[:depth]) for volume in volumes.values() if len(volume) >= depth])


def _load_one(data: str, shape: tuple[int, int], val_fraction: float) -> tuple[SliceSet, SliceSet, str]:
    """``sample`` uses the sample's train and val splits (with tissue maps for contrast
    synthesis); a corpus folder (``manifest.json`` from ``scripts/make_corpus.py``) uses
    its train and val subjects; another folder uses every NIfTI and ``.npy`` file in it, magnitude scaled
    per volume to max 1, slices with signal only, split by file (the last
    ``val_fraction`` of the files, at least one, are validation)."""
    if data == "sample":
        train, val = sample("train"), sample("val")
        return (
            SliceSet(np.array(train.images), np.array(train.grey_matter), np.array(train.white_matter)),
            SliceSet(np.array(val.images)),
            "sample dataset (MNI ICBM152 2009a): train split for training, val split for validation",
        )
    folder = Path(data)
    if not folder.is_dir():
        raise FileNotFoundError(f"--data {data}: not 'sample' and not a folder")
    if (folder / "manifest.json").is_file():  # a corpus from scripts/make_corpus.py
        from pipelines.data.corpus import load_corpus

        splits = load_corpus(folder)
        if not splits["train"] or not splits["val"]:
            raise ValueError(f"--data {data}: the corpus needs train and val subjects")
        return (
            SliceSet(_resize_to(np.concatenate(splits["train"]), shape), coil_sets=tuple(splits["coils"])),
            SliceSet(_resize_to(np.concatenate(splits["val"]), shape)),
            f"corpus {folder} (manifest.json): {sum(map(len, splits['train']))} train and "
            f"{sum(map(len, splits['val']))} val slices, split by subject",
        )
    files = sorted(p for p in folder.iterdir() if p.name.lower().endswith((".nii", ".nii.gz", ".npy")))
    if len(files) < 2:
        raise ValueError(f"--data {data}: need at least 2 NIfTI or .npy files (one for validation), found {len(files)}")
    stacks = []
    for path in files:
        stack = np.abs(read_image_stack(path)).astype(np.float32)
        stack /= stack.max()
        keep = stack.reshape(len(stack), -1).max(axis=1) >= 0.05
        stacks.append(_resize_to(stack[keep], shape))
    n_val = max(1, round(val_fraction * len(files)))
    return (
        SliceSet(np.concatenate(stacks[:-n_val])),
        SliceSet(np.concatenate(stacks[-n_val:])),
        f"folder {folder}: {len(files) - n_val} files for training, {n_val} for validation",
    )
