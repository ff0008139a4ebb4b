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
from pipelines.config import check_common, resolve_lowres
from pipelines.console import printable
from pipelines.evaluation import (
    UNGUARDED_NOTE,
    apply_guard,
    estimate_errors,
    guard_applies,
    guard_verdicts,
    no_estimate_note,
    trust_check,
)
from pipelines.formats import FILE_PROBLEMS, Study, discover, read_input
from pipelines.formats.fastmri import center_crop
from pipelines.formats.table import FORMAT_CHOICES as FORMATS
from pipelines.images import save_png, to_uint8
from pipelines.interruption import (
    Signalled,
    install_signal_handlers,
    restore_signal_handlers,
    stop_pool,
    worker_init,
)
from pipelines.limits import MemoryBudget
from pipelines.lock import FolderLock
from pipelines.manifest import MANIFEST, check_writable, load_manifest, unit_key
from pipelines.output import atomic_file, remove_temporaries, write_json
from pipelines.progress import DEFAULT_INTERVAL, Progress
from pipelines.writers import write_output
from recon import holdout, metrics
from recon.api import coil_maps_for

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class BatchStopped(Exception):
    """The batch stopped early: interrupted by a signal, or a write failed for lack of
    space. The manifest records what finished; ``--resume`` continues."""

    def __init__(self, message: str, exit_code: int, result: BatchResult):
        super().__init__(message)
        self.exit_code = exit_code
        self.result = result


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
    estimate_folds: int = 4
    guard: bool = False
    slice_factor: int | None = None

    def __post_init__(self) -> None:
        resolve_lowres(self)
        through_plane = self.slice_factor is not None  # SR of thick-slice volumes, not k-space: recon sr's methods
        check_common(self.mask, self.mask_type, None if through_plane else tuple(self.methods), self.seed, self.max_memory,
                     self.estimate_folds, self.guard)
        if through_plane:
            check_through_plane(self)
        if self.format not in FORMATS:
            raise ValueError(f"unknown format {self.format!r}; valid formats: {', '.join(FORMATS)}")
        index, count = self.part
        if not 1 <= index <= count:
            raise ValueError(f"--part must be i/N with 1 <= i <= N, got {index}/{count}")
        if self.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {self.workers}")

    def budget(self) -> MemoryBudget:
        return MemoryBudget.of(self.max_memory)

    def key_fields(self) -> dict[str, Any]:
        """What makes an output: a change in any of these redoes a unit on ``--resume``."""
        return {"mask": self.mask, "mask_type": self.mask_type, "methods": list(self.methods),
                "format": self.format, "seed": self.seed, "version": recon.__version__,
                "estimate_folds": self.estimate_folds, "guard": self.guard, "slice_factor": self.slice_factor}


def check_through_plane(config: BatchConfig) -> None:
    """``--slice-factor``: its methods are recon sr's, its formats the volume formats
    (the checks it shares with k-space batches are :func:`check_common`'s)."""
    from recon.slices import FACTORS, METHODS

    if config.slice_factor not in FACTORS:
        raise ValueError(f"--slice-factor must be one of {', '.join(map(str, FACTORS))}, got {config.slice_factor}")
    unknown = [name for name in config.methods if name not in METHODS]
    if unknown or not config.methods:
        raise ValueError(f"--slice-factor restores thin slices with {', '.join(METHODS)}; not {', '.join(unknown) or 'no method'}")
    if config.format not in ("same", "nifti", "dicom"):
        raise ValueError(f"--slice-factor writes volumes: --format same, nifti or dicom, got {config.format!r}")
    if config.guard:
        raise ValueError("--guard compares k-space reconstructions; it does not apply to --slice-factor")


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


