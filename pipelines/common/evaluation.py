"""The trust check, shared by ``recon run`` and ``recon batch``.

- For every method and slice, the reference-free **estimated error** (NMSE, PSNR and
  its spread) from k-space hold-out (:mod:`recon.trust.holdout`), with the same folds for
  every method of a slice.
- For every learned method and slice: the data-consistency residual (``recon.trust.check``)
  on the acquisition's operator; the energy it adds in unmeasured k-space relative to
  the best compressed-sensing output of the same run (by estimated PSNR when
  estimates were made, else by mean PSNR when a reference exists, else the first CS
  method), with its map; for a super-resolution (``lowres``) mask, relative to
  zero-filled, so the map is everything the method added beyond the measured block; and the **guard**'s verdict (:mod:`recon.trust.guard`), which
  :func:`apply_guard` turns into the best CS output when asked.
"""

from __future__ import annotations

import inspect
import threading
import warnings
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

import recon
from physics.nufft import Trajectory
from physics.operators import sampling_operator
from recon.classical.superres import is_central_block
from recon.trust import check as trust
from recon.trust import guard, holdout
from recon.trust.calibration import on_planes


def cs_reference(methods: list[str], psnr: dict[str, float] | None) -> str | None:
    """The CS method the learned ones are compared with: the best by PSNR when known,
    else the first CS method; None when the run has none."""
    cs = [name for name in methods if recon.registry.info(name).family == "cs"]
    if not cs:
        return None
    if psnr and all(name in psnr for name in cs):
        return max(cs, key=lambda name: psnr[name])
    return cs[0]


def trust_check(outputs: dict[str, list[torch.Tensor]], kspace: torch.Tensor, mask: torch.Tensor,
                coil_maps: torch.Tensor | None, psnr: dict[str, float] | None = None
                ) -> tuple[dict[str, list[dict]], dict[str, list[np.ndarray]], str | None]:
    """Per-slice trust records and hallucination maps of every learned method.

    Returns ``({method: [record per slice]}, {method: [|h| map per slice]}, reference)``;
    a record holds ``dc_residual`` and, with a CS reference, ``hallucination_reference``,
    ``hallucination_energy`` and ``hallucination_flagged``.

    Shapes
    ------
    outputs: per method, ``N`` complex images ``(H, W)``; kspace ``(N, C, H, W)``; mask
    ``(H, W)`` bool; coil_maps ``(N, C, H, W)`` or None.
    """
    methods = list(outputs)
    learned = [name for name in methods if recon.registry.info(name).family == "learned"]
    reference = cs_reference(methods, psnr)
    references = outputs.get(reference) if reference else None
    if isinstance(mask, Trajectory):  # no unmeasured grid to compare in: the residual only
        reference = None
    elif is_central_block(mask):
        # Super-resolution: what a method added beyond the measured block is its content
        # outside the block, i.e. its difference from zero-filled (A^H y has none there).
        reference = "zero-filled"
        references = outputs.get(reference) or [
            sampling_operator(mask, None if coil_maps is None else coil_maps[i : i + 1]).adjoint(kspace[i : i + 1])[0]
            for i in range(kspace.shape[0])]
    records: dict[str, list[dict]] = {}
    maps: dict[str, list[np.ndarray]] = {}
    for name in learned:
        records[name], maps[name] = [], []
        for index, image in enumerate(outputs[name]):
            operator = sampling_operator(mask, None if coil_maps is None else coil_maps[index : index + 1])
            record = {"dc_residual": trust.consistency_residual(image, kspace[index], operator)}
            to_noise = trust.residual_to_noise(image, kspace[index], operator)
            if to_noise is not None:
                record["dc_residual_to_noise"] = to_noise
            if reference is not None:
                added, energy = trust.hallucination(image, references[index], mask)
                record.update(hallucination_reference=reference, hallucination_energy=energy,
                              hallucination_flagged=energy > trust.HALLUCINATION_THRESHOLD)
                maps[name].append(added.abs().numpy())
            records[name].append(record)
        if reference is None:
            del maps[name]
    return records, maps, reference


