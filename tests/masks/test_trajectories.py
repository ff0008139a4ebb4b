"""Non-Cartesian trajectories: presets in spokes and interleaves, seeding, geometry."""

import math

import numpy as np
import pytest

from masks import TRAJECTORY_KINDS, make_mask, make_sampling, make_trajectory
from masks.trajectories import GOLDEN_RATIO, nyquist_shots


@pytest.mark.parametrize("kind", TRAJECTORY_KINDS)
def test_trajectories_are_seeded_and_leave_global_state_alone(kind):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = make_trajectory("10pct", (64, 48), kind, seed=5)
    again = make_trajectory("10pct", (64, 48), kind, seed=5)
    other = make_trajectory("10pct", (64, 48), kind, seed=6)
    assert np.array_equal(first.coords, again.coords) and not np.array_equal(first.coords, other.coords)
    assert np.array_equal(np.random.get_state()[1], before)
    # inside the grid's +-N/2 on each axis, reaching the edge of the shorter one
    assert (np.abs(first.coords[..., 0]) <= 32 + 1e-4).all() and (np.abs(first.coords[..., 1]) <= 24 + 1e-4).all()
    assert first.coords.dtype == np.float32 and first.coords.shape[-1] == 2


def test_presets_in_percent_spokes_and_interleaves():
    radial = make_trajectory("10pct", (256, 256), "radial", seed=0)
    assert radial.shots == 40 and radial.coords.shape == (40, 512, 2)  # 10 % of the 402 Nyquist spokes
    assert abs(nyquist_shots("radial", (256, 256)) - 402.1) < 0.1
    assert "40 spokes" in radial.summary() and "9.9%" in radial.summary()
    assert make_trajectory("40spokes", (256, 256), "radial", seed=0).shots == 40
    spiral = make_trajectory("4interleaves", (256, 256), "spiral", seed=0)
    assert spiral.shots == 4 and abs(spiral.ratio - 4 / 48) < 1e-9 and "4 interleaves" in spiral.summary()
    with pytest.raises(ValueError, match="counted in interleaves"):
        make_trajectory("40spokes", (256, 256), "spiral")
    with pytest.raises(ValueError, match="at least one"):
        make_trajectory("0spokes", (256, 256), "radial")
    with pytest.raises(ValueError, match="non-Cartesian"):
        make_mask("10pct", (64, 64), "radial")
    assert make_sampling("10pct", (64, 64), "radial-raster").array.shape == (64, 64)


def test_radial_orderings_step_by_their_angle():
    for kind, step in (("radial", math.pi / GOLDEN_RATIO), ("radial-uniform", math.pi / 8),
                       ("radial-tiny-golden", math.pi / (GOLDEN_RATIO + 6))):
        made = make_trajectory("8spokes", (64, 64), kind, seed=3)
        end = made.coords[:, -1]  # the last sample of each spoke: its direction
        angles = np.arctan2(end[:, 1], end[:, 0])
        turn = np.angle(np.exp(1j * (angles[1] - angles[0])) ** 2) / 2  # modulo pi: a spoke has two ends
        assert abs(turn - (np.angle(np.exp(2j * step)) / 2)) < 1e-4, kind


def test_spiral_is_nyquist_at_the_centre_from_four_interleaves():
    made = make_trajectory("4interleaves", (128, 128), "spiral", seed=0)
    radius = np.hypot(made.coords[0, :, 0], made.coords[0, :, 1])
    assert radius[0] < 1e-6 and abs(radius.max() - 64) < 1
    # near the centre one arm grows by 4 x 1/FOV per turn (4 arms -> 1/FOV apart)
    theta = np.unwrap(np.arctan2(made.coords[0, 1:, 1], made.coords[0, 1:, 0]))
    turns = np.searchsorted(theta - theta[0], [2 * np.pi, 4 * np.pi])
    assert 3.8 < radius[1:][turns[1]] - radius[1:][turns[0]] < 4.6
