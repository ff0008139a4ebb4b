"""``recon run``: simulate an acquisition, reconstruct with every method, measure."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

import recon
from masks import (
    Mask,
    TrajectoryMask,
    calibration_region,
    calibration_size,
    make_sampling,
    parse_preset,
    seed_from_name,
)
from physics import simulate_coil_maps, simulate_kspace
from pipelines.common import evaluation
from pipelines.common import volume as common_volume
from pipelines.common.evaluation import (
    apply_guard,
    build_method,
    estimate_errors,
    guard_verdicts,
    spread,
    trust_check,
)
from pipelines.common.limits import MemoryBudget
from pipelines.common.output import check_output_dir, staged_dir, write_json
from pipelines.common.planes import reconstruct_planes, weights_notes
from pipelines.common.progress import Progress
from pipelines.config import RunConfig
from pipelines.data.sample import sample, sample_volume
from pipelines.formats import read_input
from pipelines.formats.study import check_simulable
from pipelines.reports.plots import ADDED_CMAP, ERROR_CMAP
from pipelines.reports.previews import ERROR_SCALES, error_scale
from pipelines.reports.run_report import write_report
from pipelines.run import volume
from pipelines.run.images import write_images, write_sidecars
from pipelines.run.summary import summarise_records
from recon import metrics
from recon.api import as_sampling, coil_maps_for, trajectory_coil_maps
from recon.classical.superres import is_central_block
from recon.device import device_note
from recon.trust import calibration, holdout


@dataclass
class RunResult:
    """What :func:`run` produced: one record per method and slice, and the summary."""

    records: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    mask: Mask | TrajectoryMask
    out: Path
    notes: list[str]


def _load_images(config: RunConfig, notes: list[str]) -> tuple[np.ndarray, list[str], str, str]:
    """Images ``(N, H, W)``, their ids, the source and the name that seeds the mask and
    the simulation.

    ``--input`` is read exactly as ``recon batch`` reads it (``pipelines.formats``: the
    same slicing along the third voxel axis without rotation, every volume of a 4-D
    file, DICOM series too) and seeded by the same name (the study's), so the two
    commands give the same metrics for the same slice, mask and method. Slices with less
    than 5 % of the volume's peak are left out (they hold no anatomy to compare).
    """
    three_d = config.acquisition == "3d"
    if config.input is None and three_d:
        return common_volume.readout_planes(sample_volume(), None, notes)[:2] + ("sample:volume", "sample:volume")
    if config.input is None:
        data = sample("test")
        images, ids, source, seed_name = np.array(data.images), list(data.ids), "sample:test", "sample:test"
    else:
        budget = MemoryBudget.of(config.max_memory)
        path = Path(config.input)
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such file")
        studies, read_notes = read_input(path, budget)
        notes += read_notes
        study = studies[0]
        if not study.simulated:
            raise ValueError(f"{path}: holds measured k-space ({study.format}); reconstruct it with recon batch")
        if len(studies) > 1:
            notes.append(f"{path}: holds {len(studies)} series; recon run uses the first, {study.name}")
        check_simulable(study.images, path)
        stack, seed_name = study.images, study.name
        if three_d:
            planes, ids, _ = common_volume.readout_planes(stack, study.meta.get("frequency_axis"), notes)
            return planes, ids, str(config.input), seed_name
        magnitude = np.abs(stack)
        keep = np.flatnonzero(magnitude.reshape(len(stack), -1).max(axis=1) >= 0.05 * magnitude.max())
        images = stack[keep]
        ids = [f"{path.name}:{index}" for index in keep]
        source = str(config.input)
    if config.slices and config.slices < len(images):
        notes.append(f"{config.slices} of {len(images)} slices, evenly spread (--slices all for every one)")
        picks = spread(len(images), config.slices)
        images, ids = images[picks], [ids[i] for i in picks]
    return images, ids, source, seed_name


def _load_mask(config: RunConfig, shape: tuple[int, int], seed_name: str) -> Mask | TrajectoryMask:
    if config.mask_file is None:
        seed = seed_from_name(seed_name, config.seed)
        fraction = config.center_fraction
        if config.acquisition == "3d":
            fraction = common_volume.centre_fraction(fraction, shape, config.mask_type, parse_preset(config.mask))
        return make_sampling(config.mask, shape, config.mask_type, seed=seed, center_fraction=fraction)
    path = Path(config.mask_file)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such mask file")
    try:
        array = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: cannot read mask: {error}") from error
    if array.shape != shape:
        raise ValueError(f"{path}: mask shape {array.shape} does not match the image shape {shape}")
    if array.dtype != bool and not np.isin(array, (0, 1)).all():
        raise ValueError(f"{path}: mask must be boolean or 0/1")
    array = array.astype(bool)
    if not array.any():
        raise ValueError(f"{path}: mask samples no k-space point")
    return Mask(array, "file", float(array.mean()), float(array.mean()), calibration_size(array), {"file": str(path)})


def _methods(config: RunConfig, coils: int, mask: Mask | TrajectoryMask) -> tuple[list[str], list[str]]:
    notes = [note] if (note := device_note(config.device)) else []  # --device auto|cuda with a GPU here
    if config.methods is not None:
        added = config.guard_added
        if added:
            notes.append(f"guard: added {', '.join(added)}, what a learned slice falls back to (--no-guard leaves them out)")
        for name in (*config.methods, *added):
            recon.get(name)  # raises a clear error when unavailable here
        return [*config.methods, *added], notes
    trajectory = isinstance(mask, TrajectoryMask)
    names, superres, block = [], [], not trajectory and is_central_block(mask.array)
    for name in recon.registered():
        cls = recon.registry.info(name)
        reason = recon.registry.unavailable_reason(name)
        if cls.superres_only and not block:
            superres.append(name)
        elif reason is not None:
            notes.append(f"{name} skipped: {reason}")
        elif cls.multicoil_only and coils == 1 and not trajectory:
            notes.append(f"{name} skipped: single-coil data (it equals zero-filled there); use --coils N")
        else:
            names.append(name)
    if superres:
        notes.append(f"{', '.join(superres)} skipped: super-resolution methods, for lowres masks (--mask lowres-2x)")
    if config.acquisition == "3d" and {"bart-l1", "bart-tv"} <= set(names):  # one anchor: each takes minutes in 3-D
        names.remove("bart-l1")
        notes.append("bart-l1 left out: a 3-D run's BART anchor is bart-tv, on the whole volume (--methods adds bart-l1)")
    if config.acquisition == "3d" and "cs-l1" in names:  # the slowest CS on hundreds of planes, below cs-tv
        names.remove("cs-l1")
        notes.append("cs-l1 left out: on a 3-D run's planes it is the slowest CS method and well below cs-tv "
                     "(--methods adds it)")
    return names, notes


def _estimate(config: RunConfig, records: list[dict[str, Any]], outputs: dict[str, list[np.ndarray]],
              complex_outputs: dict[str, list[torch.Tensor]], kspace: torch.Tensor, mask: torch.Tensor,
              coil_maps: torch.Tensor | None, seed_name: str, data_range: float, notes: list[str],
              progress: bool | str | None = None, adapted: dict | None = None) -> None:
    """Add the hold-out error estimate and the guard's verdict to the records of the
    slices it runs on (``--estimate-slices``, evenly spread); with the guard on (the
    default), swap flagged learned slices of ``outputs`` for the best CS or zero-filled
    slice. ``adapted``: the ``--adapt`` models, whose estimate uses their adapted weights."""
    started = time.perf_counter()
    sampling = evaluation.holdout_sampling(mask)  # a grid mask, or a trajectory (its shots held out)
    if holdout.holdout_units(sampling) < 2:
        notes.append(evaluation.no_estimate_note(sampling))
        return
    picks = [int(i) for i in spread(kspace.shape[0], config.estimate_slices, middles=config.acquisition == "3d")]
    names, left_out = evaluation.estimated_methods(list(complex_outputs), config.estimate_methods)
    if left_out:
        notes.append(evaluation.left_out_note(left_out))
    chosen = {name: [complex_outputs[name][i] for i in picks] for name in names}
    maps = None if coil_maps is None else coil_maps[picks]
    desc = (f"recon run: error estimate ({len(picks)} slices x {len(chosen)} methods, "
            f"{config.estimate_folds} hold-out reconstructions each)")
    with Progress(len(picks) * len(chosen), desc, "estimates", mode=progress) as bar:
        estimates = estimate_errors(chosen, kspace[picks], mask, maps, config.estimate_folds, seed_name, data_range,
                                    on_step=lambda name: bar.update(1), slice_ids=picks, reconstructors=adapted,
                                    on_begin=bar.begin, mask_type=None if config.mask_file else config.mask_type,
                                    planes=config.acquisition == "3d", device=config.device,
                                    regime="clean" if config.noise_snr is None else "noisy")
    if any(model.adaptation.best_step for model in (adapted or {}).values()):
        notes.append(f"estimate of {', '.join(n for n, m in adapted.items() if m.adaptation.best_step)}: with the adapted weights, which were fitted to this scan's "
                     "measured k-space (one fold of it held out), so the hold-out estimate may be optimistic")
    verdicts = guard_verdicts(estimates, sampling)
    if config.acquisition == "3d":  # one verdict for the volume
        verdicts = common_volume.whole_volume(verdicts)
        notes.append(common_volume.estimate_note(estimates))
    if not evaluation.guard_applies(sampling):
        notes.append(evaluation.UNGUARDED_NOTE)
    chosen_outputs = {name: [images[i] for i in picks] for name, images in outputs.items()}
    replaced = apply_guard(chosen_outputs, verdicts) if config.guard else {}
    for name, images in chosen_outputs.items():
        for position, index in enumerate(picks):
            outputs[name][index] = images[position]
    for name, per_slice in estimates.items():
        mine = [r for r in records if r["method"] == name]
        for position, (index, estimate) in enumerate(zip(picks, per_slice)):
            mine[index].update(estimate.to_dict())
            if name in verdicts:
                mine[index].update(verdicts[name][position].to_dict())
                written = (replaced[name][position] or name) if config.guard else None
                if written is not None:
                    mine[index]["guard_output"] = written
                    chosen_record = [r for r in records if r["method"] == written][index]
                    for key in ("psnr", "ssim"):
                        mine[index][f"written_{key}"] = chosen_record[key]
                mine[index]["guard_reason"] = evaluation.guard_reason(name, verdicts[name][position], written)
    if config.acquisition == "3d" and config.guard:
        notes += volume.spread_guard(outputs, records, replaced)
    subset = "" if len(picks) == kspace.shape[0] else (
        f" on {len(picks)} of {kspace.shape[0]} slices (--estimate-slices all for every one)")
    notes.append(f"error estimated without the reference by {config.estimate_folds}-fold k-space hold-out{subset} "
                 f"in {time.perf_counter() - started:.1f} s (recon.trust.holdout; calibration "
                 f"{calibration.CALIBRATION_FILE.name if calibration.CALIBRATION_FILE.is_file() else 'none: raw estimates'})")
    if config.guard and subset and config.acquisition != "3d":
        notes.append(f"guard: judged {len(picks)} of {kspace.shape[0]} slices, those with an estimate; the others keep "
                     "the learned output (--estimate-slices all, the default, judges every slice)")
    for name, written in replaced.items():
        swapped = [f"{picks[position]}->{cs}" for position, cs in enumerate(written) if cs]
        if swapped:
            notes.append(f"guard: {len(swapped)} {name} slice(s) written from the best CS or zero-filled output instead "
                         f"(slice index->method: {', '.join(swapped)}; --no-guard writes the learned output)")


def _simulate(config: RunConfig, images: np.ndarray, mask: Mask | TrajectoryMask, sampling, seed_name: str,
              notes: list[str]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The simulated acquisition: k-space ``(N, C, H, W)``, the complex truth ``(N, H, W)``
    and, for several coils, the ESPIRiT maps the methods get. ``sampling`` is the mask's
    :func:`recon.api.as_sampling`."""
    if config.acquisition == "3d":
        return common_volume.simulate(images, mask, config.coils, config.noise_snr, config.phase,
                               seed_from_name(seed_name, config.seed), notes)
    shape = tuple(images.shape[-2:])
    generator = torch.Generator().manual_seed(seed_from_name(seed_name, config.seed))
    coil_maps = simulate_coil_maps(config.coils, shape).unsqueeze(0) if config.coils > 1 else None
    kspace, truth = simulate_kspace(torch.from_numpy(images), sampling, coil_maps=coil_maps,
                                    noise_snr=config.noise_snr, phase=config.phase, generator=generator)
    recon_maps = None
    if config.coils > 1:
        started = time.perf_counter()
        if isinstance(mask, TrajectoryMask):
            recon_maps, source = trajectory_coil_maps(kspace, sampling), "the gridded 24-wide centre"
        else:
            recon_maps = coil_maps_for(kspace, mask.array)
            source = "the {} × {} centre".format(*calibration_region(mask.array))
        notes.append(f"ESPIRiT coil maps estimated from {source} in {(time.perf_counter() - started) / len(images):.3f} "
                     "s/slice (not in the method times)")
    return kspace, truth, recon_maps


def _reconstruct(config: RunConfig, methods: list[str], ids: list[str], mask: Mask | TrajectoryMask, sampling,
                 kspace: torch.Tensor, coil_maps: torch.Tensor | None, reference: torch.Tensor, data_range: float,
                 progress: bool | str | None, adapted: dict
                 ) -> tuple[list[dict], dict[str, list[np.ndarray]], dict[str, list[torch.Tensor]]]:
    """Every method on every slice, slice by slice (the progress counts slices); a method
    that runs its slices concurrently (``parallel_slices``: BART's processes) gets them
    all at once first, and its seconds are the wall time per slice; so does every method
    of a 3-D acquisition, its planes on all cores (:mod:`pipelines.common.planes`; BART
    on the whole volume). Returns
    the records (by method, then slice), the magnitudes and the complex images. With
    ``--adapt``, ``adapted`` holds the learned methods fine-tuned on this scan."""
    three_d = config.acquisition == "3d"  # every method ahead, its planes on all cores at once
    reconstructors = {name: adapted.get(name) or build_method(name, three_d, config.device) for name in methods}
    by_method: dict[str, list[dict[str, Any]]] = {name: [] for name in methods}
    outputs: dict[str, list[np.ndarray]] = {name: [] for name in methods}
    complex_outputs: dict[str, list[torch.Tensor]] = {name: [] for name in methods}
    desc = f"recon run: reconstruction ({len(methods)} methods per slice)"
    total, unit = len(ids), "slices"
    if three_d:  # the methods run one after another, each on every plane: the count is of planes
        desc, total, unit = f"recon run: reconstruction ({len(methods)} methods x {len(ids)} planes)", len(ids) * len(methods), "planes"
    ahead: dict[str, tuple[torch.Tensor, float]] = {}  # methods that run their slices concurrently (BART)
    with Progress(total, desc, unit, mode=progress) as bar:
        for name in [name for name, method in reconstructors.items()
                     if three_d or getattr(method, "parallel_slices", False)]:
            bar.begin(f"{name} on all {len(ids)} {'planes' if three_d else 'slices'} at once")
            started = time.perf_counter()
            with torch.no_grad():
                if three_d and getattr(reconstructors[name], "parallel_slices", False):  # BART 3-D: the anchor
                    stack = volume.bart_anchor(name, kspace, mask)
                    bar.update(len(ids))
                elif three_d:
                    stack = reconstruct_planes(reconstructors[name], kspace, sampling, coil_maps, lambda: bar.update(1))
                else:
                    stack = reconstructors[name].reconstruct(kspace, sampling, coil_maps)
            ahead[name] = stack, (time.perf_counter() - started) / len(ids)  # wall time per slice
        for index, slice_id in enumerate(ids):
            bar.begin(slice_id)
            maps = None if coil_maps is None else coil_maps[index : index + 1]
            for name, reconstructor in reconstructors.items():
                started = time.perf_counter()
                if name in ahead:
                    image, seconds = ahead[name][0][index], ahead[name][1]
                else:
                    with torch.no_grad():
                        image = reconstructor.reconstruct(kspace[index : index + 1], sampling, maps)[0]
                    seconds = time.perf_counter() - started
                scores = metrics.evaluate(image, reference[index], data_range=data_range)
                by_method[name].append({
                    "method": name, "mask": config.mask if config.mask_file is None else "file",
                    "mask_type": mask.kind, "ratio": mask.ratio, "slice": slice_id, "psnr": scores["psnr"],
                    "ssim": scores["ssim"], "nmse": scores["nmse"], "seconds": seconds,
                    **(adapted[name].adaptation.to_dict() if name in adapted else {}),
                })
                outputs[name].append(image.abs().numpy())
                complex_outputs[name].append(image)
            if not three_d:
                bar.update(1)
    return [record for name in methods for record in by_method[name]], outputs, complex_outputs


def run(config: RunConfig, progress: bool | str | None = None) -> RunResult:
    """Simulate the acquisition, reconstruct with each method and write the outputs.

    Writes ``metrics.json``, ``config.json``, the report and PNGs (``images/``) into
    ``config.out``; the folder appears only when the run has succeeded.
    """
    check_output_dir(config.out, config.force)
    notes: list[str] = []
    images, ids, source, seed_name = _load_images(config, notes)
    mask = _load_mask(config, tuple(images.shape[-2:]), seed_name)
    methods, method_notes = _methods(config, config.coils, mask)
    notes += method_notes
    if not methods:
        raise ValueError("no method to run")
    mask_t = as_sampling(mask)  # what the methods take: a bool tensor, or a trajectory with its density compensation
    if warning := evaluation.centre_warning(mask_t):
        notes.append(warning)
    kspace, truth, recon_maps = _simulate(config, images, mask, mask_t, seed_name, notes)
    if config.acquisition == "3d":
        notes += weights_notes(methods, float(mask.array.mean()))
    reference = truth.abs()
    data_range = float(reference.max())
    torch_threads = torch.get_num_threads()
    adapted = evaluation.adapt_learned(methods, kspace, mask_t, recon_maps, notes, config.seed) if config.adapt else {}
    records, outputs, complex_outputs = _reconstruct(config, methods, ids, mask, mask_t, kspace, recon_maps,
                                                     reference, data_range, progress, adapted)
    psnr = {name: float(np.mean([r["psnr"] for r in records if r["method"] == name])) for name in methods}
    checks, trust_maps, compared = trust_check(complex_outputs, kspace, mask_t, recon_maps, psnr)
    for name, slices in checks.items():
        for record, check in zip((r for r in records if r["method"] == name), slices):
            record.update(check)
    if checks and isinstance(mask, TrajectoryMask):
        notes.append("trust check: data-consistency residual only (no unmeasured grid for a hallucination map on a "
                     "trajectory)")
    elif checks and compared is None:
        notes.append("trust check: no CS method in this run, so no hallucination map (data-consistency residual only)")
    if config.guard and not config.estimate_folds:
        notes.append("guard: off, because --estimate-folds 0 turns off the error estimate it needs")
    if config.estimate_folds:
        _estimate(config, records, outputs, complex_outputs, kspace, mask_t, recon_maps, seed_name, data_range, notes,
                  progress, adapted)
    summary = summarise_records(records, methods)
    with staged_dir(config.out, config.force) as staging:
        scale = error_scale([np.abs(outputs[name][index] - reference[index].numpy()) for name in methods
                             if name != "zero-filled" for index in range(len(ids))], data_range)
        extra: dict[str, Any] = {}
        if config.acquisition == "3d":  # three orthogonal planes, not every readout position's
            first = int(ids[0][1:])
            extra["planes"] = volume.write_planes(staging, methods, reference.numpy(), outputs, data_range, scale, first)
            extra["volume"] = volume.plane_scores(outputs, reference.numpy(), data_range, first)
        else:
            write_images(staging, mask, ids, methods, reference, outputs, trust_maps, data_range, scale)
            write_sidecars(staging / "images", ids, methods, records)
        write_json(staging / "metrics.json", {
            "conventions": "fastMRI: magnitude images, data range = max of the reference over all slices, "
            "SSIM 7x7 uniform window k1=0.01 k2=0.03, NMSE = ||x-y||^2/||y||^2",
            "data_range": data_range, "kspace": "simulated", "records": records, "summary": summary, **extra,
        })
        write_json(staging / "config.json", {
            "config": config.to_dict(), "version": recon.__version__, "seed": config.seed, "source": source,
            "kspace": "simulated", "acquisition": config.acquisition, "slices": ids, "mask": mask.describe(),
            "methods": methods, "notes": notes,
            "created": datetime.now().astimezone().isoformat(timespec="seconds"),
            "error_map_scale": f"|recon - reference| shown on [0, {scale} x data range] ({ERROR_CMAP}; the smallest of "
            f"{', '.join(f'{s:g}' for s in ERROR_SCALES)} that holds the 99th percentile of the errors of every method but "
            "zero-filled); "
            f"what learned methods add in unmeasured k-space on the same range ({ADDED_CMAP})",
            "error_map_fraction": scale,
            "environment": {"python": platform.python_version(), "torch": torch.__version__,
                            "numpy": np.__version__, "torch_threads": torch_threads},
        })
        write_report([staging], staging / "report.html")
    return RunResult(records, summary, mask, Path(config.out), notes)
