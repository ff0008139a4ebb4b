import pytest
import torch

from physics import MultiCoil, SingleCoil, simulate_coil_maps
from physics.columns import SampledColumns
from physics.consistency import DataConsistency, exact_consistency, hybrid_form
from physics.fft import fft2c


def _random(shape, generator):
    return torch.complex(torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))


@pytest.mark.parametrize("width", [24, 23])  # the DFT block serves even and odd widths alike
@pytest.mark.parametrize("coils", [None, 4, "4, zero rows"])  # maps zero outside the object: only its rows
@pytest.mark.parametrize("by_matrix", [True, False])  # a product with a DFT block, or an FFT and a selection
def test_sampled_columns_is_the_hybrid_operator_on_its_columns(width, coils, by_matrix, monkeypatch):
    monkeypatch.setattr("physics.columns.MATRIX_FRACTION", 1.0 if by_matrix else 0.0)
    g = torch.Generator().manual_seed(width)
    columns = torch.tensor([0, 3, 4, 9, width // 2 + 1, width - 1])
    mask = torch.zeros(16, width, dtype=torch.bool)
    mask[:, columns] = True
    maps = None if coils is None else simulate_coil_maps(4, (16, width)).unsqueeze(0)
    if coils == "4, zero rows":
        maps[..., :3, :], maps[..., 12:, :] = 0, 0
    operator = SingleCoil(mask) if maps is None else MultiCoil(mask, maps)
    hybrid = operator.hybrid()
    kspace = operator(_random((1, 16, width), g))
    compact, measured = hybrid_form(operator, kspace)
    assert isinstance(compact, SampledColumns) and compact.by_matrix == by_matrix
    x = _random((2, 16, width), g)
    torch.testing.assert_close(compact(x), hybrid(x)[..., columns], atol=1e-5, rtol=1e-5)
    data = _random((2, 1 if coils is None else 4, 16, width), g) * mask
    torch.testing.assert_close(compact.adjoint(data[..., columns]), hybrid.adjoint(data), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(measured, hybrid.measurement(kspace)[..., columns], atol=1e-6, rtol=1e-5)
    assert compact._parts(x).rows == (slice(3, 12) if coils == "4, zero rows" else None)
    with pytest.raises(ValueError, match=r"expected data \(B, \d, H, K\)"):
        compact.adjoint(data)  # full-width data is not this operator's range


def test_compact_form_only_for_shared_low_ratio_masks():
    dense = torch.zeros(8, 30, dtype=torch.bool)
    dense[:, :12] = True  # 40 % of the columns: the FFT is cheaper
    assert SampledColumns.of(dense[:1]) is None
    sparse = torch.zeros(2, 1, 8, 30, dtype=torch.bool)
    sparse[0, ..., [1, 5]] = True
    sparse[1, ..., [1, 6]] = True  # items sample different columns
    assert SampledColumns.of(sparse[..., :1, :]) is None
    assert SampledColumns.of(sparse[:1, ..., :1, :]).columns.tolist() == [1, 5]
    with pytest.raises(ValueError, match="columns must lie in"):
        SampledColumns(torch.tensor([30]), 30)


def test_exact_consistency_and_stages_match_the_two_dimensional_operator():
    # the compact form changes the cost, never the images
    g = torch.Generator().manual_seed(4)
    columns = torch.tensor([2, 7, 9, 10, 11, 12, 13, 20, 27])
    mask = torch.zeros(20, 32, dtype=torch.bool)
    mask[:, columns] = True
    maps = simulate_coil_maps(4, (20, 32)).unsqueeze(0)
    operator = MultiCoil(mask, maps)
    truth, estimate = _random((1, 20, 32), g), _random((1, 20, 32), g)
    measured = fft2c(maps * truth.unsqueeze(1)) * mask
    compact, measured_c = hybrid_form(operator, measured)
    assert isinstance(compact, SampledColumns)
    for layer in (DataConsistency(), DataConsistency(weight=0.4)):
        torch.testing.assert_close(layer(estimate, measured_c, compact), layer(estimate, measured, operator),
                                   atol=1e-5, rtol=1e-5)
    from physics.solvers import least_squares

    two_d = least_squares(operator, measured, estimate, max_iter=40, tol=1e-7)
    torch.testing.assert_close(exact_consistency(estimate, measured, operator, max_iter=40, tol=1e-7, noise_stop=False),
                               two_d, atol=1e-4, rtol=1e-4)
