import numpy as np
import pytest
import torch

from recon.models.condition import mask_condition
from recon.training.augment import (
    AcquisitionDataset,
    SliceSet,
    collate_acquisitions,
    mix_images,
    resample_resolution,
    shape_images,
)
from recon.training.measured import draw_coil_maps
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
    data = AcquisitionDataset(toy_slices(3), (0.2, 0.4), ("cartesian", "radial-raster"), seed=0, train=False, coils=(1, 4))
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


def _outside(image: np.ndarray, half: int) -> float:
    """Fraction of the energy outside the central ``2 half`` square of k-space."""
    spectrum = np.abs(np.fft.fftshift(np.fft.fft2(image))) ** 2
    centre = image.shape[0] // 2
    return 1 - spectrum[centre - half : centre + half, centre - half : centre + half].sum() / spectrum.sum()


def test_resampling_leaves_only_the_interpolators_content_beyond_the_native_edge():
    image = 2 + np.random.default_rng(0).random((64, 64)).astype(np.float32)  # content up to Nyquist
    assert _outside(image, 16) > 5e-3
    zip_ = resample_resolution(image, np.random.default_rng(1), shrink=(2, 2), how="fourier")
    assert zip_.shape == (64, 64) and zip_.dtype == np.float32 and zip_.max() == 1
    assert _outside(zip_, 16) < 5e-5  # a 32x32 acquisition, zero-padded: nothing beyond its edge
    linear = resample_resolution(image, np.random.default_rng(1), shrink=(2, 2), how="linear")
    assert 5e-5 < _outside(linear, 16) < 0.1 * _outside(image, 16)  # bilinear replicas, attenuated
    assert not np.allclose(linear, zip_)
    with pytest.raises(ValueError, match="how must be one of"):
        resample_resolution(image, np.random.default_rng(1), how="nearest")


def test_resample_probability_changes_items_only_when_asked():
    data = toy_slices(4)
    plain, default = AcquisitionDataset(data, (0.3,), seed=0), AcquisitionDataset(data, (0.3,), seed=0, resample_probability=0)
    resampled = AcquisitionDataset(data, (0.3,), seed=0, resample_probability=1)
    assert all(torch.equal(plain[i][2], default[i][2]) for i in range(4))
    assert all(not torch.allclose(plain[i][2], resampled[i][2]) for i in range(4))
    with pytest.raises(ValueError, match="resample_probability"):
        AcquisitionDataset(data, (0.3,), resample_probability=1.5)


def test_resample_shrink_sets_the_native_grid():
    """``resample_shrink=(2, 2)``: every resampled item is an interpolation of a half-size
    image, so under 0.5 % of its energy lies beyond the central half of k-space; at
    ``(1.2, 1.2)`` its native content reaches past that edge (over 3 %)."""
    data = SliceSet(np.random.default_rng(0).random((6, 64, 64)).astype(np.float32))
    outside = {}
    for shrink in ((2, 2), (1.2, 1.2)):
        items = AcquisitionDataset(data, (0.3,), seed=0, resample_probability=1, resample_shrink=shrink)
        outside[shrink] = [_outside(items[i][2].abs().numpy(), 16) for i in range(6)]
    assert max(outside[(2, 2)]) < 5e-3 < 3e-2 < min(outside[(1.2, 1.2)])
