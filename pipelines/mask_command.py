"""``recon mask``: make a grid mask or a trajectory and save its picture or its array."""

from __future__ import annotations

import argparse
from pathlib import Path

import masks
from pipelines.arguments import UsageError

EXIT_OK = 0


def command_mask(args: argparse.Namespace) -> int:
    import numpy as np

    from pipelines.images import save_png
    from pipelines.limits import MemoryBudget
    from pipelines.output import atomic_file

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npy"):
        raise UsageError(f"--out {out}: use a .png or .npy file name")
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} already exists; use --force to overwrite it")
    # Generators keep float weights and index arrays of the grid's size: about 16 bytes a point.
    MemoryBudget.of(args.max_memory).check("--shape", args.shape, itemsize=16, what="the mask", copies=1)
    if masks.is_trajectory(args.mask_type or ""):
        return _save_trajectory(args, out)
    kind = masks.preset_kind(args.mask, args.mask_type)  # lowres-2x implies --mask-type lowres
    made = masks.make_mask(args.mask, args.shape, kind, seed=args.seed, center_fraction=args.center_fraction)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as tmp:
        if out.suffix.lower() == ".npy":
            with open(tmp, "wb") as handle:
                np.save(handle, made.array)
        else:
            save_png(tmp, (made.array * 255).astype(np.uint8))
    print(
        f"{made.kind} {args.mask} {made.shape[0]}x{made.shape[1]}: achieved ratio {made.ratio:.4f} "
        f"({int(made.array.sum())} of {made.array.size} points), centre {made.center[0]}x{made.center[1]} -> {out}"
    )
    return EXIT_OK


def _save_trajectory(args: argparse.Namespace, out: Path) -> int:
    """``recon mask`` for a trajectory: its picture (.png) or its coordinates (.npy,
    ``(shots, samples, 2)`` float32 in units of 1/FOV)."""
    import numpy as np

    from pipelines.images import save_png
    from pipelines.output import atomic_file

    made = masks.make_trajectory(args.mask, args.shape, args.mask_type, seed=args.seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as tmp:
        if out.suffix.lower() == ".npy":
            with open(tmp, "wb") as handle:
                np.save(handle, made.coords)
        else:
            save_png(tmp, made.picture())
    print(f"{made.kind} {args.mask} {made.shape[0]}x{made.shape[1]}: {made.summary()} -> {out}")
    return EXIT_OK
