import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physics import DataConsistency, fft2c, hard_projection, simulate_coil_maps, soft_consistency
from physics.operators import MultiCoil, SingleCoil


def _random(shape, generator):
    return torch.complex(torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), height=st.integers(2, 20), width=st.integers(2, 20))
def test_hard_projection_is_idempotent_and_keeps_measurements(seed, height, width):
    g = torch.Generator().manual_seed(seed)
    k, y = _random((1, 2, height, width), g), _random((1, 2, height, width), g)
    mask = torch.rand((height, width), generator=g) < 0.5
    once = hard_projection(k, y, mask)
    torch.testing.assert_close(hard_projection(once, y, mask), once)
    assert torch.equal(once[..., mask], y[..., mask])
    assert torch.equal(once[..., ~mask], k[..., ~mask])


def test_soft_consistency_interpolates():
    g = torch.Generator().manual_seed(0)
    k, y = _random((1, 1, 8, 8), g), _random((1, 1, 8, 8), g)
    mask = torch.rand((8, 8), generator=g) < 0.5
    torch.testing.assert_close(soft_consistency(k, y, mask, 1.0), hard_projection(k, y, mask))
    torch.testing.assert_close(soft_consistency(k, y, mask, 0.0), k)
    half = soft_consistency(k, y, mask, 0.5)
    torch.testing.assert_close(half[..., mask], (k[..., mask] + y[..., mask]) / 2)


def test_data_consistency_module_single_and_multi_coil():
    g = torch.Generator().manual_seed(3)
    mask = torch.rand((16, 16), generator=g) < 0.3
    truth = _random((2, 16, 16), g)
    layer = DataConsistency()
    measured = fft2c(truth.unsqueeze(1)) * mask
    estimate = _random((2, 16, 16), g)
    out = layer(estimate, measured, SingleCoil(mask))
    assert torch.allclose(fft2c(out.unsqueeze(1))[..., mask], measured[..., mask], atol=1e-5)
    torch.testing.assert_close(layer(out, measured, SingleCoil(mask)), out, atol=1e-5, rtol=1e-5)

    maps = simulate_coil_maps(4, (16, 16)).unsqueeze(0).expand(2, -1, -1, -1)
    measured = fft2c(maps * truth.unsqueeze(1)) * mask
    out = layer(truth, measured, MultiCoil(mask, maps))
    torch.testing.assert_close(out, truth, atol=1e-5, rtol=1e-5)


def test_learnable_weight_gets_gradient():
    layer = DataConsistency(weight=0.5, learnable=True)
    assert abs(float(layer.weight.detach()) - 0.5) < 1e-6
    g = torch.Generator().manual_seed(0)
    mask = torch.rand((8, 8), generator=g) < 0.5
    measured = fft2c(_random((1, 1, 8, 8), g)) * mask
    layer(_random((1, 8, 8), g), measured, SingleCoil(mask)).abs().sum().backward()
    assert layer.logit.grad is not None and layer.logit.grad != 0
    assert [name for name, _ in layer.named_parameters()] == ["logit"]
    assert list(DataConsistency().parameters()) == []


def test_hybrid_form_gives_the_same_images_as_two_dimensional_ffts():
    # a 1-D mask runs data consistency and the exact least-squares step in hybrid space
    # (1-D FFTs); the images must equal those of the 2-D operator
    from physics.consistency import exact_consistency, hybrid_form
    from physics.solvers import least_squares

    g = torch.Generator().manual_seed(5)
    mask = (torch.rand(24, generator=g) < 0.35).expand(16, 24)
    maps = simulate_coil_maps(4, (16, 24)).unsqueeze(0)
    truth, estimate = _random((1, 16, 24), g), _random((1, 16, 24), g)
    operator = MultiCoil(mask, maps)
    measured = fft2c(maps * truth.unsqueeze(1)) * mask
    hybrid, measured_h = hybrid_form(operator, measured)
    assert hybrid is not operator
    for layer in (DataConsistency(), DataConsistency(weight=0.3)):
        k = fft2c(maps * estimate.unsqueeze(1))
        k = k + layer.weight * mask * (measured - k)  # the per-coil update, written out
        expected = (maps.conj() * torch.fft.fftshift(torch.fft.ifft2(torch.fft.ifftshift(k, dim=(-2, -1)), norm="ortho"),
                                                      dim=(-2, -1))).sum(1)
        torch.testing.assert_close(layer(estimate, measured_h, hybrid), expected, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(layer(estimate, measured, operator), expected, atol=1e-5, rtol=1e-5)
    two_d = least_squares(operator, measured, estimate, max_iter=30, tol=1e-7)
    torch.testing.assert_close(exact_consistency(estimate, measured, operator, max_iter=30, tol=1e-7, noise_stop=False),
                               two_d, atol=1e-4, rtol=1e-4)