def holding(method: str, sources: list[str] | None) -> str:
    """One line saying what the output named after ``method`` holds: ``sources`` gives,
    per slice, the method whose image was written there (the guard may have written the
    best CS or zero-filled output instead of a learned one); None or all ``method``: its own.

    The rule, the same in ``recon run`` and ``recon batch``: an output keeps the learned
    method's name, and its header, sidecar JSON, preview caption and report say which
    slices hold another method's image."""
    if not sources or all(source == method for source in sources):
        return f"{method} output"
    others = sorted({source for source in sources if source != method})
    replaced = [index for index, source in enumerate(sources) if source != method]
    if len(replaced) == len(sources):
        return f"{' and '.join(others)} image, not {method} (the guard replaced every {method} slice)"
    shown = ",".join(str(index) for index in replaced[:12]) + (",..." if len(replaced) > 12 else "")
    return (f"{method} output; guard wrote {len(replaced)} of {len(sources)} slices from {' and '.join(others)} "
            f"(slices {shown})")


def slice_note(method: str, source: str) -> str:
    """What one slice of the output named after ``method`` holds (DICOM ImageComments)."""
    if source == method:
        return f"{method} reconstruction"
    return f"{source} image written by the guard in place of {method} (estimated worse on this slice)"


def estimated_methods(names: list[str], which: str = "default") -> tuple[list[str], list[str]]:
    """``(estimated, left_out)`` of ``names`` for ``--estimate-methods``: ``all`` keeps every
    method; ``default`` leaves out those that run an external binary (BART's), which the
    guard does not need and which cost most of an 8-coil run's estimate. (cs-l1 was left
    out on trajectories too, for SigPy's 17 s a radial slice; in torch, with its own
    trajectory calibration, it is estimated like the rest.)"""
    if which == "all":
        return list(names), []
    slow = [name for name in names if name in recon.registry.BUILTIN and recon.registry.info(name).needs == "bart"]
    return [name for name in names if name not in slow], slow


def left_out_note(left_out: list[str]) -> str:
    """The note that says which methods have no error estimate, and the flag that adds them."""
    return (f"error estimate: {', '.join(left_out)} not estimated (the slowest methods, which the guard does not "
            "need; --estimate-methods all estimates them)")


def build_method(name: str, planes: bool = False, device: str | None = None) -> Any:
    """``recon.get(name)``; with ``planes`` (the (ky, kz) planes of a 3-D acquisition) a
    learned model is built to prefer the weights trained for such planes (cards with
    ``"sampling": "plane"``; the grid weights when it has none); computing on ``device``
    (``--device``: :func:`recon.device.on_device`; None or ``cpu``: here)."""
    from recon.device import on_device

    planes = planes and "planes" in inspect.signature(recon.registry.method_class(name)).parameters
    return on_device(recon.get(name, planes=True) if planes else recon.get(name), device)


