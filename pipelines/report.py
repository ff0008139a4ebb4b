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

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pipelines.images import hot_colormap
from pipelines.output import atomic_file

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
ROI = (0.3, 0.3, 0.25)  # zoomed region: top and left as fractions of the image, and its side
LOWER_IS_BETTER = {"nmse", "seconds"}


def png_data(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def file_data(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


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
    try:
        run = {"dir": run_dir, "metrics": json.loads(metrics_path.read_text()), "config": json.loads(config_path.read_text())}
    except json.JSONDecodeError as error:
        raise ValueError(f"{run_dir}: unreadable run output: {error}") from error
    mask = run["config"].get("mask", {})
    run["label"] = f"{run['config']['config'].get('mask', 'file')} {mask.get('kind', '')}".strip()
    return run


def _strip_plot(runs: list[dict], key: str, title: str) -> str:
    """Per-slice values of ``key``, one column per (run, method), as inline SVG."""
    columns = [(method, run["label"] if len(runs) > 1 else "", [r[key] for r in run["metrics"]["records"] if r["method"] == method])
               for run in runs for method in _methods(run)]
    return strip_svg(columns, title)


def strip_svg(columns: list[tuple[str, str, list[float]]], title: str) -> str:
    """A strip plot: one column of dots (and its mean) per ``(name, sublabel, values)``."""
    values = [v for _, _, vs in columns for v in vs if np.isfinite(v)]
    if not values:
        return ""
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or 1.0
    low, high = low - pad, high + pad
    width, height, left, bottom = max(360, 70 * len(columns) + 70), 260, 60, 70
    plot_h = height - bottom - 20

    def y(v: float) -> float:
        return 20 + plot_h * (1 - (v - low) / (high - low))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="13">{html.escape(title)}</text>']
    for tick in np.linspace(low + pad, high - pad, 5):
        parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" font-size="11">{tick:.3g}</text>')
    names = sorted({name for name, _, _ in columns})
    for index, (name, sublabel, vs) in enumerate(columns):
        vs = [v for v in vs if np.isfinite(v)]
        x = left + 35 + 70 * index
        colour = PALETTE[names.index(name) % len(PALETTE)]
        for j, v in enumerate(vs):
            jitter = ((j * 7919) % 13 - 6) * 1.5
            parts.append(f'<circle cx="{x + jitter:.1f}" cy="{y(v):.1f}" r="3" fill="{colour}" fill-opacity="0.7"><title>{html.escape(name)}: {v:.4g}</title></circle>')
        if vs:
            mean = float(np.mean(vs))
            parts.append(f'<line x1="{x - 14}" x2="{x + 14}" y1="{y(mean):.1f}" y2="{y(mean):.1f}" stroke="#000" stroke-width="2"/>')
        parts.append(f'<text transform="translate({x},{height - bottom + 12}) rotate(35)" font-size="11">{html.escape(name)}</text>')
        if sublabel:
            parts.append(f'<text transform="translate({x - 10},{height - bottom + 12}) rotate(35)" font-size="9" fill="#555">{html.escape(sublabel)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _ratio_plot(runs: list[dict], key: str, title: str) -> str:
    """Mean ``key`` against the achieved sampling ratio, one line per method."""
    series: dict[str, list[tuple[float, float]]] = {}
    for run in runs:
        for row in run["metrics"]["summary"]:
            series.setdefault(row["method"], []).append((run["config"]["mask"]["ratio"], row[key]))
    ratios = sorted({r for points in series.values() for r, _ in points})
    if len(ratios) < 2:
        return ""
    values = [v for points in series.values() for _, v in points]
    low, high = min(values), max(values)
    pad = (high - low) * 0.08 or 1.0
    width, height, left, bottom = 420, 260, 60, 40
    x0, x1 = min(ratios), max(ratios)

    def x(r: float) -> float:
        return left + (width - left - 120) * (r - x0) / (x1 - x0)

    def y(v: float) -> float:
        return 20 + (height - bottom - 20) * (1 - (v - low + pad) / (high - low + 2 * pad))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="{width / 2}" y="14" text-anchor="middle" font-size="13">{html.escape(title)}</text>']
    for r in ratios:
        parts.append(f'<text x="{x(r):.1f}" y="{height - bottom + 16}" text-anchor="middle" font-size="11">{r:.0%}</text>')
    for index, (method, points) in enumerate(sorted(series.items())):
        colour = PALETTE[index % len(PALETTE)]
        points = sorted(points)
        path = " ".join(f"{x(r):.1f},{y(v):.1f}" for r, v in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x(r):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"><title>{html.escape(method)} {r:.0%}: {v:.4g}</title></circle>' for r, v in points]
        parts.append(f'<text x="{width - 110}" y="{30 + 14 * index}" font-size="11" fill="{colour}">{html.escape(method)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _methods(run: dict) -> list[str]:
    return [row["method"] for row in run["metrics"]["summary"]]


def _summary_table(runs: list[dict]) -> str:
    rows = [(run["label"], row) for run in runs for row in run["metrics"]["summary"]]
    best = {}
    for key in ("psnr", "ssim", "nmse", "seconds"):
        for label in {label for label, _ in rows}:
            candidates = [row[key] for lab, row in rows
                          if lab == label and not (key == "seconds" and row["method"] == "zero-filled")] or [None]
            best[(label, key)] = None if candidates == [None] else (min if key in LOWER_IS_BETTER else max)(candidates)
    lines = ['<table class="summary"><thead><tr><th>mask</th><th>method</th><th>PSNR (dB)</th><th>SSIM</th><th>NMSE</th>'
             '<th>s/slice</th><th>slices</th></tr></thead><tbody>']
    for label, row in rows:
        cells = []
        for key, fmt in (("psnr", "{:.2f} ± {:.2f}"), ("ssim", "{:.4f} ± {:.3f}"), ("nmse", "{:.5f} ± {:.5f}"), ("seconds", "{:.3f}")):
            text = fmt.format(row[key], row.get(f"{key}_std", 0.0))
            marked = row[key] == best[(label, key)]
            cells.append(f'<td class="{"best" if marked else ""}">{text}{" ★" if marked else ""}</td>')
        lines.append(f'<tr><td>{html.escape(label)}</td><td>{html.escape(row["method"])}</td>{"".join(cells)}<td>{row["slices"]}</td></tr>')
    lines.append("</tbody></table>")
    return "".join(lines)


def _trust_table(runs: list[dict]) -> str:
    from recon.trust import HALLUCINATION_THRESHOLD

    rows = [(run["label"], row) for run in runs for row in run["metrics"]["summary"] if "dc_residual_max" in row]
    if not rows:
        return "<p>No learned method in this run.</p>"
    lines = ["<table><thead><tr><th>mask</th><th>method</th><th>data-consistency residual (max)</th>"
             "<th>energy added in unmeasured k-space (mean)</th><th>compared with</th><th>slices flagged</th></tr></thead><tbody>"]
    for label, row in rows:
        flagged = row.get("hallucination_flagged", 0)
        energy = f"{row['hallucination_energy']:.4f}" if "hallucination_energy" in row else "n/a"
        lines.append(f'<tr><td>{html.escape(label)}</td><td>{html.escape(row["method"])}</td><td>{row["dc_residual_max"]:.1e}</td>'
                     f'<td>{energy}</td><td>{html.escape(row.get("hallucination_reference", "no CS method"))}</td>'
                     f'<td class="{"flag" if flagged else ""}">{flagged} / {row["slices"]}</td></tr>')
    lines.append(f"</tbody></table><p>A slice is flagged when the learned image differs from the best CS image, in the "
                 f"k-space that was not measured, by more than {HALLUCINATION_THRESHOLD:.0%} of its energy "
                 "(<code>recon.trust</code>).</p>")
    return "".join(lines)


def _colour_bar(vmax: float) -> str:
    ramp = hot_colormap(np.tile(np.linspace(0, 1, 256)[None, :], (12, 1)))
    return (f'<div class="bar"><span>0</span><img alt="error colour scale" src="{png_data(ramp)}">'
            f'<span>{vmax:.3g} (|error|, 20 % of the data range; brighter is larger)</span></div>')


def _image_grid(run: dict, max_slices: int = 3) -> str:
    folder = run["dir"] / "images"
    slices = run["config"].get("slices", [])
    if not folder.is_dir() or not slices:
        return ""
    chosen = [slices[i] for i in sorted({0, len(slices) // 2, len(slices) - 1})][:max_slices]
    methods = _methods(run)
    data_range = float(run["metrics"].get("data_range", 1.0))
    parts = [_colour_bar(0.2 * data_range)]
    for slice_id in chosen:
        safe = slice_id.replace(":", "-").replace("/", "-")
        scores = {r["method"]: r for r in run["metrics"]["records"] if r["slice"] == slice_id}
        cells = []
        reference = folder / f"reference_{safe}.png"
        if reference.is_file():
            cells.append(f'<figure><img alt="reference {html.escape(slice_id)}" src="{file_data(reference)}">'
                         f'<img class="zoom" alt="reference zoom" src="{_zoom(reference)}"><figcaption>reference</figcaption></figure>')
        for method in methods:
            image, error = folder / f"{method}_{safe}.png", folder / f"{method}_{safe}_error.png"
            if not image.is_file():
                continue
            record = scores.get(method, {})
            caption = f"{method}: {record.get('psnr', float('nan')):.2f} dB, SSIM {record.get('ssim', float('nan')):.3f}"
            extra = ""
            hallucination = folder / f"{method}_{safe}_hallucination.png"
            if hallucination.is_file():
                extra = f'<img alt="{html.escape(method)} hallucination map" src="{file_data(hallucination)}">'
                caption += f"; added in unmeasured k-space: {record.get('hallucination_energy', float('nan')):.4f}"
            cells.append(f'<figure><img alt="{html.escape(method)}" src="{file_data(image)}">'
                         f'<img class="zoom" alt="{html.escape(method)} zoom" src="{_zoom(image)}">'
                         f'<img alt="{html.escape(method)} error map" src="{file_data(error)}">{extra}'
                         f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        parts.append(f'<h3>{html.escape(run["label"])}, slice {html.escape(slice_id)}</h3><div class="grid">{"".join(cells)}</div>')
    return "".join(parts)


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:nth-child(-n+2),th{text-align:left}td.best{font-weight:bold;background:#eef7ee}td.flag{background:#fde2e2;font-weight:bold}
.grid{display:flex;flex-wrap:wrap;gap:10px}figure{margin:0;width:260px}figure img{width:256px;display:block;margin-bottom:3px}
figure img.zoom{image-rendering:pixelated}figcaption{font-size:12px}.bar img{width:256px;height:12px;vertical-align:middle}
.bar span{font-size:12px;margin:0 6px}pre{background:#f6f6f6;padding:8px;font-size:12px;overflow:auto}
"""


def build_report(run_dirs: list[str | Path]) -> str:
    """The report's HTML for the given run folders."""
    runs = [_load(Path(folder)) for folder in run_dirs]
    sections = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>recon comparison report</title>",
                f"<style>{STYLE}</style></head><body><h1>recon comparison report</h1>"]
    sections.append("<h2>Summary</h2>" + _summary_table(runs) +
                    "<p>Mean ± standard deviation over slices; ★ marks the best value of each column per mask "
                    "(zero-filled is not counted for speed). Metrics follow fastMRI: magnitude images, data range = "
                    "the reference's maximum.</p>")
    sections.append("<h2>Trust check</h2>" + _trust_table(runs))
    sections.append("<h2>Per-slice distributions</h2>" + _strip_plot(runs, "psnr", "PSNR (dB) per slice") +
                    _strip_plot(runs, "ssim", "SSIM per slice"))
    ratio_plots = _ratio_plot(runs, "psnr", "PSNR against sampling ratio") + _ratio_plot(runs, "ssim", "SSIM against sampling ratio")
    if ratio_plots:
        sections.append("<h2>Quality against sampling ratio</h2>" + ratio_plots)
    sections.append("<h2>Images</h2><p>Each method: the image, a 2× zoom of the region at "
                    f"({ROI[0]:.0%}, {ROI[1]:.0%}) of side {ROI[2]:.0%}, and its error map; learned methods also show "
                    "what they added in unmeasured k-space (same colour scale).</p>" + "".join(_image_grid(run) for run in runs))
    for run in runs:
        mask = run["config"].get("mask", {})
        mask_png = run["dir"] / "mask.png"
        picture = f'<img alt="mask {html.escape(run["label"])}" style="width:256px" src="{file_data(mask_png)}">' if mask_png.is_file() else ""
        sections.append(f"<h2>Mask: {html.escape(run['label'])}</h2>{picture}<p>achieved ratio {mask.get('ratio', float('nan')):.4f} "
                        f"(target {mask.get('target_ratio', float('nan')):.2f}), centre {mask.get('center')}</p>")
        provenance = {key: run["config"].get(key) for key in ("config", "version", "seed", "source", "kspace", "slices", "mask", "environment")}
        sections.append(f"<h2>Provenance: {html.escape(run['label'])}</h2><p>k-space: <b>{html.escape(str(run['config'].get('kspace', 'unknown')))}</b></p>"
                        f"<pre>{html.escape(json.dumps(provenance, indent=1, default=str))}</pre>")
    sections.append("</body></html>")
    return "".join(sections)


def write_report(run_dirs: list[str | Path], out: str | Path) -> Path:
    """Write the report atomically to ``out``."""
    out = Path(out)
    html_text = build_report(run_dirs)
    with atomic_file(out) as tmp:
        tmp.write_text(html_text, encoding="utf-8")
    return out
