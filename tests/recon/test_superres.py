"""Super-resolution: the central-block check, bicubic geometry, the SR models' data
consistency on lowres masks, through-plane operators and restoration, and the
perceptual / FID-like / NIQE-like scores (ours)."""

import numpy as np
import pytest
import torch

import recon
from masks import make_mask
from physics.fft import fft2c, ifft2c
from physics.operators import SingleCoil
from physics.resolution import SliceAverage
from recon import metrics
from recon.classical.superres import central_block
from recon.classical.through_plane import cubic_rows, sinc_rows, thicken
from recon.models.spec import get_spec
from recon.models.through_plane import SoupGanSlices, restore
from recon.training.augment import SliceSet
from recon.training.features import feature_distance, perceptual_loss
from recon.training.slice_data import SliceAverageDataset
from recon.trust.naturalness import naturalness_score

SR_MODELS = ("soup-gan", "med-gan", "esrgan", "mpp-gan")


def _lowres(image: np.ndarray, preset: str):
    mask = torch.from_numpy(make_mask(preset, image.shape).array)
    kspace = fft2c(torch.from_numpy(image).to(torch.complex64)[None, None]) * mask
    return kspace, mask


def test_central_block_accepts_lowres_and_names_the_problem_otherwise():
    block = make_mask("lowres-4x", (64, 48)).array
    rows, columns = central_block(torch.from_numpy(block))
    assert (rows.stop - rows.start, columns.stop - columns.start) == (16, 12)
    with pytest.raises(ValueError, match="lowres mask"):
        central_block(torch.from_numpy(make_mask("25pct", (64, 48), "cartesian").array))


def test_bicubic_sits_on_the_fft_grid(brain_slice):
    """Bicubic of the acquired low-resolution image lands where the zero-padded image
    is: both far better than the same bicubic shifted by half a low-resolution pixel."""
    image = brain_slice.astype(np.float32)
    kspace, mask = _lowres(image, "lowres-2x")
    bicubic = recon.get("bicubic").reconstruct(kspace, mask)[0].abs()
    truth = torch.from_numpy(image)
    good = metrics.evaluate(bicubic, truth)["psnr"]
    shifted = metrics.evaluate(torch.roll(bicubic, 1, dims=0), truth)["psnr"]
    assert good > 28 and good > shifted + 3


@pytest.mark.parametrize("name", SR_MODELS)
def test_sr_models_keep_the_measured_block_exactly(name, brain_slice):
    torch.manual_seed(0)
    generator = get_spec(name).build_generator({}).eval()
    for parameter in generator.parameters():  # not the zero-initialised identity
        torch.nn.init.normal_(parameter, std=0.02)
    kspace, mask = _lowres(brain_slice.astype(np.float32), "lowres-4x")
    with torch.no_grad():
        output = generator(kspace, SingleCoil(mask))
    residual = ((fft2c(output[:, None]) - kspace) * mask).abs().norm() / kspace.abs().norm()
    assert output.shape == (1, *brain_slice.shape) and float(residual) <= 1e-5
    assert float(((fft2c(output[:, None]) * ~mask).abs()).max()) > 0  # it did fill the rest


def test_sr_methods_refuse_a_mask_that_is_not_a_block(brain_slice):
    kspace, _ = _lowres(brain_slice.astype(np.float32), "lowres-2x")
    cartesian = torch.from_numpy(make_mask("25pct", brain_slice.shape, "cartesian").array)
    with pytest.raises(ValueError, match="central k-space block"):
        recon.get("bicubic").reconstruct(kspace * cartesian, cartesian)


