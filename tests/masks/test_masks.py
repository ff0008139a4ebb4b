import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import masks
from masks import KINDS, ONE_D_KINDS, calibration_size, make_mask, parse_preset, seed_from_name

shapes = st.tuples(st.integers(16, 96), st.integers(16, 96))
percents = st.integers(2, 95)


@settings(max_examples=60, deadline=None)
@given(kind=st.sampled_from(KINDS), shape=shapes, percent=percents, seed=st.integers(0, 2**31))
def test_ratio_within_tolerance(kind, shape, percent, seed):
    if kind == "lowres":  # a rectangle cannot hit every count on tiny grids
        shape = (shape[0] + 48, shape[1] + 48)
    mask = make_mask(f"{percent}pct", shape, kind, seed=seed)
    target = percent / 100
    assert mask.array.shape == shape and mask.array.dtype == bool
    assert mask.ratio == pytest.approx(mask.array.mean())
    if kind in ONE_D_KINDS:
        # whole phase-encode lines, within one line of the target
        assert (mask.array.all(axis=0) | ~mask.array.any(axis=0)).all()
        assert abs(mask.ratio - target) * shape[1] <= 1.0
    else:
        assert abs(mask.ratio - target) <= 0.005 + 1.0 / (shape[0] * shape[1])


@settings(max_examples=30, deadline=None)
@given(kind=st.sampled_from(KINDS), percent=percents, seed=st.integers(0, 2**31))
def test_deterministic_for_a_seed(kind, percent, seed):
    a = make_mask(f"{percent}pct", (40, 48), kind, seed=seed)
    b = make_mask(f"{percent}pct", (40, 48), kind, seed=seed)
    assert np.array_equal(a.array, b.array)
    b2 = make_mask(f"{percent}pct", (40, 48), kind, seed=np.random.default_rng(seed))
    assert np.array_equal(a.array, b2.array)


@pytest.mark.parametrize("kind", ["cartesian", "equispaced", "gaussian1d", "random2d", "vd2d", "radial-raster"])
def test_different_seeds_differ(kind):
    a = make_mask("20pct", (64, 64), kind, seed=1).array
    b = make_mask("20pct", (64, 64), kind, seed=2).array
    assert not np.array_equal(a, b)


@pytest.mark.parametrize("kind", KINDS)
def test_global_random_state_untouched(kind):
    np.random.seed(7)
    random.seed(7)
    torch.manual_seed(7)
    numpy_state, python_state, torch_state = np.random.get_state(), random.getstate(), torch.get_rng_state()
    make_mask("30pct", (64, 64), kind, seed=3)
    after = np.random.get_state()
    assert all(np.array_equal(x, y) for x, y in zip(numpy_state, after))
    assert random.getstate() == python_state
    assert torch.equal(torch.get_rng_state(), torch_state)


