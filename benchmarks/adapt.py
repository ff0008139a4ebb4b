"""What ``--adapt`` gains: shipped weights against weights fine-tuned on the scan itself.

    python -m benchmarks.adapt CORPUS [--split test] [--mask 10pct] [--mask-type cartesian]
        [--slices 16] [--model gan-drn] [--seconds 150] [--invert] [--json out.json]

For each source of the split, ``--slices`` evenly spread slices form one volume; its
k-space is simulated with the mask seeded by the source's name (one mask for the
volume, as ``recon batch`` does). The shipped model, ``cs-tv`` and the model adapted to
the volume (:func:`recon.training.adapt.adapt_model`, the weights shared by every slice)
reconstruct it; the table gives the mean PSNR/SSIM against the truth, the seconds, and
the gain the held-out k-space estimated. ``--invert`` inverts the contrast inside the
head first: a contrast no model was trained on.
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
from masks import make_mask, seed_from_name, split_family
from physics import simulate_kspace
from recon import metrics
from recon.training.adapt import adapt_model


def invert_contrast(images: np.ndarray) -> np.ndarray:
    """Dark tissue bright and bright tissue dark, inside each slice's (filled) support."""
    from scipy.ndimage import binary_dilation, binary_fill_holes

    result = []
    for image in images:
        support = binary_fill_holes(binary_dilation(image > 0.08 * image.max(), iterations=2))
        result.append(np.where(support, 1.05 * image.max() - image, 0.0))
    return np.stack(result).astype(np.float32)


def _score(reconstructor, kspace, mask, truth) -> tuple[float, float, float]:
    data_range = float(truth.abs().max())
    started = time.perf_counter()
    scores = [metrics.evaluate(reconstructor.reconstruct(kspace[i : i + 1], mask)[0].abs(), truth[i].abs(), data_range)
              for i in range(len(kspace))]
    return (float(np.mean([s["psnr"] for s in scores])), float(np.mean([s["ssim"] for s in scores])),
            time.perf_counter() - started)


def measure(images: np.ndarray, name: str, preset: str, family: str, model: str, seconds: float,
            steps: int | None = None) -> dict:
    kind, center_fraction = split_family(family)
    mask = torch.from_numpy(make_mask(preset, images.shape[-2:], kind, seed=seed_from_name(name),
                                      center_fraction=center_fraction).array)
    kspace, truth = simulate_kspace(torch.from_numpy(images), mask, generator=torch.Generator().manual_seed(seed_from_name(name)))
    row = {"slices": len(images)}
    for label, reconstructor in (("cs-tv", recon.get("cs-tv")), (model, recon.get(model))):
        row[label] = dict(zip(("psnr", "ssim", "seconds"), _score(reconstructor, kspace, mask, truth)))
    adapted = adapt_model(model, kspace, mask, time_limit=seconds, max_steps=steps)
    row["adapted"] = dict(zip(("psnr", "ssim", "seconds"), _score(adapted, kspace, mask, truth)))
    row["adaptation"] = adapted.adaptation.to_dict()
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--mask", default="10pct")
    parser.add_argument("--mask-type", default="cartesian")
    parser.add_argument("--slices", type=int, default=16)
    parser.add_argument("--model", default="gan-drn")
    parser.add_argument("--seconds", type=float, default=150.0, help="adaptation time limit")
    parser.add_argument("--steps", type=int, default=None, help="adaptation step limit (default recon's, 400)")
    parser.add_argument("--invert", action="store_true", help="invert the contrast first")
    parser.add_argument("--sources", help="comma-separated source names (default: all of the split)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    manifest = json.loads((args.corpus / "manifest.json").read_text())
    wanted = set(args.sources.split(",")) if args.sources else None
    results = {}
    print(f"| source | slices | cs-tv | {args.model} shipped | adapted | gain (true) | gain (estimated) | adapt s | recon s/slice |")
    print("|---|---|---|---|---|---|---|---|---|")
    for entry in (e for e in manifest["sources"] if e["split"] == args.split and (wanted is None or e["name"] in wanted)):
        with np.load(args.corpus / entry["file"], allow_pickle=False) as data:
            images = np.asarray(data["images"], np.float32)
        images = images[np.unique(np.linspace(0, len(images) - 1, min(args.slices, len(images))).round().astype(int))]
        if args.invert:
            images = invert_contrast(images)
        row = measure(images, entry["name"], args.mask, args.mask_type, args.model, args.seconds, args.steps)
        results[entry["name"]] = row
        shipped, adapted = row[args.model], row["adapted"]
        print(f"| {entry['name']} | {row['slices']} | {row['cs-tv']['psnr']:.2f} | {shipped['psnr']:.2f} | {adapted['psnr']:.2f} | "
              f"{adapted['psnr'] - shipped['psnr']:+.2f} | {row['adaptation']['adapt_gain_db']:+.2f} | "
              f"{row['adaptation']['adapt_seconds']:.0f} | {adapted['seconds'] / row['slices']:.3f} |", flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
