"""How ``recon batch`` judges a study's reconstructions without its reference: the
hold-out error estimate and the guard's verdicts (:func:`estimate`), and the trust
check of the learned methods (:func:`trust`)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from physics.nufft import Trajectory
from pipelines.common.evaluation import (
    UNGUARDED_NOTE,
    apply_guard,
    estimate_errors,
    estimated_methods,
    guard_applies,
    guard_reason,
    guard_verdicts,
    left_out_note,
    no_estimate_note,
    spread,
    trust_check,
)
from pipelines.common.volume import ESTIMATE_PLANES, estimate_note, whole_volume
from pipelines.config import BatchConfig
from recon.trust import calibration


def _regime(study_metrics: dict[str, Any]) -> str:
    """What the study's data and reference are (:data:`recon.trust.calibration.REGIMES`): a
    scanner's k-space is ``measured``; a simulated 3-D acquisition carries noise
    (:data:`pipelines.common.volume.SNR`) and is judged against the noise-free volume."""
    if study_metrics["kspace"] == "measured":
        return "measured"
    return "noisy" if study_metrics.get("acquisition") == "3d" else "clean"


def estimate(study_metrics: dict[str, Any], images: dict[str, np.ndarray], kspace: np.ndarray, mask: np.ndarray,
              coil_maps: np.ndarray | None, reference: np.ndarray | None, name: str, config: BatchConfig,
              adapted: dict) -> dict[str, np.ndarray]:
    """The hold-out error estimate of every method and the guard's verdicts, added to
    the study's records. With the guard on (the default), returns the volume to write for
    each learned method with flagged slices: its own, with those slices from the best CS
    or zero-filled output. A 3-D acquisition is judged as one volume on
    :data:`ESTIMATE_PLANES` evenly spread readout planes, and a flagged learned volume is
    written whole from its reference.

    PSNR estimates use the reference's maximum when there is a reference, else the
    largest magnitude of any method's volume (one range for every method)."""
    started = time.perf_counter()
    if reference is not None:
        data_range = float(reference.max())
    else:
        data_range = float(max(np.abs(stack).max() for stack in images.values()))
    names, left_out = estimated_methods(list(images), config.estimate_methods)
    if left_out:
        study_metrics["notes"].append(left_out_note(left_out))
    three_d = study_metrics.get("acquisition") == "3d"
    picks = np.arange(len(kspace))
    if three_d:  # the volume is judged as one, on the middles of equal runs of readout planes
        picks = spread(len(kspace), ESTIMATE_PLANES, middles=True)
        study_metrics["estimate_planes"] = picks.tolist()
    outputs = {method: [torch.from_numpy(images[method][i]) for i in picks] for method in names}
    maps = None if coil_maps is None else torch.from_numpy(coil_maps[picks])
    regime = _regime(study_metrics)
    estimates = estimate_errors(outputs, torch.from_numpy(kspace[picks]), _sampling(mask), maps,
                                config.estimate_folds, name, data_range, reconstructors=adapted, planes=three_d,
                                mask_type=None if study_metrics["mask_type"] == "from file" else study_metrics["mask_type"],
                                regime=regime, device=config.device)
    if not estimates:
        study_metrics["notes"].append(no_estimate_note(mask))
        return {}
    if three_d:
        study_metrics["notes"].append(estimate_note(estimates))
    verdicts = guard_verdicts(estimates, mask)
    if three_d:  # one verdict for the volume (pipelines.common.volume.whole_volume)
        verdicts = whole_volume(verdicts)
    if not guard_applies(mask):
        study_metrics["notes"].append(UNGUARDED_NOTE)
    records = study_metrics["methods"]
    for method, per_slice in estimates.items():
        record = records.setdefault(method, {})
        record["estimated_psnr"] = float(np.mean([e.psnr for e in per_slice]))
        record["estimated_nmse"] = float(np.mean([e.nmse for e in per_slice]))
        record["estimated_psnr_spread"] = float(np.mean([e.psnr_spread for e in per_slice]))
        for key in ("low", "high"):  # None when the calibration states no interval
            value = float(np.mean([getattr(e, f"psnr_{key}") for e in per_slice]))
            record[f"estimated_psnr_{key}"] = value if np.isfinite(value) else None
        record["estimated_psnr_slices"] = [e.psnr for e in per_slice]
        record["estimate_calibration"] = per_slice[0].calibration  # the entry (and regime) that calibrated it
        record["estimated_psnr_spread_slices"] = [e.psnr_spread for e in per_slice]
    for method, per_slice in verdicts.items():
        record = records[method]
        record["guard_reference"] = per_slice[0].reference
        record["guard_reference_slices"] = [v.reference for v in per_slice]
        record["guard_flagged_slices"] = [v.flagged for v in per_slice]
        record["guard_flagged"] = int(sum(v.flagged for v in per_slice))
        if any(v.untrusted for v in per_slice):
            record["guard_untrusted"] = next(v.untrusted for v in per_slice if v.untrusted)
        if record["guard_flagged"] and not config.guard:
            study_metrics["notes"].append(f"guard (off, --no-guard): {method} is estimably worse than {per_slice[0].reference} "
                                          f"on {record['guard_flagged']}/{len(per_slice)} slices of {name}")
        if not config.guard:
            record["guard_reasons"] = [guard_reason(method, verdict, None) for verdict in per_slice]
    guarded: dict[str, np.ndarray] = {}
    if config.guard and three_d:
        for method, per_plane in verdicts.items():
            written = per_plane[0].reference if per_plane[0].flagged else None
            records[method]["guard_output_slices"] = [written or method] * len(kspace)
            records[method]["guard_reasons"] = [guard_reason(method, per_plane[0], written or method)] * len(kspace)
            if written is not None:
                guarded[method] = images[written]
                study_metrics["notes"].append(f"guard: the whole {method} volume is written from {written} (most of its "
                                              f"{len(picks)} judged planes were flagged; --no-guard writes the learned output)")
    elif config.guard:
        for method, replaced in apply_guard(outputs, verdicts).items():
            records[method]["guard_output_slices"] = [cs or method for cs in replaced]
            records[method]["guard_reasons"] = [guard_reason(method, verdict, cs or method)
                                                for verdict, cs in zip(verdicts[method], replaced)]
            if any(replaced):
                guarded[method] = np.stack([t.numpy() for t in outputs[method]])
                study_metrics["notes"].append(f"guard: {sum(1 for cs in replaced if cs)} {method} slice(s) written from "
                                              f"{', '.join(sorted({cs for cs in replaced if cs}))} (--no-guard writes the "
                                              "learned output)")
    study_metrics["estimate"] = {"folds": config.estimate_folds, "seconds": time.perf_counter() - started,
                                 "data_range": data_range, "ranked": sorted(records, key=lambda m: -records[m]["estimated_psnr"]),
                                 "regime": regime,
                                 "calibration": calibration.CALIBRATION_FILE.name if calibration.CALIBRATION_FILE.is_file() else None}
    return guarded


