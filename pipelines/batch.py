"""Batch reconstruction of files and folders (``recon batch``).

Each input unit (a file, or a folder holding a DICOM series) is read, its k-space is
simulated (magnitude images) or taken as measured (fastMRI, ISMRMRD, ``.cfl``), every
method reconstructs every slice, and the outputs are written next to per-file
metrics (when a reference exists). A unit that fails is logged with its reason and
skipped; the others go on.

Nothing finished is lost: every output is written to a temporary name and renamed, and
``manifest.json`` (keyed by the input's content hash and the run's config) records
each finished unit as soon as it is done, so ``--resume`` skips it after an
interruption.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

import masks
import recon
from physics.acquisition import simulate_kspace
from physics.fft import ifft2c
from pipelines.console import printable
from pipelines.evaluation import trust_check
from pipelines.formats import FILE_PROBLEMS, InputError, Study, discover, read_input
from pipelines.formats.cfl import write_bart
from pipelines.formats.dicom import nifti_geometry, write_dicom_series
from pipelines.formats.fastmri import center_crop, write_fastmri
from pipelines.formats.nifti import write_nifti
from pipelines.images import save_png, to_uint8
from pipelines.limits import MemoryBudget
from pipelines.lock import FolderLock
from pipelines.output import atomic_file, remove_temporaries, staged_dir, write_json
from pipelines.progress import DEFAULT_INTERVAL, Progress
from recon import metrics
from recon.api import coil_maps_for

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
FASTMRI_ATTRS = ("acquisition", "patient_id", "max", "norm", "norm_rss")
"""Input attributes kept in a fastMRI-layout output (``evaluate.py`` and the
leaderboard read ``acquisition``; ``patient_id`` identifies the volume)."""


class BatchStopped(Exception):
    """The batch stopped early: interrupted by a signal, or a write failed for lack of
    space. The manifest records what finished; ``--resume`` continues."""

    def __init__(self, message: str, exit_code: int, result: BatchResult):
        super().__init__(message)
        self.exit_code = exit_code
        self.result = result


class _Signalled(BaseException):
    """Raised in the main process by the SIGTERM / SIGINT handler."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum

FORMATS = ("same", "nifti", "dicom", "h5", "cfl", "npy")
SAME = {"dicom": "dicom", "nifti": "nifti", "npy": "npy", "fastmri": "h5", "ismrmrd": "h5", "cfl": "cfl"}
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BatchConfig:
    """Configuration of :func:`run_batch` (see ``recon batch --help``)."""

    inputs: tuple[str, ...]
    out: str
    mask: str = "10pct"
    mask_type: str = "cartesian"
    methods: tuple[str, ...] = ("cs-tv",)
    format: str = "same"
    workers: int = 1
    part: tuple[int, int] = (1, 1)
    resume: bool = False
    force: bool = False
    seed: int = 0
    scheduler: str | None = None
    max_memory: int | None = None

    def __post_init__(self) -> None:
        masks.parse_preset(self.mask)
        if self.mask_type not in masks.KINDS:
            raise ValueError(f"unknown mask type {self.mask_type!r}; valid types: {', '.join(masks.KINDS)}")
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; valid formats: {', '.join(FORMATS)}")
        if not self.methods:
            raise ValueError("no methods given")
        for name in self.methods:
            recon.registry.method_class(name)
        index, count = self.part
        if not 1 <= index <= count:
            raise ValueError(f"--part must be i/N with 1 <= i <= N, got {index}/{count}")
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")
        if self.max_memory is not None and self.max_memory < 1:
            raise ValueError(f"--max-memory must be positive, got {self.max_memory}")

    def budget(self) -> MemoryBudget:
        return MemoryBudget.default() if self.max_memory is None else MemoryBudget(self.max_memory)

    def key_fields(self) -> dict[str, Any]:
        """What makes an output: a change in any of these redoes a unit on ``--resume``."""
        return {"mask": self.mask, "mask_type": self.mask_type, "methods": list(self.methods),
                "format": self.format, "seed": self.seed, "version": recon.__version__}


def content_hash(unit: Path) -> str:
    """SHA-256 of a file's bytes, or of a folder's file names and bytes."""
    digest = hashlib.sha256()
    files = [unit] if unit.is_file() else sorted(p for p in unit.rglob("*") if p.is_file())
    for path in files:
        digest.update(str(path.relative_to(unit) if unit.is_dir() else path.name).encode())
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def unit_key(unit: Path, config: BatchConfig) -> str:
    fields = json.dumps(config.key_fields(), sort_keys=True)
    return hashlib.sha256(f"{content_hash(unit)}|{fields}".encode()).hexdigest()[:32]


