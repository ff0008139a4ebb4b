"""Side-by-side benchmark of the learned reconstructors against compressed sensing, and
the targets of their issues, on the sample's test split.

    python -m benchmarks.learned                      # gan-drn and csr-gan, when shipped
    python -m benchmarks.learned --models gan-drn --json bench-learned.json

For each mask it runs ``recon run`` in this process on the 16 test slices (single
coil, seed 0) with zero-filled, every available CS method (``cs-l1``, ``cs-tv`` and
BART's ``bart-l1`` / ``bart-tv`` when ``bart`` is installed) and the learned models, so
all methods see the same masks and k-space. Each learned model is run once before the
timed run, so loading its weights is not in its seconds per slice. Torch uses
``--threads`` CPU threads (2 by default, the targets' setting).

Targets (checked and printed with the measured numbers):

- GAN-DRN, 10pct cartesian: PSNR >= best CS + 3 dB and SSIM >= best CS + 0.05;
  50pct cartesian: PSNR >= best CS + 0.5 dB; speed <= 0.3 s per 256x256 slice and
  >= 4x faster than the best CS method (the CS method with the highest PSNR).
- CSR-GAN: within 0.5 dB PSNR of the GAN-DRN for 10pct and 50pct, or better;
  10pct >= best CS + 3 dB; 25pct (a ratio outside its training list) above every CS
  method; speed <= 0.3 s per slice.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import recon
from benchmarks.common import available, measure, summary_markdown
from masks import make_mask, parse_preset
from recon.weights import shipped_weights

CS_METHODS = ("cs-l1", "cs-tv", "bart-l1", "bart-tv")
MASKS = ("10pct", "25pct", "50pct")


def warm_up(models: list[str]) -> None:
    """Load each model's weights and run it once at every benchmarked ratio."""
    image = np.zeros((256, 256), np.complex64)
    image[64:192, 64:192] = 1
    kspace = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(image), norm="ortho"))
    for model in models:
        for mask in MASKS:
            sampling = make_mask(parse_preset(mask), (256, 256), "cartesian", seed=0).array
            recon.reconstruct(kspace * sampling, sampling, model)


def check(results: dict[str, dict[str, dict]], models: list[str]) -> list[dict]:
    """Each target with its measured value and whether it is met."""
    checks = []

    def best_cs(mask: str, key: str) -> tuple[str, float]:
        rows = {name: row for name, row in results[mask].items() if name in CS_METHODS}
        name = max(rows, key=lambda n: rows[n][key])
        return name, rows[name][key]

    def add(model: str, target: str, measured: float, goal: float, higher: bool = True, unit: str = "") -> None:
        checks.append({"model": model, "target": target, "measured": measured, "goal": goal,
                       "met": bool(measured >= goal if higher else measured <= goal), "unit": unit})

    for model in models:  # the same targets for every registered model
        ten, fifty = results["10pct"][model], results["50pct"][model]
        cs_name, cs_psnr = best_cs("10pct", "psnr")
        add(model, f"10pct PSNR >= best CS ({cs_name} {cs_psnr:.2f}) + 3 dB", ten["psnr"], cs_psnr + 3, unit=" dB")
        ssim_name, cs_ssim = best_cs("10pct", "ssim")
        add(model, f"10pct SSIM >= best CS ({ssim_name} {cs_ssim:.4f}) + 0.05", ten["ssim"], cs_ssim + 0.05)
        name50, psnr50 = best_cs("50pct", "psnr")
        add(model, f"50pct PSNR >= best CS ({name50} {psnr50:.2f}) + 0.5 dB", fifty["psnr"], psnr50 + 0.5, unit=" dB")
        for mask in ("10pct", "50pct"):
            cs_best = best_cs(mask, "psnr")[0]
            cs_seconds = results[mask][cs_best]["seconds"]
            add(model, f"{mask} speed >= 4x best CS ({cs_best} {cs_seconds:.3f} s)",
                cs_seconds / results[mask][model]["seconds"], 4.0, unit="x")
            others = [name for name in models if name != model]
            if others:  # no model may fall far behind another learned model
                best_other = max(others, key=lambda name: results[mask][name]["psnr"])
                reference = results[mask][best_other]["psnr"]
                add(model, f"{mask} PSNR within 0.5 dB of the best other learned model ({best_other} {reference:.2f})",
                    results[mask][model]["psnr"], reference - 0.5, unit=" dB")
        if "25pct" in results:
            name25, psnr25 = best_cs("25pct", "psnr")
            add(model, f"25pct PSNR above every CS method ({name25} {psnr25:.2f})",
                results["25pct"][model]["psnr"], psnr25 + 1e-9, unit=" dB")
        slowest = max(results[mask][model]["seconds"] for mask in results if model in results[mask])
        add(model, "seconds per 256x256 slice <= 0.3 (slowest mask)", slowest, 0.3, higher=False, unit=" s")
    return checks


def markdown(results: dict[str, dict[str, dict]], checks: list[dict]) -> str:
    lines = [summary_markdown(f"{mask} cartesian", rows) for mask, rows in results.items()]
    lines += ["| model | target | measured | goal | met |", "|---|---|---|---|---|"]
    for item in checks:
        lines.append(f"| {item['model']} | {item['target']} | {item['measured']:.3f}{item['unit']} "
                     f"| {item['goal']:.3f}{item['unit']} | {'yes' if item['met'] else 'NO'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", help="comma-separated learned models (default: every registered model with shipped weights)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results and checks here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from recon.models.spec import trainable_models

    requested = args.models.split(",") if args.models else trainable_models()
    models = [name for name in requested if name and shipped_weights(name)]
    if not models:
        parser.error(f"no shipped weights for {args.models}")
    warm_up(models)
    masks = MASKS
    methods = ["zero-filled", *available(CS_METHODS), *models]
    results = {mask: measure(mask, methods) for mask in masks}
    checks = check(results, models)
    print(markdown(results, checks))
    if args.json:
        Path(args.json).write_text(json.dumps({"threads": args.threads, "results": results, "checks": checks}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
