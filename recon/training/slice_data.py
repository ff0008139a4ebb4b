"""Training items for through-plane super-resolution: slices and real planes containing
z, thickened by a drawn factor, in the shared trainer's layout."""

from __future__ import annotations

import math

import numpy as np
import torch

from physics.resolution import SliceAverage
from recon.models.through_plane import FACTORS
from recon.training.augment import SliceSet, augment, bias_field


class SliceAverageDataset(torch.utils.data.Dataset):
    """Training items for through-plane SR, in the shared trainer's layout: each image
    (augmented as for the reconstructors) is thickened along H by a factor drawn from
    ``factors``; the item is ``(measured (1, H, W), starts (1, H, W), target (H, W),
    1 / factor, ones (1, H, W))`` with the factor carried by the
    :meth:`~physics.resolution.SliceAverage.starts` marker in the mask slot.
    Validation items (``train=False``) hold every slice at every factor.

    When ``images.planes`` holds training volumes' planes containing z (``(P, Z,
    side)``, z first), half the training items are such a plane (flipped, with a bias
    field), thickened along its real z; the other half are augmented slices cropped to
    a random window of ``Z`` rows, so a batch has one shape."""

    PLANE_FRACTION = 0.5

    def __init__(self, images: SliceSet, factors: tuple[int, ...] = FACTORS, seed: int = 0, train: bool = True):
        self.images, self.factors, self.seed, self.train, self.epoch = images, tuple(factors), int(seed), train, 0
        planes = images.planes if train else None
        self.planes = planes if planes is not None and len(planes) else None
        if self.planes is not None:
            depth, side = self.planes.shape[1:]
            if side != images.images.shape[-1] or depth > images.images.shape[-2] or depth % math.lcm(*self.factors):
                raise ValueError(f"training planes of {depth}x{side} do not fit slices of {images.images.shape[-2]}x"
                                 f"{images.images.shape[-1]} (same width, depth a multiple of every factor)")

    @staticmethod
    def operator(starts: torch.Tensor, coil_maps: torch.Tensor | None = None) -> SliceAverage:
        return SliceAverage.from_starts(starts)

    def __len__(self) -> int:
        return len(self.images) * (1 if self.train else len(self.factors))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, item: int):
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, item])
            if self.planes is not None and rng.random() < self.PLANE_FRACTION:
                image = self._plane(rng)
            else:
                image = augment(self.images, item, rng)
                if self.planes is not None:
                    depth = self.planes.shape[1]
                    top = int(rng.integers(image.shape[0] - depth + 1))
                    image = np.ascontiguousarray(image[top: top + depth])
            factor = self.factors[int(rng.integers(len(self.factors)))]
        else:
            image = np.asarray(self.images.images[item % len(self.images)], dtype=np.float32)
            factor = self.factors[item // len(self.images)]
        target = torch.from_numpy(np.ascontiguousarray(image)).to(torch.complex64)
        operator = SliceAverage([factor])
        measured = operator(target[None])[0]
        return (measured, SliceAverage.starts(factor, image.shape), target, torch.tensor(1.0 / factor),
                torch.ones((1, *image.shape), dtype=torch.complex64))

    def _plane(self, rng: np.random.Generator) -> np.ndarray:
        """A random training plane containing z, flipped along either axis (z flipped
        whole, so its thick groups stay groups), with a bias field, scaled to max 1."""
        image = self.planes[int(rng.integers(len(self.planes)))]
        if rng.random() < 0.5:
            image = image[::-1]
        if rng.random() < 0.5:
            image = image[:, ::-1]
        image = image * bias_field(image.shape, rng)
        peak = float(image.max())
        return np.ascontiguousarray(image / peak if peak > 0 else image, dtype=np.float32)
