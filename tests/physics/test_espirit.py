import shutil

import numpy as np
import pytest
import torch

from physics.acquisition import simulate_kspace
from physics.coils import simulate_coil_maps
from physics.espirit import espirit_maps


def _phantom(size=96):
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    image = ((yy / 0.8) ** 2 + (xx / 0.6) ** 2 < 1).astype(np.float32)
    image -= 0.5 * (((yy - 0.2) / 0.3) ** 2 + (xx / 0.2) ** 2 < 1)
    return torch.from_numpy(image)


def _data(coils=8, size=96):
    image = _phantom(size)
    maps = simulate_coil_maps(coils, (size, size))
    kspace, _ = simulate_kspace(image[None], None, coil_maps=maps[None], noise_snr=50, generator=torch.Generator().manual_seed(0))
    return image, maps, kspace


def test_espirit_recovers_the_true_maps_up_to_one_phase_per_pixel():
    image, maps, kspace = _data()
    estimated = espirit_maps(kspace)
    assert estimated.shape == kspace.shape and estimated.dtype == torch.complex64
    inside = image.abs() > 0.1
    agreement = (estimated[0].conj() * maps).sum(0).abs()
    assert float(agreement[inside].min()) > 0.99
    # Outside the object there is only noise: those pixels are cropped.
    assert float((estimated[0].abs().sum(0) == 0)[~inside].float().mean()) > 0.3
    single = espirit_maps(kspace[0])
    torch.testing.assert_close(single, estimated[0])


def test_espirit_phase_is_smooth_inside_the_object():
    image, _, kspace = _data()
    estimated = espirit_maps(kspace)[0]
    inside = (image.abs() > 0.1)[:, 1:] & (image.abs() > 0.1)[:, :-1]
    jumps = (estimated[:, :, 1:] - estimated[:, :, :-1]).abs().amax(0)
    assert float(jumps[inside].max()) < 0.2


def test_a_tiny_calibration_region_is_refused():
    _, _, kspace = _data(size=32)
    with pytest.raises(ValueError, match="centre is only 3 wide"):
        espirit_maps(kspace, calib_width=3)


@pytest.mark.skipif(shutil.which("bart") is None, reason="bart is not installed")
def test_espirit_agrees_with_bart_ecalib():
    from benchmarks.multicoil import bart_ecalib

    image, _, kspace = _data()
    ours = espirit_maps(kspace[0], calib_width=24)
    theirs = bart_ecalib(kspace[0], 24)
    both = (ours.abs().sum(0) > 0) & (theirs.abs().sum(0) > 0)
    assert float(((ours.conj() * theirs).sum(0).abs())[both].mean()) > 0.995
    # The same eigenvalue crop: the supports agree on almost every pixel.
    assert float(((ours.abs().sum(0) > 0) == (theirs.abs().sum(0) > 0)).float().mean()) > 0.97
