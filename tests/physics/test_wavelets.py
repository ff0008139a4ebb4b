"""physics.wavelets: PyWavelets' zero-mode decomposition, and SigPy's L1-wavelet prox."""

import numpy as np
import pytest
import pywt
import torch

from physics import wavelets


def _complex(shape, seed):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


@pytest.mark.parametrize("shape", [(64, 48), (45, 37)])
def test_bands_are_pywavelets_zero_mode(shape):
    image = _complex(shape, 0)
    arrays = wavelets.forward(torch.from_numpy(image)[None])
    even = np.zeros([((size + 1) // 2) * 2 for size in shape], np.complex64)
    even[shape[0] % 2 :, shape[1] % 2 :] = image  # SigPy's resize: an odd axis gains a zero in front
    theirs = pywt.wavedecn(even, "db4", mode="zero")
    assert len(arrays) == len(theirs) - 1 == pywt.dwt_max_level(min(even.shape), 8)
    for index, level in enumerate(arrays):
        ours = torch.view_as_complex(level[0].movedim(0, -1).contiguous()).numpy()
        half = (ours.shape[0] // 2, ours.shape[1] // 2)
        bands = theirs[len(arrays) - index]
        np.testing.assert_allclose(ours[: half[0], half[1] :], bands["ad"], atol=1e-5)
        np.testing.assert_allclose(ours[half[0] :, : half[1]], bands["da"], atol=1e-5)
        np.testing.assert_allclose(ours[half[0] :, half[1] :], bands["dd"], atol=1e-5)
    np.testing.assert_allclose(ours[: half[0], : half[1]], theirs[0], atol=1e-5)


@pytest.mark.parametrize("shape", [(64, 48), (45, 37), (6, 5)])
def test_no_threshold_gives_the_image_back(shape):
    image = torch.from_numpy(_complex((2, *shape), 1))
    torch.testing.assert_close(wavelets.soft_threshold_wavelet(image, 0.0), image, atol=1e-5, rtol=0)


def test_soft_threshold_is_sigpy_s_prox_per_item():
    import sigpy as sp

    images = _complex((2, 45, 37), 2)
    transform = sp.linop.Wavelet(images.shape[1:], wave_name="db4")
    prox = sp.prox.UnitaryTransform(sp.prox.L1Reg(transform.oshape, 1.0), transform)
    thresholds = [0.5 * np.abs(transform(images[0])).max(), 0.1 * np.abs(transform(images[1])).max()]
    ours = wavelets.soft_threshold_wavelet(torch.from_numpy(images), torch.tensor(thresholds)).numpy()
    for item, threshold in enumerate(thresholds):
        theirs = prox(threshold, images[item])
        assert np.abs(theirs - images[item]).max() > 0.1  # the threshold bites
        np.testing.assert_allclose(ours[item], theirs, atol=1e-5 * np.abs(theirs).max())
