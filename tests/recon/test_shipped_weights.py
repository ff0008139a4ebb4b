"""Regression floors for the shipped learned weights (recorded from measurements)."""

import numpy as np
import pytest

import recon
from masks import make_mask
from physics import fft2c
from recon import metrics
from recon.learned import load_generator, ratio_distance, shipped_weights

# PSNR gain over zero-filled (dB) on the fixed test slice below, cartesian mask, seed 11.
# The floors sit about 2 dB below the gains measured when the weights were shipped.
FLOORS_DB = {
    ("gan-drn", 0.10): 6.0,  # measured at shipping: +8.10 dB
    ("gan-drn", 0.50): 13.5,  # measured at shipping: +15.75 dB
}


def test_every_shipped_weights_file_has_a_floor_and_card():
    for model in ("gan-drn", "csr-gan"):
        for path, trained in shipped_weights(model).items():
            floors = [ratio for name, ratio in FLOORS_DB if name == model and ratio_distance(ratio, trained) == 0]
            assert floors, f"record a regression floor for {path.name}"
            generator = load_generator(str(path))
            assert sum(p.numel() for p in generator.parameters()) > 0


@pytest.mark.parametrize("model,ratio", sorted(FLOORS_DB))
def test_shipped_weights_beat_zero_filled(brain_slice, model, ratio):
    if not any(ratio_distance(ratio, trained) == 0 for trained in shipped_weights(model).values()):
        pytest.fail(f"{model} weights for {ratio:.0%} are not shipped")
    mask = make_mask(ratio, brain_slice.shape, "cartesian", seed=11).array
    kspace = fft2c(brain_slice.astype(np.complex64))
    zero_filled = recon.reconstruct(kspace, mask, "zero-filled")
    learned = recon.reconstruct(kspace, mask, model)
    gain = metrics.psnr(learned, brain_slice) - metrics.psnr(zero_filled, brain_slice)
    assert gain >= FLOORS_DB[(model, ratio)], f"{model} at {ratio:.0%}: gain {gain:.2f} dB"
    # hard data consistency: the measured samples are kept
    np.testing.assert_allclose(fft2c(learned)[mask], kspace[mask], atol=1e-4 * np.abs(kspace).max())
