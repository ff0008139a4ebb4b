"""``recon batch`` under signals, a second writer, a full disk and hostile file names;
progress when stderr is not a terminal."""

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import pipelines.batch.scheduling as batch
from pipelines.batch.lock import FolderLock
from pipelines.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def _stack(path: Path, slices: int = 2, size: int = 32, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    data = np.zeros((slices, size, size), np.float32)
    data[:, 8:24, 6:26] = 1 + rng.random((slices, 16, 20))
    np.save(path, data)


def _outputs(out: Path) -> set[str]:
    return {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file() and p.name != ".recon.lock"}


def test_sigterm_stops_workers_keeps_manifest_and_exits_143(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(8):
        _stack(inputs / f"s{index}.npy", slices=6, size=96, seed=index)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "pipelines.cli", "batch", str(inputs), "--out", str(out),
               "--methods", "cs-l1", "--workers", "2"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and not (out / "manifest.json").is_file():
        time.sleep(0.2)
    assert (out / "manifest.json").is_file(), process.communicate()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=60)
    assert process.returncode == 143, stderr
    assert "SIGTERM" in stderr and "--resume" in stderr
    manifest = json.loads((out / "manifest.json").read_text())
    recorded = {o for entry in manifest["units"].values() for o in entry["outputs"]}
    assert len(manifest["units"]) < 8
    time.sleep(3)  # workers are gone: nothing more appears
    before = _outputs(out)
    time.sleep(2)
    assert _outputs(out) == before
    assert not [p for p in out.rglob(".*") if p.name != ".recon.lock"]  # no temporary files
    assert recorded <= before | {"manifest.json"}
    assert main(["batch", str(inputs), "--out", str(out), "--methods", "zero-filled", "--resume"]) == 0


def test_sigint_in_process_exits_130_and_removes_temporaries(tmp_path, monkeypatch, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(3):
        _stack(inputs / f"s{index}.npy", seed=index)
    real_save = np.save

    def interrupted_save(file, array, *args, **kwargs):
        real_save(file, array, *args, **kwargs)  # the temporary file exists, the rename has not happened
        if "s1" in str(file):
            raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", interrupted_save)
    out = tmp_path / "out"
    assert main(["batch", str(inputs), "--out", str(out), "--methods", "zero-filled", "--format", "npy"]) == 130
    assert "SIGINT" in capsys.readouterr().err
    assert not [p for p in out.rglob(".*") if p.name != ".recon.lock"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert [Path(e["input"]).name for e in manifest["units"].values()] == ["s0.npy"]


def test_second_writer_is_refused_with_one_line(tmp_path, capsys):
    _stack(tmp_path / "a.npy")
    out = tmp_path / "out"
    with FolderLock(out, "recon batch"):
        code = main(["batch", str(tmp_path / "a.npy"), "--out", str(out), "--methods", "zero-filled", "--force"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "in use by another recon batch" in err[0] and str(os.getpid()) in err[0]
    assert not (out / "manifest.json").exists()
    assert main(["batch", str(tmp_path / "a.npy"), "--out", str(out), "--methods", "zero-filled", "--force"]) == 0


def test_full_disk_names_the_file_cleans_up_and_keeps_the_manifest(tmp_path, monkeypatch, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(3):
        nib.save(nib.Nifti1Image(_volume(index), np.eye(4)), inputs / f"v{index}.nii.gz")
    real_save = nib.save

    def full_disk(image, filename):
        if "v1_" in str(filename):
            Path(filename).write_bytes(b"partial")
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(image, filename)

    monkeypatch.setattr(nib, "save", full_disk)
    out = tmp_path / "out"
    code = main(["batch", str(inputs), "--out", str(out), "--methods", "zero-filled"])
    captured = capsys.readouterr()
    assert code == 3  # finished work kept, some inputs not done: --resume completes it
    assert "no space left on device" in captured.err and "v1_zero-filled.nii.gz" in captured.err
    assert "1 done" in captured.out  # the summary
    assert not [p for p in out.rglob(".*") if p.name != ".recon.lock"]  # no temporary files
    assert not (out / "v1_zero-filled.nii.gz").exists() and not (out / "v2_zero-filled.nii.gz").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [Path(e["input"]).name for e in manifest["units"].values()] == ["v0.nii.gz"]
    monkeypatch.setattr(nib, "save", real_save)
    assert main(["batch", str(inputs), "--out", str(out), "--methods", "zero-filled", "--resume"]) == 0
    assert "1 already done" in capsys.readouterr().out


def _volume(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = np.zeros((32, 32, 2), np.float32)
    data[8:24, 6:26] = 1 + rng.random((16, 20, 2))
    return data


def test_control_characters_in_file_names_cannot_forge_lines(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    evil = inputs / "x\nrecon: all 9 files done\x1b[2K.npy"
    evil.write_bytes(b"not an array")
    code = main(["batch", str(inputs), "--out", str(tmp_path / "out"), "--methods", "zero-filled"])
    captured = capsys.readouterr()
    assert code == 3
    for stream in (captured.out, captured.err):
        assert not any(line.startswith("recon: all 9 files done") for line in stream.splitlines())
        assert "\x1b" not in stream
    assert "x\\nrecon: all 9 files done\\x1b[2K.npy" in captured.err


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(3):
        _stack(inputs / f"s{index}.npy", seed=index)
    config = batch.BatchConfig(inputs=(str(inputs),), out=str(tmp_path / "out"), methods=("zero-filled",))
    batch.run_batch(config, log=lambda line: None, progress_interval=0.0)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("recon batch:")]
    assert len(lines) >= 3
    assert "3/3 files (100 %)" in lines[-1] and "ETA" in lines[0] and "elapsed" in lines[0]


@pytest.fixture
def tiny_disk(tmp_path):
    """A 600 KiB tmpfs (needs root and a kernel that allows the mount; skipped otherwise)."""
    folder = tmp_path / "disk"
    folder.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_real_full_disk(tiny_disk, tmp_path, capsys):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for index in range(6):  # each output is 4 x 128 x 128 float32 = 256 KiB
        _stack(inputs / f"s{index}.npy", slices=4, size=128, seed=index)
    out = tiny_disk / "out"
    code = main(["batch", str(inputs), "--out", str(out), "--methods", "zero-filled"])
    captured = capsys.readouterr()
    assert code == 3 and "no space left on device" in captured.err.lower()
    assert "done" in captured.out  # the summary
    assert not [p for p in out.rglob(".*") if p.name != ".recon.lock"]  # no temporary files
    manifest = json.loads((out / "manifest.json").read_text())  # still valid JSON
    for entry in manifest["units"].values():
        assert entry["status"] == "done" and all((out / o).is_file() for o in entry["outputs"])
    recorded = {o for e in manifest["units"].values() for o in e["outputs"]}
    written = {str(p.relative_to(out)) for p in out.glob("*.npy")}
    assert written <= recorded  # no output the manifest does not record


def test_a_signal_whose_raise_was_swallowed_still_stops_the_batch():
    """A SIGTERM that lands in an at-fork callback (a worker pool starting) has its
    exception ignored by Python; the batch raises it at the next finished unit."""
    from pipelines.batch import interruption

    previous = interruption.install_signal_handlers()
    try:
        interruption.raise_pending()  # nothing pending: no raise
        try:
            interruption._raise_signal(signal.SIGTERM, None)
        except interruption.Signalled:
            pass  # what Python does with an exception raised inside an at-fork callback
        with pytest.raises(interruption.Signalled) as raised:
            interruption.raise_pending()
        assert raised.value.signum == signal.SIGTERM
    finally:
        interruption.restore_signal_handlers(previous)
    again = interruption.install_signal_handlers()  # a new batch starts with nothing pending
    assert not interruption._pending
    interruption.restore_signal_handlers(again)
