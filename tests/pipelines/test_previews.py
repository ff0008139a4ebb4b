"""Previews as viewers show them: radiological orientation from the affine, the error
scale, and what an output holds when the guard acted."""

import numpy as np
import pytest

from pipelines.common.evaluation import holding, slice_note
from pipelines.reports.previews import error_scale, orient, orientation


def _marked(shape=(6, 8)):
    """A slice with one bright voxel at (i = last, j = 0)."""
    image = np.zeros(shape)
    image[-1, 0] = 1.0
    return image


def test_an_axial_ras_slice_shows_the_patients_right_on_the_left_and_anterior_on_top():
    # i increases toward the patient's right (R), j toward anterior (A), k superior: axial
    layout = orientation(np.diag([2.0, 2.0, 3.0, 1.0]))
    assert (layout["plane"], layout["left"], layout["right"], layout["top"], layout["bottom"]) == ("axial", "R", "L", "A", "P")
    shown = orient(_marked(), layout)
    assert shown.shape == (8, 6)  # rows now run anterior -> posterior, columns right -> left
    # the marked voxel is the rightmost (i last) and most posterior (j = 0): screen left, bottom
    assert np.argwhere(shown == 1).tolist() == [[7, 0]]


def test_an_las_affine_flips_the_columns_back():
    layout = orientation(np.diag([-2.0, 2.0, 3.0, 1.0]))  # i toward the left: already radiological after transposing
    shown = orient(_marked(), layout)
    assert np.argwhere(shown == 1).tolist() == [[7, 5]]  # leftmost voxel on the screen's right


def test_coronal_and_sagittal_slices_put_superior_on_top():
    coronal = np.array([[2.0, 0, 0, 0], [0, 0, 3.0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1]])  # i R, j S, k A
    layout = orientation(coronal)
    assert (layout["plane"], layout["left"], layout["top"]) == ("coronal", "R", "S")
    sagittal = np.array([[0, 0, 3.0, 0], [2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 0, 1]])  # i A, j S, k R
    layout = orientation(sagittal)
    assert (layout["plane"], layout["left"], layout["top"]) == ("sagittal", "A", "S")
    shown = orient(_marked(), layout)  # (i last = most anterior, j 0 = most inferior): screen left, bottom
    assert np.argwhere(shown == 1).tolist() == [[7, 0]]


@pytest.mark.parametrize("affine", [None, np.eye(4), np.full((4, 4), np.nan)])
def test_unknown_geometry_is_shown_as_stored(affine):
    assert orientation(affine) is None
    image = _marked()
    assert orient(image, None) is image


def test_the_error_scale_is_the_smallest_that_holds_the_errors():
    rng = np.random.default_rng(0)
    assert error_scale([rng.uniform(0, 0.015, (64, 64))], 1.0) == 0.02
    assert error_scale([rng.uniform(0, 0.08, (64, 64))], 1.0) == 0.1
    assert error_scale([rng.uniform(0, 3.0, (64, 64))], 1.0) == 0.2  # saturates at the largest


def test_what_an_output_holds():
    assert holding("gan-drn", None) == holding("gan-drn", ["gan-drn"] * 3) == "gan-drn output"
    assert holding("gan-drn", ["cs-tv"]) == "cs-tv image, not gan-drn (the guard replaced every gan-drn slice)"
    mixed = holding("gan-drn", ["gan-drn", "cs-tv", "gan-drn", "zero-filled"])
    assert mixed == "gan-drn output; guard wrote 2 of 4 slices from cs-tv and zero-filled (slices 1,3)"
    assert "in place of gan-drn" in slice_note("gan-drn", "cs-tv") and slice_note("cs-tv", "cs-tv") == "cs-tv reconstruction"
