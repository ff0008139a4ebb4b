"""The figures of issue 36 from ``benchmarks.trust`` records (``--evaluate``): rank,
error and interval coverage per mask kind, family, coil count, method family and regime,
the guard's catches and false fallbacks, and the PSNR each learned method's guarded
output keeps, per mask family."""

from __future__ import annotations

import numpy as np

from benchmarks.trust_fit import _kind, apply
from pipelines.common.evaluation import FALLBACK_FAMILIES
from recon.trust import guard
from recon.trust.calibration import PLANES


def evaluate(records: list[dict], calibration: dict, folds_used: int | None = None) -> str:
    from scipy.stats import spearmanr

    apply(records, calibration, folds_used)
    lines = []
    rho = spearmanr([r["est_nmse"] for r in records], [r["nmse"] for r in records]).statistic
    lines.append(f"Spearman(estimated NMSE, true NMSE) over {len(records)} (slice, method) pairs: {rho:.3f} (target >= 0.8)")
    slices: dict[tuple, list[dict]] = {}
    for r in records:
        slices.setdefault((r["source"], r["slice"], r["mask"], r["mask_type"], r["coils"], r.get("regime", "clean")),
                          []).append(r)
    within = 0
    per_setting: dict[str, list[float]] = {}
    for key, rows in slices.items():
        chosen = min(rows, key=lambda r: r["est_nmse"])
        best = max(r["psnr"] for r in rows)
        ok = chosen["psnr"] >= best - 0.3
        within += ok
        per_setting.setdefault(f"{key[2]} {key[3]} {key[4]}c" + ("" if key[5] == "clean" else f" {key[5]}"), []).append(ok)
    lines.append(f"lowest estimated error is truly best or within 0.3 dB: {within}/{len(slices)} slices "
                 f"({100 * within / len(slices):.0f} %, target >= 80 %)")
    for setting, oks in sorted(per_setting.items()):
        lines.append(f"  {setting}: {sum(oks)}/{len(oks)}")
    lines += _coverage(records)
    lines += _families(slices, calibration)
    worse_flagged = worse = better_flagged = better = 0
    volumes: dict[tuple, list[tuple]] = {}  # a 3-D acquisition's planes: (flagged, learned PSNR, CS PSNRs) per plane
    for key, rows in slices.items():
        cs = [r for r in rows if r["family"] in FALLBACK_FAMILIES]
        for r in (r for r in rows if r["family"] == "learned"):
            verdict = guard.compare(r["est_psnr"], r["est_spread"], [(c["method"], c["est_psnr"], c["est_spread"]) for c in cs],
                                    **guard.judging(r["est_calibration"], _kind(r), calibration))
            if key[3].endswith(PLANES):
                volumes.setdefault((key[0], *key[2:], r["method"]), []).append(
                    (verdict.flagged, r["psnr"], {c["method"]: c["psnr"] for c in cs}))
            true_gap = r["psnr"] - max(c["psnr"] for c in cs)
            if true_gap <= -1:
                worse += 1
                worse_flagged += verdict.flagged
            elif true_gap > 0:
                better += 1
                better_flagged += verdict.flagged
    lines.append(f"guard: flagged {worse_flagged}/{worse} (slice, learned method) pairs at least 1 dB worse than the best CS "
                 f"(target all); {better_flagged}/{better} of those better than the best CS "
                 f"({100 * better_flagged / max(better, 1):.0f} %, target <= 10 %)")
    if volumes:
        lines.append(_volumes(volumes))
    seconds: dict[str, list[float]] = {}
    for r in records:
        seconds.setdefault(r["method"], []).append(r["estimate_seconds"] / max(r["seconds"], 1e-6))
    lines.append("estimate cost, in reconstructions: " + ", ".join(f"{m} {np.mean(v):.1f}x" for m, v in seconds.items()))
    return "\n".join(lines)


def _volumes(volumes: dict[tuple, list[tuple]]) -> str:
    """The guard as ``recon run --acquisition 3d`` applies it: a learned volume is written
    from CS when most of its judged planes are flagged
    (:func:`pipelines.common.volume.whole_volume`); its true gap is the mean of its planes'
    PSNR against the best CS method's mean."""
    worse_flagged = worse = better_flagged = better = 0
    for planes in volumes.values():
        flagged = 2 * sum(plane[0] for plane in planes) > len(planes)
        best = max(np.mean([plane[2][method] for plane in planes]) for method in planes[0][2])
        gap = np.mean([plane[1] for plane in planes]) - best
        worse, worse_flagged = worse + (gap <= -1), worse_flagged + (gap <= -1 and flagged)
        better, better_flagged = better + (gap > 0), better_flagged + (gap > 0 and flagged)
    return (f"guard per 3-D volume (most judged planes flagged): flagged {worse_flagged}/{worse} volumes at least 1 dB "
            f"worse than the best CS; {better_flagged}/{better} of those better ({100 * better_flagged / max(better, 1):.0f} %)")