def _acquisition(study: Study, config: BatchConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """k-space ``(N, C, H, W)``, mask ``(H, W)``, reference ``(N, H, W)`` or None, and
    ESPIRiT coil maps ``(N, C, H, W)`` for multi-coil data."""
    shape = (study.images if study.simulated else study.kspace).shape[-2:]
    if study.mask is not None:
        mask = np.asarray(study.mask, bool)
    else:  # one mask per volume, seeded by the input's name: every method sees the same
        seed = masks.seed_from_name(study.name, config.seed)
        mask = masks.make_mask(masks.parse_preset(config.mask), tuple(shape), config.mask_type, seed=seed).array
    if study.simulated:
        generator = torch.Generator().manual_seed(masks.seed_from_name(study.name, config.seed))
        kspace, truth = simulate_kspace(torch.from_numpy(study.images), torch.from_numpy(mask), generator=generator)
        return kspace.numpy(), mask, truth.abs().numpy(), None
    kspace = study.kspace * mask
    reference = study.reference
    if reference is None and study.mask is None:  # fully sampled: its RSS is the reference
        reference = np.sqrt((np.abs(ifft2c(study.kspace)) ** 2).sum(axis=1)).astype(np.float32)
    coil_maps = None
    if kspace.shape[1] > 1:
        coil_maps = coil_maps_for(torch.from_numpy(kspace), mask).numpy()
    return kspace, mask, reference, coil_maps


def output_kind(study: Study, config: BatchConfig) -> str:
    return SAME[study.format] if config.format == "same" else config.format


def _write(study: Study, method: str, images: np.ndarray, folder: Path, config: BatchConfig, description: str,
           method_index: int = 0) -> Path:
    """Write one method's reconstruction of ``study``; returns the path written.

    ``images`` ``(N, H, W)`` is complex (``cfl`` keeps it complex, so BART can go on
    working with it); every other format gets its magnitude. ``h5`` follows fastMRI's
    layout for ``evaluate.py``: ``OUT/METHOD/INPUT_NAME.h5`` with a ``reconstruction``
    dataset and the input's ``acquisition`` and ``patient_id`` attributes; ISMRMRD
    inputs are written in ISMRMRD's image orientation ``(slices, y, x)``, as
    ``ismrmrd_recon_cartesian_2d`` writes them.
    """
    kind = output_kind(study, config)
    base = folder / f"{study.name}_{method}"
    magnitude = np.abs(images).astype(np.float32)
    if kind == "dicom":
        if study.format != "dicom":
            raise InputError(f"{study.source}: DICOM output needs a DICOM input (its patient, study and geometry); use --format nifti or same")
        with staged_dir(base, force=True) as staging:
            write_dicom_series(staging, magnitude, study.meta, description, series_offset=method_index)
        return base
    if kind == "nifti":
        path = base.with_name(base.name + ".nii.gz")
        write_nifti(path, magnitude, _nifti_meta(study, magnitude))
        return path
    if kind == "h5":
        name = study.source.name if study.format in ("fastmri", "ismrmrd") and study.source.is_file() else f"{study.name}.h5"
        path = folder / method / name
        path.parent.mkdir(exist_ok=True)
        kept = {key: value for key, value in study.meta.get("attrs", {}).items() if key in FASTMRI_ATTRS}
        if study.format == "ismrmrd":
            magnitude = np.ascontiguousarray(np.swapaxes(magnitude, -1, -2))
        write_fastmri(path, magnitude, {**kept, "method": method, "description": description, "source": str(study.source)})
        return path
    if kind == "cfl":
        write_bart(base, np.asarray(images, np.complex64))
        return base.with_name(base.name + ".cfl")
    path = base.with_name(base.name + ".npy")
    with atomic_file(path) as tmp:
        np.save(tmp, magnitude)
    return path


def _nifti_meta(study: Study, images: np.ndarray) -> dict[str, Any]:
    """The NIfTI geometry of the output: the input's for NIfTI, the scanner geometry of a
    DICOM series (as dcm2niix converts it), else an identity affine with a note."""
    import nibabel as nib

    if study.format == "nifti":
        return study.meta
    height, width = images.shape[-2:]
    if study.format == "dicom":
        geometry = nifti_geometry(study.meta, len(images))
        if geometry is not None:
            affine, trailing = geometry
            return {"affine": affine, "header": nib.Nifti1Header(), "shape": (height, width, *trailing), "xform_code": 1}
    return {"affine": np.eye(4), "header": nib.Nifti1Header(), "shape": (height, width, len(images))}


def process_unit(unit: str, config_dict: dict[str, Any], threads: int | None = None,
                 on_slice: Callable[[], None] | None = None) -> dict[str, Any]:
    """Reconstruct one unit; returns its manifest entry (never raises for bad input)."""
    config = BatchConfig(**{**config_dict, "inputs": tuple(config_dict["inputs"]), "part": tuple(config_dict["part"]),
                            "methods": tuple(config_dict["methods"])})
    if threads:
        torch.set_num_threads(threads)
    path = Path(unit)
    entry: dict[str, Any] = {"input": str(path), "outputs": [], "notes": [], "slices": 0}
    started = time.perf_counter()
    out = Path(config.out)
    try:
        studies, notes = read_input(path, config.budget())
        entry["notes"] += notes
        for study in studies:
            kspace, mask, reference, coil_maps = _acquisition(study, config)
            ratio = float(mask.mean())
            crop = study.meta.get("crop")
            study_metrics: dict[str, Any] = {"source": str(study.source), "format": study.format,
                                             "kspace": "simulated" if study.simulated else "measured",
                                             "mask": config.mask if study.mask is None else "from file",
                                             "mask_type": config.mask_type if study.mask is None else "from file",
                                             "ratio": ratio, "methods": {}, "notes": list(entry["notes"])}
            if reference is not None and crop:
                reference = center_crop(reference, crop)
            complex_images: dict[str, np.ndarray] = {}
            for method_index, method in enumerate(config.methods):
                images, seconds = [], 0.0
                for index in range(len(kspace)):
                    tick = time.perf_counter()
                    maps = None if coil_maps is None else coil_maps[index]
                    data = kspace[index] if kspace.shape[1] > 1 else kspace[index, 0]
                    images.append(recon.reconstruct(data, mask, method, coil_maps=maps))
                    seconds += time.perf_counter() - tick
                    if on_slice:
                        on_slice()
                complex_images[method] = np.stack(images)
                cropped = center_crop(complex_images[method], crop) if crop else complex_images[method]
                magnitude = np.abs(cropped).astype(np.float32)
                description = f"recon {method} {study_metrics['mask']} {study_metrics['mask_type']} ratio {ratio:.3f}"
                written = _write(study, method, cropped, out, config, description, method_index)
                entry["outputs"].append(str(written.relative_to(out)))
                entry["outputs"].append(_preview(out, f"{study.name}_{method}", magnitude, reference))
                record: dict[str, Any] = {"seconds_per_slice": seconds / len(kspace)}
                if reference is not None and reference.shape == magnitude.shape:
                    data_range = float(reference.max())
                    scores = [metrics.evaluate(torch.from_numpy(a), torch.from_numpy(b), data_range=data_range)
                              for a, b in zip(magnitude, reference)]
                    for key in ("psnr", "ssim", "nmse"):
                        record[key] = float(np.mean([s[key] for s in scores]))
                        record[f"{key}_slices"] = [float(s[key]) for s in scores]
                study_metrics["methods"][method] = record
            if reference is not None:
                entry["outputs"].append(_preview(out, f"{study.name}_reference", reference, reference))
            _trust(study_metrics["methods"], complex_images, kspace, mask, coil_maps)
            entry["slices"] += len(kspace) * len(config.methods)
            metrics_path = out / f"{study.name}.metrics.json"
            write_json(metrics_path, study_metrics)
            entry["outputs"].append(metrics_path.name)
        entry["status"] = "done"
    except OSError as error:
        entry["status"] = "failed"
        entry["error"] = f"{path}: {error.strerror or error}" if error.filename is None else f"{error.filename}: {error.strerror}"
        if error.errno in DISK_FULL:
            entry["disk_full"] = True
            entry["error"] = f"{path}: no space left on device while writing {error.filename or 'its outputs'}"
            _remove_outputs(out, entry)
    except FILE_PROBLEMS as error:
        entry["status"] = "failed"
        entry["error"] = str(error)
    except ValueError as error:
        entry["status"] = "failed"
        entry["error"] = f"{path}: {type(error).__name__}: {error}"
    except Exception as error:  # noqa: BLE001 - a batch must go on; the reason is logged
        entry["status"] = "failed"
        entry["error"] = f"{path}: unexpected {type(error).__name__}: {error}"
        entry["traceback"] = traceback.format_exc()
    entry["seconds"] = time.perf_counter() - started
    return entry


def _remove_outputs(out: Path, entry: dict[str, Any]) -> None:
    """Remove what a failed unit wrote, so nothing the manifest does not record is left."""
    import shutil

    for relative in entry["outputs"]:
        target = out / relative
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        elif target.suffix == ".cfl":
            target.unlink(missing_ok=True)
            target.with_suffix(".hdr").unlink(missing_ok=True)
        else:
            target.unlink(missing_ok=True)
    entry["outputs"] = []


def _preview(out: Path, name: str, magnitude: np.ndarray, reference: np.ndarray | None) -> str:
    """A PNG of the middle slice (for the report), scaled like the reference; returns its
    path relative to ``out``."""
    folder = out / "previews"
    folder.mkdir(exist_ok=True)
    middle = len(magnitude) // 2
    vmax = float((reference if reference is not None and reference.shape == magnitude.shape else magnitude).max())
    path = folder / f"{name}.png"
    with atomic_file(path) as tmp:
        save_png(tmp, to_uint8(magnitude[middle], vmax))
    return str(path.relative_to(out))


def _trust(records: dict[str, dict], images: dict[str, np.ndarray], kspace, mask, coil_maps) -> None:
    """Add the trust check of every learned method to its record, summarised over the
    volume (see :mod:`pipelines.evaluation`)."""
    psnr = {name: record["psnr"] for name, record in records.items() if "psnr" in record}
    outputs = {name: list(torch.from_numpy(stack)) for name, stack in images.items()}
    maps = None if coil_maps is None else torch.from_numpy(coil_maps)
    checks, _, _ = trust_check(outputs, torch.from_numpy(kspace), torch.from_numpy(np.asarray(mask, bool)), maps, psnr)
    for name, slices in checks.items():
        records[name]["dc_residual_max"] = float(max(c["dc_residual"] for c in slices))
        if "hallucination_energy" in slices[0]:
            records[name]["hallucination_reference"] = slices[0]["hallucination_reference"]
            records[name]["hallucination_energy"] = float(np.mean([c["hallucination_energy"] for c in slices]))
            records[name]["hallucination_flagged"] = int(sum(c["hallucination_flagged"] for c in slices))


def _check_writable(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise PermissionError(f"cannot write to output folder {out}: {error.strerror or error}") from error


def load_manifest(out: Path) -> dict[str, Any]:
    path = out / MANIFEST
    if not path.is_file():
        return {"units": {}}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: corrupt manifest ({error}); remove it or use --force") from error


@dataclass
class BatchResult:
    done: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    seconds: float
    slices: int


def run_batch(config: BatchConfig, progress: bool | str | None = None, log: Callable[[str], None] = print,
              progress_interval: float = DEFAULT_INTERVAL) -> BatchResult:
    """Reconstruct every unit of ``config.inputs`` into ``config.out``; see the module doc.

    One batch writes to a folder at a time (a lock; a second run is refused). SIGTERM
    and SIGINT stop the workers, keep the manifest, remove temporary files and raise
    :class:`BatchStopped` (exit 143 / 130); so does a write that fails for lack of
    space (exit 1). Progress goes to stderr: a bar on a terminal, a line every
    ``progress_interval`` seconds otherwise.
    """
    out = Path(config.out)
    if out.is_dir() and any(p.name != FolderLock.NAME for p in out.iterdir()) and not (config.resume or config.force):
        raise FileExistsError(f"output folder {out} is not empty; use --resume to continue it or --force to add to it")
    units = discover(list(config.inputs))
    index, count = config.part
    units = [unit for position, unit in enumerate(units) if position % count == index - 1]
    _check_writable(out)
    with FolderLock(out, "recon batch"):
        remove_temporaries(out)  # left by an interrupted run
        return _run_locked(config, out, units, progress, log, progress_interval)


def _run_locked(config: BatchConfig, out: Path, units: list[Path], progress: bool | str | None,
                log: Callable[[str], None], progress_interval: float) -> BatchResult:
    manifest = load_manifest(out) if config.resume else {"units": {}}
    manifest["config"] = {key: value for key, value in asdict(config).items() if key not in ("resume", "force")}
    todo, skipped = [], []
    for unit in units:
        key = unit_key(unit, config)
        previous = manifest["units"].get(key)
        if config.resume and previous and previous.get("status") == "done" and all((out / o).exists() for o in previous["outputs"]):
            skipped.append(previous)
        else:
            todo.append((key, unit))
    started = time.perf_counter()
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    disk_full: list[dict[str, Any]] = []

    def result() -> BatchResult:
        return BatchResult(done, skipped, failed, time.perf_counter() - started, sum(entry["slices"] for entry in done))

    def record(key: str, entry: dict[str, Any]) -> None:
        if entry.get("disk_full"):
            disk_full.append(entry)
            failed.append(entry)
            log(f"failed: {printable(entry['error'])}")
            return  # not in the manifest: --resume does it again
        manifest["units"][key] = entry
        write_json(out / MANIFEST, manifest)  # atomic: a crash keeps the last good manifest
        (done if entry["status"] == "done" else failed).append(entry)
        if entry["status"] != "done":
            log(f"failed: {printable(entry['error'])}")
        for note in entry.get("notes", []):
            log(f"note: {printable(note)}")

    payload = asdict(config)
    bar = Progress(len(todo), "recon batch", "files", mode=progress, interval=progress_interval)
    pool: ProcessPoolExecutor | None = None
    previous = _install_signal_handlers()
    try:
        if config.scheduler:
            from distributed import Client  # optional extra: pip install 'recon-mri[distributed]'

            with Client(config.scheduler) as client:
                futures = {client.submit(process_unit, str(unit), payload, 1, pure=False): key for key, unit in todo}
                for future in _dask_completed(futures):
                    record(futures[future], future.result())
                    bar.update(1, f"{sum(e['slices'] for e in done)} slices")
                    if disk_full:
                        client.cancel(list(futures))
                        break
        elif config.workers > 1:
            threads = max(1, (os.cpu_count() or 1) // config.workers)
            pool = ProcessPoolExecutor(max_workers=config.workers, initializer=_worker_init)
            futures = {pool.submit(process_unit, str(unit), payload, threads): key for key, unit in todo}
            for future in as_completed(futures):
                record(futures[future], future.result())
                bar.update(1, f"{sum(e['slices'] for e in done)} slices")
                if disk_full:
                    break
            _stop_pool(pool)
            pool = None
        else:
            for key, unit in todo:
                record(key, process_unit(str(unit), payload, None))
                bar.update(1, f"{sum(e['slices'] for e in done)} slices")
                if disk_full:
                    break
    except (_Signalled, KeyboardInterrupt) as error:
        signum = error.signum if isinstance(error, _Signalled) else signal.SIGINT
        if pool is not None:
            _stop_pool(pool)
        remove_temporaries(out)
        name = signal.Signals(signum).name
        raise BatchStopped(f"stopped by {name}: {len(done)} file(s) finished and recorded in {out / MANIFEST}; "
                           "continue with --resume", 128 + signum, result()) from None
    except OSError as error:
        if pool is not None:
            _stop_pool(pool)
        remove_temporaries(out)
        if error.errno in DISK_FULL:
            raise BatchStopped(f"no space left on device while writing {error.filename or out}; "
                               f"{len(done)} file(s) finished and recorded; free space and continue with --resume",
                               1, result()) from None
        raise
    finally:
        _restore_signal_handlers(previous)
        bar.close()
    if disk_full:
        remove_temporaries(out)
        raise BatchStopped(f"{printable(disk_full[0]['error'])}; stopped: {len(done)} file(s) finished and "
                           f"recorded in {out / MANIFEST}; free space and continue with --resume", 1, result())
    if manifest["units"]:
        from pipelines.batch_report import write_batch_report

        write_batch_report(out)
    return result()


def _worker_init() -> None:
    """Workers leave SIGINT to the main process, which stops them (a Ctrl-C reaches the
    whole process group); SIGTERM keeps its default and ends a worker at once."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _stop_pool(pool: ProcessPoolExecutor) -> None:
    """Cancel what has not started and end the workers now (they may be mid-unit)."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
            process.join(timeout=5)


def _raise_signal(signum: int, frame: Any) -> None:
    raise _Signalled(signum)


def _install_signal_handlers() -> dict[int, Any]:
    """SIGTERM (and SIGINT) raise :class:`_Signalled` in the main thread; elsewhere (a
    thread) nothing is installed."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    previous = {}
    for signum in (signal.SIGTERM, signal.SIGINT):
        previous[signum] = signal.signal(signum, _raise_signal)
    return previous


def _restore_signal_handlers(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, handler)


def _dask_completed(futures):
    from distributed import as_completed as dask_as_completed

    return dask_as_completed(list(futures))
