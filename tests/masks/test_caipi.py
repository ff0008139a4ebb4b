import numpy as np
import pytest

from masks import make_mask
from masks.caipi import caipi_lattice, factor_pairs


def test_lattice_is_shifted_from_one_sampled_row_to_the_next():
    array = caipi_lattice((8, 8), (2, 2), shift=1)
    rows = np.flatnonzero(array.any(axis=1))
    assert list(rows) == [0, 2, 4, 6]  # every second ky line
    first, second = (np.flatnonzero(array[r]) for r in rows[:2])
    assert len(first) == len(second) == 4 and first[0] % 2 != second[0] % 2  # kz shifted by one
    assert array[4, 4]  # the DC sample is on the lattice


def test_pairs_put_the_larger_factor_on_the_longer_axis():
    assert (2, 3) in factor_pairs((100, 200)) and (3, 2) in factor_pairs((200, 100))
    assert all(abs(a - b) <= 1 for a, b in factor_pairs((64, 64)))


@pytest.mark.parametrize("shape", [(256, 176), (220, 180), (176, 256)])
@pytest.mark.parametrize("percent", [10, 25])
def test_preset_is_lattice_plus_reference_block(shape, percent):
    mask = make_mask(f"{percent}pct", shape, "caipi")
    assert abs(mask.ratio - percent / 100) <= 0.005
    rows, columns = mask.params["acceleration"]
    assert rows * columns > 1
    lattice = caipi_lattice(shape, (rows, columns), mask.params["shift"])
    assert (mask.array | lattice).sum() == mask.array.sum()  # the whole lattice is sampled
    height, width = mask.center
    assert height >= 8 and width >= 8  # enough for ESPIRiT calibration


def test_without_calibration_block_is_the_pure_lattice():
    mask = make_mask("25pct", (64, 64), "caipi", center_fraction=0)
    assert mask.params["acceleration"] == [2, 2] and mask.ratio == 0.25
    assert np.array_equal(mask.array, caipi_lattice((64, 64), (2, 2), 1))
