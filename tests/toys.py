"""Small synthetic training data for the trainer tests."""

import numpy as np

from recon.augment import SliceSet


def toy_slices(n: int = 6, size: int = 48, seed: int = 0) -> SliceSet:
    """``n`` random two-level disks, with grey/white-matter maps for contrast synthesis."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = []
    for _ in range(n):
        cy, cx, r = rng.uniform(18, 30), rng.uniform(18, 30), rng.uniform(8, 15)
        disk = ((yy - cy) ** 2 + (xx - cx) ** 2 < r**2).astype(np.float32)
        inner = ((yy - cy) ** 2 + (xx - cx) ** 2 < (r / 2) ** 2).astype(np.float32)
        images.append(0.6 * disk + 0.4 * inner)
    images = np.stack(images)
    return SliceSet(images, grey_matter=0.5 * images, white_matter=0.3 * images)
