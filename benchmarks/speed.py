"""Speed and memory of every method, side by side in one process.

    python -m benchmarks.speed [--json bench-speed.json]

- seconds per 256x256 slice (10pct cartesian, sample test slices, after one warm-up)
  and peak resident memory above the baseline, sampled every 2 ms while the method runs
  (BART runs as a subprocess: its memory is the child's peak RSS, from ``getrusage``);
- each method's time as a ratio to BART ``pics`` (``bart-l1``) when ``bart`` is installed;
- a physical reference: one centred orthonormal 2-D FFT and one hard data-consistency
  step (FFT, projection, inverse FFT) on a 256x256 slice;
- scaling: time and memory against image size (128, 256, 320, 512) and, for the learned
  methods, against batch size.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import threading
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import zoom

import recon
from benchmarks.common import single_coil_methods
from masks import make_mask
from physics.consistency import hard_projection
from physics.fft import fft2c, ifft2c
from pipelines.data.sample import sample

PAGE = os.sysconf("SC_PAGE_SIZE")


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


class PeakMemory:
    """Peak RSS above the value at entry, sampled every 2 ms in a thread."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self.children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, _rss())
            time.sleep(0.002)

    def __exit__(self, *exc) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, _rss())
        self.child_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024

    @property
    def megabytes(self) -> float:
        return (self.peak - self.base) / 2**20


def _slices(size: int, count: int) -> list[np.ndarray]:
    images = np.array(sample("test").images[:count], dtype=np.float32)
    if size != images.shape[-1]:
        images = np.stack([zoom(image, size / image.shape[-1], order=1) for image in images])
    return [fft2c(image.astype(np.complex64)) for image in images]


def time_method(name: str, size: int = 256, count: int = 4) -> dict[str, float]:
    kspace = _slices(size, count)
    mask = make_mask(0.1, (size, size), "cartesian", seed=0).array
    recon.reconstruct(kspace[0], mask, name)  # warm-up: weights, caches, threads
    times = []
    with PeakMemory() as memory:
        for data in kspace:
            started = time.perf_counter()
            recon.reconstruct(data, mask, name)
            times.append(time.perf_counter() - started)
    peak = memory.megabytes
    if name.startswith("bart"):
        peak = memory.child_peak / 2**20
    return {"seconds": float(np.mean(times)), "seconds_std": float(np.std(times)), "peak_mb": float(peak)}


def time_batch(name: str, batch: int, size: int = 256) -> dict[str, float]:
    """Seconds per slice of a learned generator called on a batch of slices."""
    from physics.operators import SingleCoil
    from recon.models.learned import load_generator
    from recon.weights import shipped_weights

    path = min(shipped_weights(name), key=lambda p: abs(shipped_weights(name)[p][0] - 0.1))
    generator = load_generator(str(path))
    kspace = torch.from_numpy(np.stack(_slices(size, batch)))[:, None]
    mask = torch.from_numpy(make_mask(0.1, (size, size), "cartesian", seed=0).array)
    kspace = kspace * mask
    operator = SingleCoil(mask)
    with torch.no_grad():
        generator(kspace, operator)
        with PeakMemory() as memory:
            started = time.perf_counter()
            generator(kspace, operator)
            seconds = time.perf_counter() - started
    return {"seconds_per_slice": seconds / batch, "peak_mb": memory.megabytes}


def physics_reference(size: int = 256, repeats: int = 50) -> dict[str, float]:
    image = torch.from_numpy(_slices(size, 1)[0])
    mask = torch.from_numpy(make_mask(0.1, (size, size), "cartesian", seed=0).array)
    measured = fft2c(image) * mask
    fft2c(image)
    started = time.perf_counter()
    for _ in range(repeats):
        fft2c(image)
    fft_seconds = (time.perf_counter() - started) / repeats
    started = time.perf_counter()
    for _ in range(repeats):
        ifft2c(hard_projection(fft2c(image), measured, mask))
    return {"fft2c": fft_seconds, "data_consistency": (time.perf_counter() - started) / repeats}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--methods", help="comma-separated (default: every single-coil method that runs here)")
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--sizes", default="128,256,320,512")
    parser.add_argument("--batches", default="1,2,4,8")
    parser.add_argument("--scaling-methods", default="zero-filled,cs-l1,cs-tv,gan-drn")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = single_coil_methods(args.methods)
    results: dict = {"date": date.today().isoformat(), "threads": args.threads, "methods": {}, "sizes": {}, "batches": {}}
    for name in names:
        results["methods"][name] = time_method(name, 256, args.slices)
    bart = results["methods"].get("bart-l1")
    print(f"**Seconds per 256x256 slice, 10pct cartesian, {args.threads} torch threads ({results['date']})**\n")
    print("| method | s/slice | peak memory (MB) | time / BART pics (l1) |\n|---|---|---|---|")
    for name, row in results["methods"].items():
        ratio = f"{row['seconds'] / bart['seconds']:.2f}x" if bart else "n/a (bart-l1 not run)"
        print(f"| {name} | {row['seconds']:.3f} ± {row['seconds_std']:.3f} | {row['peak_mb']:.1f} | {ratio} |")
    results["physics"] = physics_reference()
    print(f"\nOne fft2c: {results['physics']['fft2c'] * 1e3:.2f} ms; one hard data-consistency step: "
          f"{results['physics']['data_consistency'] * 1e3:.2f} ms (256x256, complex64).\n")
    sizes = [int(s) for s in args.sizes.split(",") if s]
    scaling = [n for n in args.scaling_methods.split(",") if n in names]
    if sizes and scaling:
        print("| method | " + " | ".join(f"{s}² s (MB)" for s in sizes) + " |\n|---|" + "---|" * len(sizes))
        for name in scaling:
            cells = []
            for size in sizes:
                row = time_method(name, size, 1)
                results["sizes"].setdefault(name, {})[size] = row
                cells.append(f"{row['seconds']:.3f} ({row['peak_mb']:.0f})")
            print(f"| {name} | " + " | ".join(cells) + " |")
    batches = [int(b) for b in args.batches.split(",") if b]
    learned = [n for n in names if recon.registry.info(n).family == "learned"]
    if batches and learned:
        print("\n| learned method | " + " | ".join(f"batch {b}: s/slice (MB)" for b in batches) + " |\n|---|" + "---|" * len(batches))
        for name in learned:
            cells = []
            for size in batches:
                row = time_batch(name, size)
                results["batches"].setdefault(name, {})[size] = row
                cells.append(f"{row['seconds_per_slice']:.3f} ({row['peak_mb']:.0f})")
            print(f"| {name} | " + " | ".join(cells) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
