import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physics import MultiCoil, SingleCoil, simulate_coil_maps
from physics.complex import from_channels, to_channels


def _random(shape, dtype, generator):
    real = torch.randn(shape, generator=generator, dtype=torch.float64)
    imag = torch.randn(shape, generator=generator, dtype=torch.float64)
    return torch.complex(real, imag).to(dtype)


def _operators(height, width, coils, generator, dtype):
    mask = torch.rand((height, width), generator=generator) < 0.4
    maps = _random((2, coils, height, width), dtype, generator)
    return [SingleCoil(mask), MultiCoil(mask, maps)]


@pytest.mark.parametrize("dtype,tol", [(torch.complex64, 1e-4), (torch.complex128, 1e-10)])
@settings(max_examples=15, deadline=None)
@given(height=st.integers(2, 24), width=st.integers(2, 24), coils=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_adjointness(dtype, tol, height, width, coils, seed):
    generator = torch.Generator().manual_seed(seed)
    for operator in _operators(height, width, coils, generator, dtype):
        x = _random((2, height, width), dtype, generator)
        y = _random((2, coils if isinstance(operator, MultiCoil) else 1, height, width), dtype, generator)
        lhs = torch.vdot(operator(x).flatten(), y.flatten())
        rhs = torch.vdot(x.flatten(), operator.adjoint(y).flatten())
        assert abs(lhs - rhs) <= tol * max(1.0, abs(lhs))
        # normal is A^H A
        torch.testing.assert_close(operator.normal(x), operator.adjoint(operator(x)))


def test_shapes_and_buffers():
    mask = torch.zeros(8, 10, dtype=torch.bool)
    mask[:, ::2] = True
    maps = simulate_coil_maps(4, (8, 10)).unsqueeze(0)
    op = MultiCoil(mask, maps)
    assert op(torch.ones(1, 8, 10, dtype=torch.complex64)).shape == (1, 4, 8, 10)
    assert {name for name, _ in op.named_buffers()} == {"mask", "coil_maps"}
    assert SingleCoil(mask)(torch.ones(3, 8, 10, dtype=torch.complex64)).shape == (3, 1, 8, 10)


def test_with_mask_returns_new_operator():
    mask = torch.ones(6, 6, dtype=torch.bool)
    op = SingleCoil(mask)
    other = op.with_mask(torch.zeros(6, 6, dtype=torch.bool))
    assert other is not op and op.mask.all() and not other.mask.any()


def test_multicoil_with_unit_rss_maps_is_isometric_when_fully_sampled():
    maps = simulate_coil_maps(8, (32, 32)).unsqueeze(0)
    op = MultiCoil(torch.ones(32, 32, dtype=torch.bool), maps)
    x = _random((1, 32, 32), torch.complex64, torch.Generator().manual_seed(0))
    torch.testing.assert_close(op.normal(x), x, atol=1e-5, rtol=1e-5)


def test_rejects_non_bool_mask():
    with pytest.raises(TypeError, match="bool"):
        SingleCoil(torch.ones(4, 4))


def test_channels_round_trip():
    x = _random((2, 5, 7), torch.complex64, torch.Generator().manual_seed(1))
    channels = to_channels(x)
    assert channels.shape == (2, 2, 5, 7) and not torch.is_complex(channels)
    torch.testing.assert_close(from_channels(channels), x)
    with pytest.raises(ValueError):
        from_channels(torch.zeros(2, 3, 5, 7))
    assert np.allclose(channels[:, 0].numpy(), x.real.numpy())
