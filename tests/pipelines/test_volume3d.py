"""3-D acquisitions: ``recon run --acquisition 3d`` on a NIfTI volume and the sample."""

import json

import nibabel as nib
import numpy as np
import pytest

from pipelines.cli.main import main
from pipelines.run.volume import readout_planes


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
    printed = capsys.readouterr().out
    assert "readout plane(s) of a 3-D acquisition" in printed
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
