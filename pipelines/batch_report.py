"""``report.html`` of a ``recon batch`` output folder: per file and method, the metrics
(when a reference exists), seconds per slice and the trust check, per-file strip plots,
a preview of the middle slice of every output, the failures with their reasons, and
the provenance. Self-contained like the run report (:mod:`pipelines.report`)."""

from __future__ import annotations

import html
import json
from pathlib import Path

from pipelines.output import atomic_file
from pipelines.report import STYLE, file_data, strip_svg
from recon.trust import HALLUCINATION_THRESHOLD


def _cell(value, fmt: str) -> str:
    return f"<td>{fmt.format(value)}</td>" if value is not None else "<td>n/a</td>"


def build_batch_report(out: str | Path) -> str:
    """The report's HTML for a batch output folder."""
    out = Path(out)
    manifest_path = out / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{out}: not a recon batch folder (no manifest.json)")
    manifest = json.loads(manifest_path.read_text())
    studies = {path.name[: -len(".metrics.json")]: json.loads(path.read_text()) for path in sorted(out.glob("*.metrics.json"))}
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>recon batch report</title>",
             f"<style>{STYLE}</style></head><body><h1>recon batch report</h1>"]
    rows = ['<table class="summary"><thead><tr><th>file</th><th>method</th><th>k-space</th><th>mask</th><th>ratio</th>'
            "<th>PSNR (dB)</th><th>SSIM</th><th>NMSE</th><th>s/slice</th><th>DC residual</th><th>added in unmeasured k-space</th>"
            "</tr></thead><tbody>"]
    for name, study in studies.items():
        scored = {m: r for m, r in study["methods"].items() if "psnr" in r}
        best = max(scored, key=lambda m: scored[m]["psnr"]) if scored else None
        for method, record in study["methods"].items():
            energy = record.get("hallucination_energy")
            flag = energy is not None and energy > HALLUCINATION_THRESHOLD
            rows.append(
                f'<tr><td>{html.escape(name)}</td><td>{html.escape(method)}{" ★" if method == best else ""}</td>'
                f'<td>{html.escape(study["kspace"])}</td><td>{html.escape(str(study["mask"]))} {html.escape(str(study["mask_type"]))}</td>'
                f'<td>{study["ratio"]:.3f}</td>' + _cell(record.get("psnr"), "{:.2f}") + _cell(record.get("ssim"), "{:.4f}")
                + _cell(record.get("nmse"), "{:.5f}") + _cell(record["seconds_per_slice"], "{:.3f}")
                + _cell(record.get("dc_residual_max"), "{:.1e}")
                + (f'<td class="{"flag" if flag else ""}">{energy:.4f} vs {html.escape(record["hallucination_reference"])}</td>'
                   if energy is not None else "<td>n/a</td>") + "</tr>")
    rows.append("</tbody></table>")
    parts.append(f"<h2>Results ({len(studies)} outputs)</h2>" + "".join(rows) +
                 "<p>★: the best PSNR of the file. Metrics need a reference (simulated k-space, or fully sampled raw data); "
                 f"learned outputs are flagged when they add more than {HALLUCINATION_THRESHOLD:.0%} of their energy in "
                 "unmeasured k-space relative to the best CS output.</p>")
    methods = sorted({m for study in studies.values() for m in study["methods"]})
    for key, title in (("psnr", "PSNR (dB) per file"), ("ssim", "SSIM per file")):
        columns = [(m, "", [s["methods"][m][key] for s in studies.values() if key in s["methods"].get(m, {})]) for m in methods]
        parts.append(strip_svg([c for c in columns if c[2]], title))
    noted = [(entry["input"], note) for entry in manifest["units"].values() for note in entry.get("notes", [])]
    if noted:
        parts.append("<h2>Notes on the inputs</h2><ul>" + "".join(f"<li>{html.escape(note)}</li>" for _, note in noted) + "</ul>")
    failed = [entry for entry in manifest["units"].values() if entry.get("status") != "done"]
    if failed:
        parts.append("<h2>Failed inputs</h2><ul>" + "".join(f"<li>{html.escape(e.get('error', e['input']))}</li>" for e in failed) + "</ul>")
    parts.append("<h2>Previews (middle slice)</h2>")
    for name in studies:
        figures = []
        for label in ["reference", *methods]:
            preview = out / "previews" / f"{name}_{label}.png"
            if preview.is_file():
                figures.append(f'<figure><img alt="{html.escape(name)} {html.escape(label)}" src="{file_data(preview)}">'
                               f"<figcaption>{html.escape(label)}</figcaption></figure>")
        parts.append(f'<h3>{html.escape(name)}</h3><div class="grid">{"".join(figures)}</div>')
    parts.append(f"<h2>Provenance</h2><pre>{html.escape(json.dumps(manifest.get('config', {}), indent=1))}</pre></body></html>")
    return "".join(parts)


def write_batch_report(out: str | Path) -> Path:
    """Write ``OUT/report.html`` atomically."""
    out = Path(out)
    path = out / "report.html"
    with atomic_file(path) as tmp:
        tmp.write_text(build_batch_report(out), encoding="utf-8")
    return path
