"""Raw scanner data through ``recon batch``: seconds, peak memory and quality per file.

    python -m benchmarks.raw [FILE ...] [--masks 10pct,25pct] [--mask-types cartesian,poisson]
        [--methods zero-filled,cs-tv,...] [--adapt] [--json out.json]

Each file (default: twixtools' real ``gre.dat`` in ``tests/data/twix``, and an 8-coil
Shepp-Logan ISMRMRD file with a noise scan made by ``ismrmrd_generate_cartesian_shepp_logan``
when ismrmrd-tools is installed) is fully sampled; ``recon batch`` undersamples it
retrospectively with each ``--masks`` preset of each ``--mask-types`` family (1-D
``cartesian`` lines, 2-D ``poisson`` disc) and scores every method against the
root-sum-of-squares image of the fully sampled scan. BART's ``pics`` (``bart-l1``,
``bart-tv``, with the project's ESPIRiT maps) runs inside the batch when the ``bart``
binary is installed. Each batch runs as its own process, so its wall time and peak
resident memory (``wait4``'s ``ru_maxrss``) are its own.

BART on its own is the anchor in the same run (``bart-chain`` rows): for a twix file,
``bart twixread -A`` reads it, the readout oversampling is cropped in hybrid space
(``fft -u -i 1``, ``resize -c``, ``fft -u 1``), the same mask is applied (``fmac``),
``cc -G`` compresses to 8 coils when there are more, ``ecalib -m 1`` estimates the maps
and ``pics -R T`` / ``-R W`` reconstruct; its seconds are those BART commands'. BART
has no ISMRMRD reader, so for an ISMRMRD file the chain starts from the k-space
``recon``'s reader returns (prewhitened) written as ``.cfl``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import masks
from benchmarks.common import available, ecalib_kernel
from pipelines.formats import read_input
from recon.classical.bart import BartL1, BartTV, read_cfl, write_cfl
from recon.metrics import psnr, ssim

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_METHODS = ("zero-filled", "cs-l1", "cs-tv", "gan-drn", "csr-gan", "bart-l1", "bart-tv")


def default_files(folder: Path) -> list[Path]:
    """``gre.dat``, and a generated ISMRMRD file when the tool is there."""
    files = [ROOT / "tests" / "data" / "twix" / "gre.dat"]
    tool = shutil.which("ismrmrd_generate_cartesian_shepp_logan")
    if tool:
        path = folder / "shepp_8coils.h5"
        subprocess.run([tool, "-o", str(path), "-m", "128", "-c", "8", "-C", "-n", "0.05"], check=True,
                       capture_output=True)
        files.append(path)
    return files


def measure(path: Path, mask: str, methods: list[str], folder: Path, kind: str = "cartesian", adapt: bool = False) -> dict:
    """One ``recon batch`` of ``path``: its wall seconds, peak memory and metrics."""
    out = folder / f"{path.stem}-{mask}-{kind}{'-adapt' if adapt else ''}"
    command = [sys.executable, "-m", "pipelines.cli", "batch", str(path), "--mask", mask, "--mask-type", kind,
               "--methods", ",".join(methods), "--out", str(out), "--estimate-folds", "0", "--format", "npy",
               *(["--adapt"] if adapt else [])]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        return {"file": path.name, "mask": f"{mask} {kind}", "error": f"recon batch exited {os.waitstatus_to_exitcode(status)}"}
    metrics = json.loads((out / f"{path.stem}.metrics.json").read_text())
    return {"file": path.name, "mask": f"{mask} {kind}{' --adapt' if adapt else ''}", "seconds": seconds, "peak_mib": usage.ru_maxrss / 1024,
            "ratio": metrics["ratio"], "notes": metrics.get("notes", []),
            "methods": {name: {key: record.get(key) for key in ("psnr", "ssim", "seconds_per_slice")}
                        for name, record in metrics["methods"].items()}}


def _bart(*args: str, cwd: Path) -> None:
    result = subprocess.run(["bart", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"bart {args[0]} failed: {result.stderr.strip()[-300:]}")


def bart_chain(path: Path, mask: str, folder: Path, seed: int = 0, virtual_coils: int = 8, kind: str = "cartesian") -> dict:
    """BART alone from the file to the image (see the module's docstring), scored
    against the same reference and with the same mask as ``recon batch``'s."""
    (study,), _ = read_input(path)
    work = folder / f"bart-{path.stem}-{mask}-{kind}"
    work.mkdir()
    height, width = study.kspace.shape[-2:]
    drawn = masks.make_mask(masks.parse_preset(mask), (height, width), kind,
                            seed=masks.seed_from_name(study.name, seed))
    pattern = drawn.array
    reference = np.sqrt((np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(study.kspace[0], axes=(-2, -1)),
                                                              norm="ortho"), axes=(-2, -1))) ** 2).sum(axis=0))
    write_cfl(work / "pattern", pattern.astype(np.complex64)[:, :, None])
    started = time.perf_counter()
    if study.format == "twix":
        _bart("twixread", "-A", str(path.resolve()), "full_os", cwd=work)
        _bart("fft", "-u", "-i", "1", "full_os", "hybrid", cwd=work)
        _bart("resize", "-c", "0", str(height), "hybrid", "hybrid_crop", cwd=work)
        _bart("fft", "-u", "1", "hybrid_crop", "full", cwd=work)
    else:  # no ISMRMRD reader in BART: start from recon's reading
        write_cfl(work / "full", np.transpose(study.kspace[0], (1, 2, 0))[:, :, None, :])
    _bart("fmac", "full", "pattern", "under", cwd=work)
    coils = study.kspace.shape[1]
    data = "under"
    if coils > virtual_coils:
        _bart("cc", "-p", str(virtual_coils), "-G", "-M", "under", "cc_matrix", cwd=work)
        _bart("ccapply", "-p", str(virtual_coils), "-G", "under", "cc_matrix", "under_cc", cwd=work)
        data = "under_cc"
    kernel = ecalib_kernel(drawn.center)
    _bart("ecalib", "-m", "1", "-k", f"{kernel}:{kernel}:1", "-r", ":".join(str(c) for c in (*drawn.center, 1)), data, "maps",
          cwd=work)
    maps_seconds = time.perf_counter() - started
    results = {}
    ratio = torch.tensor(pattern)
    for name, regulariser in (("bart-chain-tv", f"T:3:0:{BartTV().weight_for(ratio)}"),
                              ("bart-chain-l1", f"W:3:0:{BartL1().weight_for(ratio)}")):
        begun = time.perf_counter()
        _bart("pics", "-S", "-n", "-i", "100", "-R", regulariser, data, "maps", name, cwd=work)
        image = np.abs(read_cfl(work / name)).reshape(height, width)
        results[name] = {"psnr": psnr(image, reference), "ssim": ssim(image, reference),
                         "seconds_per_slice": maps_seconds + time.perf_counter() - begun}
    return {"file": path.name, "mask": f"{mask} {kind}", "seconds": sum(r["seconds_per_slice"] for r in results.values()),
            "peak_mib": float("nan"), "ratio": float(pattern.mean()), "methods": results}


