"""Regression floors for the shipped learned weights (recorded from measurements)."""

import numpy as np
import pytest

import recon
from physics import fft2c
from recon import metrics
from recon.models.learned import load_generator
from recon.models.spec import get_spec, trainable_models
from recon.testing import assert_reconstruction_quality
from recon.weights import ratio_distance, shipped_weights

# PSNR gain over zero-filled (dB) on the fixed test slice below, cartesian mask, seed 11
# (super-resolution models: the lowres block of that ratio, 25pct = 2x, 6.25pct = 4x).
# The floors sit about 2 dB below the gains measured when the weights were shipped.
FLOORS_DB = {
    # One file for 5-60pct, every family, 1-16 coils, trained on the corpus (issue 12); it
    # replaced gan-drn-10pct (+8.57 dB here) and gan-drn-50pct (+15.75 dB).
    ("gan-drn", 0.10): 5.5,  # measured at shipping: +6.58 dB (issue 28's fine-tune; the weights before it: +7.33)
    # Issue 28's fine-tune (masks without a calibration block, Poisson-disc) gives +14.50 dB on this template
    # slice, against +17.48 before it; on the held-out subjects at 50pct cartesian it changed by -0.10 dB
    # (docs/results.md), and on masks without a calibration block it gained up to 15 dB.
    ("gan-drn", 0.50): 13.5,
    # One conditioned model for 5-60pct, every mask family, 1-16 coils; fine-tuned on the corpus
    # (issue 12). On this template slice it is 1.0 and 0.5 dB below the template-only weights it
    # replaced (+9.04, +17.15 dB), which it beats on every held-out subject and setting.
    ("csr-gan", 0.10): 6.0,  # measured at shipping: +8.00 dB (phase 7; phase 6 gave +7.92)
    ("csr-gan", 0.50): 14.5,  # measured at shipping: +16.70 dB (phase 7; phase 6 gave +16.15)
    # Super-resolution (issue 14), lowres-2x (25pct) and lowres-4x (6.25pct); floors ~1 dB
    # below the gains measured at shipping (the 2x gains are small: the sample is smooth).
    ("soup-gan", 0.25): 1.2,  # measured at shipping: +2.51 dB (continued with --resample, then --resample-shrink 2; before +2.19)
    ("soup-gan", 0.0625): 3.0,  # +4.05 (before +4.05)
    ("med-gan", 0.25): 0.25,  # +0.73 (continued with --resample, then --resample-shrink 2; +0.74, +0.76 before)
    ("med-gan", 0.0625): 2.3,  # +3.40 (before +3.41, +3.30)
    ("esrgan", 0.25): 0.6,  # +1.57 (continued as soup-gan; before +1.62)
    ("esrgan", 0.0625): 2.7,  # +3.65 (before +3.72)
    ("mpp-gan", 0.25): 0.6,  # +1.50 (continued with --resample, then --resample-shrink 2; +1.17, +1.63 before)
    ("mpp-gan", 0.0625): 3.1,  # +4.12 (before +3.81, +4.10)
}


def test_cards_of_weights_trained_on_the_corpus_list_its_manifest():
    import json

    from recon.weights import WEIGHTS_DIR

    cards = [json.loads(path.read_text()) for path in WEIGHTS_DIR.glob("*.json") if path.with_suffix(".pt").is_file()]
    on_corpus = [card for card in cards if "corpus" in card["data"]]
    assert on_corpus, "no shipped weights were trained on the corpus"
    for card in on_corpus:
        sources = [source for corpus in card["corpus"] for source in corpus["sources"]]
        assert {"train", "val", "test"} <= {source["split"] for source in sources}
        assert all(len(source["member_sha256"]) == 64 and source["licence_file"] and source["version"] for source in sources)
        assert not any(reserved in source["package"] for source in sources for reserved in card["corpus"][0]["reserved_never_used"])


def test_every_shipped_weights_file_has_a_floor_and_card():
    for model in trainable_models():
        for path, trained in shipped_weights(model).items():
            if get_spec(model).trained_masks == "slices":  # through-plane: its "ratio" is 1 / slice factor
                floors = [f for f, floor in THROUGH_PLANE_FLOORS_DB.items() if floor is not None and ratio_distance(1 / f, trained) == 0]
            else:
                floors = [ratio for name, ratio in FLOORS_DB if name == model and ratio_distance(ratio, trained) == 0]
            assert floors, f"record a regression floor for {path.name}"
            generator = load_generator(str(path))
            assert sum(p.numel() for p in generator.parameters()) > 0


