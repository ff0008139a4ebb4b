"""Regenerate the built-in sample: axial slices of the MNI ICBM152 2009a template.

The template (T1 and the grey- and white-matter probability maps, 1 mm, symmetric
non-linear 2009a, as converted by nilearn) ships inside the nilearn wheel. This
script reads them from an unpacked wheel or downloads the wheel with pip, keeps
the axial slices z = 24..148 (those with brain), rotates them so anterior is up
(rows = anterior-posterior, columns = left-right), and stores them as uint8 in
``pipelines/data/icbm152_2009a_axial.npz``.

Usage: python scripts/make_sample.py [--nilearn-dir DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np

FILES = {
    "t1": "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "nilearn/datasets/data/mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "nilearn/datasets/data/mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
Z_FIRST, Z_LAST = 24, 148
OUT = Path(__file__).resolve().parents[1] / "pipelines" / "data" / "icbm152_2009a_axial.npz"


def unpacked_wheel(work: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "nilearn", "-d", str(work)], check=True
    )
    wheel = next(work.glob("nilearn-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(work, members=[*FILES.values()])
    print(f"using {wheel.name}")
    return work


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nilearn-dir", type=Path, help="folder holding an unpacked nilearn wheel")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.nilearn_dir or unpacked_wheel(Path(tmp))
        arrays = {}
        for name, relative in FILES.items():
            image = nib.load(root / relative)
            if not np.allclose(np.abs(np.diag(image.affine)[:3]), 1.0):
                raise SystemExit(f"{relative}: expected 1 mm voxels, got affine {image.affine}")
            volume = np.asarray(image.dataobj, dtype=np.uint8)
            slices = [np.rot90(volume[:, :, z]) for z in range(Z_FIRST, Z_LAST + 1)]
            arrays[name] = np.ascontiguousarray(np.stack(slices))
    arrays["z"] = np.arange(Z_FIRST, Z_LAST + 1, dtype=np.int16)
    np.savez_compressed(OUT, **arrays)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e6:.2f} MB): t1 {arrays['t1'].shape}")


if __name__ == "__main__":
    main()
