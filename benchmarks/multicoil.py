"""Multi-coil: coil maps (ours against BART ``ecalib`` and SigPy), and what CS and the
learned models cost on a knee-sized 15-coil slice.

``python -m benchmarks.multicoil`` prints:

1. **Maps.** cs-tv with the true maps, with our ESPIRiT maps (``physics.espirit``), with
   SigPy's ``EspiritCalib`` (what ``recon`` used before) and with ``bart ecalib -m1``
   maps, on a Shepp-Logan phantom with 8 birdcage coils and on the ODIN brain slice
   with ODIN's measured 8-channel array (``--corpus``), 1-D cartesian 10pct and
   25pct; PSNR against the coil-combined truth, and seconds per map estimate.
2. **Speed.** A 15-coil 640×368 slice (the sample's brain resized; random smooth
   maps), 1-D cartesian 25pct (``--ratio``, ``--mask-type``): seconds of the map estimate, of cs-tv (the torch
   solver on 8 compressed coils) against SigPy's ADMM on all 15 coils, and of each
   learned model, with PSNR for each.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import recon
from benchmarks.common import ecalib_kernel
from masks import calibration_region, make_mask
from physics.acquisition import simulate_kspace
from physics.coils import random_coil_maps, resample_coil_maps, simulate_coil_maps
from physics.espirit import espirit_maps
from recon import metrics
from recon.api import coil_maps_for


def _psnr(image: torch.Tensor, truth: torch.Tensor) -> float:
    return float(metrics.psnr(image.abs(), truth.abs()))


def bart_ecalib(kspace: torch.Tensor, calib: int) -> torch.Tensor:
    """``bart ecalib -m1 -r CALIB`` maps of one slice ``(C, H, W)``."""
    from recon.classical.bart import read_cfl, write_cfl

    with tempfile.TemporaryDirectory() as folder:
        write_cfl(Path(folder) / "k", np.ascontiguousarray(kspace.numpy().transpose(1, 2, 0)[:, :, None, :]))
        subprocess.run(["bart", "ecalib", "-m1", "-r", str(calib), str(Path(folder) / "k"), str(Path(folder) / "m")],
                       check=True, capture_output=True)
        maps = read_cfl(Path(folder) / "m")
    return torch.from_numpy(np.ascontiguousarray(maps.reshape(maps.shape[0], maps.shape[1], -1).transpose(2, 0, 1)))


def sigpy_espirit(kspace: torch.Tensor, calib: int) -> torch.Tensor:
    import sigpy.mri.app

    return torch.from_numpy(np.asarray(sigpy.mri.app.EspiritCalib(
        kspace.numpy(), calib_width=calib, thresh=0.02, crop=0.95, show_pbar=False).run(), np.complex64))


def _timed(function, *args):
    start = time.perf_counter()
    result = function(*args)
    return result, time.perf_counter() - start


def maps_table(cases: dict[str, tuple[torch.Tensor, torch.Tensor]], ratios=(0.1, 0.25)) -> str:
    lines = ["| data | mask | true maps | ours (s) | SigPy EspiritCalib (s) | bart ecalib (s) |", "|---|---|---|---|---|---|"]
    cs = recon.get("cs-tv")
    for name, (image, maps) in cases.items():
        for ratio in ratios:
            mask = torch.from_numpy(make_mask(ratio, tuple(image.shape), "cartesian", seed=3).array)
            kspace, truth = simulate_kspace(image[None], mask, coil_maps=maps[None], noise_snr=40,
                                            generator=torch.Generator().manual_seed(1))
            calib = calibration_region(mask.numpy())
            row = [name, f"{ratio:.0%} ({calib[1]} calib lines)", f"{_psnr(cs.reconstruct(kspace, mask, maps[None]), truth):.2f}"]
            # ours: the calibration rectangle; SigPy takes a square; BART finds the region itself
            estimators = [lambda k, c: espirit_maps(k, calib_width=c), lambda k, c: sigpy_espirit(k, min(c))]
            if shutil.which("bart"):
                estimators.append(lambda k, c: bart_ecalib(k, max(c)))
            for estimate in estimators:
                estimated, seconds = _timed(estimate, kspace[0], calib)
                row.append(f"{_psnr(cs.reconstruct(kspace, mask, estimated[None]), truth):.2f} ({seconds:.2f} s)")
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


BART_WEIGHT_FACTORS = (0.25, 0.5, 1.0, 2.0, 4.0)
"""``--bart``: the weights swept, as multiples of the ``bart-tv`` adapter's weight for the mask."""


