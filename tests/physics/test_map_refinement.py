import numpy as np
import torch

from physics.coils import simulate_coil_maps
from physics.consistency import exact_consistency
from physics.fft import fft2c
from physics.map_refinement import MAP_MISFIT, exact_consistency_refining_maps, refine_coil_maps
from physics.operators import sampling_operator

SHAPE = (64, 64)


def _phantom() -> torch.Tensor:
    y, x = np.mgrid[-1:1:SHAPE[0] * 1j, -1:1:SHAPE[1] * 1j]
    image = (x**2 / 0.7**2 + y**2 / 0.85**2 < 1).astype(np.float32)
    image -= 0.5 * ((x - 0.2) ** 2 + y**2 < 0.1)
    image += 0.3 * (np.abs(x + 0.3) < 0.1) * (np.abs(y) < 0.4)
    return torch.from_numpy(image.astype(np.float32)).to(torch.complex64)[None]


def _mask() -> torch.Tensor:
    mask = torch.zeros(SHAPE, dtype=torch.bool)
    mask[:, ::2] = True
    mask[:, 28:36] = True
    return mask


def _acquisition(noise: float = 0.0):
    """8 coils, a mask of every other line plus the centre; the maps the data were made
    with, and the same maps off by a smooth complex error of about 5 %."""
    image, mask = _phantom(), _mask()
    maps = simulate_coil_maps(8, SHAPE)[None]
    y, x = np.mgrid[-1:1:SHAPE[0] * 1j, -1:1:SHAPE[1] * 1j]
    error = torch.from_numpy((0.05 * np.exp(1j * (1.5 * x + y)) * (1 + 0.5 * y)).astype(np.complex64))
    wrong = maps * (1 + error)
    kspace = fft2c(maps * image[:, None]) * mask
    if noise:
        generator = torch.Generator().manual_seed(0)
        kspace = kspace + noise * torch.randn(kspace.shape, dtype=torch.complex64, generator=generator) * mask
    return image, mask, maps, wrong, kspace


def _misfit(image, maps, mask, kspace) -> float:
    return float((fft2c(maps * image[:, None]) * mask - kspace).norm() / kspace.norm())


def _distance(estimate: torch.Tensor, image: torch.Tensor) -> float:
    """``min_a ||a estimate - image||``: maps and image share a complex scale the data cannot fix."""
    scale = (estimate.conj() * image).sum() / (estimate.abs() ** 2).sum()
    return float((scale * estimate - image).norm())


def test_refined_maps_explain_the_data_the_given_ones_cannot():
    image, mask, maps, wrong, kspace = _acquisition()
    refined = refine_coil_maps(image, kspace, mask, wrong, max_iter=30)
    assert _misfit(image, refined, mask, kspace) < 0.2 * _misfit(image, wrong, mask, kspace)
    inside = image.abs()[0] > 0
    error = lambda m: float((m - maps)[..., inside].norm() / maps[..., inside].norm())  # noqa: E731
    assert error(refined) < 0.5 * error(wrong)


def test_maps_are_refined_only_where_the_step_stalls_on_noise_free_data():
    image, mask, maps, wrong, kspace = _acquisition()
    generator = torch.Generator().manual_seed(1)  # an estimate near the image: off in scale and pixel by pixel
    start = image * 0.97 + 0.03 * torch.randn(image.shape, generator=generator, dtype=torch.complex64) * (image.abs() > 0)
    # maps that explain the data: the step converges and nothing is refined
    exact = sampling_operator(mask, maps)
    stepped = exact_consistency(image, kspace, exact)
    assert _misfit(stepped, maps, mask, kspace) < MAP_MISFIT
    assert torch.equal(exact_consistency_refining_maps(image, stepped, kspace, exact), stepped)
    # maps off by 5 %: the step stalls above the misfit, and the refined maps' step lands nearer the image
    off = sampling_operator(mask, wrong)
    stepped = exact_consistency(start, kspace, off)
    refined = exact_consistency_refining_maps(start, stepped, kspace, off)
    assert _distance(refined, image) < 0.5 * _distance(stepped, image)
    assert torch.equal(exact_consistency_refining_maps(start, stepped, kspace, off, rounds=0), stepped)


def test_a_refined_step_that_reaches_the_change_cap_is_not_kept(monkeypatch):
    import physics.map_refinement

    image, mask, _, wrong, kspace = _acquisition()
    generator = torch.Generator().manual_seed(1)
    start = image * 0.97 + 0.03 * torch.randn(image.shape, generator=generator, dtype=torch.complex64) * (image.abs() > 0)
    off = sampling_operator(mask, wrong)
    stepped = exact_consistency(start, kspace, off)
    assert not torch.equal(exact_consistency_refining_maps(start, stepped, kspace, off), stepped)
    monkeypatch.setattr(physics.map_refinement, "CAPPED_SHARE", 0.0)  # every change counts as capped
    assert torch.equal(exact_consistency_refining_maps(start, stepped, kspace, off), stepped)


def test_noisy_data_keep_the_step_with_the_given_maps():
    image, mask, _, wrong, kspace = _acquisition(noise=0.05)
    off = sampling_operator(mask, wrong)
    stepped = exact_consistency(image, kspace, off)
    assert torch.equal(exact_consistency_refining_maps(image, stepped, kspace, off), stepped)
