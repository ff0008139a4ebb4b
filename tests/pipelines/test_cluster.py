"""``recon batch --scheduler``: a real Dask scheduler and workers, started as processes on
the loopback address in a folder unlike the client's (pipelines.batch.cluster)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from pipelines.cli.main import main

distributed = pytest.importorskip("distributed")


def _volume(seed: int, size: int = 96, slices: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size - 0.5
    head = (yy**2 + xx**2 < 0.16).astype(np.float32)
    return np.stack([head * (1 + 0.2 * rng.random()) + 0.3 * (np.abs(xx) < 0.1 * (k + 1)) * head
                     for k in range(slices)], axis=-1)


class Cluster:
    """A ``dask scheduler`` and ``dask worker`` processes (with nannies) in ``folder``."""

    def __init__(self, folder: Path, workers: int = 1, hide: Path | None = None):
        self.processes: list[subprocess.Popen] = []
        try:
            self._start(folder, workers, hide)
        except BaseException:
            self.close()  # never leave a scheduler or worker behind
            raise

    def _start(self, folder: Path, workers: int, hide: Path | None) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        scheduler_file = folder / "scheduler.json"
        self.processes.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
             "--no-dashboard", "--scheduler-file", str(scheduler_file)],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline, self.address = time.time() + 30, None
        while self.address is None and time.time() < deadline:
            try:
                self.address = json.loads(scheduler_file.read_text())["address"]
            except (OSError, ValueError, KeyError):  # not written yet, or half written
                time.sleep(0.1)
        assert self.address, "the Dask scheduler did not start"
        worker = [sys.executable, "-m", "distributed.cli.dask_worker", self.address, "--nworkers", str(workers),
                  "--nthreads", "1", "--no-dashboard", "--local-directory", str(folder / "space")]
        if hide is not None:  # the worker's own mount namespace, an empty tmpfs over `hide`: as on another machine
            worker = ["unshare", "-m", "sh", "-c", f'mount -t tmpfs tmpfs "{hide}" && exec "$0" "$@"', *worker]
        self.processes.append(subprocess.Popen(worker, cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(self.address, timeout=20) as client:
            client.wait_for_workers(workers, timeout=60)

    def busy_worker_pid(self) -> int | None:
        """The process id of a worker running a task now (None when none is)."""
        with distributed.Client(self.address, timeout=20) as client:
            pids = client.run(os.getpid)
            busy = [address for address, tasks in client.processing().items() if tasks]
        return pids[busy[0]] if busy else None

    def close(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def cluster_factory(tmp_path):
    started = []

    def start(**options) -> Cluster:
        started.append(Cluster(tmp_path / f"worker-folder-{len(started)}", **options))
        return started[-1]

    yield start
    for cluster in started:
        cluster.close()


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """One scheduler with two one-thread workers, shared by the tests that only submit."""
    cluster = Cluster(tmp_path_factory.mktemp("shared-cluster"), workers=2)
    yield cluster
    cluster.close()


def _inputs(folder: Path, count: int, size: int = 96, slices: int = 2) -> None:
    (folder / "in").mkdir(parents=True)
    for index in range(count):
        nib.save(nib.Nifti1Image(_volume(index, size, slices), np.eye(4)), folder / "in" / f"p{index}.nii.gz")


def test_relative_paths_work_on_a_cluster_whose_workers_run_elsewhere(tmp_path, two_workers, monkeypatch, capsys):
    cluster = two_workers
    client_folder = tmp_path / "client"
    _inputs(client_folder, 3)
    monkeypatch.chdir(client_folder)
    assert main(["batch", "in", "--out", "out", "--methods", "zero-filled", "--scheduler", cluster.address]) == 0
    manifest = json.loads((client_folder / "out" / "manifest.json").read_text())
    assert sorted(Path(e["input"]).name for e in manifest["units"].values()) == ["p0.nii.gz", "p1.nii.gz", "p2.nii.gz"]
    assert all(e["status"] == "done" and Path(e["input"]).is_absolute() for e in manifest["units"].values())
    for index in range(3):
        assert (client_folder / "out" / f"p{index}_zero-filled.nii.gz").is_file()
    printed = capsys.readouterr()
    assert "3 done, 0 already done" in printed.out


def _can_hide_folders() -> bool:
    """Whether this machine lets a process mount a tmpfs in its own mount namespace."""
    try:
        return subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True,
                              timeout=10).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.skipif(not _can_hide_folders(), reason="needs unshare -m and mount (root) to hide a folder from a worker")
def test_a_worker_that_cannot_see_the_input_stops_the_batch_at_once(tmp_path, cluster_factory, monkeypatch, capsys):
    client_folder = tmp_path / "private"
    _inputs(client_folder, 1)
    cluster = cluster_factory(hide=client_folder)  # the worker sees an empty folder there
    monkeypatch.chdir(client_folder)
    started = time.perf_counter()
    code = main(["batch", "in", "--out", "out", "--methods", "zero-filled", "--scheduler", cluster.address])
    elapsed = time.perf_counter() - started
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and elapsed < 10
    assert len(error) == 1 and "cannot see" in error[0] and str(client_folder / "in") in error[0]
    assert "filesystem every worker shares" in error[0]
    assert not (client_folder / "out" / "p0_zero-filled.nii.gz").exists()


def test_unreachable_scheduler_is_one_clear_line(tmp_path, monkeypatch, capsys):
    _inputs(tmp_path, 1)
    monkeypatch.chdir(tmp_path)
    started = time.perf_counter()
    assert main(["batch", "in", "--out", "out", "--methods", "zero-filled", "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert time.perf_counter() - started < 15
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err


def test_a_worker_killed_mid_batch_loses_nothing(tmp_path, cluster_factory, monkeypatch, capsys):
    """Two workers; one is killed (SIGKILL) while the batch runs. Its nanny restarts it,
    the scheduler reruns its unit, and every unit ends done (or, failing that, recorded
    failed and finished by --resume), with no half-written file."""
    cluster = cluster_factory(workers=2)
    client_folder = tmp_path / "client"
    _inputs(client_folder, 4, size=96, slices=3)
    monkeypatch.chdir(client_folder)
    arguments = ["batch", "in", "--out", "out", "--methods", "cs-tv", "--estimate-folds", "0", "--scheduler", cluster.address]
    codes = []
    runner = threading.Thread(target=lambda: codes.append(main(arguments)))
    runner.start()
    manifest, victim, deadline = client_folder / "out" / "manifest.json", None, time.time() + 120
    while victim is None and time.time() < deadline:  # once a unit is done, kill a worker that is running another
        if manifest.is_file() and json.loads(manifest.read_text())["units"]:
            victim = cluster.busy_worker_pid()
        time.sleep(0.2)
    assert victim is not None, "no worker was busy after the first unit finished"
    os.kill(victim, signal.SIGKILL)
    runner.join(timeout=300)
    assert codes and codes[0] in (0, 3)
    if codes[0] == 3:
        assert main(arguments + ["--resume"]) == 0
    manifest = json.loads((client_folder / "out" / "manifest.json").read_text())
    assert len(manifest["units"]) == 4 and all(e["status"] == "done" for e in manifest["units"].values())
    outputs = sorted(p.name for p in (client_folder / "out").glob("*.nii.gz"))
    assert outputs == [f"p{i}_cs-tv.nii.gz" for i in range(4)]
    assert not [p for p in (client_folder / "out").rglob("*") if ".tmp" in p.name]
    for index in range(4):
        assert nib.load(client_folder / "out" / f"p{index}_cs-tv.nii.gz").get_fdata().shape == (96, 96, 3)


def test_a_3d_unit_sends_its_planes_to_the_cluster(tmp_path, two_workers, monkeypatch):
    cluster = two_workers
    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in (20, 24, 20)], indexing="ij")
    head = (sum((axis / 0.8) ** 2 for axis in grid) < 1).astype(np.float32)
    (tmp_path / "in").mkdir()
    nib.save(nib.Nifti1Image(head, np.eye(4)), tmp_path / "in" / "head.nii.gz")
    monkeypatch.chdir(tmp_path)
    options = ["--acquisition", "3d", "--mask", "25pct", "--mask-type", "poisson", "--methods", "cg-sense",
               "--estimate-folds", "0"]
    assert main(["batch", "in", "--out", "here", *options]) == 0
    assert main(["batch", "in", "--out", "there", *options, "--scheduler", cluster.address]) == 0
    notes = json.loads((tmp_path / "there" / "head.metrics.json").read_text())["notes"]
    assert any("3-D planes on the Dask cluster" in note for note in notes), notes
    here, there = (np.asarray(nib.load(tmp_path / f / "head_cg-sense.nii.gz").dataobj) for f in ("here", "there"))
    assert np.allclose(here, there, atol=1e-3 * here.max())  # the same planes, wherever they ran
