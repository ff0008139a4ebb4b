"""Non-Cartesian acquisitions through the command line: ``recon run`` simulates true
radial and spiral k-space (NUFFT), ``recon mask`` draws trajectories."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from pipelines.cli.main import main


def test_recon_run_radial_is_true_radial_with_every_family(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--mask", "10pct", "--mask-type", "radial", "--slices", "1", "--methods",
                 "zero-filled,cs-l1,cs-tv,gan-drn", "--estimate-folds", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "40 spokes of 512 samples" in printed and "simulated by NUFFT" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    psnr = {row["method"]: row["psnr"] for row in metrics["summary"]}
    # gridding of 40 spokes is streaky; CS and the learned model remove most of it
    assert psnr["cs-tv"] > psnr["zero-filled"] + 8 and psnr["gan-drn"] > psnr["zero-filled"] + 8
    assert psnr["cs-l1"] > psnr["zero-filled"] + 5  # FISTA through the project's NUFFT
    config = json.loads((out / "config.json").read_text())
    assert config["mask"]["kind"] == "radial" and config["mask"]["shots"] == 40
    # the hold-out runs on trajectories too: spokes held out, every method estimated and the guard judging
    assert not any("Cartesian only" in note for note in config["notes"])
    assert all(r["estimated_psnr"] > 0 for r in metrics["records"])
    assert next(r for r in metrics["records"] if r["method"] == "cs-l1")["estimate_calibration"].startswith("cs-l1:radial")
    estimated = {r["method"]: r["estimated_psnr"] for r in metrics["records"]}
    assert estimated["cs-tv"] > estimated["zero-filled"] + 3 and estimated["gan-drn"] > estimated["zero-filled"] + 3
    assert "guard_flagged" in next(r for r in metrics["records"] if r["method"] == "gan-drn")
    picture = np.asarray(Image.open(out / "mask.png"))
    assert picture.shape == (512, 512)  # the trajectory drawn at twice the grid's resolution
    records = [r for r in metrics["records"] if r["method"] == "gan-drn"]
    assert records[0]["dc_residual"] < 1e-3  # data consistency through the NUFFT


def test_recon_mask_draws_and_saves_trajectories(tmp_path, capsys):
    assert main(["mask", "--mask", "4interleaves", "--mask-type", "spiral", "--shape", "64,64",
                 "--out", str(tmp_path / "spiral.npy")]) == 0
    coords = np.load(tmp_path / "spiral.npy")
    assert coords.shape[0] == 4 and coords.shape[-1] == 2 and np.abs(coords).max() <= 32 + 1e-4
    assert "4 interleaves" in capsys.readouterr().out
    assert main(["mask", "--mask", "40spokes", "--mask-type", "radial", "--shape", "64,64",
                 "--out", str(tmp_path / "radial.png")]) == 0
    assert np.asarray(Image.open(tmp_path / "radial.png")).any()
    assert main(["mask", "--mask", "4interleaves", "--mask-type", "radial", "--out", str(tmp_path / "x.png")]) == 2


@pytest.mark.skipif(shutil.which("bart") is None, reason="bart not installed")
def test_bart_pics_takes_the_same_trajectory(tmp_path):
    import torch

    from masks import make_trajectory
    from physics import simulate_kspace
    from recon import get, metrics
    from recon.api import as_sampling

    image = torch.zeros((1, 64, 64))
    image[0, 16:48, 20:44] = 1.0
    image[0, 28:36, 28:36] = 0.3
    trajectory = as_sampling(make_trajectory("25pct", (64, 64), "radial", seed=0))
    kspace, truth = simulate_kspace(image, trajectory)
    bart = get("bart-tv").reconstruct(kspace, trajectory)[0]
    gridding = get("zero-filled").reconstruct(kspace, trajectory)[0]
    # BART's pics -t reads our trajectory in its layout and units: same image, same scale
    assert metrics.psnr(bart.abs(), truth[0].abs()) > metrics.psnr(gridding.abs(), truth[0].abs()) + 3
    assert abs(float(bart.abs().sum() / truth.abs().sum()) - 1) < 0.1


@pytest.mark.skipif(shutil.which("ismrmrd_generate_cartesian_shepp_logan") is None, reason="ismrmrd-tools not installed")
def test_recon_batch_reads_a_radial_ismrmrd_file_and_reconstructs_it(tmp_path):
    from pipelines.formats import read_input
    from recon.metrics import psnr
    from tests.toys import radial_ismrmrd

    truth, made = radial_ismrmrd(tmp_path / "radial.h5", tmp_path)
    (study,), _ = read_input(tmp_path / "radial.h5")
    assert study.kspace.shape == (1, 4, 32, 128) and tuple(study.meta["image_shape"]) == (64, 64)
    assert np.abs(study.meta["trajectory"] - made.coords).max() < 1e-4  # +-0.5 scaled to 1/FOV units
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "radial.h5"), "--methods", "zero-filled,cs-tv,cg-sense", "--format", "npy",
                 "--out", str(out)]) == 0
    # an ISMRMRD input's .npy is (slices, y, x), as ismrmrd_recon_cartesian_2d writes images: x (H here) last
    images = {name: np.abs(np.load(out / f"radial_{name}.npy"))[0].T for name in ("zero-filled", "cs-tv", "cg-sense")}
    scores = {name: psnr(image * (truth * image).sum() / (image**2).sum(), truth) for name, image in images.items()}
    assert scores["cs-tv"] > scores["zero-filled"] + 2 and scores["cs-tv"] > 25, scores
    metrics = json.loads((out / "radial.metrics.json").read_text())
    assert metrics["kspace"] == "measured" and metrics["mask_type"] == "from file"
    estimated = {name: metrics["methods"][name]["estimated_psnr"] for name in ("zero-filled", "cs-tv")}
    assert estimated["cs-tv"] > estimated["zero-filled"]  # the file's spokes held out, as for a simulated trajectory
    # coordinates beyond the declared grid: refused by name, no image
    import h5py

    with h5py.File(tmp_path / "radial.h5", "r") as handle:
        rows, xml = handle["dataset/data"][()], handle["dataset/xml"][()]
    for index in range(len(rows)):
        rows["traj"][index] = rows["traj"][index] * 200  # 1/FOV units now, beyond +-32
    with h5py.File(tmp_path / "wide.h5", "w") as handle:
        handle.create_dataset("dataset/data", data=rows)
        handle.create_dataset("dataset/xml", data=xml)
    with pytest.raises(ValueError, match="wide.h5: trajectory coordinates reach .* outside"):
        read_input(tmp_path / "wide.h5")


@pytest.mark.parametrize("change, problem", [
    (lambda coords: coords[..., :1], "\\(shots, samples, 2\\)"),
    (lambda coords: np.where(np.arange(coords.size).reshape(coords.shape) == 5, np.nan, coords), "NaN"),
    (lambda coords: coords[:, :10], "does not match the trajectory"),
    (lambda coords: coords[:0], "no samples|\\(shots, samples, 2\\)"),
])
def test_bad_trajectory_files_fail_with_one_line_naming_the_file(tmp_path, capsys, change, problem):
    from masks import make_trajectory

    made = make_trajectory("8spokes", (32, 32), "radial", seed=0)
    kspace = (np.random.default_rng(0).standard_normal((8, 64)) + 1j).astype(np.complex64)
    np.save(tmp_path / "scan.npy", kspace)
    np.save(tmp_path / "scan.traj.npy", change(made.coords))
    assert main(["batch", str(tmp_path / "scan.npy"), "--methods", "zero-filled", "--out", str(tmp_path / "o")]) == 3
    failed = [line for line in capsys.readouterr().out.splitlines() if "failed:" in line]
    assert len(failed) == 1 and "scan" in failed[0]
    assert __import__("re").search(problem, failed[0]), failed[0]
