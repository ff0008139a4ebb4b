"""Training data: contrast synthesis from tissue maps, geometric and intensity
augmentation, and simulated undersampled acquisitions with a fresh mask per sample."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from masks import make_mask
from physics.acquisition import simulate_kspace
from physics.coils import simulate_coil_maps

# Tissue intensities (CSF, grey matter, white matter) drawn uniformly from these ranges.
CONTRASTS = {
    "t2": ((0.8, 1.0), (0.45, 0.65), (0.3, 0.45)),
    "flair": ((0.0, 0.1), (0.6, 0.8), (0.4, 0.55)),
    "pd": ((0.7, 0.9), (0.75, 0.9), (0.6, 0.7)),
}


@dataclass(frozen=True, eq=False)
class SliceSet:
    """Images for training or validation, float32 ``(N, H, W)`` in [0, 1]; tissue maps optional."""

    images: np.ndarray
    grey_matter: np.ndarray | None = None
    white_matter: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.images.shape[0])


def synthesize_contrast(t1: np.ndarray, gm: np.ndarray, wm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A T2-, FLAIR- or PD-like image from grey/white-matter probabilities.

    CSF is taken as the rest of the brain region ``(1 - gm - wm)`` where the T1 image
    has signal. Tissue intensities are drawn from :data:`CONTRASTS`.

    Shapes
    ------
    t1, gm, wm: ``(H, W)`` -> ``(H, W)``.
    """
    name = list(CONTRASTS)[rng.integers(len(CONTRASTS))]
    csf = np.clip(1.0 - gm - wm, 0.0, 1.0) * (t1 > 0.02)
    c, g, w = (rng.uniform(*bounds) for bounds in CONTRASTS[name])
    return (c * csf + g * gm + w * wm).astype(np.float32)


def bias_field(shape: tuple[int, int], rng: np.random.Generator, strength: float = 0.2) -> np.ndarray:
    """A smooth multiplicative intensity field ``1 + strength * p(y, x)`` (low-order polynomial)."""
    ys = np.linspace(-1, 1, shape[0])[:, None]
    xs = np.linspace(-1, 1, shape[1])[None, :]
    field = sum(rng.uniform(-1, 1) * ys**i * xs**j for i in range(3) for j in range(3 - i))
    field = field / max(np.abs(field).max(), 1e-6)
    return (1 + strength * field).astype(np.float32)


def augment(images: SliceSet, index: int, rng: np.random.Generator, synthesize: float = 0.5) -> np.ndarray:
    """One augmented training image from slice ``index``: maybe another contrast, a
    bias field, flips and a 90-degree rotation; scaled to max 1."""
    image = np.asarray(images.images[index], dtype=np.float32)
    if images.grey_matter is not None and rng.random() < synthesize:
        image = synthesize_contrast(image, images.grey_matter[index], images.white_matter[index], rng)
    image = image * bias_field(image.shape, rng)
    if rng.random() < 0.5:
        image = image[:, ::-1]
    if rng.random() < 0.5:
        image = image[::-1]
    if image.shape[0] == image.shape[1]:
        image = np.rot90(image, int(rng.integers(4)))
    peak = float(image.max())
    return np.ascontiguousarray(image / peak if peak > 0 else image)


class AcquisitionDataset(Dataset):
    """Simulated acquisitions: each item is an image, a fresh mask and its k-space.

    Items are deterministic functions of ``(seed, epoch, index)``, so runs are
    reproducible whatever the number of workers or processes. Validation sets
    (``train=False``) use no augmentation and a mask fixed per slice.

    With ``coils`` > 1 the acquisition is multi-coil: birdcage sensitivities whose
    radius is drawn per item (wider or tighter coil profiles), the same for the
    validation set's fixed items.

    Each item: ``kspace (C, H, W)`` complex64, ``mask (1, H, W)`` bool,
    ``target (H, W)`` complex64, the ratio, and ``coil_maps (C, H, W)`` complex64 (an
    all-ones map for single-coil data).
    """

    def __init__(
        self,
        images: SliceSet,
        ratios: tuple[float, ...],
        mask_type: str = "cartesian",
        seed: int = 0,
        train: bool = True,
        phase_probability: float = 0.5,
        noise_probability: float = 0.3,
        noise_snr: tuple[float, float] = (25.0, 40.0),
        coils: int = 1,
    ):
        self.images = images
        self.ratios = tuple(ratios)
        self.mask_type = mask_type
        self.seed = int(seed)
        self.train = train
        self.phase_probability = phase_probability
        self.noise_probability = noise_probability
        self.noise_snr = noise_snr
        if coils < 1:
            raise ValueError(f"coils must be >= 1, got {coils}")
        self.coils = int(coils)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.images) * (1 if self.train else len(self.ratios))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, item: int):
        if self.train:
            index = item
            rng = np.random.default_rng([self.seed, self.epoch, index])
            image = augment(self.images, index, rng)
            ratio = self.ratios[int(rng.integers(len(self.ratios)))]
            phase = rng.random() < self.phase_probability
            snr = float(rng.uniform(*self.noise_snr)) if rng.random() < self.noise_probability else None
        else:
            index, which = item % len(self.images), item // len(self.images)
            rng = np.random.default_rng([self.seed, 10_000 + item])
            image = np.asarray(self.images.images[index], dtype=np.float32)
            ratio, phase, snr = self.ratios[which], False, None
        mask = make_mask(ratio, image.shape, self.mask_type, seed=rng).array
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        mask_t = torch.from_numpy(mask)
        maps = None
        if self.coils > 1:
            maps = simulate_coil_maps(self.coils, image.shape, relative_radius=float(rng.uniform(1.0, 2.0)))[None]
        kspace, truth = simulate_kspace(
            torch.from_numpy(image)[None], mask_t, coil_maps=maps, noise_snr=snr, phase=phase, generator=generator
        )
        maps = torch.ones((1, *image.shape), dtype=torch.complex64) if maps is None else maps[0]
        return kspace[0], mask_t[None], truth[0], torch.tensor(ratio, dtype=torch.float32), maps
