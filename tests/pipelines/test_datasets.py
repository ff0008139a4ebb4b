import numpy as np
import pytest

from pipelines.data.sample import GAP, SPLITS, sample, split_indices


def test_splits_are_fixed_disjoint_and_separated():
    parts = {name: sample(name) for name in SPLITS}
    assert {name: len(part) for name, part in parts.items()} == {"train": 65, "val": 12, "test": 16}
    z = {name: set(part.z.tolist()) for name, part in parts.items()}
    assert not (z["train"] & z["val"]) and not (z["train"] & z["test"]) and not (z["val"] & z["test"])
    for held in ("val", "test"):
        gaps = [min(abs(t - h) for t in z["train"]) for h in z[held]]
        assert min(gaps) > GAP
    all_z = np.arange(24, 149)
    chosen = split_indices(all_z)
    assert not (chosen["train"] & chosen["test"]).any()


def test_slices_are_real_brain_images_with_tissue_maps():
    test = sample("test")
    assert test.images.shape == (16, 256, 256) and test.images.dtype == np.float32
    assert 0 <= test.images.min() and test.images.max() <= 1
    assert test.ids[0] == "icbm152-z056"
    # tissue maps overlap the T1 brain
    brain = test.images > 0.2
    assert (test.grey_matter[brain] + test.white_matter[brain]).mean() > 0.5
    assert test.white_matter[test.images > 0.8].mean() > 0.5  # white matter is bright on T1
    assert not test.images.flags.writeable


def test_unknown_split():
    with pytest.raises(ValueError, match="valid splits"):
        sample("training")
