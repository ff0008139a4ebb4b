"""Every command of the README (its first run and its tour), run as a user types it, each
as a fresh ``recon`` process on its own input: the wall time a user waits.

    python -m benchmarks.tour [--only NAME,...] [--dry-run] [--json bench-tour.json]

Inputs the tour names as placeholders are made from the built-in sample (``brain.nii.gz``,
a ``scans/`` folder of two NIfTI volumes) or are the tests' twix file (``scan.dat``:
``tests/data/twix/gre.dat``). ``vd2d-all`` is the README's ``--slices all`` aside, not a
tour command: 16 slices instead of 4. Prints a markdown table: command, seconds, whether it met
the target (120 s on 2 idle cores), and the exit code. ``--dry-run`` prints the commands.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = 120.0
TOUR = {
    "first-run": "run --mask 10pct",
    "8-coil": "run --mask 25pct --coils 8 --noise-snr 30",
    "vd2d": "run --mask 50pct --mask-type vd2d",
    "vd2d-all": "run --mask 50pct --mask-type vd2d --slices all",  # the README: "about 4 times as long"
    "nifti-input": "run --input {tmp}/brain.nii.gz --mask 10pct",
    "lowres": "run --mask lowres-2x",
    "radial": "run --mask 10pct --mask-type radial",
    "batch-folder": "batch {tmp}/scans --out {tmp}/recon-batch --mask 10pct --methods cs-tv,gan-drn --workers 2",
    "batch-twix": "batch " + str(ROOT / "tests" / "data" / "twix" / "gre.dat") + " --mask 25pct --out {tmp}/twix",
    "mask": "mask --mask 10pct --mask-type cartesian --shape 256,256 --seed 0 --out {tmp}/mask.png",
}


def make_inputs(folder: Path) -> None:
    """``brain.nii.gz`` (the sample's 16 test slices) and ``scans/`` (two 4-slice volumes)."""
    import nibabel as nib
    import numpy as np

    from pipelines.data.sample import sample

    images = np.asarray(sample("test").images, np.float32) * 1000
    nib.save(nib.Nifti1Image(np.moveaxis(images, 0, -1), np.diag([1.0, 1.0, 3.0, 1.0])), folder / "brain.nii.gz")
    (folder / "scans").mkdir()
    for index in range(2):
        chosen = images[index * 8 : index * 8 + 4]
        nib.save(nib.Nifti1Image(np.moveaxis(chosen, 0, -1), np.eye(4)), folder / "scans" / f"volume{index}.nii.gz")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated names of the commands to run (default all)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    names = [name for name in args.only.split(",") if name] or list(TOUR)
    unknown = sorted(set(names) - set(TOUR))
    if unknown:
        parser.error(f"unknown command names {unknown}; choose from {', '.join(TOUR)}")
    results = {}
    print("| command | seconds | <= 120 s | exit |\n|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if not args.dry_run:
            make_inputs(tmp)
        for name in names:
            line = TOUR[name].format(tmp=tmp)
            command = [sys.executable, "-m", "pipelines.cli", *line.split()]
            if name.startswith("first-run") or line.startswith("run"):
                command += ["--out", str(tmp / f"out-{name}")]
            if args.dry_run:
                print(f"recon {line}")
                continue
            started = time.perf_counter()
            done = subprocess.run(command, cwd=tmp, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seconds = time.perf_counter() - started
            results[name] = {"command": f"recon {line}", "seconds": seconds, "exit": done.returncode}
            print(f"| `recon {TOUR[name]}` | {seconds:.1f} | {'yes' if seconds <= TARGET else 'no'} | "
                  f"{done.returncode} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if all(result["exit"] == 0 for result in results.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