def estimate_errors(outputs: dict[str, list[torch.Tensor]], kspace: torch.Tensor, mask: torch.Tensor,
                    coil_maps: torch.Tensor | None, folds: int, seed_name: str, data_range: float | None = None,
                    on_step: Callable[[str], None] | None = None, slice_ids: list[int] | None = None,
                    reconstructors: dict | None = None, on_begin: Callable[[str], None] | None = None,
                    mask_type: str | None = None, planes: bool = False,
                    regime: str = "clean", device: str | None = None) -> dict[str, list[holdout.ErrorEstimate]]:
    """The hold-out error estimate of every method on every slice, calibrated for the
    mask's family ``mask_type`` (``cartesian``, ``vd2d:nocal``, ...; None for a mask read
    from a file: the line of its kind) and the coil count.

    The folds of slice ``i`` are seeded by ``seed_name:i`` (``i`` from ``slice_ids`` when
    the slices are a subset of a volume), so every method of a slice is judged on the
    same held-out samples and a rerun, or a run on fewer slices, gives the same figures. A mask
    with fewer measured lines (or points) outside its calibration block than ``folds``
    gets that many folds; with fewer than 2 there is no estimate (empty result).
    ``on_begin(label)`` is called before and ``on_step(method)`` after each (slice, method)
    estimate (progress). ``planes``: the slices are a 3-D acquisition's (ky, kz) planes
    (:func:`build_method`; their calibration: :func:`recon.trust.calibration.on_planes`).
    ``regime``: what the data and its reference are (:data:`recon.trust.calibration.REGIMES`:
    ``noisy`` for a simulation with noise, ``measured`` for a scanner's k-space). ``device``:
    where the methods not ``reconstructors`` compute (:func:`build_method`).

    Shapes
    ------
    outputs: per method, ``N`` complex images ``(H, W)``; kspace ``(N, C, H, W)``; mask
    ``(H, W)`` bool; coil_maps ``(N, C, H, W)`` or None.
    """
    from masks import seed_from_name

    sampling = holdout_sampling(mask)
    folds = min(folds, holdout.holdout_units(sampling))
    if folds < 2:
        return {}
    family = on_planes(mask_type) if planes else mask_type  # planes have calibration entries of their own
    given = reconstructors or {}  # adapted models (--adapt) come built
    reconstructors = {name: given.get(name) or build_method(name, planes, device) for name in outputs}  # built once
    report = threading.Lock()  # the progress callbacks come from the worker threads

    names = list(outputs)
    ids = list(range(kspace.shape[0])) if slice_ids is None else list(slice_ids)
    fold_masks = [holdout.holdout_folds(sampling, folds, seed=seed_from_name(f"{seed_name}:{slice_id}"))
                  for slice_id in ids]  # every method of a slice is judged on the same folds

    def one_estimate(unit: int) -> holdout.ErrorEstimate:  # one (slice, method): on 1 slice the methods share the cores
        index, name = unit // len(names), names[unit % len(names)]
        maps = None if coil_maps is None else coil_maps[index : index + 1]
        reconstructor = reconstructors[name]
        if on_begin is not None:
            with report:
                on_begin(f"slice {ids[index]} {name}")
        image = outputs[name][index][None].to(torch.complex64)
        errors = holdout.fold_errors(reconstructor, kspace[index : index + 1], mask, maps, fold_masks[index], image,
                                     regime)
        found = holdout.summarise(errors, reconstructor, sampling, image, data_range, None, family, kspace.shape[1],
                                  regime)
        if on_step is not None:
            with report:
                on_step(name)
        return found

    found = in_parallel(one_estimate, kspace.shape[0] * len(names))
    return {name: found[column :: len(names)] for column, name in enumerate(names)}


# SigPy's soft threshold (cs-l1) is a lazily compiled numba ufunc: two threads that call
# it first at once both compile it, and numba warns on the user's terminal that the
# second compilation "has no effect". It is harmless, so it is silenced here alone.
warnings.filterwarnings("ignore", message="Compilation requested for previously compiled argument types")


def in_parallel(work: Callable[[int], Any], count: int) -> list[Any]:
    """``[work(0), ..., work(count - 1)]``, on as many threads as torch was given (each
    with one torch thread) when there are several of both: a slice's reconstructions are
    too small for torch's own threads to keep two cores busy (docs/results.md, "Tour
    commands in minutes"). A batch worker given one thread runs them in turn. Each call's
    result does not depend on the thread that ran it."""
    workers = min(count, torch.get_num_threads())
    if workers < 2:
        return [work(index) for index in range(count)]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(work, range(count)))
    finally:
        torch.set_num_threads(threads)


