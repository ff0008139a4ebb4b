"""Fit the NIQE-like pristine model (``recon.trust.naturalness``) on the fully sampled
training slices of a corpus and write ``recon/weights/niqe-like.json``.

Usage: python scripts/fit_naturalness.py CORPUS [--out recon/weights/niqe-like.json]
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

import numpy as np

from pipelines.data.training import load_training_data
from recon.trust import naturalness


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--out", default=str(naturalness.MODEL))
    args = parser.parse_args(argv)
    train_set, _, description = load_training_data(args.corpus)
    features = np.concatenate([naturalness.patch_features(image, sharp_only=True) for image in train_set.images])
    model = {"description": "NIQE-like pristine model (ours): 36 MSCN/GGD/AGGD features of 32x32 foreground patches "
                            "of fully sampled MR training slices (the sharpest, >= 0.75 of each slice's sharpest, as NIQE selects pristine patches), 2 scales; not comparable with published NIQE",
             "data": description, "slices": len(train_set), "date": date.today().isoformat(),
             **naturalness.fit(features)}
    Path(args.out).write_text(json.dumps(model) + "\n")
    print(f"{len(features)} patches from {len(train_set)} slices -> {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
