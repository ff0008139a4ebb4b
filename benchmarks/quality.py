"""Quality of every method on the sample's test split:
{10pct, 50pct} x {cartesian, vd2d}, single coil, seed 0 (the README's tables).

    python -m benchmarks.quality [--json bench-quality.json] [--slices N]

Prints one markdown table per mask and writes JSON with every summary row.
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import torch

from benchmarks.common import measure, single_coil_methods, summary_markdown

MASKS = ("10pct", "50pct")
KINDS = ("cartesian", "vd2d")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--masks", default=",".join(MASKS))
    parser.add_argument("--mask-types", default=",".join(KINDS))
    parser.add_argument("--methods", help="comma-separated (default: every method that runs here, single coil)")
    parser.add_argument("--slices", type=int, help="first N test slices (default all 16)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = single_coil_methods(args.methods)
    results = {}
    for kind in args.mask_types.split(","):
        for mask in args.masks.split(","):
            rows = measure(mask, names, kind, args.slices)
            results[f"{mask} {kind}"] = rows
            print(summary_markdown(f"{mask} {kind}", rows))
    print(f"`python -m benchmarks.quality`, {date.today().isoformat()}, {args.threads} torch threads")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
