"""What the benchmark scripts share: which methods can run, one side-by-side run on the
sample's test split, and markdown tables."""

from __future__ import annotations

import tempfile
from pathlib import Path

import recon
from pipelines.config import RunConfig
from pipelines.run.workflow import run


def ecalib_kernel(calibration: tuple[int, int]) -> int:
    """The kernel side the benchmarks' own BART chains give ``bart ecalib -k``: its default
    6, or 2 lines narrower than the fully sampled centre when that is narrower (10 % of 128
    lines keeps 5). ``recon``'s ESPIRiT and its 3-D BART anchor cap the kernel at half of
    each side instead (:func:`physics.espirit.espirit_maps`)."""
    return min(6, min(calibration) - 2)


def available(names) -> list[str]:
    """The methods among ``names`` that can run on this machine."""
    return [name for name in names if recon.registry.unavailable_reason(name) is None]


def single_coil_methods(selection: str | None = None) -> list[str]:
    """``selection`` split on commas, or every method that runs here on single-coil data."""
    if selection:
        return selection.split(",")
    return [name for name in available(recon.registered()) if not recon.registry.info(name).multicoil_only]


def measure(mask: str, methods: list[str], mask_type: str = "cartesian", slices: int | None = None) -> dict[str, dict]:
    """``{method: summary row}`` of one ``recon run`` over the test split (all methods see
    the same masks and k-space); each row also carries the achieved ``ratio``."""
    with tempfile.TemporaryDirectory() as folder:
        # every slice, and the estimate on every slice, as before the first run got lighter defaults
        config = RunConfig(mask=mask, mask_type=mask_type, methods=tuple(methods), slices=slices or 0, estimate_slices=0,
                           out=str(Path(folder) / "run"))
        result = run(config, progress=False)
    rows = {row["method"]: row for row in result.summary}
    for row in rows.values():
        row["ratio"] = result.mask.ratio
    return rows


def summary_markdown(title: str, rows: dict[str, dict]) -> str:
    """A markdown table of summary rows (mean ± std over slices)."""
    ratio = next(iter(rows.values()))["ratio"]
    lines = [f"**{title} (achieved {ratio:.4f})**", "", "| method | PSNR (dB) | SSIM | NMSE | s/slice |", "|---|---|---|---|---|"]
    for name, row in sorted(rows.items()):
        lines.append(f"| {name} | {row['psnr']:.2f} ± {row['psnr_std']:.2f} | {row['ssim']:.4f} ± {row['ssim_std']:.3f} "
                     f"| {row['nmse']:.5f} | {row['seconds']:.3f} |")
    return "\n".join(lines) + "\n"