@pytest.mark.parametrize("model,ratio", sorted(FLOORS_DB))
def test_shipped_weights_beat_zero_filled(recon_sample_slice, recon_sample_kspace, recon_mask, model, ratio):
    """Uses the project's own pytest plugin (recon.testing), as users' suites do."""
    if not any(ratio_distance(ratio, trained) == 0 for trained in shipped_weights(model).values()):
        pytest.fail(f"{model} weights for {ratio:.0%} are not shipped")
    kind = "lowres" if get_spec(model).trained_masks == "lowres" else "cartesian"  # SR models: a central block
    mask = recon_mask(f"{ratio * 100:g}pct", kind, seed=11)
    zero_filled = recon.reconstruct(recon_sample_kspace, mask, "zero-filled")
    learned = recon.reconstruct(recon_sample_kspace, mask, model)
    floor = metrics.psnr(zero_filled, recon_sample_slice) + FLOORS_DB[(model, ratio)]
    assert_reconstruction_quality(learned, recon_sample_slice, min_psnr=floor)
    # hard data consistency: the measured samples are kept
    np.testing.assert_allclose(fft2c(learned)[mask], recon_sample_kspace[mask], atol=1e-4 * np.abs(recon_sample_kspace).max())


@pytest.mark.parametrize("model", ["gan-drn", "csr-gan"])
def test_multicoil_output_is_exactly_consistent_with_known_coil_maps(recon_sample_slice, model):
    """8 simulated coils with known maps, noise-free: ``||M A x - y|| / ||y|| <= 1e-4``
    (the per-coil projection alone left about 4e-3)."""
    import torch

    from masks import make_mask
    from physics import simulate_coil_maps, simulate_kspace
    from physics.operators import MultiCoil
    from recon.trust import check as trust

    image = torch.from_numpy(np.asarray(recon_sample_slice, np.float32))[None]
    mask = torch.from_numpy(make_mask("25pct", image.shape[-2:], "cartesian", seed=3).array)
    maps = simulate_coil_maps(8, tuple(image.shape[-2:])).unsqueeze(0)
    kspace, truth = simulate_kspace(image, mask, coil_maps=maps)
    output = recon.reconstruct(kspace[0].numpy(), mask.numpy(), model, coil_maps=maps[0].numpy())
    residual = trust.consistency_residual(torch.from_numpy(output), kspace[0], MultiCoil(mask, maps))
    assert residual <= 1e-4
    zero_filled = recon.reconstruct(kspace[0].numpy(), mask.numpy(), "zero-filled", coil_maps=maps[0].numpy())
    assert metrics.psnr(np.abs(output), truth[0].abs().numpy()) > metrics.psnr(np.abs(zero_filled), truth[0].abs().numpy()) + 3


# Through-plane SR (soup-gan-z, and soup-gan-z-4x at 4x): PSNR gain over the cubic spline
# along z (dB) on the fixed test slice, its rows taken as thin slices and averaged in
# groups of the factor.
THROUGH_PLANE_FLOORS_DB = {
    # measured at shipping, weights trained with real z planes, soup-gan-z fine-tuned at
    # 2x: +1.63 dB (the weights before: +1.20, +1.46, +0.29)
    2: 0.9,
    # +3.08 dB with soup-gan-z-4x (before: +3.38, +0.67); this 2-D slice thickened
    # in-plane is a regression guard, the Colin27 volume (README) measures the quality
    4: 2.5,
}


@pytest.mark.parametrize("factor", sorted(THROUGH_PLANE_FLOORS_DB))
def test_shipped_through_plane_weights_beat_cubic(recon_sample_slice, factor):
    from recon.classical.through_plane import thicken
    from recon.models.through_plane import restore

    floor = THROUGH_PLANE_FLOORS_DB[factor]
    assert floor is not None, "record a floor for the shipped soup-gan-z weights"
    thin = recon_sample_slice[:, None, :]  # (Z, 1, W): the rows as thin slices, one plane
    thick = thicken(thin, factor)
    cubic = restore(thick, factor, "cubic")
    learned = restore(thick, factor, "soup-gan")
    np.testing.assert_allclose(thicken(learned, factor), thick, atol=1e-4)
    data_range = float(recon_sample_slice.max())
    gain = metrics.psnr(learned[:, 0], recon_sample_slice, data_range) - metrics.psnr(cubic[:, 0], recon_sample_slice, data_range)
    assert gain >= floor, f"soup-gan-z x{factor}: {gain:+.2f} dB over cubic, floor {floor:+.2f}"