def bart_pics(kspace: torch.Tensor, mask: torch.Tensor, calib: tuple[int, int], weight: float) -> tuple[torch.Tensor, float]:
    """BART alone on one multi-coil slice ``(C, H, W)``: ``ecalib -m1`` on the calibration
    rectangle (its own maps), then ``pics -S -n -i 100 -R T:3:0:weight``; the image
    ``(1, H, W)`` and the seconds of the two commands."""
    from recon.classical.bart import read_cfl, write_cfl

    height, width = kspace.shape[-2:]
    with tempfile.TemporaryDirectory() as folder:
        write_cfl(Path(folder) / "k", np.ascontiguousarray((kspace * mask).numpy().transpose(1, 2, 0)[:, :, None, :]))
        started = time.perf_counter()
        kernel = ecalib_kernel(calib)
        for command in (["ecalib", "-m1", "-k", f"{kernel}:{kernel}:1", "-r", f"{calib[0]}:{calib[1]}:1", "k", "m"],
                        ["pics", "-S", "-n", "-i", "100", "-R", f"T:3:0:{weight}", "k", "m", "x"]):
            subprocess.run(["bart", *command], cwd=folder, check=True, capture_output=True)
        seconds = time.perf_counter() - started
        image = read_cfl(Path(folder) / "x").reshape(height, width)
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.complex64))[None], seconds


