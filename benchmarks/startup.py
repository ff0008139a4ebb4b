"""Start-up time of the command line: ``recon --help``, ``recon --version``,
``recon methods`` and ``recon mask``, each run as a fresh process (the wall time a user
waits).

    python -m benchmarks.startup [--repeats 5] [--json bench-startup.json]

Prints the median and the fastest of the repeats, and whether each command met the
target (0.3 s, median, idle machine).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMMANDS = {"--help": ["--help"], "--version": ["--version"], "methods": ["methods"],
            "mask": ["mask", "--mask", "10pct", "--out", "{tmp}/mask.png", "--force"]}
TARGET = 0.3


def time_command(arguments: list[str], repeats: int) -> dict[str, float]:
    """Median and minimum wall seconds of ``python -m pipelines.cli ARGUMENTS``."""
    root = Path(__file__).resolve().parents[1]
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        arguments = [argument.replace("{tmp}", tmp) for argument in arguments]
        for _ in range(repeats):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "pipelines.cli", *arguments], cwd=root, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
    return {"median": statistics.median(times), "min": min(times)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    results = {name: time_command(arguments, args.repeats) for name, arguments in COMMANDS.items()}
    print(f"| command | median (s) | fastest (s) | <= {TARGET} s |\n|---|---|---|---|")
    for name, row in results.items():
        print(f"| recon {name} | {row['median']:.3f} | {row['min']:.3f} | {'met' if row['median'] <= TARGET else 'NOT met'} |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
