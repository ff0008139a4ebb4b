"""Super-resolution on the corpus's held-out subjects: the four SR GANs against
zero-padding (sinc), bicubic and TV-regularised SR, measured side by side.

    python -m benchmarks.superres CORPUS [--split test] [--factors 2,4] [--slices 6]
        [--methods ...] [--through-plane 4 [--z-weights best.pt]] [--json out.json]
        (a method NAME@WEIGHTS evaluates a model with a trainer's best.pt)

In-plane: each slice's k-space (single coil) is cut to the central ``H/F x W/F``
block (``lowres-Fx``). Every method reconstructs the same slices; the table gives
mean and worst PSNR and SSIM (fastMRI conventions, data range per slice), the
FID-like and NIQE-like scores (ours: :mod:`recon.training.features`, :mod:`recon.trust.naturalness`;
not comparable with published FID or NIQE), seconds per slice and the largest
data-consistency residual on the measured block.

``--interpolation-check`` asks, per source, whether its slices are a bilinear F×
upsampling of an ``H/F x W/F`` image (as the corpus's 128×128 sources are, resampled to
256): if so, the measured block determines the whole slice, and the exact inverse of
that upsampling reaches float precision (over 100 dB), so the missing band holds no
information beyond the block.

Through-plane (``--through-plane F``): each test subject's contiguous volume
(``volumes/`` of the corpus) is thickened (every F thin slices averaged into one) and restored along z by cubic
and sinc interpolation and by ``soup-gan`` (:mod:`recon.models.through_plane`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import recon
from masks import make_mask
from physics.acquisition import simulate_kspace
from physics.fft import fft1c
from physics.operators import sampling_operator
from pipelines.data.corpus import load_volumes
from recon import metrics
from recon.training.features import feature_distance
from recon.trust import check as trust
from recon.trust.naturalness import naturalness_score

DEFAULT_METHODS = ("zero-filled", "bicubic", "cs-tv", "soup-gan", "med-gan", "esrgan", "mpp-gan")
TV_METHODS = ("cs-tv", "bart-tv")
"""TV-regularised SR (CS with the lowres mask); the check takes the best of those run."""
SR_MODELS = ("soup-gan", "med-gan", "esrgan", "mpp-gan")
TIME_LIMIT = 0.3


def default_methods() -> list[str]:
    """:data:`DEFAULT_METHODS`, with BART's TV beside cs-tv when the ``bart`` binary is installed."""
    methods = list(DEFAULT_METHODS)
    if shutil.which("bart"):
        methods.insert(methods.index("cs-tv") + 1, "bart-tv")
    return methods


def _slices(images: np.ndarray, count: int) -> np.ndarray:
    picks = np.unique(np.linspace(0, len(images) - 1, min(count, len(images))).round().astype(int))
    return images[picks]


def in_plane(images: np.ndarray, factor: int, methods: list[str]) -> dict[str, dict]:
    """Per method: per-slice PSNR/SSIM/seconds/DC residual and the complex outputs."""
    mask = torch.from_numpy(make_mask(f"lowres-{factor}x", images.shape[-2:]).array)
    kspace, truth = simulate_kspace(torch.from_numpy(images), mask)
    operator = sampling_operator(mask)
    rows = {}
    for method in methods:
        name, _, weights = method.partition("@")
        reconstructor = recon.get(name, **({"weights": weights} if weights else {}))
        outputs, scores, seconds, residuals = [], [], [], []
        for index in range(len(images)):
            tick = time.perf_counter()
            with torch.no_grad():
                image = reconstructor.reconstruct(kspace[index:index + 1], mask)[0]
            seconds.append(time.perf_counter() - tick)
            outputs.append(image)
            scores.append(metrics.evaluate(image.abs(), truth[index].abs()))
            residuals.append(trust.consistency_residual(image, kspace[index], operator))
        rows[method] = {"psnr": [s["psnr"] for s in scores], "ssim": [s["ssim"] for s in scores], "seconds": seconds,
                        "dc_residual": residuals, "outputs": torch.stack(outputs)}
    rows["_truth"] = {"outputs": truth}
    return rows


def _bilinear_upsampler(low: int, high: int) -> np.ndarray:
    """``(high, low)``: the corpus's bilinear resampling (``skimage`` order 1) as a matrix."""
    from skimage.transform import resize

    return np.stack([resize(column[None], (1, high), order=1, preserve_range=True)[0] for column in np.eye(low)], 1)


