"""``recon mask``: make a grid mask or a trajectory and save its picture or its array."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import masks
from pipelines.cli.arguments import UsageError

EXIT_OK = 0


def command_mask(args: argparse.Namespace) -> int:
    """Make the mask (or trajectory) ``args`` ask for, save it and say what it achieves:
    a ``.png`` picture, or the ``.npy`` array (a grid mask's bool ``(H, W)``, a
    trajectory's coordinates ``(shots, samples, 2)`` float32 in units of 1/FOV)."""
    from pipelines.common.limits import MemoryBudget

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npy"):
        raise UsageError(f"--out {out}: use a .png or .npy file name")
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} already exists; use --force to overwrite it")
    # Generators keep float weights and index arrays of the grid's size: about 16 bytes a point.
    MemoryBudget.of(args.max_memory).check("--shape", args.shape, itemsize=16, what="the mask", copies=1)
    if masks.is_trajectory(args.mask_type or ""):
        made = masks.make_trajectory(args.mask, args.shape, args.mask_type, seed=args.seed)
        _save(out, made.coords, made.picture())
        print(f"{made.kind} {args.mask} {made.shape[0]}x{made.shape[1]}: {made.summary()} -> {out}")
        return EXIT_OK
    kind = masks.preset_kind(args.mask, args.mask_type)  # lowres-2x implies --mask-type lowres
    made = masks.make_mask(args.mask, args.shape, kind, seed=args.seed, center_fraction=args.center_fraction)
    _save(out, made.array, (made.array * 255).astype(np.uint8))
    lattice = ""
    if made.kind == "caipi":
        lattice = " R {}x{} shift {},".format(*made.params["acceleration"], made.params["shift"])
    print(
        f"{made.kind} {args.mask} {made.shape[0]}x{made.shape[1]}:{lattice} achieved ratio {made.ratio:.4f} "
        f"({int(made.array.sum())} of {made.array.size} points), centre {made.center[0]}x{made.center[1]} -> {out}"
    )
    return EXIT_OK


def _save(out: Path, array: np.ndarray, picture: np.ndarray) -> None:
    """``array`` as ``.npy`` or ``picture`` as ``.png``, by ``out``'s ending, atomically."""
    from pipelines.common.output import atomic_file
    from pipelines.formats.images import save_png

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as tmp:
        if out.suffix.lower() == ".npy":
            with open(tmp, "wb") as handle:
                np.save(handle, array)
        else:
            save_png(tmp, picture)
