import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physics import MultiCoil, SingleCoil, simulate_coil_maps
from physics.columns import SampledColumns
from physics.complex import from_channels, to_channels
from physics.fft import fft1c
from physics.nufft import NUFFT, ToeplitzNormal, Trajectory
from physics.operators import HybridCartesian, sampling_operator
from physics.resolution import KSpaceCrop, SliceAverage


def _random(shape, dtype, generator):
    real = torch.randn(shape, generator=generator, dtype=torch.float64)
    imag = torch.randn(shape, generator=generator, dtype=torch.float64)
    return torch.complex(real, imag).to(dtype)


def _operators(height, width, coils, generator, dtype):
    """Every operator of ``physics.operators``, alone and in the algebra's forms, with
    the shapes of its domain and range: a new operator joins the contract here."""
    mask = torch.rand((height, width), generator=generator) < 0.4
    maps = _random((2, coils, height, width), dtype, generator)
    image, kspace, multi = (2, height, width), (2, 1, height, width), (2, coils, height, width)
    block = (max(1, height // 2), max(1, width // 2))
    crop = KSpaceCrop(block, (height, width))
    full = SingleCoil(torch.ones(height, width, dtype=torch.bool))
    points = (torch.rand((3, 5, 2), generator=generator, dtype=torch.float64) - 0.5) * torch.tensor([height, width])
    trajectory = Trajectory(points.to(torch.float64 if dtype == torch.complex128 else torch.float32), (height, width))
    return [
        (SingleCoil(mask), image, kspace),
        (MultiCoil(mask, maps), image, multi),
        (sampling_operator(mask, maps), image, multi),
        (crop, kspace, (2, 1, *block)),
        (crop @ full, image, (2, 1, *block)),
        (MultiCoil(mask, maps).H, multi, image),
        (MultiCoil(mask, maps).normal(), image, image),
        # 1-D masks in hybrid space (readout in image space), single- and multi-coil
        (HybridCartesian(mask[:1], maps), image, multi),
        (HybridCartesian(mask[:1]), image, kspace),
        # the same keeping only the sampled columns: every other one (an FFT and a
        # selection), and a single one (a product with a block of the DFT matrix)
        (SampledColumns(torch.arange(0, width, 2), width, maps), image, (2, coils, height, (width + 1) // 2)),
        (SampledColumns(torch.arange(0, width, 2), width), image, (2, 1, height, (width + 1) // 2)),
        (SampledColumns(torch.tensor([width // 2]), width, maps), image, (2, coils, height, 1)),
        # through-plane thick slices: per-item factors dividing H
        (SliceAverage([2 if height % 2 == 0 else 1, 3 if height % 3 == 0 else 1]), image, kspace),
        # non-Cartesian: the NUFFT at random points (3 shots x 5 samples), single- and multi-coil
        (NUFFT(trajectory), image, (2, 1, 3, 5)),
        (sampling_operator(trajectory, maps), image, (2, coils, 3, 5)),
        (NUFFT(trajectory, maps).normal(), image, image),
    ]


@pytest.mark.parametrize("dtype,tol", [(torch.complex64, 1e-4), (torch.complex128, 1e-10)])
@settings(max_examples=15, deadline=None)
@given(height=st.integers(2, 24), width=st.integers(2, 24), coils=st.integers(1, 4), seed=st.integers(0, 10_000))
def test_adjointness(dtype, tol, height, width, coils, seed):
    generator = torch.Generator().manual_seed(seed)
    for operator, domain, codomain in _operators(height, width, coils, generator, dtype):
        x = _random(domain, dtype, generator)
        y = _random(codomain, dtype, generator)
        lhs = torch.vdot(operator(x).flatten(), y.flatten())
        rhs = torch.vdot(x.flatten(), operator.adjoint(y).flatten())
        assert abs(lhs - rhs) <= tol * max(1.0, abs(lhs))
        # normal is A^H A (a NUFFT's is its Toeplitz embedding: exact to the NUFFT's
        # tolerance), the adjoint of the adjoint is the operator
        toeplitz = isinstance(operator, (NUFFT, ToeplitzNormal))
        torch.testing.assert_close(operator.normal(x), operator.adjoint(operator(x)),
                                   **({"rtol": 1e-4, "atol": 1e-4 * float(x.abs().max())} if toeplitz else {}))
        torch.testing.assert_close(operator.H.H(x), operator(x))


def test_composition_and_adjoint_algebra():
    generator = torch.Generator().manual_seed(0)
    mask = torch.rand((8, 10), generator=generator) < 0.5
    maps = _random((1, 3, 8, 10), torch.complex64, generator)
    a = MultiCoil(mask, maps)
    x = _random((1, 8, 10), torch.complex64, generator)
    torch.testing.assert_close((a.H @ a)(x), a.normal(x))
    torch.testing.assert_close(a.normal()(x), a.normal(x))
    assert a.H.H is a
    assert isinstance(sampling_operator(mask), SingleCoil) and isinstance(sampling_operator(mask, maps), MultiCoil)


def test_shape_errors_name_the_operator_and_the_shapes():
    op = SingleCoil(torch.ones(8, 10, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"SingleCoil: image of \(H, W\) = \(8, 9\) does not match the mask's \(8, 10\)"):
        op(torch.ones(1, 8, 9, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"image must be \(B, H, W\)"):
        op(torch.ones(8, 10, dtype=torch.complex64))
    multi = MultiCoil(torch.ones(8, 10, dtype=torch.bool), simulate_coil_maps(4, (8, 10)).unsqueeze(0))
    with pytest.raises(ValueError, match="k-space has 2 coils, the operator 4"):
        multi.adjoint(torch.ones(1, 2, 8, 10, dtype=torch.complex64))
    with pytest.raises(ValueError, match="larger than the full k-space"):
        KSpaceCrop((20, 20), (8, 10))


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


@pytest.mark.parametrize("width", [10, 9])  # even: signs folded into maps and mask; odd: shifts
@pytest.mark.parametrize("coils", [None, 3])
def test_hybrid_form_is_the_operator_after_a_readout_fft(width, coils):
    generator = torch.Generator().manual_seed(width)
    columns = torch.rand(width, generator=generator) < 0.5
    mask = columns.expand(8, width)
    maps = None if coils is None else _random((2, coils, 8, width), torch.complex64, generator)
    operator = sampling_operator(mask, maps)
    hybrid = operator.hybrid()
    assert isinstance(hybrid, HybridCartesian)
    x = _random((2, 8, width), torch.complex64, generator)
    y = _random((2, coils or 1, 8, width), torch.complex64, generator) * mask
    torch.testing.assert_close(fft1c(hybrid(x), dim=-2), operator(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(hybrid.adjoint(hybrid.measurement(y)), operator.adjoint(y), atol=1e-5, rtol=1e-5)
    # a mask that differs between readout rows (2-D) has no hybrid form
    two_d = mask.clone()
    two_d[0, 0] = not bool(two_d[0, 0])
    assert sampling_operator(two_d, maps).hybrid() is None
    with pytest.raises(ValueError, match="k-space has 2 coils"):
        HybridCartesian(mask[:1], _random((1, 3, 8, width), torch.complex64, generator)).adjoint(
            torch.ones(1, 2, 8, width, dtype=torch.complex64))


@pytest.mark.parametrize("shape", [(8, 10), (9, 10), (8, 9), (7, 9)])  # even: signs folded in; odd: fft2c
@pytest.mark.parametrize("coils", [None, 3])
@pytest.mark.parametrize("batch_mask", [False, True])
def test_cartesian_operators_are_the_masked_centred_fft(shape, coils, batch_mask):
    from physics.fft import fft2c as centred
    from physics.fft import ifft2c

    generator = torch.Generator().manual_seed(sum(shape) + (coils or 0))
    mask = torch.rand((2, 1, *shape) if batch_mask else shape, generator=generator) < 0.5
    maps = None if coils is None else _random((2, coils, *shape), torch.complex64, generator)
    operator = sampling_operator(mask, maps)
    x = _random((2, *shape), torch.complex64, generator)
    y = _random((2, coils or 1, *shape), torch.complex64, generator)
    coil_images = x.unsqueeze(1) if maps is None else maps * x.unsqueeze(1)
    torch.testing.assert_close(operator(x), centred(coil_images) * mask, atol=1e-5, rtol=1e-5)
    back = ifft2c(y * mask)
    expected = back[:, 0] if maps is None else (maps.conj() * back).sum(dim=1)
    torch.testing.assert_close(operator.adjoint(y), expected, atol=1e-5, rtol=1e-5)
    # complex128 after complex64: the cached parts follow the dtype
    torch.testing.assert_close(operator(x.to(torch.complex128)), (centred(coil_images.to(torch.complex128)) * mask),
                               atol=1e-5, rtol=1e-5)
