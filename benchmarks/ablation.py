"""Why the learned models lose to CS on measured k-space: an ablation on inputs.

``python -m benchmarks.ablation [--slices 6] [--mask 25pct] [--snr 18.7] [--threads 2] [--methods ...] [--rows 1,2] [--split test] [--json FILE]``

Each row adds one property of measured data to a simulated multi-coil acquisition of
the sample's test slices (never trained on) and reconstructs it as ``recon`` does a
scanner's file (``recon.reconstruct``, ESPIRiT maps estimated from the centre unless
the row says "true maps"). The column that matters is learned − cs-tv: where it falls
from one row to the next, that property costs the learned models more than CS.

The properties, one at a time from the clean row:

- **estimated maps**: the maps come from the data's centre, not from the simulation;
- **noise**: white complex Gaussian noise in every coil at ``--snr`` dB (20 log10 of the
  image's RMS over one coil's noise standard deviation; ``gre.dat`` measures 18.7 dB,
  :func:`physics.statistics.kspace_snr`);
- **correlated noise**: the same, correlated between coils as a real array's is
  (:func:`physics.statistics.random_noise_covariance`) and prewhitened with a simulated
  noise scan, as the readers do; the reference is the noise-free image of the whitened coils;
- **correlated noise, not prewhitened**: the same noise left as it is, as a dataset's
  k-space without a noise scan reaches ``recon.reconstruct``; the array's channel gains
  drawn from 0.6-1.6 (the default) or 0.3-3 (an unbalanced array); rows 10 and 11, after
  the others, so the earlier rows keep their numbers;
- **RSS reference**: the score's reference is the root-sum-of-squares of the noisy fully
  sampled coil images (the fastMRI multi-coil target), not the noise-free image;
- **phase**: a smooth background phase;
- **measured maps**: ``gre.dat``'s own 2-channel sensitivities (ESPIRiT of its full
  scan) against 2 birdcage coils;
- **all**: everything together.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

import masks
import recon
from physics.coils import resample_coil_maps, rss, simulate_coil_maps
from physics.fft import ifft2c
from physics.statistics import add_array_noise, correlated_noise, random_noise_covariance
from recon import metrics

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("zero-filled", "cs-tv", "gan-drn", "csr-gan")
"""The default methods; ``--methods`` may add ``NAME@WEIGHTS`` (a learned model with a trainer's ``best.pt``)."""

ROWS = {
    "clean, true maps": dict(true_maps=True),
    "clean": dict(),
    "+ noise": dict(noise=True),
    "+ correlated noise, prewhitened": dict(noise=True, correlated=True),
    "+ noise, RSS reference": dict(noise=True, rss_reference=True),
    "+ phase": dict(phase=True),
    "2 birdcage coils": dict(coils=2),
    "2 measured coils (gre.dat)": dict(coils=2, measured=True),
    "all (gre.dat maps, correlated noise, RSS ref, phase)": dict(coils=2, measured=True, noise=True, correlated=True,
                                                                 rss_reference=True, phase=True),
    "+ correlated noise, not prewhitened": dict(noise=True, correlated=True, whitened=False),
    "+ correlated noise, not prewhitened, gains 0.3-3": dict(noise=True, correlated=True, whitened=False,
                                                             gain=(0.3, 3.0)),
}


def measured_maps(path: Path) -> torch.Tensor:
    """ESPIRiT maps ``(C, H, W)`` of a raw file's fully sampled first slice, as read."""
    from physics.espirit import espirit_maps
    from pipelines.formats import read_input

    (study,), _ = read_input(path)
    return espirit_maps(torch.from_numpy(study.kspace[0]), calib_width=24)


def acquire(image: np.ndarray, row: dict, snr: float, seed: int, gre_maps: torch.Tensor | None):
    """Fully sampled coil k-space ``(C, H, W)`` of one row's acquisition, its true maps
    and its reference image ``(H, W)``."""
    from physics.acquisition import smooth_phase
    from physics.fft import fft2c

    generator = torch.Generator().manual_seed(seed)
    shape = image.shape
    truth = torch.from_numpy(image).to(torch.complex64)
    if row.get("phase"):
        truth = truth * torch.polar(torch.ones(shape), smooth_phase(shape, generator))
    coils = row.get("coils", 8)
    maps = resample_coil_maps(gre_maps, shape) if row.get("measured") else simulate_coil_maps(coils, shape)
    kspace = fft2c(maps * truth)
    reference = truth.abs()
    if row.get("noise"):
        sigma = float(truth.abs().pow(2).mean().sqrt()) / 10 ** (snr / 20)
        if row.get("correlated") and not row.get("whitened", True):
            array = random_noise_covariance(coils, generator, gain=row.get("gain", (0.6, 1.6)))
            kspace = kspace + sigma * correlated_noise(array, kspace.shape[1:], generator)
        elif row.get("correlated"):
            kspace, clean = add_array_noise(kspace, sigma, generator, scan_samples=4096)
            maps = None  # the whitened array's maps are no longer the simulated ones
            reference = rss(ifft2c(clean)[None])[0]  # the noise-free image of the whitened coils
        else:
            kspace = kspace + sigma * correlated_noise(torch.eye(coils, dtype=torch.complex128), kspace.shape[1:],
                                                       generator)
    if row.get("rss_reference"):
        reference = rss(ifft2c(kspace)[None])[0]
    return kspace, maps, reference


def run(slices: int, mask_name: str, snr: float, seed: int = 0, methods: tuple[str, ...] = METHODS,
        rows: list[int] | None = None, split: str = "test") -> list[dict]:
    from pipelines.data.sample import sample

    test = sample(split)
    chosen = np.linspace(0, len(test) - 1, slices).round().astype(int)
    gre_maps = measured_maps(ROOT / "tests" / "data" / "twix" / "gre.dat")
    results = []
    for number, (name, row) in enumerate(ROWS.items(), start=1):
        if rows and number not in rows:
            continue
        scores = {method: [] for method in methods}
        for index in chosen:
            image = np.array(test.images[index], np.float32)  # a writable copy
            kspace, maps, reference = acquire(image, row, snr, seed + int(index), gre_maps)
            mask = masks.make_mask(masks.parse_preset(mask_name), image.shape, "cartesian",
                                   seed=masks.seed_from_name(test.ids[index], seed)).array
            given = maps.numpy() if row.get("true_maps") else None
            for method in methods:
                base, _, weights = method.partition("@")
                options = {"weights": weights} if weights else {}
                output = recon.reconstruct(kspace.numpy() * mask, mask, base, coil_maps=given, **options)
                scores[method].append((metrics.psnr(np.abs(output), reference.numpy()),
                                       metrics.ssim(np.abs(output), reference.numpy())))
        summary = {method: tuple(float(v) for v in np.mean(values, axis=0)) for method, values in scores.items()}
        results.append({"row": name, "scores": summary})
        print(name, {m: round(v[0], 2) for m, v in summary.items()}, flush=True)
    return results


def markdown(results: list[dict]) -> str:
    """PSNR / SSIM per row and method, and each learned method's PSNR lead over cs-tv."""
    methods = list(results[0]["scores"])
    learned = [m for m in methods if m.split("@")[0] in ("gan-drn", "csr-gan")]
    head = "| input | " + " | ".join(methods) + "".join(f" | {m} − cs-tv" for m in learned) + " |"
    lines = [head, "|---" * (len(methods) + len(learned) + 1) + "|"]
    for result in results:
        s = result["scores"]
        cells = [f"{s[m][0]:.2f} / {s[m][1]:.3f}" for m in methods]
        leads = "".join(f" | {s[m][0] - s['cs-tv'][0]:+.2f}" for m in learned)
        lines.append(f"| {result['row']} | " + " | ".join(cells) + leads + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slices", type=int, default=6)
    parser.add_argument("--mask", default="25pct")
    parser.add_argument("--snr", type=float, default=18.7, help="noise level in dB (gre.dat: 18.7)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="comma-separated; NAME@WEIGHTS runs a learned model with a trainer's best.pt")
    parser.add_argument("--rows", help="comma-separated row numbers (1-based) to run (default: all)")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--split", default="test", choices=("test", "val"),
                        help="the sample's slices to use: test (the table), val (for choosing settings)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    methods = tuple(args.methods.split(","))
    if "cs-tv" not in methods:
        parser.error("--methods must include cs-tv (the table's reference)")
    rows = [int(part) for part in args.rows.split(",")] if args.rows else None
    results = run(args.slices, args.mask, args.snr, methods=methods, rows=rows, split=args.split)
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
