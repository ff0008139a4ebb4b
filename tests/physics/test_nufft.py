"""The non-Cartesian operator: accuracy against a direct DFT, the Toeplitz normal
operator, gradients, density compensation, and bad trajectories."""

import math

import numpy as np
import pytest
import torch

from masks import make_trajectory
from physics import simulate_kspace
from physics.fft import fft2c
from physics.nufft import NUFFT, Trajectory, density_compensation, voronoi_density


def _direct(image, coords):
    """The centred orthonormal DFT at ``coords``, summed term by term (float64)."""
    height, width = image.shape[-2:]
    rows = torch.arange(height, dtype=torch.float64) - height // 2
    cols = torch.arange(width, dtype=torch.float64) - width // 2
    c = coords.double()
    phase = c[..., 0, None, None] * rows[:, None] / height + c[..., 1, None, None] * cols[None, :] / width
    kernel = torch.exp(-2j * math.pi * phase) / math.sqrt(height * width)
    return torch.einsum("...hw,bhw->b...", kernel, image.to(torch.complex128))


def _radial(height, width, spokes=7, samples=48):
    return Trajectory(torch.from_numpy(make_trajectory(f"{spokes}spokes", (height, width), "radial", seed=1).coords),
                      (height, width), kind="radial")


@pytest.mark.parametrize("shape", [(24, 20), (17, 23)])
def test_nufft_matches_a_direct_dft_to_1e_4(shape):
    generator = torch.Generator().manual_seed(0)
    image = torch.randn((2, *shape), dtype=torch.complex64, generator=generator)
    trajectory = _radial(*shape)
    ours = NUFFT(trajectory)(image)[:, 0].to(torch.complex128)
    direct = _direct(image, trajectory.coords)
    assert float((ours - direct).norm() / direct.norm()) < 1e-4


def test_on_the_cartesian_grid_the_nufft_is_fft2c():
    height, width = 16, 12
    grid = torch.stack(torch.meshgrid(torch.arange(height) - height // 2.0, torch.arange(width) - width // 2.0,
                                      indexing="ij"), dim=-1).float()
    image = torch.randn((1, height, width), dtype=torch.complex64, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(NUFFT(Trajectory(grid, (height, width)))(image)[0, 0], fft2c(image)[0],
                               rtol=1e-4, atol=1e-4)


def test_toeplitz_normal_operator_equals_adjoint_of_forward_with_coils():
    generator = torch.Generator().manual_seed(2)
    maps = torch.randn((1, 3, 24, 20), dtype=torch.complex64, generator=generator)
    operator = NUFFT(_radial(24, 20), maps)
    image = torch.randn((1, 24, 20), dtype=torch.complex64, generator=generator)
    explicit = operator.adjoint(operator(image))
    assert float((operator.normal(image) - explicit).norm() / explicit.norm()) < 1e-4


def test_the_gradient_of_the_forward_transform_is_the_adjoint():
    operator = NUFFT(_radial(20, 20))
    image = torch.randn((1, 20, 20), dtype=torch.complex64, requires_grad=True)
    operator(image).abs().pow(2).sum().backward()
    expected = 2 * operator.adjoint(operator(image.detach()))
    assert float((image.grad - expected).norm() / expected.norm()) < 1e-5


def test_density_compensation_keeps_the_scale_of_a_fully_sampled_disc():
    # a Nyquist-rate spiral (24 interleaves on 128) and radial (201 spokes): gridding is
    # then close to the image, and a Cartesian grid's Voronoi weights are 1
    image = torch.zeros((1, 128, 128))
    image[0, 48:80, 40:88] = 1.0
    for preset, kind in (("24interleaves", "spiral"), ("100pct", "radial")):
        made = make_trajectory(preset, (128, 128), kind, seed=0)
        trajectory = Trajectory(torch.from_numpy(made.coords), (128, 128), kind=made.kind)
        trajectory = trajectory.with_dcf(density_compensation(trajectory))
        kspace, truth = simulate_kspace(image, trajectory)
        gridded = NUFFT(trajectory).gridding(kspace)
        scale = float((gridded.conj() * truth).sum().real / gridded.abs().pow(2).sum())
        assert abs(scale - 1) < 0.05, (kind, scale)
    grid = torch.stack(torch.meshgrid(torch.arange(16) - 8.0, torch.arange(16) - 8.0, indexing="ij"), dim=-1)
    weights = voronoi_density(Trajectory(grid.reshape(16, 16, 2), (16, 16)))
    assert torch.allclose(weights[2:-2, 2:-2], torch.ones(12, 12), atol=1e-4)


@pytest.mark.parametrize("coords, problem", [
    (torch.full((4, 8, 2), float("nan")), "NaN"),
    (torch.full((4, 8, 2), 20.0), "outside"),
    (torch.zeros((0, 8, 2)), "no samples"),
    (torch.zeros((4, 8, 3)), r"\(\.\.\., 2\)"),
])
def test_bad_trajectories_are_refused_with_the_reason(coords, problem):
    with pytest.raises(ValueError, match=problem):
        Trajectory(coords, (16, 16))


def test_kspace_that_does_not_match_the_trajectory_is_refused():
    operator = NUFFT(_radial(16, 16))
    with pytest.raises(ValueError, match="for this trajectory"):
        operator.adjoint(torch.zeros((1, 1, 7, 5), dtype=torch.complex64))
    assert np.isfinite(operator.adjoint(torch.zeros((1, 1, *operator.trajectory.sample_shape),
                                                    dtype=torch.complex64)).numpy()).all()
