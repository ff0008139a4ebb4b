"""3-D acquisitions: a 1 mm head volume, 8 simulated coils, Poisson-disc (ky, kz) masks.

    python -m benchmarks.volume [--volume ch2.nii.gz] [--masks 10pct,25pct]
        [--methods zero-filled,cs-l1,cs-tv,gan-drn,csr-gan] [--bart-weights 0.003,0.01,0.03]
        [--bart-methods bart-tv,bart-l1]
        [--snr 30] [--threads 2] [--json out.json] [--weights gan-drn=runs/x/best.pt]

The volume (``sample``: the built-in sample's 3-D default, the ICBM152 2009a template;
default: Colin27, ``ch2.nii.gz`` of Debian's ``mricron-data``, a held-out
*test* subject of the corpus, from ``scripts/make_corpus.py``'s cache) is read as
``recon run --input`` reads it; the readout runs along its first voxel axis (its header
names no frequency axis). :func:`pipelines.common.volume.simulate` makes the hybrid k-space
of a 3-D acquisition (3-D birdcage coils, white noise at ``--snr`` dB) and the ESPIRiT
maps of every readout position. Each method reconstructs every (ky, kz) plane, built as
``recon run`` builds it for a 3-D acquisition (a learned model with its weights for
planes, :func:`pipelines.common.evaluation.build_method`; ``--weights NAME=PATH`` tries
other weights, a row ``NAME@PATH``); BART runs
on the whole volume with its own 3-D ESPIRiT and 3-D regularisation, at each of
``--bart-weights`` (its best is the anchor). Reported per method: the volume's PSNR,
SSIM and NMSE (fastMRI's conventions, the RSS-free truth: the simulated magnitude), the
lowest plane PSNR and how many planes fall below zero-filled's, the seconds (for ours
with the maps' seconds added) and the process's peak resident memory after it (BART:
its processes' peak).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

DEFAULT_VOLUME = Path("/tmp/corpus3/cache/scratch/ch2.nii.gz")


def _peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def _scores(volume: np.ndarray, truth: np.ndarray, data_range: float) -> dict:
    from recon import metrics

    planes = [float(metrics.psnr(torch.from_numpy(v), torch.from_numpy(t), data_range=data_range))
              for v, t in zip(volume, truth)]
    ssim = float(np.mean([metrics.ssim(torch.from_numpy(v), torch.from_numpy(t), data_range=data_range)
                          for v, t in zip(volume, truth)]))
    error = float(((volume - truth) ** 2).mean())
    return {"psnr": float(10 * np.log10(data_range**2 / error)), "ssim": ssim,
            "nmse": float(((volume - truth) ** 2).sum() / (truth**2).sum()), "plane_psnr": planes}


def run(volume_path: Path, mask_name: str, methods: list[str], bart_weights: list[float], snr: float,
        bart_methods: tuple[str, ...] = ("bart-tv", "bart-l1"), save=lambda rows: None,
        weights: dict[str, str] | None = None) -> dict:
    import masks
    import recon
    from pipelines.common import volume as volume3d
    from pipelines.common.evaluation import build_method
    from pipelines.common.planes import reconstruct_planes
    from pipelines.formats import read_input
    from recon.classical.bart import pics_volume

    notes: list[str] = []
    if str(volume_path) == "sample":  # the built-in sample's 3-D default, as recon run --acquisition 3d takes it
        from pipelines.data.sample import sample_volume

        name, (planes, ids, _) = "sample:volume", volume3d.readout_planes(sample_volume(), None, notes)
    else:
        (study,), _ = read_input(volume_path)
        name = study.name
        planes, ids, _ = volume3d.readout_planes(study.images, study.meta.get("frequency_axis"), notes)
    ratio = masks.parse_preset(mask_name)
    mask = masks.make_mask(mask_name, planes.shape[1:], "poisson", seed=masks.seed_from_name(name, 0),
                           center_fraction=volume3d.centre_fraction(None, planes.shape[1:], "poisson", ratio))
    started = time.perf_counter()
    kspace, truth, maps = volume3d.simulate(planes, mask, 8, snr, False, masks.seed_from_name(name, 0), notes)
    simulation_seconds = time.perf_counter() - started
    maps_seconds = float(notes[-1].split(" in ")[1].split(" s/plane")[0]) * len(kspace)
    reference = truth.abs().numpy()
    data_range = float(reference.max())
    rows: dict[str, dict] = {}
    runs = [(method, build_method(method, planes=True)) for method in methods]
    runs += [(f"{model}@{path}", recon.get(model, weights=path)) for model, path in (weights or {}).items()]
    for method, reconstructor in runs:
        tick = time.perf_counter()
        images = reconstruct_planes(reconstructor, kspace, torch.from_numpy(mask.array), maps)  # as recon run does
        seconds = time.perf_counter() - tick
        magnitude = torch.stack(images).abs().numpy()
        rows[method] = {**_scores(magnitude, reference, data_range), "seconds": seconds,
                        "seconds_with_maps": seconds + (maps_seconds if method != "zero-filled" else 0.0),
                        "peak_mb": _peak_mb()}
        print(f"  {mask_name} {method}: {rows[method]['psnr']:.2f} dB, {seconds:.0f} s", file=sys.stderr, flush=True)
        save(rows)
    for method in bart_methods:
        for weight in bart_weights:
            tick = time.perf_counter()
            image, steps = pics_volume(kspace, mask.array, method, reg_weight=weight, max_iter=100,
                                       calibration=masks.calibration_region(mask.array))
            name = f"{method}-3d@{weight:g}"
            rows[name] = {**_scores(image.abs().numpy(), reference, data_range), "seconds": time.perf_counter() - tick,
                          "bart_steps": steps, "peak_mb": _peak_mb(resource.RUSAGE_CHILDREN)}
            print(f"  {mask_name} {name}: {rows[name]['psnr']:.2f} dB, {rows[name]['seconds']:.0f} s", file=sys.stderr,
                  flush=True)
            save(rows)
    floor = rows.get("zero-filled", {}).get("plane_psnr")
    for row in rows.values():
        if floor is not None:
            row["planes_below_zero_filled"] = int(sum(p < f for p, f in zip(row["plane_psnr"], floor)))
        row["min_plane_psnr"] = float(min(row["plane_psnr"]))
    return {"volume": str(volume_path), "shape": list(planes.shape), "mask": mask.describe(), "snr_db": snr,
            "simulation_seconds": simulation_seconds, "maps_seconds": maps_seconds, "notes": notes, "methods": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--volume", type=Path, default=DEFAULT_VOLUME)
    parser.add_argument("--masks", default="10pct,25pct")
    parser.add_argument("--methods", default="zero-filled,cs-l1,cs-tv,gan-drn,csr-gan")
    parser.add_argument("--bart-weights", default="0.003,0.01,0.03")
    parser.add_argument("--bart-methods", default="bart-tv,bart-l1")
    parser.add_argument("--snr", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--weights", action="append", default=[], metavar="NAME=PATH",
                        help="also run learned model NAME with these weights (a best.pt or a shipped .pt)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if str(args.volume) != "sample" and not args.volume.is_file():
        print(f"{args.volume}: no such volume (scripts/make_corpus.py caches Colin27's ch2.nii.gz)", file=sys.stderr)
        return 2
    results: list[dict] = []

    def save(rows: dict) -> None:  # after each method: a long run keeps what it finished
        if args.json:
            args.json.write_text(json.dumps([*results, {"mask": mask_name, "partial": rows}], indent=1))

    for mask_name in args.masks.split(","):
        results.append(run(args.volume, mask_name, args.methods.split(","),
                           [float(w) for w in args.bart_weights.split(",") if w], args.snr,
                           tuple(m for m in args.bart_methods.split(",") if m), save,
                           dict(item.split("=", 1) for item in args.weights)))
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    for result in results:
        print(f"\n{result['mask']['params']['preset']} poisson on {result['shape']} (8 coils, {result['snr_db']:g} dB), "
              f"maps {result['maps_seconds']:.0f} s")
        print(f"{'method':22s} {'PSNR':>7s} {'SSIM':>7s} {'min plane':>9s} {'<zf':>4s} {'seconds':>8s} {'+maps':>7s} {'peak MB':>8s}")
        for name, row in result["methods"].items():
            print(f"{name:22s} {row['psnr']:7.2f} {row['ssim']:7.4f} {row['min_plane_psnr']:9.2f} "
                  f"{row.get('planes_below_zero_filled', 0):4d} {row['seconds']:8.1f} "
                  f"{row.get('seconds_with_maps', row['seconds']):7.1f} {row['peak_mb']:8.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