def test_loaded_generators_run_channels_last_with_the_same_images(recon_sample_kspace, recon_mask):
    # load_generator puts the convolution weights in channels-last (faster on CPU); the
    # images must not change
    import copy

    import torch

    from physics.operators import sampling_operator

    generator = load_generator(str(recon.weights.nearest_weights("gan-drn", 0.25)))
    convolutions = [module for module in generator.modules() if isinstance(module, torch.nn.Conv2d)]
    assert convolutions and all(c.weight.is_contiguous(memory_format=torch.channels_last) for c in convolutions)
    mask = torch.from_numpy(recon_mask("25pct"))
    kspace = torch.from_numpy(np.ascontiguousarray(recon_sample_kspace))[None, None] * mask
    operator = sampling_operator(mask)
    with torch.no_grad():
        fast = generator(kspace, operator)
        # a copy: load_generator's cached model must stay as every other caller gets it
        plain = copy.deepcopy(generator).to(memory_format=torch.contiguous_format)(kspace, operator)
    assert float((fast - plain).abs().max()) <= 1e-4 * float(plain.abs().max())


def test_trajectory_and_plane_weights_are_chosen_for_their_sampling_and_grid_weights_otherwise(tmp_path):
    import json

    for name, sampling in (("grid", None), ("radial", "trajectory"), ("planes", "plane")):
        (tmp_path / f"{name}.pt").write_bytes(b"")
        card = {"model": "gan-drn", "trained_ratios": [0.05, 0.6]}
        if sampling:
            card["sampling"] = sampling
        (tmp_path / f"{name}.json").write_text(json.dumps(card))
    assert list(shipped_weights("gan-drn", tmp_path)) == [tmp_path / "grid.pt"]
    assert list(shipped_weights("gan-drn", tmp_path, sampling="trajectory")) == [tmp_path / "radial.pt"]
    assert list(shipped_weights("gan-drn", tmp_path, sampling="plane")) == [tmp_path / "planes.pt"]
    (tmp_path / "radial.json").unlink()  # no trajectory weights: trajectories get the grid weights
    (tmp_path / "planes.json").unlink()
    assert list(shipped_weights("gan-drn", tmp_path, sampling="trajectory")) == [tmp_path / "grid.pt"]
    assert list(shipped_weights("gan-drn", tmp_path, sampling="plane")) == [tmp_path / "grid.pt"]


def test_a_reconstructor_of_3d_planes_prefers_the_plane_weights(plane_weights):
    assert recon.get("gan-drn", planes=True)._choose(0.1) == plane_weights / "planes.pt"
    assert recon.get("gan-drn")._choose(0.1) == plane_weights / "grid.pt"
    assert recon.get("gan-drn", planes=True)._choose(0.1, "trajectory") == plane_weights / "grid.pt"


# The trajectory fine-tune of GAN-DRN (issue 27), on the same test slice, seed 11: its gain
# over gridding (dB); floors about 2 dB below the gains measured at shipping.
TRAJECTORY_FLOORS_DB = {
    ("radial", "10pct"): 12.8,  # measured at shipping: +14.79 dB (gridding 22.14, gan-drn 36.93)
    ("spiral", "4interleaves"): 16.7,  # measured at shipping: +18.75 dB (gridding 22.12, gan-drn 40.87)
}