def process_unit(unit: str, config_dict: dict[str, Any], threads: int | None = None) -> dict[str, Any]:
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
        if config.slice_factor is not None:
            _through_plane_unit(path, config, entry, out)
            entry["seconds"] = time.perf_counter() - started
            return entry
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
            seconds: dict[str, float] = {}
            for method in config.methods:
                images, seconds[method] = [], 0.0
                for index in range(len(kspace)):
                    tick = time.perf_counter()
                    maps = None if coil_maps is None else coil_maps[index]
                    data = kspace[index] if kspace.shape[1] > 1 else kspace[index, 0]
                    images.append(recon.reconstruct(data, mask, method, coil_maps=maps))
                    seconds[method] += time.perf_counter() - tick
                complex_images[method] = np.stack(images)
            guarded: dict[str, np.ndarray] = {}
            if config.estimate_folds:
                guarded = _estimate(study_metrics, complex_images, kspace, mask, coil_maps, reference, study.name, config)
                entry["notes"] += [note for note in study_metrics["notes"] if note.startswith("guard")]
            for method_index, method in enumerate(config.methods):
                own = center_crop(complex_images[method], crop) if crop else complex_images[method]
                output = own if method not in guarded else (center_crop(guarded[method], crop) if crop else guarded[method])
                magnitude = np.abs(own).astype(np.float32)  # the method's own result is what the metrics score
                description = f"recon {method} {study_metrics['mask']} {study_metrics['mask_type']} ratio {ratio:.3f}"
                if method in guarded:
                    description += " (guard: flagged slices from the best CS output)"
                written = write_output(study, method, output, out, config.format, description, method_index)
                entry["outputs"].append(str(written.relative_to(out)))
                entry["outputs"].append(_preview(out, f"{study.name}_{method}", np.abs(output).astype(np.float32), reference))
                record = study_metrics["methods"].setdefault(method, {})
                record["seconds_per_slice"] = seconds[method] / len(kspace)
                if reference is not None and reference.shape == magnitude.shape:
                    data_range = float(reference.max())
                    scores = [metrics.evaluate(torch.from_numpy(a), torch.from_numpy(b), data_range=data_range)
                              for a, b in zip(magnitude, reference)]
                    for key in ("psnr", "ssim", "nmse"):
                        record[key] = float(np.mean([s[key] for s in scores]))
                        record[f"{key}_slices"] = [float(s[key]) for s in scores]
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


def _through_plane_unit(path: Path, config: BatchConfig, entry: dict[str, Any], out: Path) -> None:
    """``--slice-factor F``: restore the thin slices of one thick-slice volume with each
    method, as ``recon sr`` does, and write them with the thin geometry. Raises for bad
    input (:func:`process_unit` records the reason)."""
    from pipelines.through_plane import read_thick, write_thin
    from recon.slices import resolved_weights, restore

    factor = config.slice_factor
    study, thick, notes = read_thick(path, config.budget(), factor)
    entry["notes"] += notes
    record: dict[str, Any] = {"source": str(study.source), "format": study.format, "kspace": "none (through-plane)",
                              "mask": f"slice factor {factor}", "mask_type": "", "ratio": 1 / factor,
                              "slice_factor": factor, "slices_in": len(thick), "slices_out": len(thick) * factor,
                              "methods": {}, "notes": notes}
    for method_index, method in enumerate(config.methods):
        tick = time.perf_counter()
        thin = restore(thick, factor, method)
        seconds = time.perf_counter() - tick
        written = write_thin(study, thin, method, factor, out, config.format, method_index)
        entry["outputs"].append(str(written.relative_to(out)))
        # the preview is a reformatted plane across the slices, where through-plane SR shows
        entry["outputs"].append(_preview(out, f"{study.name}_{method}", np.moveaxis(thin, 1, 0), None))
        record["methods"][method] = {"seconds": seconds, "seconds_per_slice": seconds / len(thin),
                                     "weights": resolved_weights(factor, method)}
    entry["slices"] += len(thick) * factor * len(config.methods)
    metrics_path = out / f"{study.name}.metrics.json"
    write_json(metrics_path, record)
    entry["outputs"].append(metrics_path.name)
    entry["status"] = "done"


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


