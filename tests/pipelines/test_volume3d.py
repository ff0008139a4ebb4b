"""3-D acquisitions: ``recon run --acquisition 3d`` on a NIfTI volume and the sample."""

import json
import shutil

import nibabel as nib
import numpy as np
import pytest

from pipelines.cli.main import main
from pipelines.common.volume import readout_planes


def _head(shape=(20, 40, 36)) -> np.ndarray:
    """An ellipsoid 'head' with a brighter inner ellipsoid: (X, Y, Z) float32."""
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    radius = sum((axis / 0.8) ** 2 for axis in grid)
    inner = sum((axis / 0.4) ** 2 for axis in grid)
    return (0.6 * (radius < 1) + 0.4 * (inner < 1)).astype(np.float32)


def test_readout_follows_the_header_frequency_axis_and_drops_empty_margins():
    stack = np.zeros((10, 12, 14), np.float32)
    stack[2:8, 1:11, 3:12] = 1.0
    notes = []
    volume, ids, axis = readout_planes(stack, 2, notes)  # the header says W (columns) is the readout
    assert axis == 2 and volume.shape == (9, 10, 12) and ids[0] == "x003"
    assert any("readout field of view" in note for note in notes)
    volume, _, axis = readout_planes(stack, None, [])
    assert axis == 1 and volume.shape == (10, 10, 14)


