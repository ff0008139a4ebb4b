import numpy as np
import pytest
import sigpy
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from physics import fft2c, ifft2c


def _complex(rng, shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(np.complex64)


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (2, 3, 16, 15)])
def test_matches_numpy_centred_orthonormal(rng, shape):
    x = _complex(rng, shape)
    expected = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(fft2c(x), expected, atol=1e-5)
    np.testing.assert_allclose(fft2c(torch.from_numpy(x)).numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("shape", [(16, 16), (15, 12), (3, 10, 11)])
def test_matches_sigpy(rng, shape):
    x = _complex(rng, shape)
    np.testing.assert_allclose(fft2c(x), sigpy.fft(x, axes=(-2, -1), center=True), atol=1e-5)
    np.testing.assert_allclose(ifft2c(x), sigpy.ifft(x, axes=(-2, -1), center=True), atol=1e-5)
    np.testing.assert_allclose(
        ifft2c(torch.from_numpy(x)).numpy(), sigpy.ifft(x, axes=(-2, -1), center=True), atol=1e-5
    )


@settings(max_examples=30, deadline=None)
@given(height=st.integers(1, 33), width=st.integers(1, 33), seed=st.integers(0, 2**16))
def test_round_trip_and_energy(height, width, seed):
    x = torch.from_numpy(_complex(np.random.default_rng(seed), (2, height, width)))
    k = fft2c(x)
    torch.testing.assert_close(ifft2c(k), x, atol=1e-5, rtol=1e-5)
    # orthonormal: Parseval
    assert torch.allclose(k.abs().pow(2).sum(), x.abs().pow(2).sum(), rtol=1e-4)


@pytest.mark.parametrize("shape", [(16, 16), (15, 17)])
def test_centring(shape):
    # a constant image has all its energy at the k-space centre (H//2, W//2)
    k = fft2c(np.ones(shape, dtype=np.complex64))
    peak = np.unravel_index(np.argmax(np.abs(k)), shape)
    assert peak == (shape[0] // 2, shape[1] // 2)
    assert np.isclose(np.abs(k[peak]), np.sqrt(np.prod(shape)), rtol=1e-5)
    assert np.abs(k).sum() - np.abs(k[peak]) < 1e-3
    # a centred point has a flat spectrum
    x = np.zeros(shape, dtype=np.complex64)
    x[shape[0] // 2, shape[1] // 2] = 1
    np.testing.assert_allclose(np.abs(fft2c(x)), 1 / np.sqrt(np.prod(shape)), rtol=1e-5)


def test_dtypes_preserved():
    assert fft2c(np.zeros((4, 4), np.complex64)).dtype == np.complex64
    assert fft2c(np.zeros((4, 4), np.complex128)).dtype == np.complex128
    assert fft2c(torch.zeros(4, 4, dtype=torch.complex64)).dtype == torch.complex64


@pytest.mark.parametrize("shape", [(6, 10), (6, 7), (7, 6), (2, 4, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.complex128])
def test_torch_sign_modulation_matches_shifts(rng, shape, dtype):
    # even axes use (-1)^n sign flips instead of the two shifts; odd axes still roll
    x = _complex(rng, shape).astype(dtype) if np.iscomplexobj(np.zeros(1, dtype)) else rng.standard_normal(shape).astype(dtype)
    for torch_fn, numpy_fn in ((fft2c, np.fft.fft2), (ifft2c, np.fft.ifft2)):
        expected = np.fft.fftshift(numpy_fn(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
        out = torch_fn(torch.from_numpy(x))
        assert out.dtype == (torch.complex128 if dtype == np.complex128 else torch.complex64)
        np.testing.assert_allclose(out.numpy(), expected, atol=1e-5 if dtype != np.complex128 else 1e-12)


@pytest.mark.parametrize("shape", [(8, 8), (7, 9), (2, 6, 5)])
@pytest.mark.parametrize("dims", [(-1,), (-2,), (-2, -1)])
def test_reflect_centred_commutes_with_the_transform(rng, shape, dims):
    from physics.fft import reflect_centred

    x = torch.from_numpy(_complex(rng, shape))
    torch.testing.assert_close(fft2c(reflect_centred(x, dims)), reflect_centred(fft2c(x), dims), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(reflect_centred(reflect_centred(x, dims), dims), x)  # a mirror is its own inverse
    # the centre sample stays where it is, and a plain flip is not the same for an even size
    centre = tuple(s // 2 for s in shape)
    assert reflect_centred(x, dims)[centre] == x[centre]
    if any(shape[d] % 2 == 0 for d in dims):
        assert not torch.allclose(fft2c(torch.flip(x, dims)), torch.flip(fft2c(x), dims), atol=1e-3)


@pytest.mark.parametrize("size", [7, 8, 9, 125, 256])
def test_centring_ramps_turn_the_shifts_into_phase_ramps(size):
    """``fftshift(fft(ifftshift(x))) = after * fft(before * x)`` and the inverse with the
    conjugates, for odd sizes (ramps) and even ones (the signs of ``centring_signs``)."""
    from physics.fft import centring_ramps, centring_signs

    before, after = centring_ramps(size, torch.complex128, torch.device("cpu"))
    x = torch.randn(2, size, dtype=torch.complex128, generator=torch.Generator().manual_seed(size))
    shifted = torch.fft.fftshift(torch.fft.fft(torch.fft.ifftshift(x, dim=-1), dim=-1, norm="ortho"), dim=-1)
    torch.testing.assert_close(after * torch.fft.fft(before * x, dim=-1, norm="ortho"), shifted)
    back = torch.fft.fftshift(torch.fft.ifft(torch.fft.ifftshift(x, dim=-1), dim=-1, norm="ortho"), dim=-1)
    torch.testing.assert_close(before.conj() * torch.fft.ifft(after.conj() * x, dim=-1, norm="ortho"), back)
    if size % 2 == 0:
        signs, second = centring_signs(size, torch.float64, torch.device("cpu"))
        torch.testing.assert_close(before, signs.to(torch.complex128))
        torch.testing.assert_close(after, second.to(torch.complex128))