def interpolation_check(images: np.ndarray, factor: int) -> list[float]:
    """PSNR per slice of the exact inverse of a bilinear ``factor``x upsampling, from the
    ``lowres-{factor}x`` block alone: ``x = M_H^-1 Y M_W^-T``, ``M`` = the block's rows
    of the centred DFT of the upsampler; the output is the upsampling of ``x``."""
    mask = torch.from_numpy(make_mask(f"lowres-{factor}x", images.shape[-2:]).array)
    kspace, truth = simulate_kspace(torch.from_numpy(images), mask)
    rows, cols = np.flatnonzero(mask.numpy().any(1)), np.flatnonzero(mask.numpy().any(0))
    up = [_bilinear_upsampler(len(index), size) for index, size in ((rows, images.shape[-2]), (cols, images.shape[-1]))]
    # M: the block's rows of the centred orthonormal DFT (physics.fft's convention) of the upsampler
    dft = [fft1c(torch.eye(u.shape[0], dtype=torch.complex128), dim=-2).numpy() for u in up]
    inverse = [np.linalg.inv((matrix @ u)[index]) for matrix, u, index in zip(dft, up, (rows, cols))]
    scores = []
    for index in range(len(images)):
        block = kspace[index, 0].numpy()[np.ix_(rows, cols)]
        low = inverse[0] @ block @ inverse[1].T
        output = np.abs(up[0] @ low @ up[1].T)
        scores.append(metrics.psnr(output, truth[index].abs().numpy()))
    return scores


def summarise(results: dict[str, dict[str, dict]]) -> dict[str, dict]:
    """Pool the sources of one setting: mean PSNR over sources (each source's mean), worst
    slice, mean SSIM, FID-like and NIQE-like on all slices, median seconds, largest residual."""
    methods = [m for m in next(iter(results.values())) if not m.startswith("_")]
    truth = torch.cat([rows["_truth"]["outputs"] for rows in results.values()])
    table = {}
    for method in methods:
        outputs = torch.cat([rows[method]["outputs"] for rows in results.values()])
        psnr = [p for rows in results.values() for p in rows[method]["psnr"]]
        table[method] = {
            "psnr": float(np.mean([np.mean(rows[method]["psnr"]) for rows in results.values()])),
            "psnr_by_source": {source: float(np.mean(rows[method]["psnr"])) for source, rows in results.items()},
            "psnr_worst": float(np.min(psnr)),
            "ssim": float(np.mean([s for rows in results.values() for s in rows[method]["ssim"]])),
            "fid_like": feature_distance(outputs, truth),
            "niqe_like": naturalness_score(outputs.abs().numpy()),
            "seconds": float(np.median([s for rows in results.values() for s in rows[method]["seconds"]])),
            "dc_residual_max": float(np.max([r for rows in results.values() for r in rows[method]["dc_residual"]])),
        }
    table["_reference"] = {"niqe_like": naturalness_score(truth.abs().numpy())}
    return table


def print_table(title: str, table: dict[str, dict]) -> None:
    print(f"\n**{title}**\n\n| method | PSNR mean (dB) | PSNR worst | SSIM | FID-like (ours) | NIQE-like (ours) | s/slice "
          "| DC residual |\n|---|---|---|---|---|---|---|---|")
    for method, row in table.items():
        if method.startswith("_"):
            continue
        print(f"| {method} | {row['psnr']:.2f} | {row['psnr_worst']:.2f} | {row['ssim']:.4f} | {row['fid_like']:.4f} "
              f"| {row['niqe_like']:.2f} | {row['seconds']:.3f} | {row['dc_residual_max']:.1e} |")
    print(f"| (fully sampled reference) | | | | 0 | {table['_reference']['niqe_like']:.2f} | | |")
    sources = list(next(v for k, v in table.items() if not k.startswith("_"))["psnr_by_source"])
    print("\nPSNR by source: | method | " + " | ".join(sources) + " |")
    for method, row in table.items():
        if not method.startswith("_"):
            print(f"| {method} | " + " | ".join(f"{row['psnr_by_source'][s]:.2f}" for s in sources) + " |")


