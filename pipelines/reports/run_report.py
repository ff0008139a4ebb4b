"""A self-contained HTML comparison report of one or more ``recon run`` outputs.

``recon run`` writes ``report.html`` into its output folder, and ``recon report RUN_DIR
[RUN_DIR ...]`` rebuilds it (several runs, e.g. one per mask, become one report with
quality plotted against the sampling ratio). The page needs no network: images are
embedded as base64 PNG and the plots are inline SVG.

It holds: a summary table (method x mask, mean ± std of PSNR, SSIM and NMSE, seconds per
slice, the best value of each column marked), the trust check of every learned method,
per-slice strip plots of PSNR and SSIM, quality against ratio, an image grid (reference
and every method, each with its error map on one labelled colour scale and a zoomed
region of interest), the mask with its achieved ratio, and the provenance.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipelines.common.output import atomic_file
from pipelines.reports import plots
from pipelines.reports.page import (
    STYLE,
    estimate_text,
    file_data,
    key_value_table,
    noise_note,
    png_data,
)
from pipelines.reports.volume_report import plane_grid

ROI = (0.3, 0.3, 0.25)  # zoomed region: top and left as fractions of the image, and its side
LOWER_IS_BETTER = {"nmse", "seconds"}


def _zoom(path: Path, factor: int = 2) -> str:
    image = Image.open(path)
    width, height = image.size
    top, left, side = int(ROI[0] * height), int(ROI[1] * width), int(ROI[2] * min(width, height))
    crop = image.crop((left, top, left + side, top + side))
    return png_data(np.asarray(crop.resize((side * factor, side * factor), Image.NEAREST)))


def _load(run_dir: Path) -> dict[str, Any]:
    metrics_path, config_path = run_dir / "metrics.json", run_dir / "config.json"
    if not metrics_path.is_file() or not config_path.is_file():
        raise FileNotFoundError(f"{run_dir}: not a recon run folder (needs metrics.json and config.json)")
    run = {"dir": run_dir}
    for key, path in (("metrics", metrics_path), ("config", config_path)):
        try:
            run[key] = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path}: unreadable run output (not valid JSON: {error})") from None
    run["label"] = _label(run["config"])
    return run


def _label(config: dict) -> str:
    """What tells runs apart in tables and plots: the mask, and the coils, noise and
    phase when they are not the single-coil noiseless default."""
    settings, mask = config.get("config", {}), config.get("mask", {})
    label = f"{settings.get('mask', 'file')} {mask.get('kind', '')}".strip()
    coils = int(settings.get("coils", 1) or 1)
    if coils > 1:
        label += f", {coils} coils"
    if settings.get("noise_snr") is not None:
        label += f", SNR {settings['noise_snr']:g} dB"
    if settings.get("phase"):
        label += ", phase"
    return label


def _identity(run: dict) -> str:
    """The run in one line, at the top of the page: input, mask, coils, k-space, slices, date."""
    config = run["config"]
    settings, mask = config.get("config", {}), config.get("mask", {})
    coils = int(settings.get("coils", 1) or 1)
    noise = settings.get("noise_snr")
    parts = [f"<b>input</b> {html.escape(str(config.get('source', '?')))} ({len(config.get('slices', []))} slices)",
             f"<b>mask</b> {html.escape(str(settings.get('mask', 'file')))} {html.escape(str(mask.get('kind', '')))}, "
             f"achieved ratio {mask.get('ratio', float('nan')):.4f}",
             f"<b>coils</b> {coils}" + (f", noise SNR {noise:g} dB" if noise is not None else ", no added noise"),
             f"<b>k-space</b> {html.escape(str(config.get('kspace', '?')))}",
             f"<b>methods</b> {len(config.get('methods', []))}"]
    if config.get("created"):
        parts.append(f"<b>run</b> {html.escape(str(config['created']))}, recon {html.escape(str(config.get('version', '')))}")
    return f'<p class="identity">{" · ".join(parts)}</p>'


def _strip_plot(runs: list[dict], key: str, ylabel: str) -> str:
    """Per-slice values of ``key``, one column per (run, method)."""
    columns = [(f"{method} ({run['label']})" if len(runs) > 1 else method,
                [r[key] for r in run["metrics"]["records"] if r["method"] == method])
               for run in runs for method in _methods(run)]
    return plots.strip_plot(columns, ylabel, f"{ylabel} per slice")


def _ratio_plot(runs: list[dict], key: str, ylabel: str) -> str:
    """Mean ``key`` against the achieved sampling ratio, one line per method and
    acquisition: runs that differ in mask family or coils are never joined."""
    def group(run: dict) -> str:
        coils = int(run["config"].get("config", {}).get("coils", 1) or 1)
        return f"{run['config']['mask'].get('kind', '?')}, {coils} coil{'s' if coils > 1 else ''}"

    several = len({group(run) for run in runs}) > 1
    series: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        for row in run["metrics"]["summary"]:
            name = f"{row['method']} ({group(run)})" if several else row["method"]
            series.setdefault(name, []).append((100 * run["config"]["mask"]["ratio"], row[key]))
    series = {name: points for name, points in series.items() if len(points) > 1}
    if not series:
        return ""
    return plots.line_plot(series, "sampling ratio (% of k-space)", ylabel, f"{ylabel} against sampling ratio")


def _estimate_plot(runs: list[dict]) -> str:
    points: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        for record in run["metrics"]["records"]:
            if "estimated_psnr" in record and "psnr" in record:
                points.setdefault(record["method"], []).append((record["psnr"], record["estimated_psnr"]))
    return plots.estimate_plot(points, "Estimated against true PSNR, per slice") if points else ""


def _methods(run: dict) -> list[str]:
    return [row["method"] for row in run["metrics"]["summary"]]


def _summary_table(runs: list[dict]) -> str:
    rows = [(run["label"], row) for run in runs for row in run["metrics"]["summary"]]
    estimated = any("estimated_psnr" in row for _, row in rows)
    keys = ["psnr", "ssim", "nmse", "seconds"] + (["estimated_psnr"] if estimated else [])
    best = {}
    for key in keys:
        for label in {label for label, _ in rows}:
            candidates = [row[key] for lab, row in rows if lab == label and key in row
                          and not (key == "seconds" and row["method"] == "zero-filled")]
            best[(label, key)] = (min if key in LOWER_IS_BETTER else max)(candidates) if candidates else None
    head = "<th>mask</th><th>method</th><th>PSNR (dB)</th><th>SSIM</th><th>NMSE</th><th>s/slice</th>"
    if estimated:
        head += "<th>estimated PSNR (dB), no reference</th><th>rank by estimate</th>"
    lines = [f'<table class="summary"><thead><tr>{head}<th>slices</th></tr></thead><tbody>']
    for label, row in rows:
        cells = []
        for key, fmt in (("psnr", "{:.2f} ± {:.2f}"), ("ssim", "{:.4f} ± {:.3f}"), ("nmse", "{:.5f} ± {:.5f}"), ("seconds", "{:.3f}")):
            text = fmt.format(row[key], row.get(f"{key}_std", 0.0))
            marked = row[key] == best[(label, key)]
            cells.append(f'<td class="{"best" if marked else ""}">{text}{" ★" if marked else ""}</td>')
        if estimated:
            if "estimated_psnr" in row:
                marked = row["estimated_psnr"] == best[(label, "estimated_psnr")]
                ranked = sorted((r["estimated_psnr"] for lab, r in rows if lab == label and "estimated_psnr" in r), reverse=True)
                cells.append(f'<td class="{"best" if marked else ""}">{estimate_text(row)}'
                             f'{" ★" if marked else ""}</td><td>{ranked.index(row["estimated_psnr"]) + 1}</td>')
            else:
                cells.append("<td>n/a</td><td>n/a</td>")
        lines.append(f'<tr><td>{html.escape(label)}</td><td>{html.escape(row["method"])}</td>{"".join(cells)}<td>{row["slices"]}</td></tr>')
    lines.append("</tbody></table>")
    return "".join(lines)


def _trust_table(runs: list[dict]) -> str:
    from recon.trust.check import HALLUCINATION_THRESHOLD

    rows = [(run["label"], row) for run in runs for row in run["metrics"]["summary"] if "dc_residual_max" in row]
    if not rows:
        return "<p>No learned method in this run.</p>"
    lines = ["<table><thead><tr><th>mask</th><th>method</th><th>guard: estimably worse than</th><th>slices flagged by the guard</th>"
             "<th>data-consistency residual (max)</th><th>energy added in unmeasured k-space (mean)</th><th>compared with</th>"
             "<th>slices above the energy threshold</th></tr></thead><tbody>"]
    for label, row in rows:
        flagged = row.get("hallucination_flagged", 0)
        guarded = row.get("guard_flagged")
        guard_cell = (f'<td class="{"flag" if guarded else ""}">{guarded} / {row.get("guard_slices", row["slices"])}'
                      + (f"; {row['guard_replaced']} written from it (the guard; --no-guard keeps them)" if row.get("guard_replaced") else "") + "</td>"
                      if guarded is not None else "<td>n/a (no estimate)</td>")
        energy = f"{row['hallucination_energy']:.4f}" if "hallucination_energy" in row else "n/a"
        lines.append(f'<tr><td>{html.escape(label)}</td><td>{html.escape(row["method"])}</td>'
                     f'<td>{html.escape(str(row.get("guard_reference") or "n/a"))}</td>{guard_cell}<td>{row["dc_residual_max"]:.1e}{noise_note(row)}</td>'
                     f'<td>{energy}</td><td>{html.escape(row.get("hallucination_reference", "n/a"))}</td>'
                     + (f'<td class="{"flag" if flagged else ""}">{flagged} / {row["slices"]}</td></tr>'
                        if "hallucination_energy" in row else "<td>n/a</td></tr>"))
    guarded = any("guard_flagged" in row for _, row in rows)
    measured = any("hallucination_energy" in row for _, row in rows)
    lines.append("</tbody></table>")
    if not guarded and not measured:
        lines.append("<p>The residual measures how well each learned image fits the measured k-space (also against "
                     "the noise the data show, σ√M, where it could be estimated: about 1 fits the data to the noise). "
                     "No guard and no energy in unmeasured k-space here: neither the hold-out estimate nor an unmeasured "
                     "grid exists for this sampling.</p>")
        return "".join(lines)
    lines.append("<p>The <b>guard</b> flags a slice when the learned method's estimated PSNR (k-space hold-out, "
                 "no reference: <code>recon.trust.holdout</code>) does not lead the best CS (or zero-filled) method's by at least 1.5 dB less the "
                 "two estimates' spread over the folds (<code>recon.trust.guard</code>); by default the run then writes that output for the slice "
                 "(<code>--no-guard</code> keeps the learned one), and each image says which output was written and why. The energy column "
                 "measures how far the learned image departs from the best CS image in the k-space that was not measured "
                 "(for a lowres mask, super-resolution: from zero-filled, i.e. everything added beyond the measured block); "
                 "the residual is also given against the noise the data show (σ√M, σ estimated from the coils' outer "
                 "k-space, M measured samples): about 1 fits the data to the noise, much more ignores the data; "
                 f"above {HALLUCINATION_THRESHOLD:.0%} of its energy it is marked. It measures departure, not error.</p>")
    return "".join(lines)


def _figure(label: str, body: str) -> str:
    return f'<figure><div class="label">{html.escape(label)}</div>{body}</figure>'


def _image_grid(run: dict, max_slices: int = 3) -> str:
    if run["config"].get("acquisition") == "3d":
        return plane_grid(run, _methods(run))
    folder = run["dir"] / "images"
    slices = run["config"].get("slices", [])
    if not folder.is_dir() or not slices:
        return ""
    chosen = [slices[i] for i in sorted({0, len(slices) // 2, len(slices) - 1})][:max_slices]
    shown = (f"<p>Showing {len(chosen)} of the {len(slices)} slices measured: the first, middle and last "
             f"({', '.join(html.escape(s) for s in chosen)}), to keep the page light; every slice is in the table, "
             "the plots and <code>metrics.json</code>, and its images are in <code>images/</code>.</p>"
             if len(chosen) < len(slices) else f"<p>Showing all {len(slices)} slices measured.</p>")
    methods = _methods(run)
    data_range = float(run["metrics"].get("data_range", 1.0))
    scale = float(run["config"].get("error_map_fraction", 0.2))
    superres = any(r.get("hallucination_reference") == "zero-filled" for r in run["metrics"]["records"])
    added = ("added beyond the measured k-space block (SR; vs zero-filled, same range)" if superres
             else "added in unmeasured k-space vs best CS (same range)")
    parts = [shown, '<div class="bars">',
             plots.colour_bar(plots.ERROR_CMAP, scale * data_range, f"|recon - reference| (0 to {scale:.0%} of the data range)"),
             plots.colour_bar(plots.ADDED_CMAP, scale * data_range, added) if any(folder.glob("*_hallucination.png")) else "",
             "</div>"]
    for slice_id in chosen:
        safe = slice_id.replace(":", "-").replace("/", "-")
        scores = {r["method"]: r for r in run["metrics"]["records"] if r["slice"] == slice_id}
        columns = []
        reference = folder / f"reference_{safe}.png"
        if reference.is_file():
            columns.append(_figure("reference", f'<img alt="reference {html.escape(slice_id)}" src="{file_data(reference)}">'
                                   f'<img class="zoom" alt="reference zoom" src="{_zoom(reference)}">'))
        for method in methods:
            image, error = folder / f"{method}_{safe}.png", folder / f"{method}_{safe}_error.png"
            if not image.is_file():
                continue
            record = scores.get(method, {})
            label = f"{method}: {record.get('psnr', float('nan')):.2f} dB, SSIM {record.get('ssim', float('nan')):.3f}"
            if record.get("guard_output", method) != method:
                label += f"; shown and written: {record['guard_output']} (the guard; --no-guard keeps {method})"
            body = (f'<img alt="{html.escape(method)}" src="{file_data(image)}">'
                    f'<img class="zoom" alt="{html.escape(method)} zoom" src="{_zoom(image)}">'
                    f'<div class="sublabel">error map</div><img alt="{html.escape(method)} error map" src="{file_data(error)}">')
            added = folder / f"{method}_{safe}_hallucination.png"
            if added.is_file():
                body += (f'<div class="sublabel">added in unmeasured k-space: {record.get("hallucination_energy", float("nan")):.4f} '
                         f'of its energy</div><img alt="{html.escape(method)} added in unmeasured k-space" src="{file_data(added)}">')
            if "estimated_psnr" in record:
                body += f'<div class="sublabel">estimated (no reference): {estimate_text(record)} dB</div>'
            if "guard_reason" in record:
                body += (f'<div class="sublabel{" flag" if record.get("guard_flagged") else ""}">guard wrote '
                         f'{html.escape(record["guard_reason"])}</div>')
            columns.append(_figure(label, body))
        parts.append(f'<h3>{html.escape(run["label"])}, slice {html.escape(slice_id)}</h3><div class="row">{"".join(columns)}</div>')
    return "".join(parts)


def _mask_section(run: dict) -> str:
    mask = run["config"].get("mask", {})
    mask_png = run["dir"] / "mask.png"
    picture = f'<img class="mask" alt="mask {html.escape(run["label"])}" src="{file_data(mask_png)}">' if mask_png.is_file() else ""
    if mask.get("shots") is not None:  # a trajectory: no grid, no calibration block
        params = mask.get("params", {})
        key = ('<ul class="key"><li>each line: one shot of the trajectory, drawn on the image grid</li>'
               f'<li>{mask["shots"]} {html.escape(str(mask.get("kind", "")))} shots of {mask.get("samples_per_shot", "?")} '
               f'samples; Nyquist at the edge of the grid needs {params.get("nyquist_shots", "?")}</li>'
               '<li>centre of k-space in the middle</li></ul>')
        return (f"<h2>Trajectory: {html.escape(run['label'])}</h2><div class=\"maskrow\">{picture}{key}</div><p>"
                f"{mask.get('ratio', float('nan')):.4f} of the shots Nyquist needs (target "
                f"{mask.get('target_ratio', float('nan')):.2f}), {html.escape(str(params.get('ordering', '')))} ordering</p>")
    centre = mask.get("center") or ["?", "?"]
    key = ('<ul class="key"><li><span class="swatch" style="background:#fff"></span>sampled k-space point</li>'
           '<li><span class="swatch" style="background:#000"></span>not sampled</li>'
           f'<li>horizontal axis: phase encoding (W); vertical: readout (H, always sampled); centre of k-space in the middle; '
           f'fully sampled centre {centre[0]}×{centre[1]}</li></ul>')
    return (f"<h2>Mask: {html.escape(run['label'])}</h2><div class=\"maskrow\">{picture}{key}</div><p>achieved ratio "
            f"{mask.get('ratio', float('nan')):.4f} (target {mask.get('target_ratio', float('nan')):.2f}), family "
            f"{html.escape(str(mask.get('kind', '?')))}</p>")


def _provenance(run: dict) -> str:
    from dataclasses import asdict

    from pipelines.config import RunConfig

    config = run["config"]
    table = key_value_table({key: config.get(key) for key in ("version", "seed", "source", "kspace", "slices", "methods",
                                                               "config", "mask", "environment") if key in config},
                            defaults=asdict(RunConfig()))
    notes = "".join(f"<li>{html.escape(str(note))}</li>" for note in config.get("notes", []))
    return (f"<h2>Provenance: {html.escape(run['label'])}</h2>" + table + (f"<h3>Notes</h3><ul>{notes}</ul>" if notes else ""))


def _estimate_subset_note(runs: list[dict]) -> str:
    """Say when the estimate ran on fewer slices than were measured (``--estimate-slices``)."""
    partial = {(row.get("estimated_slices"), row["slices"]) for run in runs for row in run["metrics"]["summary"]
               if row.get("estimated_slices", row["slices"]) < row["slices"]}
    return "".join(f" The estimate and the guard ran on {a} of the {b} slices (evenly spread; "
                   "<code>--estimate-slices all</code> runs them on every slice)." for a, b in sorted(partial))


def build_report(run_dirs: list[str | Path]) -> str:
    """The report's HTML for the given run folders."""
    runs = [_load(Path(folder)) for folder in run_dirs]
    sections = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>recon comparison report</title>",
                f"<style>{STYLE}</style></head><body><h1>recon comparison report</h1>"]
    estimated = any("estimated_psnr" in row for run in runs for row in run["metrics"]["summary"])
    sections += [(f"<h3>{html.escape(run['label'])}</h3>" if len(runs) > 1 else "") + _identity(run) for run in runs]
    sections.append("<h2>Summary</h2>" + _summary_table(runs) +
                    "<p>Mean ± standard deviation over slices; ★ marks the best value of each column per mask "
                    "(zero-filled is not counted for speed). Metrics follow fastMRI: magnitude images, data range = "
                    "the reference's maximum."
                    + (" The estimated PSNR needs no reference: each method reconstructs again without part of the "
                       "measured k-space and is scored on the part held out (<code>recon.trust.holdout</code>); "
                       "[low, high] is the interval that held the true PSNR on 80 % of the validation slices of its "
                       "calibration, ± (where there is no interval) the spread over the folds. It is what a user gets "
                       "on measured data." if estimated else "")
                    + _estimate_subset_note(runs) + "</p>")
    sections.append("<h2>Trust check</h2>" + _trust_table(runs))
    sections.append('<h2>Per-slice distributions</h2><div class="plots">' + _strip_plot(runs, "psnr", "PSNR (dB)") +
                    _strip_plot(runs, "ssim", "SSIM") + _estimate_plot(runs) + "</div>")
    ratio_plots = _ratio_plot(runs, "psnr", "PSNR (dB)") + _ratio_plot(runs, "ssim", "SSIM")
    if ratio_plots:
        sections.append('<h2>Quality against sampling ratio</h2><div class="plots">' + ratio_plots + "</div>")
    sections.append("<h2>Images</h2><p>One row per slice. Each method: the image, a 2× zoom of the region at "
                    f"({ROI[0]:.0%}, {ROI[1]:.0%}) of side {ROI[2]:.0%}, and its error map; learned methods also show "
                    "what they added in unmeasured k-space (on its own colour map), their estimated error and the "
                    "guard's verdict.</p>" + "".join(_image_grid(run) for run in runs))
    for run in runs:
        sections.append(_mask_section(run))
        sections.append(_provenance(run))
    sections.append("</body></html>")
    return "".join(sections)