def speed_table(image: torch.Tensor, coils: int = 15, shape=(640, 368), ratio: float = 0.25, before: bool = True,
                repeats: int = 1, mask_type: str = "cartesian", bart: bool = False) -> str:
    import torch.nn.functional as F

    big = F.interpolate(image[None, None].float(), size=shape, mode="bilinear", align_corners=False)[0]
    maps = random_coil_maps(coils, shape, torch.Generator().manual_seed(0))
    mask = torch.from_numpy(make_mask(ratio, shape, mask_type, seed=3).array)
    kspace, truth = simulate_kspace(big, mask, coil_maps=maps[None], noise_snr=40, generator=torch.Generator().manual_seed(1))
    calib = calibration_region(mask.numpy())
    _timed(lambda: coil_maps_for(kspace.clone(), mask.numpy()))  # warm-up
    # a fresh copy of the data for each timing: physics.coils keeps the last compression basis
    fresh = kspace.clone()
    estimated, seconds = _timed(lambda: coil_maps_for(fresh, mask.numpy()))
    lines = [f"**{coils} coils, {shape[0]}×{shape[1]}, {mask_type} {ratio:.0%}**", "",
             "| step | seconds | seconds with the maps | PSNR (dB) |", "|---|---|---|---|",
             f"| ESPIRiT maps (ours, torch, as recon.reconstruct gets them: 8 compressed coils) | {seconds:.2f} | | |"]
    if before:
        _, seconds = _timed(lambda: sigpy_espirit(kspace[0], min(calib)))
        lines.append(f"| ESPIRiT maps (SigPy EspiritCalib, before) | {seconds:.2f} | | |")
    for name in ["zero-filled", "cs-tv", "gan-drn", "csr-gan"]:
        if recon.registry.unavailable_reason(name) is not None:
            continue
        method = recon.get(name)
        method.reconstruct(kspace, mask, estimated)  # warm-up (weights, caches)
        timings = [_timed(method.reconstruct, kspace, mask, estimated) for _ in range(repeats)]
        image_out, seconds = timings[0][0], float(np.median([t for _, t in timings]))
        # as recon.reconstruct runs it: the maps, then the method (the two timed together)
        copies = [kspace.clone() for _ in range(repeats)]
        together = float(np.median([_timed(lambda m=method, k=k: m.reconstruct(k, mask, coil_maps_for(k, mask.numpy())))[1]
                                    for k in copies]))
        lines.append(f"| {name} (estimated maps) | {seconds:.2f} | {together:.2f} | {_psnr(image_out, truth):.2f} |")
    if bart and shutil.which("bart"):
        from recon.classical.bart import BartTV

        table_weight = BartTV().weight_for(mask)
        for factor in BART_WEIGHT_FACTORS:
            image_out, seconds = bart_pics(kspace[0], mask, calib, factor * table_weight)
            lines.append(f"| BART ecalib + pics -R T ({factor:g} x the bart-tv weight, {factor * table_weight:.2g}; "
                         f"all {coils} coils) | {seconds:.2f} | {seconds:.2f} | {_psnr(image_out, truth):.2f} |")
    if not before:
        return "\n".join(lines) + "\n"
    import sigpy.mri.app

    start = time.perf_counter()
    scale = float(recon.get("zero-filled").reconstruct(kspace, mask, estimated).abs().max())
    before = sigpy.mri.app.TotalVariationRecon(kspace[0].numpy(), estimated[0].numpy(), 1e-2 * scale if ratio <= 0.1 else
                                               recon.get("cs-tv").weight_for(mask) * scale, weights=mask.numpy().astype(np.float32),
                                               solver="ADMM", rho=1.0, max_iter=50, show_pbar=False).run()
    seconds = time.perf_counter() - start
    before_t = torch.from_numpy(np.asarray(before, np.complex64))[None] * (estimated.abs().sum(1) > 0)
    lines.append(f"| cs-tv before (SigPy ADMM 50 iterations, all {coils} coils) | {seconds:.2f} | | {_psnr(before_t, truth):.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", help="corpus folder (scripts/make_corpus.py) for the ODIN brain and coils")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=256, help="side of the maps-table images (default 256)")
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-maps", action="store_true", help="leave out the maps table")
    parser.add_argument("--skip-before", action="store_true", help="leave out the SigPy rows (what recon used before)")
    parser.add_argument("--repeats", type=int, default=1, help="time each method this many times, report the median")
    parser.add_argument("--ratio", type=float, default=0.25, help="ratio of the speed table's mask (default 0.25)")
    parser.add_argument("--mask-type", default="cartesian", help="mask family of the speed table (default cartesian; "
                        "poisson for Poisson-disc)")
    parser.add_argument("--bart", action="store_true", help="add BART with its own maps (ecalib, pics -R T) at "
                        "several weights to the speed table")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from skimage.data import shepp_logan_phantom
    from skimage.transform import resize

    phantom = torch.from_numpy(resize(shepp_logan_phantom(), (args.size, args.size)).astype(np.float32))
    cases = {"Shepp-Logan, 8 birdcage coils": (phantom, simulate_coil_maps(8, (args.size, args.size)))}
    if args.corpus:
        from pipelines.data.corpus import load_corpus

        splits = load_corpus(args.corpus)
        odin = next(images for images in splits["test"] if len(images) == 4)  # the ODIN T1w/T2w/PD/FLAIR slice
        brain = torch.from_numpy(resize(odin[0], (args.size, args.size)).astype(np.float32))
        cases["ODIN brain T1w, ODIN 8-channel array"] = (brain, resample_coil_maps(torch.from_numpy(splits["coils"][0]),
                                                                                     (args.size, args.size)))
    if not args.skip_maps:
        print(maps_table(cases))
    if not args.skip_speed:
        from pipelines.data.sample import sample

        print(speed_table(torch.from_numpy(np.array(sample("test").images[3])), before=not args.skip_before,
                          repeats=args.repeats, ratio=args.ratio, mask_type=args.mask_type, bart=args.bart))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