def markdown(rows: list[dict]) -> str:
    lines = ["| file | mask (ratio) | method | PSNR (dB) | SSIM | s/slice | batch s | peak MiB |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['file']} | {row['mask']} | {row['error']} | | | | | |")
            continue
        for name, record in row["methods"].items():
            lines.append(f"| {row['file']} | {row['mask']} ({row['ratio']:.3f}) | {name} | {record['psnr']:.2f} | "
                         f"{record['ssim']:.4f} | {record['seconds_per_slice']:.3f} | {row['seconds']:.1f} | "
                         f"{'-' if row['peak_mib'] != row['peak_mib'] else format(row['peak_mib'], '.0f')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--masks", default="10pct,25pct")
    parser.add_argument("--mask-types", default="cartesian,poisson", help="mask families (default cartesian,poisson)")
    parser.add_argument("--adapt", action="store_true", help="also run the learned methods with --adapt")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    methods = available(args.methods.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = args.files or default_files(folder)
        rows = []
        learned = [name for name in methods if name in ("gan-drn", "csr-gan")]
        for path in files:
            for kind in args.mask_types.split(","):
                for mask in args.masks.split(","):
                    first = len(rows)
                    rows.append(measure(path, mask, methods, folder, kind))
                    if args.adapt and learned:
                        rows.append(measure(path, mask, learned, folder, kind, adapt=True))
                    if shutil.which("bart"):
                        rows.append(bart_chain(path, mask, folder, kind=kind))
                    print(markdown(rows[first:]), flush=True)
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