def report_folders(paths: list[str]) -> tuple[list[Path], list[Path]]:
    """``(run folders, batch folders)``: a folder holding neither a run nor a batch but
    such folders inside (e.g. ``recon-output``) stands for all of them."""
    runs, batches = [], []
    for text in paths:
        folder = Path(text)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such folder")
        own = report_kind(folder)
        candidates = [folder] if own else sorted(p for p in folder.iterdir() if p.is_dir())
        kinds = {candidate: own or report_kind(candidate) for candidate in candidates}  # each folder looked at once
        if not any(kinds.values()):
            raise ValueError(f"{folder}: not a recon run or batch folder (no metrics.json and config.json, or "
                             "manifest.json), and no such folder inside it")
        runs += [f for f, kind in kinds.items() if kind == "run"]
        batches += [f for f, kind in kinds.items() if kind == "batch"]
    if runs and batches:
        raise ValueError("recon report combines runs with runs and batches with batches, not both")
    return runs, batches


def report_kind(folder: Path) -> str | None:
    if (folder / "manifest.json").is_file():
        return "batch"
    if (folder / "metrics.json").is_file() and (folder / "config.json").is_file():
        return "run"
    return None


def write_report(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Write the report atomically to ``out``."""
    out = Path(out)
    html_text = build_report(run_dirs)
    with atomic_file(out) as tmp:
        tmp.write_text(html_text, encoding="utf-8")
    return out
