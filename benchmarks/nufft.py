"""The NUFFT behind non-Cartesian sampling: FINUFFT (the project's operator) against
SigPy's Kaiser-Bessel NUFFT, accuracy against a direct DFT and seconds per transform.

    python -m benchmarks.nufft [--threads 2] [--size 256] [--spokes 40]

Golden-angle radial, ``2 N`` samples per spoke, one 256² complex image. Accuracy is the
relative error on every 97th sample against the direct (float64) DFT; seconds are the
median of 7 transforms after one warm-up.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch

from masks import make_trajectory
from physics.nufft import NUFFT, Trajectory


def _median_seconds(function, repeats: int = 7) -> float:
    function()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--spokes", type=int, default=40)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import sigpy

    size = args.size
    coords = make_trajectory(f"{args.spokes}spokes", (size, size), "radial", seed=0).coords
    image = (np.random.default_rng(0).standard_normal((size, size))
             + 1j * np.random.default_rng(1).standard_normal((size, size))).astype(np.complex64)
    points = coords.reshape(-1, 2)[::97].astype(np.float64)
    index = np.arange(size) - size // 2
    kernel = np.exp(-2j * np.pi * (points[:, 0, None, None] * index[:, None] + points[:, 1, None, None] * index) / size)
    direct = (kernel * image).sum(axis=(1, 2)) / size
    rows = []
    operator = NUFFT(Trajectory(torch.from_numpy(coords), (size, size)))
    tensor = torch.from_numpy(image)[None]
    ours = operator(tensor)[0, 0].numpy().reshape(-1)[::97]
    kspace = operator(tensor)
    rows.append(("FINUFFT (recon, tol 1e-5)", np.linalg.norm(ours - direct) / np.linalg.norm(direct),
                 _median_seconds(lambda: operator(tensor)), _median_seconds(lambda: operator.adjoint(kspace)),
                 _median_seconds(lambda: operator.normal(tensor))))
    for oversamp, width in ((1.25, 4), (2.0, 6)):
        theirs = sigpy.nufft(image, coords, oversamp=oversamp, width=width)
        error = np.linalg.norm(theirs.reshape(-1)[::97] - direct) / np.linalg.norm(direct)
        rows.append((f"SigPy (oversampling {oversamp}, width {width})", error,
                     _median_seconds(lambda o=oversamp, w=width: sigpy.nufft(image, coords, oversamp=o, width=w)),
                     _median_seconds(lambda o=oversamp, w=width, k=theirs: sigpy.nufft_adjoint(
                         k, coords, (size, size), oversamp=o, width=w)), math.nan))
    print(f"{args.spokes} golden-angle spokes x {coords.shape[1]} samples, {size}x{size}, {args.threads} thread(s)\n")
    print("| NUFFT | error vs DFT | forward s | adjoint s | Toeplitz A^H A s |\n|---|---|---|---|---|")
    for name, error, forward, adjoint, normal in rows:
        print(f"| {name} | {error:.1e} | {forward:.4f} | {adjoint:.4f} | "
              f"{'-' if math.isnan(normal) else format(normal, '.4f')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
