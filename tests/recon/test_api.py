"""``recon.reconstruct``: it takes the ``Mask`` that ``masks.make_mask`` returns, and
warns about k-space that looks un-centred."""

import warnings

import numpy as np
import pytest

import masks
import recon
from physics.fft import fft2c
from pipelines.data.sample import sample


@pytest.fixture(scope="module")
def truth():
    return np.array(sample("test").images[0], dtype=np.float32)


def test_reconstruct_accepts_a_mask_object(truth):
    mask = masks.make_mask("50pct", truth.shape, "cartesian", seed=0)
    kspace = fft2c(truth.astype(np.complex64))
    from_object = recon.reconstruct(kspace, mask, "zero-filled")
    from_array = recon.reconstruct(kspace, mask.array, "zero-filled")
    np.testing.assert_array_equal(from_object, from_array)


def test_uncentred_kspace_gets_a_warning(truth):
    mask = masks.make_mask("50pct", truth.shape, "cartesian", seed=0)
    uncentred = np.fft.fft2(truth, norm="ortho").astype(np.complex64)  # DC at (0, 0)
    with pytest.warns(UserWarning, match="fftshift"):
        recon.reconstruct(uncentred, np.ones(truth.shape, bool), "zero-filled")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        recon.reconstruct(fft2c(truth.astype(np.complex64)), mask, "zero-filled")  # centred: silent
        noise = np.random.default_rng(0).standard_normal(truth.shape).astype(np.complex64)
        recon.reconstruct(noise, mask, "zero-filled")  # no dominant peak: silent
