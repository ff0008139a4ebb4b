"""One unit of ``recon batch``: read a file or DICOM folder, simulate or take its
k-space, reconstruct every slice with every method, estimate errors and run the trust
check, and write the outputs, previews and per-file metrics. :func:`process_unit`
never raises for bad input: the manifest entry it returns says what failed and why.
"""

from __future__ import annotations

import errno
import time
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import torch

import masks
import recon
from physics.acquisition import simulate_kspace
from physics.fft import ifft2c
from physics.nufft import Trajectory
from pipelines.batch import outputs
from pipelines.batch.judging import estimate, trust
from pipelines.batch.noncartesian import trajectory_acquisition
from pipelines.batch.volume import restack, simulated_acquisition
from pipelines.common.evaluation import (
    adapt_learned,
    build_method,
    centre_warning,
    holding,
    in_parallel,
    slice_note,
)
from pipelines.common.output import write_json
from pipelines.common.planes import on_cluster, plane_maps, reconstruct_planes, weights_notes
from pipelines.common.runtime import keep_freed_memory
from pipelines.common.volume import centre_fraction
from pipelines.config import BatchConfig
from pipelines.formats import Study, read_input
from pipelines.formats.fastmri import center_crop
from pipelines.formats.study import FILE_PROBLEMS, check_simulable
from pipelines.formats.volume3d import as_3d
from pipelines.formats.writers import nifti_meta, write_output
from pipelines.reports.previews import error_scale, orientation
from recon.device import device_note

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
"""Error maps show ``|x - reference|`` on ``[0, 0.2 x the reference's maximum]``."""


