import numpy as np
import torch

from recon.augment import (
    AcquisitionDataset,
    SliceSet,
    collate_acquisitions,
    draw_coil_maps,
    mix_images,
    shape_images,
)
from recon.condition import mask_condition
from tests.toys import toy_slices


def test_items_draw_families_and_coil_counts_and_batch_with_padding():
    data = AcquisitionDataset(toy_slices(8), (0.2, 0.4), ("cartesian", "vd2d"), seed=0, coils=(1, 3, 12), virtual_coils=4)
    items = [data[i] for i in range(8)]
    coils = {item[0].shape[0] for item in items}
    assert coils <= {1, 3, 4} and len(coils) > 1  # 12 coils are compressed to 4 virtual ones
    families = {bool(mask_condition(item[1])[0, 2]) for item in items}
    assert families == {True, False}  # 1-D lines and 2-D masks both drawn
    kspace, mask, target, ratio, maps = collate_acquisitions(items)
    assert kspace.shape[:2] == maps.shape[:2] == (8, max(coils))
    counts = mask_condition(mask, 8, maps)[:, 6] * 4
    assert sorted(set(np.round(2 ** counts.numpy(), 3))) == sorted(coils)
    # A padded coil holds no data and no sensitivity.
    single = [index for index, item in enumerate(items) if item[0].shape[0] == 1][0]
    assert kspace[single, 1:].abs().max() == 0 and maps[single, 1:].abs().max() == 0


def test_validation_items_cover_every_family_and_ratio():
    data = AcquisitionDataset(toy_slices(3), (0.2, 0.4), ("cartesian", "radial"), seed=0, train=False, coils=(1, 4))
    assert len(data) == 3 * 2 * 2
    lines = [bool(mask_condition(data[i][1])[0, 2]) for i in range(len(data))]
    assert lines[:6] == [True] * 6 and lines[6:] == [False] * 6
    assert torch.equal(data[5][0], data[5][0])  # deterministic


def test_measured_coil_sets_are_used_when_their_size_matches():
    measured = np.ones((8, 16, 16), np.complex64) * np.exp(1j * np.linspace(0, 1, 8))[:, None, None]
    rng = np.random.default_rng(0)
    draws = [draw_coil_maps(8, (32, 32), rng, (measured,)) for _ in range(12)]
    assert any(torch.allclose(d[:, 0, 0], torch.from_numpy(measured[:, 0, 0] / np.sqrt(8)).to(torch.complex64), atol=1e-5) for d in draws)
    assert all(d.shape == (8, 32, 32) for d in draws)


def test_mixed_images_are_added_without_tissue_maps():
    base = toy_slices(4, size=64)
    mixed = mix_images(base, ("shapes",), seed=0, shapes=5)
    assert len(mixed) == 9 and mixed.grey_matter.shape == mixed.images.shape
    assert mixed.grey_matter[4:].max() == 0
    shapes = shape_images(3, 64, seed=1)
    assert shapes.shape == (3, 64, 64) and shapes.max() == 1 and shapes[:, 0, 0].max() == 0
    np.testing.assert_array_equal(shapes, shape_images(3, 64, seed=1))
    data = AcquisitionDataset(mixed, (0.3,), seed=0)
    assert all(torch.isfinite(data[i][2].abs()).all() and data[i][2].abs().max() > 0 for i in range(9))
    assert isinstance(mix_images(SliceSet(base.images), ("shapes",), shapes=2).grey_matter, type(None))