def test_run_3d_on_a_nifti_volume(tmp_path, capsys):
    image = nib.Nifti1Image(np.moveaxis(_head(), 0, 0), np.diag([1.0, 1.0, 1.0, 1.0]))
    image.header.set_dim_info(freq=0, phase=1, slice=2)  # readout along the first voxel axis (the stack's H)
    path = tmp_path / "head.nii.gz"
    nib.save(image, path)
    out = tmp_path / "run"
    assert main(["run", "--input", str(path), "--acquisition", "3d", "--mask", "25pct", "--mask-type", "poisson",
                 "--coils", "4", "--methods", "zero-filled,cs-tv", "--estimate-folds", "0", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "readout plane(s) of a 3-D acquisition" in captured.out
    assert "reconstruction (2 methods x 16 planes)" in captured.err and "32/32 planes" in captured.err  # counts planes
    config = json.loads((out / "config.json").read_text())
    assert config["acquisition"] == "3d" and config["config"]["noise_snr"] == 30.0
    # the NIfTI stack is (Z, X, Y) = (36, 20, 40): the readout is X (20 positions, 16 inside the head), the plane
    # the other two in stack order, (Z, Y) = (36, 40)
    assert config["mask"]["shape"] == [36, 40] and config["slices"][0] == "x002" and len(config["slices"]) == 16
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["planes"] == ["x10", "y18", "z20"]
    volume = metrics["volume"]
    assert volume["cs-tv"]["volume_psnr"] > volume["zero-filled"]["volume_psnr"] + 1
    for plane in metrics["planes"]:
        assert (out / "images" / f"{plane}_cs-tv_error.png").is_file()
    report = (out / "report.html").read_text()
    assert "three central orthogonal planes" in report and "volume PSNR" in report


def test_run_3d_refuses_slices_and_trajectories(capsys):
    assert main(["run", "--acquisition", "3d", "--slices", "2"]) == 2
    assert "every readout position" in capsys.readouterr().err
    assert main(["run", "--acquisition", "3d", "--mask-type", "radial"]) in (1, 2)
    assert "not a trajectory" in capsys.readouterr().err


@pytest.mark.parametrize("kind", ["caipi", "poisson"])
def test_3d_masks_cover_the_plane_not_the_readout(tmp_path, kind):
    out = tmp_path / kind
    volume = _head((24, 32, 28))
    np.save(tmp_path / "v.npy", volume)
    assert main(["run", "--input", str(tmp_path / "v.npy"), "--acquisition", "3d", "--mask", "25pct", "--mask-type", kind,
                 "--coils", "2", "--methods", "zero-filled", "--estimate-folds", "0", "--out", str(out)]) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["mask"]["kind"] == kind and config["mask"]["shape"] == [24, 28]


@pytest.mark.skipif(__import__("shutil").which("bart") is None, reason="BART is not installed")
def test_bart_is_the_3d_anchor_on_the_whole_volume(tmp_path, capsys):
    volume = _head((24, 40, 36))
    np.save(tmp_path / "v.npy", volume)
    out = tmp_path / "run"
    assert main(["run", "--input", str(tmp_path / "v.npy"), "--acquisition", "3d", "--mask", "25pct", "--mask-type",
                 "poisson", "--coils", "4", "--methods", "zero-filled,bart-tv", "--estimate-folds", "0",
                 "--out", str(out)]) == 0
    capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    scores = metrics["volume"]
    assert scores["bart-tv"]["volume_psnr"] > scores["zero-filled"]["volume_psnr"] + 3


@pytest.mark.skipif(not shutil.which("bart"), reason="bart not installed")
def test_a_3d_run_by_default_has_one_bart_anchor():
    from masks import make_mask
    from pipelines.config import RunConfig
    from pipelines.run.workflow import _methods

    mask = make_mask("25pct", (32, 24), "poisson", seed=0)
    names, notes = _methods(RunConfig(acquisition="3d", coils=4), 4, mask)
    assert "bart-tv" in names and "bart-l1" not in names and any(n.startswith("bart-l1 left out") for n in notes)
    assert {"bart-l1", "bart-tv"} <= set(_methods(RunConfig(coils=4), 4, mask)[0])  # 2-D runs keep both
    names, _ = _methods(RunConfig(acquisition="3d", coils=4, methods=("bart-l1", "bart-tv")), 4, mask)
    assert "bart-l1" in names  # asked for, it runs


def test_a_3d_run_by_default_leaves_cs_l1_out_and_says_so():
    from masks import make_mask
    from pipelines.config import RunConfig
    from pipelines.run.workflow import _methods

    mask = make_mask("25pct", (32, 24), "poisson", seed=0)
    names, notes = _methods(RunConfig(acquisition="3d", coils=4), 4, mask)
    assert "cs-l1" not in names and "cs-tv" in names and any(n.startswith("cs-l1 left out") for n in notes)
    assert "cs-l1" in _methods(RunConfig(coils=4), 4, mask)[0]  # 2-D runs keep it
    assert "cs-l1" in _methods(RunConfig(acquisition="3d", coils=4, methods=("cs-l1",)), 4, mask)[0]  # asked for


def test_the_guard_judges_a_3d_volume_as_one():
    from pipelines.common.volume import whole_volume
    from pipelines.run.volume import spread_guard
    from recon.trust.guard import Verdict

    flag = Verdict(True, "cs-tv", 2.0, 0.5)
    keep = Verdict(False, "cs-tv", -1.0, 0.5)
    decided = whole_volume({"gan-drn": [flag, flag, keep], "csr-gan": [flag, keep, keep]})
    assert all(v.flagged and v.reference == "cs-tv" for v in decided["gan-drn"])
    assert not any(v.flagged for v in decided["csr-gan"])
    outputs = {"gan-drn": ["g0", "g1", "g2", "g3"], "cs-tv": ["c0", "c1", "c2", "c3"]}
    records = [{"method": m, "slice": f"x{i}", "psnr": float(i), "ssim": 0.5} for m in outputs for i in range(4)]
    notes = spread_guard(outputs, records, {"gan-drn": ["cs-tv", "cs-tv"]})  # judged on 2 of the 4 planes
    assert outputs["gan-drn"] == ["c0", "c1", "c2", "c3"] and "whole gan-drn volume" in notes[0]
    assert all(r["guard_output"] == "cs-tv" for r in records if r["method"] == "gan-drn")


def test_run_3d_with_a_learned_method_writes_one_method_per_volume(tmp_path, capsys):
    volume = _head((36, 16, 40))
    np.save(tmp_path / "v.npy", volume)
    out = tmp_path / "run"
    assert main(["run", "--input", str(tmp_path / "v.npy"), "--acquisition", "3d", "--mask", "25pct", "--mask-type",
                 "poisson", "--coils", "4", "--methods", "gan-drn", "--estimate-folds", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    learned = [r for r in metrics["records"] if r["method"] == "gan-drn"]
    assert len({r.get("guard_output", "gan-drn") for r in learned}) == 1  # never a mix of methods along the readout
    assert sum("estimated_psnr" in r for r in learned) == min(8, len(learned))  # the default 8 judged planes
    notes = json.loads((out / "config.json").read_text())["notes"]
    assert any(note.startswith("gan-drn: weights ") for note in notes)  # which weights the planes got
    # a simulated 3-D acquisition's planes are calibrated as planes, and the note says so
    assert any(note.startswith("error estimate of a 3-D acquisition: calibrated on the (ky, kz) planes") for note in notes)
    assert all("@planes" in r["estimate_calibration"] for r in learned if "estimated_psnr" in r)


def test_the_note_names_the_weights_a_3d_plane_gets(plane_weights):
    from pipelines.common.planes import weights_notes

    ensemble = "; each plane is the mean of 2 passes, the scan as measured and mirrored through its centre (a self-ensemble)"
    assert weights_notes(["cs-tv", "gan-drn"], 0.1) == [
        "gan-drn: weights planes.pt, trained on the (ky, kz) planes of 3-D acquisitions" + ensemble]
    (plane_weights / "planes.json").unlink()  # none for planes: the grid weights, and the note says so
    assert weights_notes(["gan-drn"], 0.1) == [
        "gan-drn: weights grid.pt, trained on 2-D slices (none are trained for 3-D planes)" + ensemble]


def test_batch_3d_of_a_nifti_volume_writes_it_back_on_the_input_grid(tmp_path):
    head = _head((36, 28, 40))  # voxel (i, j, k)
    affine = np.diag([0.9, 1.1, 1.3, 1.0])
    affine[:3, 3] = [-10, 5, 20]
    nib.save(nib.Nifti1Image(head, affine), tmp_path / "head.nii.gz")
    out = tmp_path / "out"
    assert main(["batch", str(tmp_path / "head.nii.gz"), "--acquisition", "3d", "--mask", "25pct", "--mask-type", "caipi",
                 "--methods", "zero-filled,cs-tv", "--estimate-folds", "0", "--out", str(out)]) == 0
    written = nib.load(out / "head_cs-tv.nii.gz")
    assert written.shape == head.shape and np.allclose(written.affine, affine)
    image = np.asarray(written.dataobj)
    assert np.abs(image - head).mean() < 0.25 * np.abs(head).mean()  # the head, where it was
    metrics = json.loads((out / "head.metrics.json").read_text())
    assert metrics["acquisition"] == "3d" and metrics["methods"]["cs-tv"]["psnr"] > metrics["methods"]["zero-filled"]["psnr"]
    scores = metrics["methods"]["cs-tv"]  # per plane, and the volume's (one error over every voxel)
    assert len(scores["psnr_slices"]) == len(scores["ssim_slices"]) > 1 and 0 < scores["volume_nmse"] < 1
    assert min(scores["psnr_slices"]) <= scores["volume_psnr"] <= max(scores["psnr_slices"])
    from PIL import Image

    for folder in ("", "plane1", "plane2"):  # three orthogonal planes, the reference's the same plane as the method's
        shown = [Image.open(out / "previews" / folder / f"head_{label}.png").size for label in ("reference", "cs-tv")]
        assert shown[0] == shown[1] and (out / "previews" / folder / "head_cs-tv_error.png").is_file()
    assert {tuple(sorted(Image.open(out / "previews" / f / "head_cs-tv.png").size)) for f in ("", "plane1", "plane2")
            } == {(28, 36), (28, 40), (36, 40)}  # one across each axis of the (36, 28, 40) volume
    assert "central plane across" in (out / "report.html").read_text()


@pytest.mark.parametrize(("direction", "axis"), [("ROW", 1), ("COL", 2)])
def test_a_dicom_series_names_its_readout_axis(tmp_path, direction, axis):
    import pydicom

    from pipelines.formats import read_input
    from tests.toys import dicom_series_fixture

    dicom_series_fixture(tmp_path / "series", count=4)
    for path in (tmp_path / "series").iterdir():
        dataset = pydicom.dcmread(path)
        dataset.InPlanePhaseEncodingDirection = direction
        dataset.save_as(path)
    (study,), _ = read_input(tmp_path / "series")
    assert study.meta["frequency_axis"] == axis
    volume, _, used = readout_planes(study.images, study.meta["frequency_axis"], [])
    assert used == axis and volume.shape[0] == study.images.shape[axis]


@pytest.mark.skipif(__import__("shutil").which("bart") is None, reason="BART is not installed")
def test_bart_3d_anchor_on_odd_grids():
    """bart pics reconstructs wrongly on odd grids; the anchor pads them to even and back."""
    import torch

    import masks
    from physics.volume import to_hybrid
    from recon.classical.bart import pics_volume
    from tests.toys import kspace_3d

    kspace, head = kspace_3d((15, 33, 27), coils=4)
    mask = masks.make_mask("30pct", (33, 27), "poisson", seed=0, center_fraction=0.3).array
    image, _ = pics_volume(to_hybrid(torch.from_numpy(kspace)), mask, "bart-tv", reg_weight=0.001,
                           calibration=masks.calibration_region(mask))
    assert image.shape == (15, 33, 27)
    error = np.abs(np.abs(image.numpy()) - head)
    assert 10 * np.log10(1 / (error**2).mean()) > 25


def test_planes_on_all_cores_give_each_plane_its_own_image():
    import torch

    import recon
    from pipelines.common.planes import on_cluster, reconstruct_planes

    rng = np.random.default_rng(3)
    kspace = torch.from_numpy((rng.standard_normal((5, 2, 16, 12)) + 1j * rng.standard_normal((5, 2, 16, 12)))
                              .astype(np.complex64))
    maps = torch.from_numpy(rng.standard_normal((5, 2, 16, 12)).astype(np.complex64))
    mask = torch.from_numpy(rng.random((16, 12)) < 0.5)
    kspace = kspace * mask
    torch.set_num_threads(2)
    images = reconstruct_planes(recon.get("cg-sense"), kspace, mask, maps)
    for index, image in enumerate(images):  # in order, each plane's own, as one at a time gives it
        alone = recon.get("cg-sense").reconstruct(kspace[index : index + 1], mask, maps[index : index + 1])[0]
        assert torch.allclose(image, alone, atol=1e-4 * float(alone.abs().max()))
    assert on_cluster("cg-sense", kspace.numpy(), mask.numpy(), maps.numpy()) is None  # not on a Dask worker