@pytest.mark.parametrize("kind", KINDS)
def test_centre_is_sampled(kind):
    mask = make_mask("10pct", (256, 256), kind, seed=0)
    assert mask.array[128, 128]
    h, w = mask.center
    assert (h, w) == calibration_size(mask.array) or kind in ONE_D_KINDS
    assert mask.array[128 - h // 2 : 128 - h // 2 + h, 128 - w // 2 : 128 - w // 2 + w].all()


def test_documented_preset_centres():
    assert make_mask("10pct", (256, 256), "cartesian", seed=0).center == (256, 10)
    assert make_mask("50pct", (256, 256), "cartesian", seed=0).center == (256, 20)
    assert make_mask("10pct", (256, 256), "random2d", seed=0).params["center_side"] == 26
    assert make_mask("50pct", (256, 256), "vd2d", seed=0).params["center_side"] == 57
    assert make_mask("10pct", (256, 256), "lowres").center == (81, 81)
    cartesian = make_mask("10pct", (256, 256), "cartesian", seed=0)
    assert cartesian.array.any(axis=0).sum() == round(0.1 * 256)


def test_variable_density_is_denser_at_centre():
    for kind in ("gaussian1d", "vd2d", "radial-raster"):
        array = make_mask("25pct", (128, 128), kind, seed=0).array
        assert array[48:80, 48:80].mean() > array[:, :16].mean() + 0.1, kind


def test_presets():
    assert parse_preset("10pct") == pytest.approx(0.10)
    assert parse_preset("50pct") == pytest.approx(0.50)
    assert parse_preset("12.5pct") == pytest.approx(0.125)
    assert parse_preset(0.3) == pytest.approx(0.3)
    for bad in ("10", "abc", "0pct", "150pct", "-5pct", "pct"):
        with pytest.raises(ValueError, match="preset"):
            parse_preset(bad)


def test_unknown_kind_lists_valid_ones():
    with pytest.raises(ValueError, match="cartesian"):
        make_mask("10pct", (32, 32), "zigzag", seed=0)


def test_seed_from_name_is_stable():
    assert seed_from_name("file001.h5") == seed_from_name("file001.h5")
    assert seed_from_name("file001.h5") != seed_from_name("file002.h5")
    assert seed_from_name("file001.h5", 1) != seed_from_name("file001.h5", 0)
    # zlib.crc32 based, so stable across processes and Python versions
    assert seed_from_name("a", 0) == int(np.random.SeedSequence([3904355907, 0]).generate_state(1)[0])


def test_generators_registry_matches_kinds():
    assert set(masks.GENERATORS) == set(KINDS)


def test_lowres_presets_give_the_exact_block_and_the_family():
    from masks import lowres_factor, preset_kind

    mask = make_mask("lowres-2x", (256, 256))
    assert mask.kind == "lowres" and mask.center == (128, 128) and mask.ratio == 0.25
    mask = make_mask("lowres-4x", (640, 368), seed=3)
    assert mask.center == (160, 92) and mask.array.sum() == 160 * 92
    rows, columns = np.nonzero(mask.array)
    assert (rows.min(), rows.max(), columns.min(), columns.max()) == (240, 399, 138, 229)  # centred as fft2c's DC
    assert lowres_factor("lowres-4x") == 4 and lowres_factor("10pct") is None
    assert preset_kind("lowres-2x", None) == "lowres" and preset_kind("25pct", None) == "cartesian"
    with pytest.raises(ValueError, match="conflicts"):
        make_mask("lowres-2x", (64, 64), "vd2d")
    with pytest.raises(ValueError, match="1 to 16"):
        make_mask("lowres-40x", (64, 64))


def test_poisson_disc_without_a_calibration_block_and_denser_at_the_centre():
    from masks import split_family
    from masks.grid import _radius

    kind, center_fraction = split_family("poisson:nocal")
    assert (kind, center_fraction) == ("poisson", 0.0) and split_family("vd2d") == ("vd2d", None)
    mask = make_mask("25pct", (128, 128), kind, seed=4, center_fraction=center_fraction)
    assert mask.ratio == pytest.approx(0.25, abs=1e-4) and min(mask.center) < 4
    radius = _radius((128, 128))
    assert mask.array[radius < 0.3].mean() > 1.5 * mask.array[(radius > 0.7) & (radius < 1)].mean()
    # a Poisson-disc pattern: fewer sampled vertical neighbours in the outer ring than
    # independent draws of the same density would give
    ring = (radius > 0.7) & (radius < 1)
    both = ring[1:, :] & ring[:-1, :]
    density = mask.array[ring].mean()
    observed = (mask.array[1:, :] & mask.array[:-1, :] & both).sum()
    assert observed < 0.8 * density**2 * both.sum()


def test_the_calibration_region_caps_each_side_of_the_centre():
    from masks import calibration_region

    one_d = make_mask(parse_preset("10pct"), (160, 160), "cartesian", seed=1).array
    height, width = calibration_size(one_d)
    assert height == 160 and width < 24
    assert calibration_region(one_d) == (24, width)
    assert calibration_region(one_d, limit=8) == (8, min(8, width))