@pytest.mark.parametrize("kind,preset", sorted(TRAJECTORY_FLOORS_DB))
def test_shipped_trajectory_weights_beat_gridding(recon_sample_slice, kind, preset):
    import torch

    from masks import make_trajectory
    from physics import simulate_kspace
    from recon.api import as_sampling

    assert shipped_weights("gan-drn", sampling="trajectory") != shipped_weights("gan-drn")
    trajectory = as_sampling(make_trajectory(preset, recon_sample_slice.shape, kind, seed=11))
    kspace = simulate_kspace(torch.from_numpy(recon_sample_slice)[None], trajectory)[0][0, 0].numpy()
    gridding = recon.reconstruct(kspace, trajectory, "zero-filled")
    learned = recon.reconstruct(kspace, trajectory, "gan-drn")
    floor = metrics.psnr(np.abs(gridding), recon_sample_slice) + TRAJECTORY_FLOORS_DB[(kind, preset)]
    assert_reconstruction_quality(learned, recon_sample_slice, min_psnr=floor)


def test_exact_step_stops_before_it_fits_what_estimated_maps_cannot_explain(monkeypatch):
    """Noise-free, 15 random coil maps, ESPIRiT maps from a 10 % 1-D mask's narrow centre
    (a val slice of the sample where it happened): the learned output's final exact step
    went on through the operator's ill-conditioned directions and cost csr-gan 5.6 dB
    with ``EXACT_MAX_CHANGE`` 0.25; stopped at 0.08 of the output's norm it gains."""
    import torch

    import physics.map_refinement
    import recon.models.blocks as blocks
    from masks import make_mask
    from physics.acquisition import simulate_kspace
    from physics.coils import random_coil_maps
    from pipelines.data.sample import sample
    from recon.api import coil_maps_for

    monkeypatch.setattr(physics.map_refinement, "MAP_REFINE_ROUNDS", 0)  # the step alone, with the maps it is given
    image = torch.from_numpy(np.array(sample("val").images[3], np.float32))
    maps = random_coil_maps(15, tuple(image.shape), torch.Generator().manual_seed(18))
    mask = torch.from_numpy(make_mask(0.1, tuple(image.shape), "cartesian", seed=3).array)
    kspace, truth = simulate_kspace(image[None], mask, coil_maps=maps[None], generator=torch.Generator().manual_seed(3))
    estimated = coil_maps_for(kspace, mask.numpy())
    model = recon.get("csr-gan")
    with_step = metrics.psnr(model.reconstruct(kspace, mask, estimated).abs().numpy(), truth.abs().numpy())
    monkeypatch.setattr(blocks, "exact_consistency", lambda image, *args, **kwargs: image)
    without = metrics.psnr(model.reconstruct(kspace, mask, estimated).abs().numpy(), truth.abs().numpy())
    assert with_step > without + 0.5


@pytest.mark.parametrize("model", ["gan-drn", "csr-gan"])
def test_maps_refined_from_the_output_let_the_exact_step_gain_on_noise_free_data(monkeypatch, model):
    """Noise-free, 8 birdcage coils, 25 % 1-D, ESPIRiT maps: the exact step with the maps
    as estimated gains little (their misfit is amplified); with the maps refined from the
    network's output (physics.map_refinement) the sample's test slices gained 1.3 to 2.0 dB."""
    import torch

    import physics.map_refinement
    from masks import make_mask
    from physics.acquisition import simulate_kspace
    from physics.coils import simulate_coil_maps
    from pipelines.data.sample import sample
    from recon.api import coil_maps_for

    image = torch.from_numpy(np.array(sample("test").images[3], np.float32))
    maps = simulate_coil_maps(8, tuple(image.shape))
    mask = torch.from_numpy(make_mask(0.25, tuple(image.shape), "cartesian", seed=5).array)
    kspace, truth = simulate_kspace(image[None], mask, coil_maps=maps[None], generator=torch.Generator().manual_seed(5))
    estimated = coil_maps_for(kspace, mask.numpy())
    method = recon.get(model)
    refined = metrics.psnr(method.reconstruct(kspace, mask, estimated).abs().numpy(), truth.abs().numpy())
    monkeypatch.setattr(physics.map_refinement, "MAP_REFINE_ROUNDS", 0)
    as_estimated = metrics.psnr(method.reconstruct(kspace, mask, estimated).abs().numpy(), truth.abs().numpy())
    assert refined > as_estimated + 1.0