def adapt_learned(names: list[str], kspace: torch.Tensor, mask, coil_maps: torch.Tensor | None,
                  notes: list[str], seed: int = 0) -> dict:
    """``--adapt``: each learned k-space method of ``names`` fine-tuned on this scan
    (:func:`recon.training.adapt.adapt_model`), by name; methods it cannot adapt get a
    note and keep their shipped weights.

    Shapes
    ------
    kspace ``(N, C, H, W)``; mask ``(H, W)`` bool tensor (a trajectory gets a note);
    coil_maps ``(N, C, H, W)`` or None.
    """
    from recon.training.adapt import MIN_GAIN_DB, adapt_model

    learned = [name for name in names if recon.registry.info(name).family == "learned"
               and not recon.registry.info(name).superres_only]
    if not learned:
        return {}
    if kspace.shape[1] > 1 and coil_maps is None:
        notes.append("--adapt: multi-coil k-space without coil maps; shipped weights used")
        return {}
    if isinstance(mask, Trajectory):
        notes.append("--adapt: not on trajectories (its hold-out splits grid lines or points); shipped weights used")
        return {}
    adapted = {}
    for name in learned:
        try:
            adapted[name] = adapt_model(name, kspace, mask, coil_maps, seed=seed)
        except ValueError as error:
            notes.append(f"--adapt {name}: {error}; shipped weights used")
            continue
        record = adapted[name].adaptation
        if record.best_step == 0:
            notes.append(f"--adapt {name}: {record.steps} steps in {record.seconds:.0f} s did not estimably gain on the "
                         f"held-out k-space (less than {MIN_GAIN_DB} dB); the shipped weights were kept")
            continue
        notes.append(f"--adapt {name}: fine-tuned on this scan's measured k-space, {record.steps} steps in "
                     f"{record.seconds:.0f} s (kept step {record.best_step}); held-out k-space residual "
                     f"{record.validation_before:.4f} -> {record.validation_after:.4f}, an estimated gain of "
                     f"{record.gain_db:+.2f} dB")
    return adapted