def _acquisition(study: Study, config: BatchConfig, notes: list[str]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """k-space ``(N, C, H, W)``, mask ``(H, W)``, reference ``(N, H, W)`` or None, and
    ESPIRiT coil maps ``(N, C, H, W)`` for multi-coil data; what it did is added to
    ``notes`` (coil compression)."""
    acquired = trajectory_acquisition(study, config, notes)
    if acquired is not None:  # radial, spiral, ...: k-space (N, C, *samples) and its Trajectory
        return acquired
    shape = (study.images if study.simulated else study.kspace).shape[-2:]
    if study.simulated and config.acquisition == "3d":
        return simulated_acquisition(study, config, notes)
    if study.mask is not None:
        mask = np.asarray(study.mask, bool)
    else:  # one mask per volume, seeded by the input's name: every method sees the same
        seed, ratio = masks.seed_from_name(study.name, config.seed), masks.parse_preset(config.mask)
        fraction = centre_fraction(None, tuple(shape), config.mask_type, ratio) if study.meta.get("acquisition") == "3d" else None
        mask = masks.make_mask(ratio, tuple(shape), config.mask_type, seed=seed, center_fraction=fraction).array
        if study.meta.get("support") is not None:  # elliptical scanning: the corners were never acquired
            mask = mask & study.meta["support"]
    if study.simulated:
        check_simulable(study.images, study.source)
        generator = torch.Generator().manual_seed(masks.seed_from_name(study.name, config.seed))
        kspace, truth = simulate_kspace(torch.from_numpy(study.images), torch.from_numpy(mask), generator=generator)
        return kspace.numpy(), mask, truth.abs().numpy(), None
    kspace = study.kspace * mask
    reference = study.reference
    if reference is None and study.mask is None:  # fully sampled: its RSS is the reference
        reference = np.sqrt((np.abs(ifft2c(study.kspace)) ** 2).sum(axis=1)).astype(np.float32)
    if config.virtual_coils and kspace.shape[1] > config.virtual_coils:
        kspace = _compress(kspace, mask, config.virtual_coils, notes)
    coil_maps = None
    if kspace.shape[1] > 1:
        coil_maps = plane_maps(torch.from_numpy(kspace), mask).numpy()  # slices or planes on every core
    return kspace, mask, reference, coil_maps


def _compress(kspace: np.ndarray, mask: np.ndarray, virtual: int, notes: list[str]) -> np.ndarray:
    """``--virtual-coils N``: geometric coil compression for a 1-D mask (whole readout
    lines, as BART ``cc -G``), SVD for any other (``cc -S``), after prewhitening and the
    readout oversampling (the reader's) and before the coil maps."""
    from physics.coils import compress_coils
    from physics.raw import geometric_coil_compression

    lines = mask.any(axis=0)
    one_dimensional = bool((mask == lines[None, :]).all())
    data = torch.from_numpy(np.ascontiguousarray(kspace))
    if one_dimensional:
        compressed = geometric_coil_compression(data, virtual, torch.from_numpy(lines))
    else:
        compressed = compress_coils(data, None, virtual)[0]
    kept = float(compressed.abs().pow(2).sum() / data.abs().pow(2).sum().clamp_min(1e-30))
    notes.append(f"coils compressed {kspace.shape[1]} -> {virtual} ({'geometric' if one_dimensional else 'SVD'}, "
                 f"{kept:.1%} of the measured energy kept)")
    return compressed.numpy().astype(np.complex64)


def process_unit(unit: str, config_dict: dict[str, Any], threads: int | None = None) -> dict[str, Any]:
    """Reconstruct one unit; returns its manifest entry (never raises for bad input)."""
    config = BatchConfig(**{**config_dict, "inputs": tuple(config_dict["inputs"]), "part": tuple(config_dict["part"]),
                            "methods": tuple(config_dict["methods"])})
    if threads:
        torch.set_num_threads(threads)
    keep_freed_memory()  # a Dask worker's allocator unmaps every large tensor otherwise (5x slower)
    path = Path(unit)
    entry: dict[str, Any] = {"input": str(path), "outputs": [], "notes": [], "slices": 0}
    started = time.perf_counter()
    out = Path(config.out)
    try:
        if config.slice_factor is not None:
            _through_plane_unit(path, config, entry, out)
        else:
            studies, notes = read_input(path, config.budget())
            entry["notes"] += notes
            if config.acquisition == "3d":
                studies = [as_3d(study) for study in studies]
            for study in studies:
                _process_study(study, config, entry, out)
            entry["status"] = "done"
    except Exception as error:  # noqa: BLE001 - a batch must go on; the reason is recorded
        _record_failure(entry, error, path, out)
    entry["seconds"] = time.perf_counter() - started
    return entry


def _record_failure(entry: dict[str, Any], error: Exception, path: Path, out: Path) -> None:
    """Say in ``entry`` why the unit failed: one line naming the file; a full disk also
    removes what the unit wrote (``--resume`` does it again)."""
    entry["status"] = "failed"
    if isinstance(error, OSError):
        entry["error"] = f"{path}: {error.strerror or error}" if error.filename is None else f"{error.filename}: {error.strerror}"
        if error.errno in DISK_FULL:
            entry["disk_full"] = True
            entry["error"] = f"{path}: no space left on device while writing {error.filename or 'its outputs'}"
            outputs.remove_outputs(out, entry)
    elif isinstance(error, FILE_PROBLEMS):
        entry["error"] = str(error)
    elif isinstance(error, ValueError):
        entry["error"] = f"{path}: {type(error).__name__}: {error}"
    else:
        entry["error"] = f"{path}: unexpected {type(error).__name__}: {error}"
        entry["traceback"] = traceback.format_exc()


def _reconstruct(kspace: np.ndarray, mask: np.ndarray, coil_maps: np.ndarray | None, methods: tuple[str, ...],
                 adapted: dict, three_d: bool = False, notes: list[str] | None = None, device: str | None = None
                 ) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Every method's complex volume ``(N, H, W)`` and its seconds for the volume
    (``adapted``: the learned methods fine-tuned on this scan, ``--adapt``). Of a 3-D
    acquisition (``three_d``: ``kspace`` holds hybrid planes), BART runs once on the whole
    volume with its own 3-D maps, the anchor (:func:`recon.classical.bart.pics_volume`),
    and the other methods' planes go to the Dask cluster the unit runs on, else to this
    worker's cores (:mod:`pipelines.common.planes`; ``notes`` says which)."""
    from recon.classical.bart import REGULARIZERS_3D, pics_volume

    volumes: dict[str, np.ndarray] = {}
    seconds: dict[str, float] = {}
    if three_d and notes is not None:
        notes += weights_notes([method for method in methods if method not in adapted], float(np.mean(mask)))
    for method in methods:
        if three_d and method in REGULARIZERS_3D and method not in adapted:
            tick = time.perf_counter()
            image, _ = pics_volume(torch.from_numpy(kspace), mask, method, calibration=masks.calibration_region(mask))
            volumes[method], seconds[method] = image.numpy(), time.perf_counter() - tick
            continue
        def one_slice(index: int, method: str = method) -> np.ndarray:
            maps = None if coil_maps is None else coil_maps[index]
            data = kspace[index] if kspace.shape[1] > 1 else kspace[index, 0]
            if method in adapted:
                return adapted[method].reconstruct(
                    torch.from_numpy(kspace[index : index + 1] * mask), torch.from_numpy(mask),
                    None if maps is None else torch.from_numpy(maps[None]))[0].numpy()
            return recon.reconstruct(data, mask, method, coil_maps=maps, device=device)

        tick = time.perf_counter()
        if method not in adapted and getattr(recon.registry.method_class(method), "parallel_slices", False):
            images = in_parallel(one_slice, len(kspace))  # BART: a process per torch thread this worker has
        elif three_d:  # the planes on the Dask cluster this unit runs on, else on this worker's cores
            images = None if method in adapted else on_cluster(method, kspace, mask, coil_maps, notes, device)
            if images is None:  # (kspace holds zeros where the mask has none: no copy)
                images = [image.numpy() for image in reconstruct_planes(
                    adapted.get(method) or build_method(method, True, device), torch.from_numpy(kspace), torch.from_numpy(mask),
                    None if coil_maps is None else torch.from_numpy(coil_maps))]
        else:
            images = [one_slice(index) for index in range(len(kspace))]
        seconds[method] = time.perf_counter() - tick  # wall time: concurrent slices count once
        volumes[method] = np.stack(images)
    return volumes, seconds


def _process_study(study: Study, config: BatchConfig, entry: dict[str, Any], out: Path) -> None:
    """Reconstruct, judge and write one study (a volume) of the unit."""
    kspace, mask, reference, coil_maps = _acquisition(study, config, entry["notes"])
    trajectory = isinstance(mask, Trajectory)
    ratio = mask.ratio if trajectory else float(mask.mean())
    crop = study.meta.get("crop")
    study_metrics: dict[str, Any] = {"source": str(study.source), "format": study.format,
                                     "kspace": "simulated" if study.simulated else "measured",
                                     "mask": config.mask if study.mask is None else "from file",
                                     "mask_type": config.mask_type if study.mask is None else "from file",
                                     "ratio": ratio, "methods": {}, "notes": list(entry["notes"]) + [n for n in [device_note(config.device)] if n],
                                     "acquisition": "3d" if config.acquisition == "3d" or "readout" in study.meta
                                     or study.meta.get("acquisition") == "3d" else "2d"}
    if warning := centre_warning(mask):
        study_metrics["notes"].append(warning)
        entry["notes"].append(warning)
    if reference is not None and crop:
        reference = center_crop(reference, crop)
    if trajectory:
        study_metrics["mask_type"] = mask.kind
    adapted = adapt_learned(list(config.methods_run), torch.from_numpy(kspace), mask if trajectory else torch.from_numpy(mask),
                            None if coil_maps is None else torch.from_numpy(coil_maps), study_metrics["notes"],
                            config.seed) if config.adapt else {}
    for method, model in adapted.items():
        study_metrics["methods"].setdefault(method, {}).update(model.adaptation.to_dict())
    complex_images, seconds = _reconstruct(kspace, mask, coil_maps, config.methods_run, adapted,
                                           three_d=study_metrics["acquisition"] == "3d", notes=study_metrics["notes"],
                                           device=config.device)
    guarded: dict[str, np.ndarray] = {}
    if config.estimate_folds:
        guarded = estimate(study_metrics, complex_images, kspace, mask, coil_maps, reference, study.name, config, adapted)
        entry["notes"] += [note for note in study_metrics["notes"] if note.startswith("guard")]
    results = {}
    for method in config.methods_run:
        own = center_crop(complex_images[method], crop) if crop else complex_images[method]
        results[method] = own, (own if method not in guarded else (center_crop(guarded[method], crop) if crop else guarded[method]))
    first = next(iter(results.values()))[1]
    layout = orientation(nifti_meta(study, np.abs(first))["affine"])
    scale = error_scale([np.abs(np.abs(output[len(output) // 2]) - reference[len(output) // 2]) for method, (_, output)
                         in results.items() if method != "zero-filled" and reference is not None
                         and reference.shape == output.shape], float(reference.max()) if reference is not None else 1.0)
    three_d = study_metrics["acquisition"] == "3d"
    shown = None if reference is None else restack(study, reference)  # the previews' reference: on the written grid
    study_metrics["preview"] = {"slice": len(kspace) // 2, "orientation": layout, "error_scale": scale,
                                "mask": outputs.mask_picture(out, study.name, mask)}
    entry["outputs"].append(study_metrics["preview"]["mask"])
    for method_index, method in enumerate(config.methods_run):
        own, output = results[method]
        record = study_metrics["methods"].setdefault(method, {})
        sources = record.get("guard_output_slices") or [method] * len(output)
        record["holds"] = holding(method, sources)
        description = f"recon {record['holds']}; {study_metrics['mask']} {study_metrics['mask_type']} ratio {ratio:.3f}"
        notes = [slice_note(method, source) for source in sources]
        if "readout" in study.meta:  # a simulated 3-D acquisition: back on the input's grid, one method a volume
            output, notes = restack(study, output), [notes[0]] * study.images.shape[0]
        written = write_output(study, method, output, out, config.format, description, method_index, slice_notes=notes)
        entry["outputs"].append(str(written.relative_to(out)))
        entry["outputs"].append(outputs.sidecar(out, written, study, method, sources, record, description))
        magnitude = np.abs(output).astype(np.float32)
        entry["outputs"] += outputs.preview(out, f"{study.name}_{method}", magnitude, shown, layout, scale)
        if three_d:  # three orthogonal central planes
            entry["outputs"] += outputs.plane_previews(out, f"{study.name}_{method}", magnitude, shown, scale)
        record["seconds_per_slice"] = seconds[method] / len(kspace)
        # the method's own result is what the metrics score; the guarded output's get written_*
        outputs.score(record, np.abs(own).astype(np.float32), reference)
        if "guard_output_slices" in record:
            written_scores: dict[str, Any] = {}
            outputs.score(written_scores, np.abs(output).astype(np.float32), reference)
            record.update({f"written_{key}": value for key, value in written_scores.items()})
    if reference is not None:
        entry["outputs"] += outputs.preview(out, f"{study.name}_reference", shown, shown, layout, scale)
        if three_d:
            entry["outputs"] += outputs.plane_previews(out, f"{study.name}_reference", shown, shown, scale)
    trust(study_metrics["methods"], complex_images, kspace, mask, coil_maps)
    entry["slices"] += len(kspace) * len(config.methods_run)
    metrics_path = out / f"{study.name}.metrics.json"
    write_json(metrics_path, study_metrics)
    entry["outputs"].append(metrics_path.name)


def _through_plane_unit(path: Path, config: BatchConfig, entry: dict[str, Any], out: Path) -> None:
    """``--slice-factor F``: restore the thin slices of one thick-slice volume with each
    method, as ``recon sr`` does, and write them with the thin geometry. Raises for bad
    input (:func:`process_unit` records the reason)."""
    from pipelines.formats.through_plane import read_thick, write_thin
    from recon.models.through_plane import resolved_weights, restore

    factor = config.slice_factor
    study, thick, notes = read_thick(path, config.budget(), factor)
    entry["notes"] += notes
    record: dict[str, Any] = {"source": str(study.source), "format": study.format, "kspace": "none (through-plane)",
                              "mask": f"slice factor {factor}", "mask_type": "", "ratio": 1 / factor,
                              "slice_factor": factor, "slices_in": len(thick), "slices_out": len(thick) * factor,
                              "methods": {}, "notes": notes}
    for method_index, method in enumerate(config.methods_run):
        tick = time.perf_counter()
        thin = restore(thick, factor, method)
        seconds = time.perf_counter() - tick
        written = write_thin(study, thin, method, factor, out, config.format, method_index)
        entry["outputs"].append(str(written.relative_to(out)))
        # the preview is a reformatted plane across the slices, where through-plane SR shows
        entry["outputs"] += outputs.preview(out, f"{study.name}_{method}", np.moveaxis(thin, 1, 0), None)
        record["methods"][method] = {"seconds": seconds, "seconds_per_slice": seconds / len(thin),
                                     "weights": resolved_weights(factor, method)}
    entry["slices"] += len(thick) * factor * len(config.methods_run)
    metrics_path = out / f"{study.name}.metrics.json"
    write_json(metrics_path, record)
    entry["outputs"].append(metrics_path.name)
    entry["status"] = "done"