def checks(tables: dict[str, dict]) -> str:
    """The issue's in-plane targets: the best SR GAN against zero-padding (>= +1.5 dB)
    and the best TV SR that was run (:data:`TV_METHODS`), its data-consistency residual (<= 1e-5) and its time (<= 0.3 s)."""
    lines = ["| check | setting | value | target | met |", "|---|---|---|---|---|"]
    for setting, table in tables.items():
        models = [m for m in table if m.split("@")[0] in SR_MODELS]
        if not models or "zero-filled" not in table:
            continue
        best = max(models, key=lambda m: table[m]["psnr"])
        gain = table[best]["psnr"] - table["zero-filled"]["psnr"]
        lines.append(f"| best SR GAN - zero-padding | {setting}: {best} | {gain:+.2f} dB | >= +1.5 dB | {'yes' if gain >= 1.5 else 'no'} |")
        tv = [m for m in TV_METHODS if m in table]
        if tv:
            best_tv = max(tv, key=lambda m: table[m]["psnr"])
            lead = table[best]["psnr"] - table[best_tv]["psnr"]
            lines.append(f"| best SR GAN - best TV SR | {setting}: {best} - {best_tv} | {lead:+.2f} dB | > 0 | "
                         f"{'yes' if lead > 0 else 'no'} |")
        residual = max(table[m]["dc_residual_max"] for m in models)
        slowest = max(table[m]["seconds"] for m in models)
        lines.append(f"| largest DC residual of the SR GANs | {setting} | {residual:.1e} | <= 1e-5 | {'yes' if residual <= 1e-5 else 'no'} |")
        lines.append(f"| slowest SR GAN, s/slice | {setting} | {slowest:.3f} | <= {TIME_LIMIT} | {'yes' if slowest <= TIME_LIMIT else 'no'} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--split", default="test")
    parser.add_argument("--factors", default="2,4")
    parser.add_argument("--slices", type=int, default=6, help="slices per source (evenly spread)")
    parser.add_argument("--methods", help=f"comma-separated (default: {', '.join(DEFAULT_METHODS)}, and bart-tv when BART is installed); NAME@WEIGHTS runs "
                        "a model with other weights, e.g. soup-gan@runs/soup-gan/best.pt")
    parser.add_argument("--through-plane", type=int, choices=(2, 4), help="also measure through-plane SR by this factor")
    parser.add_argument("--z-weights", help="through-plane: run soup-gan with these weights (a trainer's best.pt) "
                        "instead of the shipped ones for the factor")
    parser.add_argument("--interpolation-check", action="store_true",
                        help="also give, per source, the PSNR of the exact inverse of bilinear Fx upsampling")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the summary tables here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore", UserWarning)
    methods = args.methods.split(",") if args.methods else default_methods()
    manifest = json.loads((args.corpus / "manifest.json").read_text())
    volumes, stacks = {}, {}
    contiguous = load_volumes(args.corpus, args.split)  # contiguous slices, for through-plane SR
    for entry in (e for e in manifest["sources"] if e["split"] == args.split):
        with np.load(args.corpus / entry["file"], allow_pickle=False) as data:
            volumes[f"{entry['name']} ({entry['contrast']})"] = np.asarray(data["images"], np.float32)
        if entry["name"] in contiguous:
            stacks[f"{entry['name']} ({entry['contrast']})"] = contiguous[entry["name"]]
    tables: dict[str, dict] = {}
    for factor in (int(f) for f in args.factors.split(",")):
        results = {source: in_plane(_slices(images, args.slices), factor, methods) for source, images in volumes.items()}
        setting = f"in-plane {factor}x ({sum(len(r['_truth']['outputs']) for r in results.values())} slices, "
        setting += f"{len(results)} sources)"
        tables[setting] = summarise(results)
        print_table(setting, tables[setting])
        if args.interpolation_check:
            inverse = {source: interpolation_check(_slices(images, args.slices), factor) for source, images in volumes.items()}
            tables[setting]["_interpolation_check"] = {source: float(np.mean(scores)) for source, scores in inverse.items()}
            print(f"\nexact inverse of bilinear {factor}x upsampling, PSNR mean by source: "
                  + "; ".join(f"{source} {np.mean(scores):.1f} dB" for source, scores in inverse.items()))
        sys.stdout.flush()
    print("\n" + checks(tables))
    if args.through_plane:
        from recon.models.through_plane import through_plane_benchmark

        if not stacks:
            parser.error(f"--through-plane: no {args.split} subject has a contiguous volume (rebuild the corpus)")
        # The slice files hold slices spread over three axes: only the volumes are contiguous along z.
        through = through_plane_benchmark(stacks, args.through_plane, weights=args.z_weights)
        tables[f"through-plane {args.through_plane}x"] = through
        print(f"\n**through-plane {args.through_plane}x**\n\n| method | PSNR mean (dB) | SSIM | s/volume |\n|---|---|---|---|")
        for method, row in through.items():
            print(f"| {method} | {row['psnr']:.2f} | {row['ssim']:.4f} | {row['seconds']:.2f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(tables, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
