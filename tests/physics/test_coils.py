import numpy as np
import torch

from physics.coils import compress_coils, random_coil_maps, resample_coil_maps, simulate_coil_maps
from physics.fft import fft2c
from physics.operators import MultiCoil


def _rss(maps):
    return (maps.abs() ** 2).sum(dim=-3).sqrt()


def test_random_coil_maps_are_normalised_smooth_and_differ_by_seed():
    first = random_coil_maps(6, (64, 48), torch.Generator().manual_seed(0))
    again = random_coil_maps(6, (64, 48), torch.Generator().manual_seed(0))
    other = random_coil_maps(6, (64, 48), torch.Generator().manual_seed(1))
    assert first.shape == (6, 64, 48) and first.dtype == torch.complex64
    torch.testing.assert_close(_rss(first), torch.ones(64, 48))
    torch.testing.assert_close(first, again)
    assert (first - other).abs().max() > 0.1
    # Smooth: neighbouring pixels differ little compared with the maps' range.
    assert (first[..., 1:] - first[..., :-1]).abs().max() < 0.2


def test_resampled_measured_maps_keep_their_pattern():
    maps = simulate_coil_maps(8, (32, 32))
    large = resample_coil_maps(maps, (128, 128))
    assert large.shape == (8, 128, 128)
    torch.testing.assert_close(_rss(large), torch.ones(128, 128))
    back = resample_coil_maps(large, (32, 32))
    assert (back - maps).abs().mean() < 0.02


def test_coil_compression_is_exact_for_the_compressed_data_and_keeps_most_energy():
    torch.manual_seed(0)
    image = torch.randn(1, 48, 48, dtype=torch.complex64)
    maps = simulate_coil_maps(16, (48, 48))[None]
    kspace = fft2c(maps * image[:, None])
    small, small_maps = compress_coils(kspace, maps, 8)
    assert small.shape == (1, 8, 48, 48) and small_maps.shape == (1, 8, 48, 48)
    mask = torch.ones(48, 48, dtype=torch.bool)
    # The forward model holds for the virtual coils: U^H y = F(U^H S x).
    torch.testing.assert_close(MultiCoil(mask, small_maps).forward(image), small, atol=1e-4, rtol=1e-4)
    kept = float(small.abs().pow(2).sum() / kspace.abs().pow(2).sum())
    assert 0.95 < kept <= 1.0 + 1e-5
    same, same_maps = compress_coils(kspace[:, :4], maps[:, :4], 8)
    assert same is not None and same.shape[1] == 4 and torch.equal(same_maps, maps[:, :4])
    assert np.isfinite(kept)


def test_compression_basis_is_reused_only_for_the_same_unchanged_kspace():
    from physics.coils import compression_basis

    torch.manual_seed(1)
    kspace = fft2c(simulate_coil_maps(12, (24, 24))[None] * torch.randn(1, 1, 24, 24, dtype=torch.complex64))
    first = compression_basis(kspace, 6)
    assert compression_basis(kspace, 6) is first  # the same tensor, unchanged: the same basis
    assert compression_basis(kspace, 5).shape[-1] == 5
    kspace[:, 0] *= 10  # changed in place: computed again, and different
    changed = compression_basis(kspace, 6)
    assert changed is not first and (changed.abs() - first.abs()).abs().max() > 1e-2
    array = kspace.numpy()  # the same memory: a change through NumPy leaves the version counter alone
    array[:, 1] *= 3
    assert compression_basis(kspace, 6) is not changed
    copy = kspace.clone()
    assert compression_basis(copy, 6) is not changed
    torch.testing.assert_close(compression_basis(copy, 6), compression_basis(kspace, 6))
