"""Raw scanner data through ``recon batch``: seconds, peak memory and quality per file.

    python -m benchmarks.raw [FILE ...] [--masks 25pct] [--methods zero-filled,cs-tv,...] [--json out.json]

Each file (default: twixtools' real ``gre.dat`` in ``tests/data/twix``, and an 8-coil
Shepp-Logan ISMRMRD file with a noise scan made by ``ismrmrd_generate_cartesian_shepp_logan``
when ismrmrd-tools is installed) is fully sampled; ``recon batch`` undersamples it
retrospectively with each ``--masks`` preset and scores every method against the
root-sum-of-squares image of the fully sampled scan. BART's ``pics`` (``bart-l1``,
``bart-tv``, with the project's ESPIRiT maps) is the anchor in the same run when the
``bart`` binary is installed. Each batch runs as its own process, so its wall time
and peak resident memory (``wait4``'s ``ru_maxrss``) are its own.
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

from benchmarks.common import available

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


def measure(path: Path, mask: str, methods: list[str], folder: Path) -> dict:
    """One ``recon batch`` of ``path``: its wall seconds, peak memory and metrics."""
    out = folder / f"{path.stem}-{mask}"
    command = [sys.executable, "-m", "pipelines.cli", "batch", str(path), "--mask", mask, "--methods", ",".join(methods),
               "--out", str(out), "--estimate-folds", "0", "--format", "npy"]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        return {"file": path.name, "mask": mask, "error": f"recon batch exited {os.waitstatus_to_exitcode(status)}"}
    metrics = json.loads((out / f"{path.stem}.metrics.json").read_text())
    return {"file": path.name, "mask": mask, "seconds": seconds, "peak_mib": usage.ru_maxrss / 1024,
            "ratio": metrics["ratio"], "notes": metrics.get("notes", []),
            "methods": {name: {key: record.get(key) for key in ("psnr", "ssim", "seconds_per_slice")}
                        for name, record in metrics["methods"].items()}}


def markdown(rows: list[dict]) -> str:
    lines = ["| file | mask (ratio) | method | PSNR (dB) | SSIM | s/slice | batch s | peak MiB |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['file']} | {row['mask']} | {row['error']} | | | | | |")
            continue
        for name, record in row["methods"].items():
            lines.append(f"| {row['file']} | {row['mask']} ({row['ratio']:.3f}) | {name} | {record['psnr']:.2f} | "
                         f"{record['ssim']:.4f} | {record['seconds_per_slice']:.3f} | {row['seconds']:.1f} | "
                         f"{row['peak_mib']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--masks", default="25pct")
    parser.add_argument("--methods", default=",".join(DEFAULT_METHODS))
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    methods = available(args.methods.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files = args.files or default_files(folder)
        rows = [measure(path, mask, methods, folder) for path in files for mask in args.masks.split(",")]
    print(markdown(rows))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