def _coverage(records: list[dict]) -> list[str]:
    """How often the stated interval holds the truth, and the mean |estimated - true|,
    per mask kind and per mask family."""
    lines = ["stated interval [low, high] holds the true PSNR (target >= 80 %); mean |estimated - true| (dB):"]
    for name, key in (("kind", _kind), ("family", lambda r: r["mask_type"]), ("coils", lambda r: str(r.get("coils", 1))),
                      ("method family", lambda r: r["family"]), ("regime", lambda r: r.get("regime", "clean"))):
        groups: dict[str, list[dict]] = {}
        for r in records:
            groups.setdefault(key(r), []).append(r)
        for group, rows in sorted(groups.items()):
            held = [r["est_low"] <= r["psnr"] <= r["est_high"] for r in rows if np.isfinite(r["est_low"])]
            error = np.mean([abs(r["est_psnr"] - r["psnr"]) for r in rows])
            lines.append(f"  {name} {group}: {sum(held)}/{len(held)} ({100 * np.mean(held) if held else float('nan'):.0f} %), "
                         f"mean |error| {error:.2f} dB, mean width {np.mean([r['est_high'] - r['est_low'] for r in rows]):.1f} dB")
    return lines


def _families(slices: dict[tuple, list[dict]], calibration: dict) -> list[str]:
    """Per mask family and ratio, mean PSNR: zero-filled, the best CS per slice, each
    learned method alone and after the guard (where flagged, the true PSNR of what the
    guard writes); slices below zero-filled after the guard; and false fallbacks."""
    table: dict[tuple[str, str], dict[str, list[float]]] = {}
    for (_, _, preset, family, *_), rows in slices.items():
        cell = table.setdefault((family, preset), {})
        fallbacks = [r for r in rows if r["family"] in FALLBACK_FAMILIES]
        cs = [r for r in rows if r["family"] == "cs"]
        zero = [r["psnr"] for r in rows if r["method"] == "zero-filled"]
        cell.setdefault("zero-filled", []).append(zero[0] if zero else float("nan"))
        best_cs = max(r["psnr"] for r in cs)
        cell.setdefault("best CS", []).append(best_cs)
        for r in (r for r in rows if r["family"] == "learned"):
            verdict = guard.compare(r["est_psnr"], r["est_spread"],
                                    [(c["method"], c["est_psnr"], c["est_spread"]) for c in fallbacks],
                                    **guard.judging(r["est_calibration"], _kind(r), calibration))
            written = next(c["psnr"] for c in fallbacks if c["method"] == verdict.reference) if verdict.flagged else r["psnr"]
            cell.setdefault(r["method"], []).append(r["psnr"])
            cell.setdefault(f"{r['method']} guarded", []).append(written)
            cell.setdefault(f"{r['method']} below zero-filled", []).append(float(zero and written < zero[0] - 0.05))
            cell.setdefault(f"{r['method']} false fallback", []).append(float(verdict.flagged and r["psnr"] > best_cs))
    learned = sorted({k for cell in table.values() for k in cell if k not in ("zero-filled", "best CS") and " " not in k})
    header = "| family | ratio | slices | zero-filled | best CS | " + " | ".join(
        f"{m} | {m} guarded | {m} below ZF | {m} false fallbacks" for m in learned) + " |"
    lines = ["per mask family (PSNR dB, means over slices):", header, "|" + "---|" * (header.count("|") - 1)]
    for (family, preset), cell in sorted(table.items()):
        row = [family, preset, str(len(cell["best CS"])), f"{np.nanmean(cell['zero-filled']):.2f}", f"{np.mean(cell['best CS']):.2f}"]
        for m in learned:
            if m not in cell:
                row += ["", "", "", ""]
                continue
            row += [f"{np.mean(cell[m]):.2f}", f"{np.mean(cell[m + ' guarded']):.2f}", f"{int(sum(cell[m + ' below zero-filled']))}",
                    f"{int(sum(cell[m + ' false fallback']))}"]
        lines.append("| " + " | ".join(row) + " |")
    return lines
