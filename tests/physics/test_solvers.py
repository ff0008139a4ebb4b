"""Conjugate gradient and CGLS on the project's operators."""

import pytest
import torch

from physics import MultiCoil, SingleCoil, simulate_coil_maps
from physics.consistency import exact_consistency
from physics.solvers import conjugate_gradient, least_squares, max_eigenvalue


def _random(shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.complex(torch.randn(shape, generator=generator), torch.randn(shape, generator=generator))


def test_conjugate_gradient_solves_the_damped_normal_equations():
    mask = torch.rand((12, 12), generator=torch.Generator().manual_seed(0)) < 0.5
    maps = simulate_coil_maps(4, (12, 12)).unsqueeze(0).expand(2, -1, -1, -1)
    operator = MultiCoil(mask, maps)
    truth = _random((2, 12, 12), 1)
    rhs = operator.normal(truth) + 0.1 * truth
    solution = conjugate_gradient(operator.normal(), rhs, damping=0.1, max_iter=200, tol=1e-8)
    torch.testing.assert_close(solution, truth, atol=1e-4, rtol=1e-4)


def test_least_squares_fits_the_data_and_keeps_the_null_space():
    mask = torch.zeros(16, 16, dtype=torch.bool)
    mask[:, ::2] = True
    maps = simulate_coil_maps(6, (16, 16)).unsqueeze(0)
    operator = MultiCoil(mask, maps)
    measured = operator(_random((1, 16, 16), 2))
    start = _random((1, 16, 16), 3)
    fitted = least_squares(operator, measured, start, max_iter=300, tol=1e-6)
    residual = (operator(fitted) - measured).norm() / measured.norm()
    assert residual < 1e-5
    # The change lies in the range of A^H: the part of the start that A does not see is kept.
    single = SingleCoil(mask)
    start_single = _random((1, 16, 16), 4)
    fitted_single = least_squares(single, single(_random((1, 16, 16), 5)), start_single, tol=1e-7)
    unmeasured = ~mask
    from physics.fft import fft2c

    torch.testing.assert_close(fft2c(fitted_single)[..., unmeasured], fft2c(start_single)[..., unmeasured], atol=1e-5, rtol=1e-5)


def _phantom(size: int = 64) -> torch.Tensor:
    """Noise-free piecewise-smooth image (ellipses with a smooth ramp)."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    image = ((xx / 0.8) ** 2 + (yy / 0.9) ** 2 < 1).float() * (1 + 0.3 * xx)
    image = image - 0.5 * (((xx - 0.2) / 0.3) ** 2 + (yy / 0.5) ** 2 < 1).float()
    return image.to(torch.complex64)[None]


def _lines(step: int, centre: tuple[int, int], size: int = 64, coils: int = 8):
    """A 1-D mask (every ``step``-th column and the ``centre`` columns) and birdcage maps."""
    mask = torch.zeros(size, size, dtype=torch.bool)
    mask[:, ::step] = True
    mask[:, centre[0]:centre[1]] = True
    return mask, simulate_coil_maps(coils, (size, size)).unsqueeze(0)


def test_exact_consistency_beats_the_per_coil_projection():
    from physics import DataConsistency

    mask, maps = _lines(3, (28, 36))
    operator = MultiCoil(mask, maps)
    measured = operator(_phantom())
    guess = _random((1, 64, 64), 7)

    def residual(image):
        return float((operator(image) - measured).norm() / measured.norm())

    projected = DataConsistency()(guess, measured, operator)
    exact = exact_consistency(guess, measured, operator, noise_stop=False)
    assert residual(exact) <= 1e-4 < residual(projected)
    # With the noise stop (the default), it fits down to what the estimated noise explains.
    from physics.consistency import discrepancy_floor

    floor = float(discrepancy_floor(measured, mask)[0]) / float(measured.norm())
    assert residual(exact_consistency(guess, measured, operator)) <= max(floor, 1e-4) * 1.05 < 0.1 * residual(projected)


def test_exact_consistency_stops_at_the_noise_instead_of_amplifying_it():
    """With noise in every coil, fitting the data exactly fits the noise through the
    ill-conditioned directions of the operator; the discrepancy stop keeps the error
    near the start's."""
    from physics.consistency import estimate_noise_std

    mask, maps = _lines(4, (29, 35))
    operator = MultiCoil(mask, maps)
    truth = _phantom()
    clean = operator(truth)
    sigma = 0.05 * float(clean.abs().pow(2).sum() / mask.sum() / 8) ** 0.5
    generator = torch.Generator().manual_seed(3)
    noise = torch.complex(torch.randn(clean.shape, generator=generator), torch.randn(clean.shape, generator=generator))
    measured = clean + noise * sigma / 2**0.5 * mask
    assert float(estimate_noise_std(clean, mask)) < 0.1 * sigma  # noise-free data: far below the noise
    assert abs(float(estimate_noise_std(measured, mask)) - sigma) < 0.1 * sigma

    def error(image):
        return float((image - truth).norm() / truth.norm())

    start = truth + 0.02 * _random((1, 64, 64), 8)
    stopped = exact_consistency(start, measured, operator)
    fitted = least_squares(operator, measured, start, max_iter=150, tol=1e-7, stall=0.0)
    assert error(stopped) < 0.5 * error(fitted)


def test_admm_total_variation_matches_sigpy_and_its_preconditioned_form_converges_faster():
    import numpy as np
    import sigpy.mri.app

    from masks import make_mask
    from physics.coils import simulate_coil_maps
    from physics.operators import sampling_operator
    from physics.solvers import admm_total_variation

    torch.manual_seed(0)
    size = 48
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    image = torch.from_numpy(((yy / 0.7) ** 2 + (xx / 0.5) ** 2 < 1).astype(np.float32)).to(torch.complex64)
    maps = simulate_coil_maps(4, (size, size))[None]
    mask = torch.from_numpy(make_mask(0.3, (size, size), "cartesian", seed=0).array)
    operator = sampling_operator(mask, maps)
    kspace = operator.forward(image[None]) + 0.01 * torch.randn(1, 4, size, size, dtype=torch.complex64) * mask
    rhs = operator.adjoint(kspace)
    lamda = 0.01 * float(rhs.abs().max())
    theirs = sigpy.mri.app.TotalVariationRecon(kspace[0].numpy(), maps[0].numpy(), lamda, weights=mask.numpy().astype(np.float32),
                                               solver="ADMM", rho=1.0, max_iter=50, show_pbar=False).run()
    ours = admm_total_variation(operator.normal(), rhs, lamda, rho=1.0, max_iter=50, cg_iter=10)
    theirs = torch.from_numpy(np.asarray(theirs, np.complex64))
    assert float((ours[0] - theirs).norm() / theirs.norm()) < 1e-2

    def objective(x):
        from physics.solvers import finite_differences

        return float(0.5 * (operator.forward(x) - kspace).abs().pow(2).sum() + lamda * finite_differences(x).abs().sum())

    fast = admm_total_variation(operator.normal(), rhs, lamda, rho=0.2, max_iter=30, cg_iter=2, mask=mask)
    plain = admm_total_variation(operator.normal(), rhs, lamda, rho=0.2, max_iter=30, cg_iter=2)
    assert objective(fast) < objective(plain)
    assert objective(fast) < 1.01 * objective(ours)


def test_exact_consistency_treats_each_batch_item_by_its_own_noise():
    """A noisy and a noise-free slice in one batch get what each gets alone: the noise
    stop of one must not let the other stop early, nor the other make it fit noise."""
    mask, maps = _lines(4, (29, 35))
    truth = _phantom()
    clean = MultiCoil(mask, maps)(truth)
    generator = torch.Generator().manual_seed(3)
    noise = torch.complex(torch.randn(clean.shape, generator=generator), torch.randn(clean.shape, generator=generator))
    noisy = clean + 0.05 * clean.abs().max() * noise * mask
    start = truth + 0.02 * _random((1, 64, 64), 8)
    alone = [exact_consistency(start, data, MultiCoil(mask, maps)) for data in (clean, noisy)]
    together = exact_consistency(start.repeat(2, 1, 1), torch.cat([clean, noisy]), MultiCoil(mask, maps.repeat(2, 1, 1, 1)))
    for index in range(2):
        torch.testing.assert_close(together[index], alone[index][0], atol=1e-4, rtol=1e-3)


def test_least_squares_stops_before_changing_the_start_by_more_than_max_change():
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[:, ::4] = True
    mask[:, 14:18] = True
    maps = simulate_coil_maps(4, (32, 32)).unsqueeze(0)
    operator = MultiCoil(mask, maps)
    measured = operator(_random((1, 32, 32), 3))
    start = _random((1, 32, 32), 4)
    limited = least_squares(operator, measured, start, max_iter=50, tol=1e-7, max_change=0.1)
    assert float((limited - start).norm()) <= 0.1 * float(start.norm()) + 1e-6
    free = least_squares(operator, measured, start, max_iter=50, tol=1e-7)
    assert float((free - start).norm()) > 0.1 * float(start.norm())  # the limit is what stopped it


def test_least_squares_stalls_per_item_by_its_own_window():
    """Each batch item stops by its own stall window, as it would alone."""
    mask = torch.zeros(32, 32, dtype=torch.bool)
    mask[:, ::3] = True
    maps = simulate_coil_maps(4, (32, 32)).unsqueeze(0).repeat(2, 1, 1, 1)
    operator = MultiCoil(mask, maps)
    measured = operator(_random((1, 32, 32), 3).repeat(2, 1, 1)) + 0.05 * _random((2, 4, 32, 32), 5) * mask
    start = _random((1, 32, 32), 4).repeat(2, 1, 1)
    # a stall rate no CGLS meets: each item stops after exactly its window of iterations
    both = least_squares(operator, measured, start, max_iter=50, tol=1e-9, stall=1.0, window=torch.tensor([2, 5]))
    for item, window in enumerate((2, 5)):
        alone = least_squares(MultiCoil(mask, maps[:1]), measured[item:item + 1], start[:1], max_iter=50, tol=1e-9,
                              stall=1.0, window=window)
        torch.testing.assert_close(both[item], alone[0], atol=1e-5, rtol=1e-4)
        capped = least_squares(MultiCoil(mask, maps[:1]), measured[item:item + 1], start[:1], max_iter=window, tol=1e-9,
                               stall=0.0)
        torch.testing.assert_close(alone, capped, atol=1e-5, rtol=1e-4)
    assert float((both[0] - both[1]).norm()) > 1e-3 * float(both[1].norm())


def test_exact_consistency_stops_sooner_on_noisy_data_where_the_maps_cannot_explain_it(monkeypatch):
    """Noisy data and maps that are not the data's: the residual stalls above the noise
    floor, and the steps CGLS takes after the stall fit the noise (semi-convergence);
    the short noisy window keeps the image closer to the truth."""
    import physics.consistency as consistency

    mask, maps = _lines(3, (28, 36))
    truth = _phantom()
    clean = MultiCoil(mask, maps)(truth)
    sigma = 0.01 * float(clean.abs().pow(2).sum() / mask.sum() / 8) ** 0.5
    measured = clean + sigma / 2**0.5 * _random(clean.shape, 6) * mask
    # each coil's map takes in a tenth of another's: maps no image can fit exactly
    wrong = maps + 0.1 * _random((1, 8, 64, 64), 9).real.sign() * maps.roll(7, dims=1)
    operator = MultiCoil(mask, wrong)
    start = truth + 0.03 * _random((1, 64, 64), 8)

    def error(image):
        return float((image - truth).norm() / truth.norm())

    short = exact_consistency(start, measured, operator)
    monkeypatch.setattr(consistency, "EXACT_NOISY_WINDOW", consistency.EXACT_STALL_WINDOW)
    long = exact_consistency(start, measured, operator)
    assert error(short) < error(long) - 0.002


def test_noise_free_data_keep_the_long_stall_window(monkeypatch):
    """A noise-free slice's noise estimate is small but not zero (its smallest coil
    eigenvalue); it must not count as noisy, or the exact step would stop early."""
    import numpy as np

    import physics.consistency as consistency
    from physics.espirit import espirit_maps
    from pipelines.data.sample import sample

    truth = torch.from_numpy(np.array(sample("test").images[5])).to(torch.complex64)[None]
    mask = torch.zeros(256, 256, dtype=torch.bool)
    mask[:, ::4] = True
    mask[:, 118:138] = True
    measured = MultiCoil(mask, simulate_coil_maps(8, (256, 256)).unsqueeze(0))(truth)
    operator = MultiCoil(mask, espirit_maps(measured[0], calib_width=(256, 20)).unsqueeze(0))  # as a scan gets them
    start = truth + 0.05 * float(truth.abs().max()) * _random((1, 256, 256), 8)
    default = exact_consistency(start, measured, operator, max_iter=40)
    monkeypatch.setattr(consistency, "EXACT_NOISY_WINDOW", 1)  # a window that stops at the first stall
    torch.testing.assert_close(exact_consistency(start, measured, operator, max_iter=40), default)
    noisy = measured + 0.02 * float(measured.abs().max()) * _random(measured.shape, 9) * mask
    assert bool((consistency.discrepancy_floor(noisy, mask) > consistency.EXACT_NOISY_FLOOR
                 * noisy.abs().pow(2).sum().sqrt()).all())  # the same slice with noise counts as noisy


def test_noisy_data_under_a_two_dimensional_mask_get_no_exact_step():
    """On a 2-D mask (no hybrid form) a noisy item keeps its image (EXACT_NOISY_2D_WINDOW),
    while under a 1-D mask the same noisy data still get the step, and so do noise-free
    data under the 2-D mask."""
    mask_1d, maps = _lines(3, (28, 36))
    mask_2d = torch.rand(64, 64, generator=torch.Generator().manual_seed(3)) < 0.3
    mask_2d[24:40, 24:40] = True
    truth = _phantom()
    start = truth + 0.03 * _random((1, 64, 64), 8)
    for mask, stepped in ((mask_2d, False), (mask_1d, True)):
        operator = MultiCoil(mask, maps)
        clean = operator(truth)
        sigma = 0.02 * float(clean.abs().pow(2).sum() / mask.sum() / 8) ** 0.5
        noisy = clean + sigma / 2**0.5 * _random(clean.shape, 6) * mask
        moved = float((exact_consistency(start, noisy, operator) - start).norm())
        assert (moved > 0) == stepped
    assert float((exact_consistency(start, MultiCoil(mask_2d, maps)(truth), MultiCoil(mask_2d, maps)) - start).norm()) > 0


def test_the_floor_takes_a_typical_coils_noise_where_the_coil_noise_was_never_prewhitened():
    """Correlated coil noise of unequal gains: its weakest direction is far below a typical
    coil's noise, which is what the residual holds; white noise: the two agree; noise-free
    data: the floor is the weakest direction's, as the noise-free test needs."""
    from physics.consistency import (
        DISCREPANCY,
        channel_noise_std,
        discrepancy_floor,
        estimate_noise_std,
        noise_std,
    )
    from physics.statistics import correlated_noise, random_noise_covariance

    mask, maps = _lines(3, (26, 38), size=96)
    clean = MultiCoil(mask, maps)(_phantom(96))
    sigma = 0.2 * float(clean.abs().pow(2).sum() / mask.sum() / 8) ** 0.5
    array = random_noise_covariance(8, torch.Generator().manual_seed(1), gain=(0.3, 3.0))  # mean variance 1
    assert float(torch.linalg.eigvalsh(array)[0]) < 0.05  # its weakest direction: 0.031 of the mean
    for channels, weakest_below in ((torch.eye(8, dtype=torch.complex128), 1.2), (array, 0.6)):
        measured = clean + sigma * correlated_noise(channels, clean.shape[2:], torch.Generator().manual_seed(1))[None] * mask
        typical, weakest = float(channel_noise_std(measured, mask)), float(estimate_noise_std(measured, mask))
        assert abs(typical - sigma) < 0.25 * sigma and weakest < weakest_below * sigma and typical >= weakest
        count = float(mask.sum()) * 8
        assert float(discrepancy_floor(measured, mask)) == pytest.approx(DISCREPANCY * typical * count**0.5, rel=1e-5)
        assert float(noise_std(measured, mask)) == pytest.approx(typical)  # what a residual holds, used elsewhere too
    count = float(mask.sum()) * 8
    assert float(discrepancy_floor(clean, mask)) == pytest.approx(
        DISCREPANCY * float(estimate_noise_std(clean, mask)) * count**0.5, rel=1e-5)
    assert float(channel_noise_std(clean, mask)) > float(estimate_noise_std(clean, mask))  # why noise-free data keep the weakest
    assert float(noise_std(clean, mask)) == pytest.approx(float(estimate_noise_std(clean, mask)))


def test_max_eigenvalue_per_item():
    scales = torch.tensor([0.5, 3.0])
    diagonal = torch.linspace(0.1, 1.0, 64).reshape(1, 8, 8) * scales.reshape(-1, 1, 1)
    normal = lambda image: diagonal * image  # noqa: E731
    eigenvalue = max_eigenvalue(normal, torch.zeros(2, 8, 8, dtype=torch.complex64), max_iter=200)
    torch.testing.assert_close(eigenvalue, scales, rtol=1e-3, atol=0)