def trust(records: dict[str, dict], images: dict[str, np.ndarray], kspace, mask, coil_maps) -> None:
    """Add the trust check of every learned method to its record, summarised over the
    volume (see :mod:`pipelines.common.evaluation`)."""
    psnr = {name: record["psnr"] for name, record in records.items() if "psnr" in record}
    outputs = {name: list(torch.from_numpy(stack)) for name, stack in images.items()}
    maps = None if coil_maps is None else torch.from_numpy(coil_maps)
    checks, _, _ = trust_check(outputs, torch.from_numpy(kspace), _sampling(mask), maps, psnr)
    for name, slices in checks.items():
        records[name]["dc_residual_max"] = float(max(c["dc_residual"] for c in slices))
        to_noise = [c["dc_residual_to_noise"] for c in slices if "dc_residual_to_noise" in c]
        if to_noise:
            records[name]["dc_residual_to_noise"] = float(np.median(to_noise))
        if "hallucination_energy" in slices[0]:
            records[name]["hallucination_reference"] = slices[0]["hallucination_reference"]
            records[name]["hallucination_energy"] = float(np.mean([c["hallucination_energy"] for c in slices]))
            records[name]["hallucination_flagged"] = int(sum(c["hallucination_flagged"] for c in slices))


def _sampling(mask) -> torch.Tensor | Trajectory:
    """What the methods and the hold-out take: a grid mask as a bool tensor, a trajectory as it is."""
    return mask if isinstance(mask, Trajectory) else torch.from_numpy(np.asarray(mask, bool))