def centre_warning(mask) -> str | None:
    """A warning when a grid mask misses the k-space centre (its DC sample, or most of
    the 3x3 points around it): every method then loses the image's mean intensity and
    its coarsest contrast, which nothing can restore."""
    if isinstance(mask, Trajectory):
        return None
    array = np.asarray(mask.cpu().numpy() if isinstance(mask, torch.Tensor) else mask, dtype=bool)
    height, width = array.shape
    centre = array[max(height // 2 - 1, 0) : height // 2 + 2, max(width // 2 - 1, 0) : width // 2 + 2]
    if array[height // 2, width // 2] and centre.mean() > 0.5:
        return None
    return ("warning: the mask misses the k-space centre (the DC sample or most of the 3x3 around it): every method "
            "loses the image's mean intensity and coarsest contrast, which no reconstruction can restore")


def holdout_sampling(mask: np.ndarray | torch.Tensor | Trajectory) -> np.ndarray | Trajectory:
    """What :mod:`recon.trust.holdout` takes: a grid mask as a bool array, a trajectory as it is."""
    return mask if isinstance(mask, Trajectory) else np.asarray(mask.cpu() if torch.is_tensor(mask) else mask, dtype=bool)


def no_estimate_note(mask: np.ndarray | torch.Tensor | Trajectory) -> str:
    """Why a mask gets no hold-out error estimate (:func:`recon.trust.holdout.holdout_units` < 2)."""
    if isinstance(mask, Trajectory):
        return (f"no error estimate: the trajectory's {mask.coords.shape[0]} shots are too few to hold out 4 folds of "
                "2 (8 shots at least)"
                if mask.coords.ndim == 3 else "no error estimate: the trajectory's samples are not grouped in shots")
    if holdout.mask_kind(np.asarray(mask, dtype=bool)) == "block":
        return "no error estimate: the lowres block is too small for two hold-out folds"
    return "no error estimate: the mask measures too few lines or points outside its calibration block to hold any out"


def guard_applies(mask: np.ndarray | torch.Tensor | Trajectory) -> bool:
    """Whether the guard judges methods on this mask: not on a super-resolution block
    (:data:`UNGUARDED_NOTE` says why)."""
    return holdout.mask_kind(holdout_sampling(mask)) != "block"


UNGUARDED_NOTE = ("guard: not applied to super-resolution (a lowres mask): on the held-out subjects its verdicts "
                  "caught none of the 6 learned slices at least 1 dB worse than cs-tv (docs/results.md)")


def guard_verdicts(estimates: dict[str, list[holdout.ErrorEstimate]], mask: np.ndarray | torch.Tensor | None = None
                   ) -> dict[str, list[guard.Verdict]]:
    """The guard's verdict on every learned method and slice (see :mod:`recon.trust.guard`);
    none for a super-resolution mask (:data:`UNGUARDED_NOTE`), whose estimates rank
    methods (Spearman 0.95 on the test subjects) but do not separate a learned slice
    from CS reliably enough to swap it. Where the estimate cannot judge a learned output
    the verdict flags it and says why (the guard never passes what it cannot judge); on a
    mask without a calibration block it asks a fixed lead (:func:`recon.trust.guard.judging`)."""
    if mask is not None and not guard_applies(mask):
        return {}
    families = {name: recon.registry.info(name).family for name in estimates}
    fallbacks = [name for name, family in families.items() if family in FALLBACK_FAMILIES]
    kind = "" if mask is None else holdout.mask_kind(holdout_sampling(mask))
    verdicts: dict[str, list[guard.Verdict]] = {}
    for name in (n for n, family in families.items() if family == "learned"):
        verdicts[name] = [
            guard.compare(estimate.psnr, estimate.psnr_spread,
                          [(other, estimates[other][index].psnr, estimates[other][index].psnr_spread) for other in fallbacks],
                          **guard.judging(estimate.calibration, kind, untrusted=estimate.untrusted))
            for index, estimate in enumerate(estimates[name])
        ]
    return verdicts


FALLBACK_FAMILIES = ("cs", "baseline")
"""What a guarded learned slice may fall back to: the best CS output, or zero-filled where
its estimate is better still (at high ratios zero-filled can beat every method)."""


def guard_reason(method: str, verdict: guard.Verdict, written: str | None) -> str:
    """One line for the report: which output a slice got and why (``written``: the
    method written, None when the guard is off)."""
    if verdict.reference is None:
        return f"{method}: nothing to compare with (no CS or zero-filled output)"
    if verdict.untrusted:
        judged = f"the estimate cannot judge {method}: {verdict.untrusted}"
        if written is None:
            return f"{method} (--no-guard): {judged}"
        return f"{written} (best estimate): {judged}, so the guard falls back"
    lead, required = -verdict.gap_db, -verdict.threshold_db
    judged = (f"estimated lead over {verdict.reference} {lead:+.2f} dB, "
              f"{'below' if verdict.flagged else 'at least'} the {required:+.2f} dB the guard asks")
    if written is None:
        return f"{method} (--no-guard): {judged}"
    return f"{written}: {method}'s {judged}" if written != method else f"{method}: {judged}"


def apply_guard(outputs: dict[str, list], verdicts: dict[str, list[guard.Verdict]]) -> dict[str, list[str | None]]:
    """Replace, in place, every flagged learned slice of ``outputs`` by the slice of its
    verdict's reference (the best CS or zero-filled output); returns per learned method the name written for each slice (None
    where the learned output was kept)."""
    replaced: dict[str, list[str | None]] = {}
    for name, slices in verdicts.items():
        replaced[name] = []
        for index, verdict in enumerate(slices):
            if verdict.flagged and verdict.reference is not None:
                outputs[name][index] = outputs[verdict.reference][index]
                replaced[name].append(verdict.reference)
            else:
                replaced[name].append(None)
    return replaced


def spread(total: int, count: int, middles: bool = False) -> np.ndarray:
    """``count`` evenly spread indices of ``total`` items (all of them when ``count`` is 0
    or at least ``total``): the slices or readout planes an estimate runs on. The first
    and the last are among them, or with ``middles`` the middle of each of ``count``
    equal runs: the readout planes a 3-D estimate judges the volume by, whose mean is
    then the volume's (the first and last planes of a head hold almost nothing: on the
    sample's 3-D default their true PSNR was 42-52 dB, against 32-37 for the rest)."""
    if not count or count >= total:
        return np.arange(total)
    if middles:
        return np.unique(((np.arange(count) + 0.5) * total / count).astype(int))
    return np.unique(np.linspace(0, total - 1, count).round().astype(int))
