"""How the methods hold on subjects they never saw: the corpus's held-out subjects.

    python -m benchmarks.generalisation CORPUS [--split test] [--masks 10pct,25pct,50pct]
        (non-Cartesian: --mask-types radial --masks 40spokes, --mask-types spiral --masks 4interleaves)
        [--mask-types cartesian,vd2d,poisson,vd2d:nocal] [--coils 1,8] [--slices 4] [--methods ...] [--json out.json]
        (a family with the suffix :nocal is drawn without a calibration block)
        (a method NAME@WEIGHTS evaluates a learned model with a trainer's best.pt)

CORPUS is a folder built by ``scripts/make_corpus.py``. For each source of the split
(one table per source and contrast), each mask and each number of coils, every method
reconstructs the same evenly spread slices (k-space simulated with the mask seeded by
the source's name, birdcage maps for multi-coil, known to the methods), and the table
gives the mean and the worst slice's PSNR and SSIM.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import recon
from masks import make_sampling, seed_from_name, split_family
from physics import simulate_coil_maps, simulate_kspace
from physics.nufft import Trajectory
from recon import metrics
from recon.api import as_sampling

DEFAULT_METHODS = ("zero-filled", "cs-l1", "cs-tv", "bart-tv", "gan-drn", "csr-gan")


def _slices(images: np.ndarray, count: int) -> np.ndarray:
    picks = np.unique(np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(int))
    return images[picks]


def measure(images: np.ndarray, name: str, mask_preset: str, mask_type: str, coils: int,
            methods: list[str]) -> dict[str, dict[str, float]]:
    """Mean and worst PSNR/SSIM of each method over ``images`` ``(N, H, W)``."""
    shape = images.shape[-2:]
    kind, center_fraction = split_family(mask_type)  # vd2d:nocal: without a calibration block
    sampling = as_sampling(make_sampling(mask_preset, shape, kind, seed=seed_from_name(name), center_fraction=center_fraction))
    mask = sampling  # a bool tensor, or a trajectory for radial/spiral
    maps = simulate_coil_maps(coils, shape).unsqueeze(0) if coils > 1 else None
    generator = torch.Generator().manual_seed(seed_from_name(name))
    kspace, truth = simulate_kspace(torch.from_numpy(images), mask, coil_maps=maps, generator=generator)
    reference = truth.abs().numpy()
    data_range = float(reference.max())
    rows = {}
    for method in methods:
        scores, seconds = [], []
        for index in range(len(images)):
            coil_maps = None if maps is None else maps[0].numpy()
            data = kspace[index].numpy() if coils > 1 else kspace[index, 0].numpy()
            name, _, weights = method.partition("@")  # NAME@WEIGHTS: a model with weights not (yet) shipped
            options = {"weights": weights} if weights else {}
            started = time.perf_counter()
            image = np.abs(recon.reconstruct(data, mask if isinstance(mask, Trajectory) else mask.numpy(), name,
                                             coil_maps=coil_maps, **options))
            seconds.append(time.perf_counter() - started)
            scores.append(metrics.evaluate(torch.from_numpy(image), torch.from_numpy(reference[index]), data_range))
        psnr, ssim = [s["psnr"] for s in scores], [s["ssim"] for s in scores]
        rows[method] = {"psnr": float(np.mean(psnr)), "psnr_worst": float(np.min(psnr)),
                        "ssim": float(np.mean(ssim)), "ssim_worst": float(np.min(ssim)),
                        "psnr_slices": [float(p) for p in psnr], "seconds": float(np.median(seconds))}
    return rows


CS_METHODS = ("cs-l1", "cs-tv", "bart-l1", "bart-tv")


def _split_key(key: str) -> tuple[str, str, str, int]:
    source, mask, coils = (part.strip() for part in key.split("|"))
    preset, family = mask.split()
    return source, preset, family, int(coils.split()[0])


def _learned(rows: dict) -> list[str]:
    return [name for name in rows if name.split("@")[0] in ("gan-drn", "csr-gan")]


def checks(results: dict[str, dict]) -> str:
    """The issue's targets, from merged results: learned against the best CS method
    (the CS method with the highest mean PSNR, per source and setting)."""
    lines = ["| check | setting | value | target | met |", "|---|---|---|---|---|"]
    by_setting: dict[tuple[str, str, int], dict[str, dict]] = {}
    for key, rows in results.items():
        source, preset, family, coils = _split_key(key)
        by_setting.setdefault((preset, family, coils), {})[source] = rows

    def margin(rows: dict, model: str) -> float:
        return rows[model]["psnr"] - max(rows[m]["psnr"] for m in CS_METHODS if m in rows)

    for (preset, family, coils), sources in sorted(by_setting.items()):
        models = sorted({m for rows in sources.values() for m in _learned(rows)})
        if not models or not any(m in rows for rows in sources.values() for m in CS_METHODS):
            continue
        per_model = {m: [margin(rows, m) for rows in sources.values() if m in rows] for m in models}
        best_model = max(per_model, key=lambda m: np.mean(per_model[m]))
        below_zero = sum(
            sum(1 for a, b in zip(rows[best_model]["psnr_slices"], rows["zero-filled"]["psnr_slices"]) if a < b)
            for rows in sources.values() if best_model in rows and "zero-filled" in rows and "psnr_slices" in rows[best_model])
        setting = f"{preset} {family}, {coils} coil(s)"
        if preset == "10pct" and family == "cartesian" and coils == 1:
            for model, margins in per_model.items():
                lines.append(f"| learned - best CS, mean over sources | {setting}: {model} | {np.mean(margins):+.2f} dB "
                             f"(sources {', '.join(f'{v:+.2f}' for v in margins)}) | >= +2 dB, no source < 0 | "
                             f"{'yes' if np.mean(margins) >= 2 and min(margins) >= 0 else 'no'} |")
        if coils == 1:
            mean = float(np.mean(per_model[best_model]))
            lines.append(f"| best learned - best CS | {setting}: {best_model} | {mean:+.2f} dB; {below_zero} slice(s) below zero-filled "
                         f"| >= 0 dB, 0 slices | {'yes' if mean >= 0 and below_zero == 0 else 'no'} |")
        else:
            single = by_setting.get((preset, family, 1), {})
            gains = [rows[best_model]["psnr"] - single[src][best_model]["psnr"] for src, rows in sources.items()
                     if src in single and best_model in single[src] and best_model in rows]
            mean = float(np.mean(per_model[best_model]))
            gain = float(np.mean(gains)) if gains else float("nan")
            lines.append(f"| best learned - best CS; - its single-coil result | {setting}: {best_model} | {mean:+.2f} dB; "
                         f"{gain:+.2f} dB | >= +3 dB; >= +3 dB | {'yes' if mean >= 3 and gain >= 3 else 'no'} |")
    return "\n".join(lines) + "\n"


def print_tables(results: dict[str, dict]) -> None:
    for key, rows in results.items():
        print(f"\n**{key}**\n\n| method | PSNR mean | PSNR worst | SSIM mean | SSIM worst |\n|---|---|---|---|---|")
        for method, row in rows.items():
            print(f"| {method} | {row['psnr']:.2f} | {row['psnr_worst']:.2f} | {row['ssim']:.4f} | {row['ssim_worst']:.4f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path, nargs="?")
    parser.add_argument("--merge", nargs="+", metavar="JSON",
                        help="instead of measuring, merge --json files of earlier runs (e.g. baselines and models measured "
                        "apart) and print their tables and the issue's checks")
    parser.add_argument("--split", default="test")
    parser.add_argument("--masks", default="10pct,25pct,50pct")
    parser.add_argument("--mask-types", default="cartesian,vd2d")
    parser.add_argument("--coils", default="1,8")
    parser.add_argument("--slices", type=int, default=4, help="slices per source (evenly spread)")
    parser.add_argument("--methods", help=f"comma-separated (default: those of {', '.join(DEFAULT_METHODS)} that run here); "
                        "NAME@WEIGHTS runs a learned model with other weights, e.g. csr-gan@runs/x/best.pt")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    if args.merge:
        merged: dict[str, dict] = {}
        for path in args.merge:
            for key, rows in json.loads(Path(path).read_text()).items():
                merged.setdefault(key, {}).update(rows)
        print_tables(merged)
        print("\n" + checks(merged))
        return 0
    if args.corpus is None:
        parser.error("a corpus folder is needed (or --merge)")
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)  # ratio warnings of the learned models
    methods = args.methods.split(",") if args.methods else [m for m in DEFAULT_METHODS if m in recon.available()]
    manifest = json.loads((args.corpus / "manifest.json").read_text())
    results: dict[str, dict] = {}
    for entry in (e for e in manifest["sources"] if e["split"] == args.split):
        with np.load(args.corpus / entry["file"], allow_pickle=False) as data:
            images = _slices(np.asarray(data["images"], np.float32), args.slices)
        for mask_type in args.mask_types.split(","):
            for preset in args.masks.split(","):
                for coils in (int(c) for c in args.coils.split(",")):
                    key = f"{entry['name']} ({entry['contrast']}, {entry['anatomy']}) | {preset} {mask_type} | {coils} coil(s)"
                    rows = measure(images, entry["name"], preset, mask_type, coils, methods)
                    results[key] = rows
                    print(f"\n**{key}**, {len(images)} slices\n\n| method | PSNR mean | PSNR worst | SSIM mean | "
                          "SSIM worst | s/slice |\n|---|---|---|---|---|---|")
                    for method, row in rows.items():
                        print(f"| {method} | {row['psnr']:.2f} | {row['psnr_worst']:.2f} | {row['ssim']:.4f} | "
                              f"{row['ssim_worst']:.4f} | {row['seconds']:.2f} |")
                    sys.stdout.flush()
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