def test_a_reconstructor_of_3d_planes_averages_the_scan_and_its_mirror(recon_sample_slice):
    """The planes' self-ensemble (``PLANE_MIRRORS``): the output is the mean of the pass on
    the scan as measured and the pass on the scan mirrored through its centre (mirrored
    back), and on a noisy 8-coil plane of odd and even size it beats the one pass."""
    import torch

    from masks import make_mask
    from physics.coils import simulate_coil_maps
    from physics.fft import reflect_centred
    from recon.models.learned import PLANE_MIRRORS

    assert PLANE_MIRRORS == ((), (-2, -1))
    image = torch.from_numpy(np.ascontiguousarray(recon_sample_slice[60:181, 28:228]))  # 121 x 200
    maps = simulate_coil_maps(8, tuple(image.shape))[None]
    generator = torch.Generator().manual_seed(3)
    clean = fft2c(maps * image.to(torch.complex64))
    sigma = float(image.pow(2).mean().sqrt()) / 10 ** (30 / 20)  # 30 dB, as the 3-D default
    noise = torch.complex(torch.randn(clean.shape, generator=generator), torch.randn(clean.shape, generator=generator))
    mask = torch.from_numpy(make_mask("25pct", tuple(image.shape), "poisson", seed=5).array)
    kspace = (clean + sigma / 2**0.5 * noise) * mask

    ensemble = recon.get("gan-drn", planes=True).reconstruct(kspace, mask, maps)
    one = recon.get("gan-drn", planes=True, mirrors=((),))
    plain = one.reconstruct(kspace, mask, maps)
    mirrored = reflect_centred(one.reconstruct(reflect_centred(kspace, (-2, -1)), reflect_centred(mask, (-2, -1)),
                                               reflect_centred(maps, (-2, -1))), (-2, -1))
    torch.testing.assert_close(plain, recon.get("gan-drn").reconstruct(kspace, mask, maps))  # 2-D: one pass
    phase = torch.exp(-1j * torch.angle((mirrored * plain.conj()).sum()))
    torch.testing.assert_close(ensemble, (plain + mirrored * phase) / 2, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(plain, mirrored, atol=1e-3)  # two different passes
    psnr = {name: float(metrics.psnr(out[0].abs(), image)) for name, out in
            (("plain", plain), ("mirrored", mirrored), ("ensemble", ensemble))}
    assert psnr["ensemble"] > max(psnr["plain"], psnr["mirrored"]), psnr


def test_coil_noise_that_was_never_prewhitened_costs_the_learned_models_nothing(recon_sample_slice):
    """A dataset's k-space reaches ``recon.reconstruct`` as measured: its coil noise is
    correlated and of unequal gains. The exact step's discrepancy floor takes a typical
    coil's noise level there (``physics.consistency.channel_noise_std``); with the
    weakest direction's level it fitted the noise and gan-drn fell from 36.5 dB (white
    noise) to 29.0, below cs-tv's 35.0 (13 coils, 25 %, 30 dB, gains 0.3-3); the learned models
    also whiten such data first (``physics.raw.whiten_from_band``)."""
    import torch

    from masks import make_mask
    from physics.coils import simulate_coil_maps
    from physics.statistics import correlated_noise, random_noise_covariance

    image = torch.from_numpy(recon_sample_slice)
    maps = simulate_coil_maps(13, tuple(image.shape))
    clean = fft2c(maps * image.to(torch.complex64))
    sigma = float(image.pow(2).mean().sqrt()) / 10 ** (30 / 20)
    covariance = random_noise_covariance(13, torch.Generator().manual_seed(0), gain=(0.3, 3.0))
    mask = torch.from_numpy(make_mask("25pct", tuple(image.shape), "cartesian", seed=11).array)
    psnr = {}
    for noise, channels in (("white", torch.eye(13, dtype=torch.complex128)), ("array", covariance)):
        kspace = (clean + sigma * correlated_noise(channels, clean.shape[1:], torch.Generator().manual_seed(1))) * mask
        for method in ("gan-drn", "cs-tv"):
            output = recon.get(method).reconstruct(kspace[None], mask, maps[None])
            psnr[noise, method] = float(metrics.psnr(output[0].abs(), image))
    assert psnr["array", "gan-drn"] > psnr["white", "gan-drn"] - 0.5, psnr  # measured: 37.35 (whitened; the floor alone 36.50) against 36.52
    assert psnr["array", "gan-drn"] > psnr["array", "cs-tv"] + 1.0, psnr  # measured: 37.35 against 34.96
