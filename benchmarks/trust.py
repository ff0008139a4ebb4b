"""How well the reference-free error estimate works: k-space hold-out against the truth.

    python -m benchmarks.trust CORPUS --split val --records val.json     # measure
    python -m benchmarks.trust --calibrate val.json                      # fit and ship the calibration
    python -m benchmarks.trust CORPUS --split test --records test.json   # measure the held-out subjects
    python -m benchmarks.trust --evaluate test.json                      # the issue's figures
    python -m benchmarks.trust --raw tests/data/twix/gre.dat --records raw.json   # measured scanner data

For every source of the split, 1-D (cartesian) and 2-D (vd2d) masks at 10, 25 and
50pct, and 1 and 8 coils (``--mask-types radial,spiral``: trajectories, whole shots held
out, :mod:`recon.trust.holdout_trajectory`; or, with ``--mask-types lowres --masks lowres-2x,lowres-4x
--methods zero-filled,bicubic,cs-tv,soup-gan,med-gan,esrgan,mpp-gan``, super-resolution), every method reconstructs evenly spread slices (k-space
simulated as ``benchmarks.generalisation`` does), and :mod:`recon.trust.holdout` estimates
its error from the k-space alone. Records keep the true NMSE/PSNR and the raw per-fold
estimates, so calibration and evaluation run offline from them.

``--calibrate`` fits, per method family (baseline, cs, learned) and mask kind (1d, 2d, block),
``log10 NMSE_true = a + b log10 NMSE_raw`` (least squares) and writes
:data:`recon.trust.CALIBRATION_FILE`. Fit it on the validation subjects only. (Lines
per method, and lines with the ratio and the coil count as extra terms, were tried: on
the test subjects they ranked the methods no better, with more parameters from four
validation slices.)

The records behind the shipped calibration and its evaluation are kept, gzipped, in
``benchmarks/records`` (``--calibrate`` and ``--evaluate`` read ``.json.gz``).

``--evaluate`` reports the Spearman rank correlation between estimated and true NMSE
over all (slice, method) pairs, how often the method with the lowest estimated error is
truly best (or within 0.3 dB of it), and the guard's flags: every slice where a learned
method is at least 1 dB worse than the best CS should be flagged, and at most 10 % of
those where it is better (:mod:`benchmarks.trust_report`). ``--noise-snr 20,30`` gives each
slice acquisition noise in turn and records two regimes from the same reconstructions:
``noisy`` (judged against the noise-free image) and ``measured`` (against the full noisy
scan's image), each calibrated apart (:data:`recon.trust.calibration.REGIMES`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

import recon
from benchmarks.trust_fit import (  # noqa: F401 (the fit, re-exported)
    _kind,
    apply,
    draw_intervals,
    fit,
    fit_method_offsets,
    fit_offsets,
    merge,
)
from masks import make_mask, make_sampling, seed_from_name, split_family
from physics import simulate_coil_maps, simulate_kspace
from physics.fft import ifft2c
from recon import metrics
from recon.api import as_sampling
from recon.trust import holdout
from recon.trust import holdout_trajectory as trajectories
from recon.trust.calibration import CALIBRATION_FILE, load_calibration
from recon.trust.noise_floor import judged_noise_free, noise_floor

DEFAULT_METHODS = ("zero-filled", "cs-l1", "cs-tv", "gan-drn", "csr-gan")
def _slices(images: np.ndarray, count: int) -> np.ndarray:
    picks = np.unique(np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(int))
    return images[picks]


def measure(images: np.ndarray, name: str, preset: str, mask_type: str, coils: int, methods: list[str],
            folds: int, noise_snr: list[float] | None = None, espirit: bool = False,
            mask_per_slice: bool = False) -> list[dict]:
    """One record per (slice, method): the truth and the raw hold-out estimate
    (``espirit``: multi-coil methods get ESPIRiT maps from the measured centre, as
    ``recon run`` gives them, instead of the true maps of the simulation). With
    ``noise_snr`` (dB, one per slice in turn) each slice gets acquisition noise and two
    records per method from the same reconstructions: regime ``noisy`` (judged against the
    noise-free image, the held-out samples' coil noise taken out of the residuals)
    and, on a grid, ``measured`` (judged against the full noisy scan's image, RSS over
    coils, as a scanner's data is; residuals whole).

    The mask is drawn once for the source (seeded by ``name``), or, with
    ``mask_per_slice``, once for every slice (seeded by ``name:slice``): the hold-out's
    bias on 1-D masks follows the draw more than the subject (docs/results.md, issue 36,
    sixth part), so a calibration should see many draws. Each record keeps its
    ``mask_seed``."""
    if mask_per_slice:
        return [record for index in range(len(images))
                for record in _measure(images[index : index + 1], name, preset, mask_type, coils, methods, folds,
                                       [noise_snr[index % len(noise_snr)]] if noise_snr else None, espirit,
                                       f"{name}:{index}", index)]
    return _measure(images, name, preset, mask_type, coils, methods, folds, noise_snr, espirit, name, 0)


def _measure(images: np.ndarray, name: str, preset: str, mask_type: str, coils: int, methods: list[str],
             folds: int, noise_snr: list[float] | None, espirit: bool, mask_seed: str, first: int) -> list[dict]:
    """:func:`measure` with the mask seeded by ``mask_seed`` and the slices numbered from
    ``first``."""
    shape = images.shape[-2:]
    kind, center_fraction = split_family(mask_type)  # vd2d:nocal: no calibration block
    made = make_sampling(preset, shape, kind, seed=seed_from_name(mask_seed), center_fraction=center_fraction)
    mask = as_sampling(made)  # a bool grid mask, or a trajectory (radial, spiral: its shots are held out)
    mask_np = mask if isinstance(mask, trajectories.Trajectory) else made.array
    maps = simulate_coil_maps(coils, shape).unsqueeze(0) if coils > 1 else None
    generator = torch.Generator().manual_seed(seed_from_name(mask_seed))
    if not noise_snr:
        kspace, truth = simulate_kspace(torch.from_numpy(images), mask, coil_maps=maps, generator=generator)
        return _seeded(_records(kspace, mask_np, _maps(kspace, mask_np, maps, espirit), {"clean": truth.abs()}, name,
                                preset, mask_type, coils, methods, folds, first=first), mask_seed, espirit)
    records = []
    for index in range(len(images)):
        snr = noise_snr[index % len(noise_snr)]
        image = torch.from_numpy(images[index : index + 1])
        if isinstance(mask, trajectories.Trajectory):
            kspace, truth = simulate_kspace(image, mask, coil_maps=maps, noise_snr=snr, generator=generator)
            references = {"noisy": truth.abs()}
        else:
            full, truth = simulate_kspace(image, None, coil_maps=maps, noise_snr=snr, generator=generator)
            kspace = full * torch.from_numpy(mask_np)
            references = {"noisy": truth.abs(), "measured": ifft2c(full).abs().pow(2).sum(dim=1).sqrt()}
        records += _records(kspace, mask_np, _maps(kspace, mask_np, maps, espirit), references, name, preset, mask_type,
                            coils, methods, folds, first=first + index, snr=snr)
    return _seeded(records, mask_seed, espirit)


def _seeded(records: list[dict], mask_seed: str, espirit: bool = False) -> list[dict]:
    """The records with their mask's seed, and ``"maps": "espirit"`` where the methods got
    ESPIRiT maps (``--espirit``, multi-coil): a condition the calibration's intervals must
    hold in (:func:`benchmarks.trust_fit.draw_intervals`)."""
    for record in records:
        record["mask_seed"] = mask_seed
        if espirit and record.get("coils", 1) > 1:
            record["maps"] = "espirit"
    return records


def _maps(kspace: torch.Tensor, mask_np, maps: torch.Tensor | None, espirit: bool) -> torch.Tensor | None:
    """The coil maps the methods get: ESPIRiT's from the measured centre (``espirit``, a grid
    mask, several coils), else the simulation's own."""
    if not espirit or maps is None or isinstance(mask_np, trajectories.Trajectory):
        return maps
    from recon.api import coil_maps_for

    return coil_maps_for(kspace, mask_np)


def measure_raw(path: Path, preset: str, mask_type: str, methods: list[str], folds: int) -> list[dict]:
    """Records of a fully sampled raw scanner file (twix, ISMRMRD, ...) undersampled
    retrospectively, as ``recon batch`` does it: the mask seeded by the file's name,
    ESPIRiT maps from the undersampled centre, and as the truth the root-sum-of-squares
    image of the full scan (fastMRI's multi-coil target)."""
    from pipelines.formats import read_input
    from recon.api import coil_maps_for

    studies, _ = read_input(path)
    study = studies[0]
    if study.kspace is None or study.mask is not None:
        raise ValueError(f"{path}: not fully sampled raw k-space, so there is no reference to judge the estimate by")
    full = torch.from_numpy(np.ascontiguousarray(study.kspace)).to(torch.complex64)
    kind, center_fraction = split_family(mask_type)
    mask_np = make_mask(preset, tuple(full.shape[-2:]), kind, seed=seed_from_name(study.name),
                        center_fraction=center_fraction).array
    kspace = full * torch.from_numpy(mask_np)
    maps = coil_maps_for(kspace, mask_np) if full.shape[1] > 1 else None
    reference = ifft2c(full).abs().pow(2).sum(dim=1).sqrt()
    return _records(kspace, mask_np, maps, {"measured": reference}, study.name, preset, mask_type, full.shape[1],
                    methods, folds)


PLANE_SNR_DB = 30.0
"""The noise of a simulated 3-D acquisition: ``recon run --acquisition 3d``'s default."""


def read_volume(path: str) -> tuple[str, np.ndarray]:
    """``(name, volume (X, Y, Z))`` with the readout first, as ``recon run --acquisition 3d
    [--input PATH]`` takes it: ``sample`` is the built-in template."""
    from pipelines.common.volume import readout_planes

    if path == "sample":
        from pipelines.data.sample import sample_volume

        return "sample:volume", readout_planes(sample_volume(), None, [])[0]
    from pipelines.formats import read_input

    study = read_input(Path(path))[0][0]
    return study.name, readout_planes(study.images, study.meta.get("frequency_axis"), [])[0]


def measure_planes(path: str, preset: str, mask_type: str, methods: list[str], folds: int, planes: int,
                   coils: int = 8, snr: float = PLANE_SNR_DB) -> list[dict]:
    """Records of the (ky, kz) planes of a simulated 3-D acquisition of a volume, made as
    ``recon run --acquisition 3d`` makes and judges it
    (:func:`pipelines.common.volume.simulate`: 3-D birdcage coils, noise at ``snr`` dB,
    ESPIRiT maps per readout position; the mask of ``_load_mask``; the estimate's
    ``planes`` planes, the middles of as many equal runs; the learned models with their
    plane weights), mask family ``FAMILY@planes``, in the regimes ``noisy`` (judged
    against the noise-free volume) and ``measured`` (against the full scan's RSS image,
    as a scanner's 3-D k-space retrospectively undersampled is judged; the measured peak
    is that of the judged planes)."""
    from pipelines.common import volume as common_volume
    from pipelines.common.evaluation import build_method, spread
    from recon.trust.calibration import on_planes

    name, volume = read_volume(path)
    kind, center_fraction = split_family(mask_type)
    shape = volume.shape[1:]
    fraction = common_volume.centre_fraction(center_fraction, shape, kind, float(preset.rstrip("pct")) / 100)
    made = make_sampling(preset, shape, kind, seed=seed_from_name(name), center_fraction=fraction)
    picks = [int(i) for i in spread(len(volume), planes, middles=True)]
    scan: dict[int, torch.Tensor] = {}  # the full scan's RSS image of each judged plane

    def full_scan(hybrid: torch.Tensor) -> None:
        scan.update({index: ifft2c(hybrid[index]).abs().pow(2).sum(dim=0).sqrt() for index in picks})

    kspace, truth, maps = common_volume.simulate(volume, made, coils, snr, False, seed_from_name(name), [], full_scan)
    reference = truth.abs()
    peaks = {"noisy": float(reference.max()), "measured": float(max(image.max() for image in scan.values()))}
    records = []
    for index in picks:
        records += _records(kspace[index : index + 1], made.array, None if maps is None else maps[index : index + 1],
                            {"noisy": reference[index][None], "measured": scan[index][None]}, name, preset,
                            on_planes(mask_type), coils, methods, folds, first=index, snr=snr, peaks=peaks,
                            build=lambda method: build_method(method, planes=True))
    return records


def _records(kspace: torch.Tensor, mask_np: np.ndarray, coil_maps: torch.Tensor | None, references: dict[str, torch.Tensor],
             name: str, preset: str, mask_type: str, coils: int, methods: list[str], folds: int, first: int = 0,
             snr: float | None = None, peaks: dict[str, float] | None = None,
             build: Callable[[str], Any] = recon.get) -> list[dict]:
    """One record per (slice, method, regime) of an acquisition ``(N, C, H, W)`` and its
    truth ``(N, H, W)`` per regime (:data:`recon.trust.calibration.REGIMES`): the method's
    true PSNR and NMSE and its raw hold-out estimate (``mask_np`` may be a trajectory: its
    records are of kind ``trajectory``). Slice ``i`` is numbered ``first + i``. ``peaks``:
    the PSNR's data range per regime (default: each reference slice's maximum; a volume's
    planes take the volume's); ``build``: what builds a method from its name (default
    ``recon.get``; a ``NAME@WEIGHTS`` label is built by ``recon.get`` with its weights)."""
    trajectory = isinstance(mask_np, trajectories.Trajectory)
    mask = mask_np if trajectory else torch.from_numpy(mask_np)
    records = []
    unmeasured = holdout.unmeasured_units(mask_np)
    block = not trajectory and holdout.block_shape(mask_np) is not None
    for index in range(kspace.shape[0]):
        number = first + index
        fold_masks = holdout.holdout_folds(mask_np, min(folds, holdout.holdout_units(mask_np)),  # as recon run does
                                           seed=seed_from_name(f"{name}:{number}"))
        data = kspace[index : index + 1]
        maps = coil_maps if coil_maps is None or coil_maps.shape[0] == 1 else coil_maps[index : index + 1]
        noisy = any(judged_noise_free(regime) for regime in references) and not (trajectory or block)
        floor = noise_floor(data, mask_np, maps) if noisy else 0.0  # only a noisy regime takes it off
        for label in methods:  # NAME@WEIGHTS: a learned model with weights not (yet) shipped, recorded as NAME@
            method, _, weights = label.partition("@")
            reconstructor = recon.get(method, weights=weights) if weights else build(method)
            method = f"{method}@" if weights else method
            started = time.perf_counter()
            with torch.no_grad():
                image = reconstructor.reconstruct(data, mask, maps)
            seconds = time.perf_counter() - started
            started = time.perf_counter()
            whole = holdout.fold_residuals(reconstructor, data, mask, maps, fold_masks)
            energy = holdout.kspace_energy(image, maps)
            spectrum = holdout.measured_spectrum(data, mask_np) if block else None
            inside = holdout.block_misfit(image, data, mask, maps) if block else 0.0
            estimate_seconds = time.perf_counter() - started
            for regime, reference in references.items():
                taken = floor if judged_noise_free(regime) else 0.0  # the held-out coil noise
                residuals = holdout.without_noise_floor(whole, mask_np, taken) if taken else whole
                errors = holdout.raw_estimates(residuals, unmeasured, energy, spectrum, inside)
                data_range = float(reference.max()) if peaks is None else peaks[regime]
                scores = metrics.evaluate(image[0].abs(), reference[index], data_range)
                records.append({"source": name, "slice": number, "mask": preset, "mask_type": mask_type, "coils": coils,
                                "regime": regime, "snr": snr, "noise_floor": taken,
                                "dimensions": None if trajectory else holdout.mask_dimensions(mask_np),
                                "kind": holdout.mask_kind(mask_np),
                                "spectrum": None if spectrum is None else spectrum.tolist(), "inside": inside, "method": method,
                                "family": reconstructor.family, "psnr": scores["psnr"], "nmse": scores["nmse"],
                                "fold_nmse": errors,
                                "residuals": [[[float(f"{v:.6g}") for v in row] for row in r] for r in residuals],
                                "unmeasured": unmeasured.tolist(), "energy": energy, "seconds": seconds,
                                "estimate_seconds": estimate_seconds,
                                "peak": float(image[0].abs().max()), "mean_energy": float(image[0].abs().pow(2).mean()),
                                "data_range": data_range})
    return records


def read_records(path: Path) -> list[dict]:
    """Records written by ``--records`` (JSON, or gzipped JSON: ``.gz``, as the records
    behind the shipped calibration are kept in ``benchmarks/records``)."""
    if path.suffix == ".gz":
        import gzip

        return json.loads(gzip.decompress(path.read_bytes()))
    return json.loads(path.read_text())


def _sources(args: argparse.Namespace):
    """``(name, images)`` of every source of ``args.split``: the corpus's (``--sources``
    picks some) and, with ``--sample``, the built-in sample's slices of that split."""
    if args.corpus is not None:
        manifest = json.loads((args.corpus / "manifest.json").read_text())
        wanted = set(args.sources.split(",")) if args.sources else None
        for entry in (e for e in manifest["sources"] if e["split"] == args.split and (wanted is None or e["name"] in wanted)):
            with np.load(args.corpus / entry["file"], allow_pickle=False) as data:
                yield entry["name"], np.asarray(data["images"], np.float32)
    if args.sample:
        from pipelines.data.sample import sample

        yield f"sample-{args.split}", np.array(sample(args.split).images, np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, nargs="?")
    parser.add_argument("--split", default="test")
    parser.add_argument("--masks", default="10pct,25pct,50pct")
    parser.add_argument("--mask-types", default="cartesian,vd2d")
    parser.add_argument("--coils", default="1,8")
    parser.add_argument("--slices", type=int, default=3, help="slices per source (evenly spread)")
    parser.add_argument("--sources", help="comma-separated source names of the split (default: all)")
    parser.add_argument("--raw", type=Path, nargs="+", metavar="FILE",
                        help="fully sampled raw scanner files (twix, ISMRMRD, ...) to measure instead of a corpus, "
                        "each undersampled with every --masks x --mask-types (the truth: the full scan's RSS image)")
    parser.add_argument("--planes", nargs="+", metavar="VOLUME",
                        help="3-D acquisitions simulated from these volumes (NIfTI, DICOM, or 'sample' for the "
                             "built-in template), judged on their (ky, kz) planes as recon run --acquisition 3d does")
    parser.add_argument("--plane-count", type=int, default=8, help="with --planes: planes per volume (the middles of equal runs, as the run)")
    parser.add_argument("--sample", action="store_true",
                        help="add the built-in sample's slices of --split as a source (sample-SPLIT)")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--folds", type=int, default=holdout.DEFAULT_FOLDS)
    parser.add_argument("--noise-snr", help="comma-separated SNRs in dB, one per slice in turn: acquisition noise, "
                        "and records of regimes noisy and measured (recon.trust.calibration.REGIMES)")
    parser.add_argument("--mask-per-slice", action="store_true",
                        help="draw a new mask for every slice (seeded by source and slice), not one per source: "
                        "the 1-D hold-out's bias follows the draw (docs/results.md, issue 36, sixth part)")
    parser.add_argument("--espirit", action="store_true",
                        help="multi-coil methods get ESPIRiT maps from the measured centre (as recon run), not the true maps")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--records", type=Path, help="write the records here (JSON)")
    parser.add_argument("--calibrate", type=Path, nargs="+", metavar="RECORDS",
                        help="fit the calibration from validation records (one or more files)")
    parser.add_argument("--out", type=Path, default=CALIBRATION_FILE, help="where --calibrate writes")
    parser.add_argument("--keep-kinds", help="with --calibrate: keep the shipped lines of these mask kinds (e.g. 1d,2d) "
                        "and measure only their intervals")
    parser.add_argument("--method-offsets", type=Path, nargs="+", metavar="RECORDS",
                        help="fit offsets of each method in these validation records on its own (e.g. cg-sense, "
                        "whose hold-out is unlike zero-filled's) into the calibration at --out, replacing its earlier ones")
    parser.add_argument("--offset-methods", help="with --method-offsets: fit these methods only (comma-separated; "
                        "default every method of the records)")
    parser.add_argument("--draw-intervals", type=Path, nargs="+", metavar="RECORDS",
                        help="take the stated intervals of the 1-D entries of the calibration at --out from these "
                        "validation records with a mask drawn per slice (--mask-per-slice), keeping every estimate")
    parser.add_argument("--evaluate", type=Path, nargs="+", metavar="RECORDS", help="the issue's figures from test records")
    parser.add_argument("--calibration", type=Path, help="with --evaluate: this calibration file (default: the shipped one)")
    parser.add_argument("--folds-used", type=int, help="with --calibrate / --evaluate: estimate from the records' first "
                        "N folds only (default: the calibration's folds_used with --evaluate, else all)")
    args = parser.parse_args(argv)
    if args.calibrate:
        records = [record for path in args.calibrate for record in read_records(path)]
        kept = set(args.keep_kinds.split(",")) if args.keep_kinds else set()
        shipped = json.loads(args.out.read_text()) if args.out.is_file() else {"lines": {}}
        fixed = {key: line for key, line in shipped.get("lines", {}).items() if key.split(":")[1] in kept}
        fitted = fit(records, fixed, args.folds_used)
        fitted["fitted_on"] = (f"{', '.join(path.name for path in args.calibrate)}: validation subjects "
                               "(benchmarks.trust --split val)")
        if fixed:
            fitted["fitted_on"] += (f"; lines {', '.join(sorted(kept))} kept from the earlier fit "
                                    f"({shipped.get('fitted_on', 'unknown')}), their intervals measured on these records")
        if args.out.is_file():  # lines of mask kinds these records lack are kept from the earlier fit
            fitted = merge(json.loads(args.out.read_text()), fitted,
                           {_kind(r) for r in records if r.get("regime", "clean") == "clean"},  # lines: clean only
                           {r.get("mask_type", "").split(":")[0] for r in records})
        args.out.write_text(json.dumps(fitted, indent=1) + "\n")
        print(json.dumps(fitted["lines"], indent=1))
        return 0
    if args.method_offsets:
        records = [r for path in args.method_offsets for r in read_records(path)]
        if args.offset_methods:
            records = [r for r in records if r["method"].rstrip("@") in args.offset_methods.split(",")]
        methods = sorted({r["method"].rstrip("@") for r in records})
        calibration = json.loads(args.out.read_text())
        fitted = fit_method_offsets(records)
        offsets = {key: entry for key, entry in calibration.get("offsets", {}).items() if key.split(":")[0] not in methods}
        calibration["offsets"] = {**offsets, **fitted}
        earlier = calibration.get("method_offsets_fitted_on", {})
        if isinstance(earlier, str):  # before each method kept its own: CG-SENSE's were the only ones
            earlier = {"cg-sense": earlier}
        calibration["method_offsets_fitted_on"] = {**earlier, **{method: ", ".join(path.name for path in args.method_offsets)
                                                                 for method in methods}}
        args.out.write_text(json.dumps(calibration, indent=1) + "\n")
        for key, entry in sorted(fitted.items()):
            print(f"{key}: {entry['offset_db']:+.2f} dB, interval {entry['interval_db']} ({entry['points']} records, "
                  f"{entry['sources']} subjects)")
        return 0
    if args.draw_intervals:
        records = [r for path in args.draw_intervals for r in read_records(path)]
        earlier = json.loads(args.out.read_text())
        updated = draw_intervals(earlier, records)
        updated["intervals_drawn_on"] = ", ".join(path.name for path in args.draw_intervals)
        args.out.write_text(json.dumps(updated, indent=1) + "\n")
        for key, entry in sorted(updated["offsets"].items()):
            if "interval_from" in entry:
                before = earlier["offsets"].get(key, {}).get("interval_db", f"none (the offset of {entry.get('offset_from')})")
                print(f"{key}: {before} -> {entry['interval_db']} ({entry['interval_from']})")
        for key, origin in sorted(updated.get("interval_from", {}).items()):
            print(f"{key}: {earlier.get('interval_db', {}).get(key)} -> {updated['interval_db'][key]} ({origin})")
        return 0
    if args.evaluate:
        records = [r for path in args.evaluate for r in read_records(path)]
        calibration = load_calibration(args.calibration)
        from benchmarks.trust_report import evaluate

        print(evaluate(records, calibration, args.folds_used or calibration.get("folds_used")))
        return 0
    if args.corpus is None and not args.sample and not args.raw and not args.planes:
        parser.error("a corpus folder, --sample, --raw or --planes is needed (or --calibrate / --evaluate)")
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    records: list[dict] = []
    for path in args.raw or []:
        for mask_type in args.mask_types.split(","):
            for preset in args.masks.split(","):
                started = time.perf_counter()
                records += measure_raw(path, preset, mask_type, args.methods.split(","), args.folds)
                print(f"{path.name} {preset} {mask_type}: {time.perf_counter() - started:.0f} s", flush=True)
                if args.records:
                    args.records.write_text(json.dumps(records))
    for path in args.planes or []:
        for mask_type in args.mask_types.split(","):
            for preset in args.masks.split(","):
                started = time.perf_counter()
                records += measure_planes(path, preset, mask_type, args.methods.split(","), args.folds,
                                          args.plane_count)
                print(f"{path} planes {preset} {mask_type}: {time.perf_counter() - started:.0f} s", flush=True)
                if args.records:
                    args.records.write_text(json.dumps(records))
    for name, images in _sources(args):
        images = _slices(images, args.slices)
        for mask_type in args.mask_types.split(","):
            for preset in args.masks.split(","):
                for coils in (int(c) for c in args.coils.split(",")):
                    started = time.perf_counter()
                    records += measure(images, name, preset, mask_type, coils, args.methods.split(","), args.folds,
                                       [float(v) for v in args.noise_snr.split(",")] if args.noise_snr else None,
                                       args.espirit, args.mask_per_slice)
                    print(f"{name} {preset} {mask_type} {coils} coil(s): {time.perf_counter() - started:.0f} s", flush=True)
                    if args.records:
                        args.records.write_text(json.dumps(records))
    return 0


if __name__ == "__main__":
    sys.exit(main())