def _estimate(study_metrics: dict[str, Any], images: dict[str, np.ndarray], kspace: np.ndarray, mask: np.ndarray,
              coil_maps: np.ndarray | None, reference: np.ndarray | None, name: str, config: BatchConfig
              ) -> dict[str, np.ndarray]:
    """The hold-out error estimate of every method and the guard's verdicts, added to
    the study's records. With ``--guard``, returns the volume to write for each learned
    method with flagged slices: its own, with those slices from the best CS output.

    PSNR estimates use the reference's maximum when there is a reference, else the
    largest magnitude of any method's volume (one range for every method)."""
    started = time.perf_counter()
    if reference is not None:
        data_range = float(reference.max())
    else:
        data_range = float(max(np.abs(stack).max() for stack in images.values()))
    outputs = {method: list(torch.from_numpy(stack)) for method, stack in images.items()}
    maps = None if coil_maps is None else torch.from_numpy(coil_maps)
    estimates = estimate_errors(outputs, torch.from_numpy(kspace), torch.from_numpy(np.asarray(mask, bool)), maps,
                                config.estimate_folds, name, data_range)
    if not estimates:
        study_metrics["notes"].append(no_estimate_note(mask))
        return {}
    verdicts = guard_verdicts(estimates, mask)
    if not guard_applies(mask):
        study_metrics["notes"].append(UNGUARDED_NOTE)
    records = study_metrics["methods"]
    for method, per_slice in estimates.items():
        record = records.setdefault(method, {})
        record["estimated_psnr"] = float(np.mean([e.psnr for e in per_slice]))
        record["estimated_nmse"] = float(np.mean([e.nmse for e in per_slice]))
        record["estimated_psnr_spread"] = float(np.mean([e.psnr_spread for e in per_slice]))
        record["estimated_psnr_slices"] = [e.psnr for e in per_slice]
        record["estimated_psnr_spread_slices"] = [e.psnr_spread for e in per_slice]
    for method, per_slice in verdicts.items():
        record = records[method]
        record["guard_reference"] = per_slice[0].reference
        record["guard_reference_slices"] = [v.reference for v in per_slice]
        record["guard_flagged_slices"] = [v.flagged for v in per_slice]
        record["guard_flagged"] = int(sum(v.flagged for v in per_slice))
        if record["guard_flagged"] and not config.guard:
            study_metrics["notes"].append(f"guard: {method} is estimably worse than {per_slice[0].reference} on "
                                          f"{record['guard_flagged']}/{len(per_slice)} slices of {name} (--guard writes the "
                                          "CS output there)")
    guarded: dict[str, np.ndarray] = {}
    if config.guard:
        for method, replaced in apply_guard(outputs, verdicts).items():
            records[method]["guard_output_slices"] = [cs or method for cs in replaced]
            if any(replaced):
                guarded[method] = np.stack([t.numpy() for t in outputs[method]])
                study_metrics["notes"].append(f"guard: {sum(1 for cs in replaced if cs)} {method} slice(s) written from the "
                                              f"best CS output ({', '.join(sorted({cs for cs in replaced if cs}))})")
    study_metrics["estimate"] = {"folds": config.estimate_folds, "seconds": time.perf_counter() - started,
                                 "data_range": data_range, "ranked": sorted(records, key=lambda m: -records[m]["estimated_psnr"]),
                                 "calibration": holdout.CALIBRATION_FILE.name if holdout.CALIBRATION_FILE.is_file() else None}
    return guarded


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
    check_writable(out)
    with FolderLock(out, "recon batch"):
        remove_temporaries(out)  # left by an interrupted run
        return _run_locked(config, out, units, progress, log, progress_interval)


def _run_locked(config: BatchConfig, out: Path, units: list[Path], progress: bool | str | None,
                log: Callable[[str], None], progress_interval: float) -> BatchResult:
    manifest = load_manifest(out) if config.resume else {"units": {}}
    manifest["config"] = {key: value for key, value in asdict(config).items() if key not in ("resume", "force")}
    todo, skipped = [], []
    for unit in units:
        key = unit_key(unit, config.key_fields())
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
    previous = install_signal_handlers()
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
            pool = ProcessPoolExecutor(max_workers=config.workers, initializer=worker_init)
            futures = {pool.submit(process_unit, str(unit), payload, threads): key for key, unit in todo}
            for future in as_completed(futures):
                record(futures[future], future.result())
                bar.update(1, f"{sum(e['slices'] for e in done)} slices")
                if disk_full:
                    break
            stop_pool(pool)
            pool = None
        else:
            for key, unit in todo:
                record(key, process_unit(str(unit), payload, None))
                bar.update(1, f"{sum(e['slices'] for e in done)} slices")
                if disk_full:
                    break
    except (Signalled, KeyboardInterrupt) as error:
        signum = error.signum if isinstance(error, Signalled) else signal.SIGINT
        if pool is not None:
            stop_pool(pool)
        remove_temporaries(out)
        name = signal.Signals(signum).name
        raise BatchStopped(f"stopped by {name}: {len(done)} file(s) finished and recorded in {out / MANIFEST}; "
                           "continue with --resume", 128 + signum, result()) from None
    except OSError as error:
        if pool is not None:
            stop_pool(pool)
        remove_temporaries(out)
        if error.errno in DISK_FULL:
            raise BatchStopped(f"no space left on device while writing {error.filename or out}; "
                               f"{len(done)} file(s) finished and recorded; free space and continue with --resume",
                               1, result()) from None
        raise
    finally:
        restore_signal_handlers(previous)
        bar.close()
    if disk_full:
        remove_temporaries(out)
        raise BatchStopped(f"{printable(disk_full[0]['error'])}; stopped: {len(done)} file(s) finished and "
                           f"recorded in {out / MANIFEST}; free space and continue with --resume", 1, result())
    if manifest["units"]:
        from pipelines.batch_report import write_batch_report

        write_batch_report(out)
    return result()


def _dask_completed(futures):
    from distributed import as_completed as dask_as_completed

    return dask_as_completed(list(futures))
