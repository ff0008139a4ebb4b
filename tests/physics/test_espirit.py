import shutil

import numpy as np
import pytest
import torch

from physics.acquisition import simulate_kspace
from physics.coils import simulate_coil_maps
from physics.espirit import espirit_maps
from physics.fft import ifft2c


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


def _agreement(estimated, maps, inside):
    return float((estimated.conj() * maps).sum(0).abs()[inside].mean())


def test_a_one_dimensional_centre_calibrates_on_its_whole_rectangle():
    # gre.dat (measured, 2 coils) with its 6 centre lines, as a 10 % 1-D mask leaves
    # them: the 24 x 6 rectangle BART's ecalib takes finds the maps of the full scan with
    # a third of the error of the 6 x 6 square inside it.
    from pathlib import Path

    from pipelines.formats import read_input

    study = read_input(Path(__file__).parents[1] / "data" / "twix" / "gre.dat")[0][0]
    kspace = torch.from_numpy(study.kspace[0])
    image = ifft2c(kspace).abs().pow(2).sum(0).sqrt()
    inside = image > 0.2 * image.max()
    full = espirit_maps(kspace, calib_width=24)
    lines = torch.zeros(kspace.shape[-2:], dtype=torch.bool)
    lines[:, kspace.shape[-1] // 2 - 3: kspace.shape[-1] // 2 + 3] = True
    rectangle = espirit_maps(kspace * lines, calib_width=(24, 6))
    square = espirit_maps(kspace * lines, calib_width=6)
    assert rectangle.shape == kspace.shape
    assert 1 - _agreement(rectangle, full, inside) < 0.5 * (1 - _agreement(square, full, inside))
    with pytest.raises(ValueError, match="centre is only 3 wide"):
        espirit_maps(kspace, calib_width=(24, 3))


def test_maps_through_compression_match_the_direct_maps():
    from physics.coils import espirit_through_compression

    image, maps, kspace = _data(coils=12)
    inside = image.abs() > 0.1
    direct = espirit_maps(kspace, calib_width=24)
    compressed = espirit_through_compression(kspace, 24, virtual=6)
    assert compressed.shape == kspace.shape and compressed.dtype == torch.complex64
    assert _agreement(compressed[0], maps, inside) > 0.98
    assert _agreement(compressed[0], direct[0], inside) > 0.98
    # No more coils than the virtual ones: plain ESPIRiT.
    torch.testing.assert_close(espirit_through_compression(kspace, 24, virtual=12), direct)


def test_leading_eigenpairs_match_eigh_also_where_power_iteration_cannot_decide():
    from physics.espirit import leading_eigenpairs

    generator = torch.Generator().manual_seed(0)
    factors = torch.complex(torch.randn(200, 6, 3, generator=generator), torch.randn(200, 6, 3, generator=generator))
    matrices = factors @ factors.conj().transpose(-1, -2)
    matrices[0] = torch.eye(6)  # every eigenvalue equal: any unit vector, eigenvalue 1
    matrices[1] = 0  # a zero matrix
    matrices[2] = torch.diag(torch.tensor([1.0, 0.999, 0.5, 0, 0, 0])).to(matrices.dtype)  # a close second
    value, vector = leading_eigenpairs(matrices)
    values, vectors = torch.linalg.eigh(matrices)
    torch.testing.assert_close(value, values[:, -1], atol=1e-4, rtol=1e-4)
    assert torch.allclose(vector.norm(dim=-1)[2:], torch.ones(198), atol=1e-5)
    # an eigenvector of the largest eigenvalue: G v = l v (the phase is free)
    residual = (matrices @ vector[..., None])[..., 0] - value[:, None] * vector
    assert float(residual.norm(dim=-1).max()) < 1e-3
    overlap = (vectors[3:, :, -1].conj() * vector[3:]).sum(-1).abs()
    assert float(overlap.min()) > 0.999
