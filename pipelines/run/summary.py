"""What ``recon run`` prints and records per method: the summary rows over slices
(:func:`summarise_records`) and the table of them (:func:`format_table`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from recon.trust import check as trust


def summarise_records(records: list[dict[str, Any]], methods: list[str]) -> list[dict[str, Any]]:
    """One row per method: means (and spreads) over its slices of the scores, the
    estimate (with its interval), the guard's verdicts and the trust check."""
    rows = []
    for name in methods:
        mine = [r for r in records if r["method"] == name]
        row = {"method": name, "slices": len(mine)}
        for key in ("psnr", "ssim", "nmse", "seconds"):
            values = np.array([r[key] for r in mine], dtype=float)
            row[key] = float(values.mean())
            row[f"{key}_std"] = float(values.std())
        if mine and "dc_residual" in mine[0]:
            row["dc_residual_max"] = float(max(r["dc_residual"] for r in mine))
            to_noise = [r["dc_residual_to_noise"] for r in mine if "dc_residual_to_noise" in r]
            if to_noise:
                row["dc_residual_to_noise"] = float(np.median(to_noise))
        estimated = [r for r in mine if "estimated_psnr" in r]  # --estimate-slices: a subset
        if estimated:
            row["estimated_slices"] = len(estimated)
            for key in ("estimated_psnr", "estimated_nmse", "estimated_psnr_spread", "estimated_psnr_low",
                        "estimated_psnr_high"):
                values = [r.get(key) for r in estimated]
                row[key] = float(np.mean([np.nan if v is None else v for v in values]))
        guarded = [r for r in mine if "guard_flagged" in r]
        if guarded:
            row["guard_flagged"] = int(sum(r["guard_flagged"] for r in guarded))
            row["guard_slices"] = len(guarded)
            row["guard_reference"] = guarded[0]["guard_reference"]
            row["guard_replaced"] = int(sum(r.get("guard_output", name) != name for r in guarded))
            untrusted = [r["guard_untrusted"] for r in guarded if r.get("guard_untrusted")]
            if untrusted:
                row["guard_untrusted"], row["guard_untrusted_slices"] = untrusted[0], len(untrusted)
            written = [r for r in mine if "written_psnr" in r]
            if written and len(written) == len(mine):
                row["written_psnr"] = float(np.mean([r["written_psnr"] for r in written]))
                row["written_ssim"] = float(np.mean([r["written_ssim"] for r in written]))
        if mine and "hallucination_energy" in mine[0]:
            row["hallucination_reference"] = mine[0]["hallucination_reference"]
            row["hallucination_energy"] = float(np.mean([r["hallucination_energy"] for r in mine]))
            row["hallucination_flagged"] = int(sum(r["hallucination_flagged"] for r in mine))
        rows.append(row)
    return rows


def format_table(summary: list[dict[str, Any]]) -> str:
    """The printed table: mean (and std) over slices per method."""
    with_estimate = [row for row in summary if "estimated_psnr" in row]
    estimated = bool(with_estimate)
    intervals = estimated and all(np.isfinite(row.get("estimated_psnr_low", np.nan)) for row in with_estimate)
    lines = [f"{'method':<12} {'PSNR (dB)':>14} {'SSIM':>14} {'NMSE':>10} {'s/slice':>9}"
             + (f" {'est. PSNR [80 % interval]':>26}" if intervals else f" {'est. PSNR':>15}" if estimated else "")]
    for row in summary:
        estimate = ""
        if estimated and "estimated_psnr" not in row:
            estimate = f" {'not estimated':>{26 if intervals else 15}}"
        elif intervals:
            estimate = (f" {row['estimated_psnr']:>8.2f} [{row['estimated_psnr_low']:5.1f}, "
                        f"{row['estimated_psnr_high']:5.1f}]")
        elif estimated:
            estimate = f" {row['estimated_psnr']:>8.2f} ±{row['estimated_psnr_spread']:>5.2f}"
        lines.append(
            f"{row['method']:<12} {row['psnr']:>7.2f} ±{row['psnr_std']:>5.2f} "
            f"{row['ssim']:>7.4f} ±{row['ssim_std']:>5.3f} {row['nmse']:>10.5f} {row['seconds']:>9.3f}" + estimate
        )
    if intervals:
        lines.append("est. PSNR: without the reference (k-space hold-out); the interval held the true PSNR on 80 % of "
                     "the validation slices of its mask family and coil count (each validation subject judged by the "
                     "others' calibration, and on 1-D and 2-D masks a new mask drawn for every slice; docs/results.md "
                     "gives the coverage on unseen subjects)")
    partial = [row for row in summary if row.get("estimated_slices", row["slices"]) < row["slices"]]
    if estimated and partial:
        lines.append(f"est. PSNR: no reference, mean over the {partial[0]['estimated_slices']} slices the estimate ran on "
                     "(--estimate-slices)")
    for row in summary:
        if row.get("guard_untrusted"):
            lines.append(f"guard {row['method']}: not judged on {row['guard_untrusted_slices']}/{row['guard_slices']} "
                         f"slices ({row['guard_untrusted']}), so they fall back to the best CS estimate"
                         + (f"; {row['guard_replaced']} written from {row['guard_reference']} (--no-guard keeps them)"
                            if row["guard_replaced"] else ""))
        elif "guard_flagged" in row:
            lines.append(f"guard {row['method']}: estimably worse than {row['guard_reference']} on "
                         f"{row['guard_flagged']}/{row['guard_slices']} slices"
                         + (f"; {row['guard_replaced']} written from it (--no-guard keeps them)" if row["guard_replaced"] else "")
                         + (f"; written output {row['written_psnr']:.2f} dB (learned alone {row['psnr']:.2f})"
                            if "written_psnr" in row else ""))
    for row in summary:
        if "dc_residual_max" in row:
            line = f"trust {row['method']}: data-consistency residual <= {row['dc_residual_max']:.1e}"
            if "dc_residual_to_noise" in row:
                line += f" ({row['dc_residual_to_noise']:.2f} x the noise level sigma sqrt(M), median)"
            if "hallucination_energy" in row:
                line += (f"; energy added in unmeasured k-space vs {row['hallucination_reference']}: "
                         f"{row['hallucination_energy']:.4f} (flagged above {trust.HALLUCINATION_THRESHOLD}: "
                         f"{row['hallucination_flagged']}/{row['slices']} slices)")
            lines.append(line)
    return "\n".join(lines)