def test_slice_average_is_a_projector_and_its_projection_is_exact():
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(2, 16, 8, generator=generator, dtype=torch.complex64)
    y = torch.randn(2, 1, 16, 8, generator=generator, dtype=torch.complex64)
    operator = SliceAverage([2, 4])
    lhs = torch.vdot(operator(x).flatten(), y.flatten())
    rhs = torch.vdot(x.flatten(), operator.adjoint(y).flatten())
    torch.testing.assert_close(lhs, rhs, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(operator(operator(x)[:, 0]), operator(x))
    measured = operator(torch.randn(2, 16, 8, generator=generator, dtype=torch.complex64))
    projected = operator.project(x, measured)
    torch.testing.assert_close(operator(projected), measured, atol=1e-5, rtol=1e-5)
    markers = torch.stack([SliceAverage.starts(f, (16, 8)) for f in (2, 4)])
    assert SliceAverage.from_starts(markers).factors == [2, 4]
    with pytest.raises(ValueError, match="multiple"):
        SliceAverage([3])(x)


@pytest.mark.parametrize("factor", [2, 4])
def test_cubic_and_sinc_put_thick_slices_at_their_centres(factor):
    """A straight ramp along z: its thick slices are its values at the group centres,
    so cubic restores the interior exactly; a smooth periodic signal, sinc exactly."""
    z = torch.arange(32, dtype=torch.float32)
    ramp = z[None, :, None].expand(1, 32, 4)
    thick = torch.from_numpy(thicken(ramp[0].numpy(), factor))[None]
    restored = cubic_rows(thick, factor)[0]
    torch.testing.assert_close(restored[2 * factor:-2 * factor], ramp[0][2 * factor:-2 * factor], atol=1e-4, rtol=0)
    wave = torch.cos(2 * torch.pi * 2 * (z + 0.5) / 32)[None, :, None].expand(1, 32, 4)
    smooth = torch.from_numpy(thicken(wave[0].numpy(), factor))[None]
    # The box average scales a cosine by a known factor; undo it to compare.
    gain = float(np.sinc(2 * factor / 32)) / float(np.sinc(2 / 32))
    restored = sinc_rows(smooth, factor)[0]
    assert float((restored / gain - wave[0]).abs().max()) < 0.05


def test_soup_gan_slices_average_back_to_the_thick_slices(brain_slice):
    torch.manual_seed(0)
    generator = SoupGanSlices().eval()
    for parameter in generator.parameters():
        torch.nn.init.normal_(parameter, std=0.02)
    image = torch.from_numpy(brain_slice.astype(np.float32)).to(torch.complex64)[None]
    operator = SliceAverage([4])
    measured = operator(image)
    with torch.no_grad():
        output = generator(measured, operator)
    torch.testing.assert_close(operator(output), measured, atol=1e-5, rtol=1e-4)


def test_through_plane_training_mixes_real_z_planes_with_cropped_slices():
    # slices hold 0.5 inside a square, planes a z ramp: which one an item came from is
    # visible in its target, and every item has the planes' shape (one batch shape)
    images = np.zeros((6, 32, 32), np.float32)
    images[:, 8:24, 8:24] = 0.5
    ramp = np.repeat(np.linspace(0.2, 1.0, 8, dtype=np.float32)[:, None], 32, axis=1)
    dataset = SliceAverageDataset(SliceSet(images, planes=np.stack([ramp] * 3)), factors=(2, 4), seed=3)
    kinds = set()
    for item in range(len(dataset)):
        measured, starts, target, inverse_factor, _ = dataset[item]
        assert target.shape == (8, 32) and measured.shape == (1, 8, 32)
        operator = SliceAverageDataset.operator(starts[None])
        torch.testing.assert_close(operator(target[None]), measured[None])  # thickened along z (rows)
        rows = target.real.mean(dim=1)
        kinds.add("plane" if bool((rows[1:] != rows[:-1]).all()) and float(target.real.min()) > 0 else "slice")
    assert kinds == {"plane", "slice"}
    validation = SliceAverageDataset(SliceSet(images, planes=np.stack([ramp])), train=False)
    assert validation[0][2].shape == (32, 32)  # validation never crops or draws planes
    with pytest.raises(ValueError, match="do not fit"):
        SliceAverageDataset(SliceSet(images, planes=np.zeros((2, 6, 32), np.float32)), factors=(4,))


def test_restore_shapes_and_refusals():
    thick = np.random.default_rng(0).random((4, 16, 12)).astype(np.float32)
    assert restore(thick, 2, "cubic").shape == (8, 16, 12)
    assert restore(thick, 4, "sinc").shape == (16, 16, 12)
    with pytest.raises(ValueError, match="slice-factor"):
        restore(thick, 3, "cubic")
    with pytest.raises(ValueError, match="unknown through-plane method"):
        restore(thick, 2, "nearest")


def test_perceptual_and_distribution_scores_see_degradation(brain_slice):
    truth = torch.from_numpy(brain_slice.astype(np.float32)).to(torch.complex64)[None]
    blurred = ifft2c(fft2c(truth) * torch.from_numpy(make_mask("lowres-4x", brain_slice.shape).array))
    slight = ifft2c(fft2c(truth) * torch.from_numpy(make_mask("lowres-2x", brain_slice.shape).array))
    assert float(perceptual_loss(truth, truth)) == 0
    assert float(perceptual_loss(blurred, truth)) > float(perceptual_loss(slight, truth)) > 0
    prediction = slight.clone().requires_grad_(True)
    perceptual_loss(prediction, truth).backward()
    assert prediction.grad is not None and float(prediction.grad.abs().sum()) > 0
    assert feature_distance(truth, truth) < 1e-6
    assert feature_distance(blurred, truth) > feature_distance(slight, truth)
    noisy = truth.abs().numpy() + np.random.default_rng(0).normal(0, 0.05, truth.shape).astype(np.float32)
    assert naturalness_score(np.abs(noisy)) > naturalness_score(truth.abs().numpy()) + 1
