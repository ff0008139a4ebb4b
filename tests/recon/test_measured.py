"""The measured-like training simulation against measured k-space: the tests' Siemens
``gre.dat`` and an ISMRMRD file from ``ismrmrd_generate_cartesian_shepp_logan``."""

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from masks import make_mask
from physics.coils import rss
from physics.fft import fft2c, ifft2c
from physics.operators import MultiCoil
from physics.statistics import kspace_snr, map_coverage, map_smoothness, phase_roughness
from pipelines.data.sample import sample
from pipelines.formats import read_input
from recon.training.augment import AcquisitionDataset, SliceSet
from recon.training.measured import draw_coil_maps, measured_acquisition

GRE = Path(__file__).resolve().parents[1] / "data" / "twix" / "gre.dat"


def statistics(kspace: torch.Tensor) -> dict[str, float]:
    return {"snr": kspace_snr(kspace), "smoothness": map_smoothness(kspace), "coverage": map_coverage(kspace),
            "phase": phase_roughness(kspace)}


def measured_statistics(path: Path) -> dict[str, float]:
    (study,), _ = read_input(path)
    return statistics(torch.from_numpy(study.kspace[0]))


def simulated_statistics(coils: int, snr: float, seed: int = 0) -> dict[str, float]:
    """The statistics of a fully sampled measured-like acquisition of a real slice."""
    image = torch.from_numpy(np.array(sample("test").images[8]))
    rng = np.random.default_rng(seed)
    maps = draw_coil_maps(coils, tuple(image.shape), rng)
    generator = torch.Generator().manual_seed(seed)
    full = np.ones(image.shape, dtype=bool)
    kspace, _, _ = measured_acquisition(image.to(torch.complex64), full, maps, snr, generator, virtual_coils=coils)
    return statistics(kspace[0])


def assert_alike(simulated: dict, measured: dict) -> None:
    assert simulated["snr"] == pytest.approx(measured["snr"], abs=1.5)
    assert simulated["smoothness"] == pytest.approx(measured["smoothness"], abs=0.25)
    assert simulated["coverage"] == pytest.approx(measured["coverage"], abs=0.25)
    assert simulated["phase"] == pytest.approx(measured["phase"], abs=0.35)


def test_simulation_matches_gre_dat():
    measured = measured_statistics(GRE)
    assert 15 < measured["snr"] < 40  # inside the training range (--measured-snr 15-40)
    assert_alike(simulated_statistics(coils=2, snr=measured["snr"]), measured)


@pytest.mark.skipif(not shutil.which("ismrmrd_generate_cartesian_shepp_logan"), reason="ismrmrd-tools not installed")
def test_simulation_matches_an_ismrmrd_file(tmp_path):
    subprocess.run(["ismrmrd_generate_cartesian_shepp_logan", "-o", str(tmp_path / "shepp.h5"), "-m", "128", "-c", "8",
                    "-C", "-n", "0.05"], check=True, capture_output=True, cwd=tmp_path)
    measured = measured_statistics(tmp_path / "shepp.h5")
    assert 15 < measured["snr"] < 40
    assert_alike(simulated_statistics(coils=8, snr=measured["snr"]), measured)


def test_the_old_simulation_did_not_match():
    """Without noise the simulated SNR is far above any measured one: the statistics can fail."""
    image = torch.from_numpy(np.array(sample("test").images[8])).to(torch.complex64)
    maps = draw_coil_maps(2, tuple(image.shape), np.random.default_rng(0))
    assert kspace_snr(fft2c(maps * image)) > measured_statistics(GRE)["snr"] + 10


def test_target_is_what_the_data_and_estimated_maps_give():
    image = torch.from_numpy(np.array(sample("test").images[8])).to(torch.complex64)
    mask = make_mask(0.3, tuple(image.shape), "cartesian", seed=1).array
    maps = draw_coil_maps(12, tuple(image.shape), np.random.default_rng(2))
    kspace, target, estimated = measured_acquisition(image, mask, maps, 80.0, torch.Generator().manual_seed(3), 8)
    assert kspace.shape == estimated.shape == (1, 8, *image.shape)
    # the maps are estimated from the data, not the simulation's (12 coils compressed to 8)
    assert not torch.allclose(estimated[0, :2].abs(), maps[:2].abs(), atol=1e-2)
    # almost noise-free: the target under the estimated maps reproduces the samples...
    operator = MultiCoil(torch.from_numpy(mask), estimated)
    residual = (operator(target) - kspace).norm() / kspace.norm()
    assert float(residual) < 0.05
    # ...and, fully sampled, its magnitude is the root-sum-of-squares image of the
    # (prewhitened) coils, the reference measured data are scored against
    full = np.ones(image.shape, dtype=bool)
    kspace, target, _ = measured_acquisition(image, full, maps[:8], 80.0, torch.Generator().manual_seed(3), 8)
    region = image.abs() > 0.2
    full_rss = rss(ifft2c(kspace))[0]
    error = (target[0].abs() - full_rss).abs()[region].mean() / full_rss[region].mean()
    assert float(error) < 0.02


def test_dataset_draws_measured_items_only_when_asked():
    images = SliceSet(np.array(sample("val").images[:2]))
    plain = AcquisitionDataset(images, (0.25,), coils=4, seed=5)
    measured = AcquisitionDataset(images, (0.25,), coils=4, seed=5, measured=1.0, measured_snr=(20.0, 20.0))
    k_plain, _, t_plain, _, m_plain = plain[0]
    k_measured, _, t_measured, _, m_measured = measured[0]
    # estimated (ESPIRiT) maps are cropped to the object; the simulation's cover the field of view
    assert bool((m_measured.abs().sum(0) == 0).any()) and not bool((m_plain.abs().sum(0) == 0).any())
    assert k_plain.shape == k_measured.shape
    validation = AcquisitionDataset(images, (0.25,), coils=4, seed=5, train=False, measured=1.0)
    first, again = validation[1], validation[1]
    assert torch.equal(first[0], again[0])  # deterministic per item
    assert bool((first[4].abs().sum(0) == 0).any())  # and measured-like
    with pytest.raises(ValueError, match="measured"):
        AcquisitionDataset(images, (0.25,), measured=1.5)


def test_training_runs_on_measured_like_items(tmp_path):
    from recon.training.config import TrainConfig
    from recon.training.trainer import train

    data = SliceSet(np.array(sample("val").images[:3]))
    config = TrainConfig(steps=2, batch_size=2, val_every=2, checkpoint_every=2, generator={"width": 8, "blocks": 1, "stages": 2},
                         out=str(tmp_path / "run"), ratios=(0.3,), seed=1, threads=1, coils=(1, 4), measured=1.0,
                         measured_snr=(18.0, 25.0))
    summary = train(config, data, SliceSet(np.array(sample("val").images[3:4])), progress=False)
    assert summary["steps"] == 2 and summary["history"][-1]["psnr"] > 0
    with pytest.raises(ValueError, match="--measured-snr"):
        TrainConfig(ratios=(0.3,), measured=0.5, measured_snr=(30.0, 20.0))
    with pytest.raises(ValueError, match="trajectory"):
        TrainConfig(model="gan-drn", ratios=(0.1,), mask_type="radial", measured=0.5)
