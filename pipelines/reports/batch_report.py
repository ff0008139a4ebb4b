"""``report.html`` of a ``recon batch`` output folder: per file and method, the metrics
(when a reference exists), seconds per slice and the trust check, per-file strip plots,
a preview of the middle slice of every output (of a 3-D acquisition, three orthogonal
central planes), the failures with their reasons, and
the provenance. Self-contained like the run report (:mod:`pipelines.reports.run_report`)."""

from __future__ import annotations

import html
import json
from dataclasses import MISSING
from pathlib import Path

from pipelines.common.output import atomic_file
from pipelines.reports import plots
from pipelines.reports.page import STYLE, estimate_text, file_data, key_value_table, noise_note
from pipelines.reports.previews import ORIENTED_STYLE, PLANES, labelled
from recon.trust.check import HALLUCINATION_THRESHOLD


def _cell(value, fmt: str) -> str:
    return f"<td>{fmt.format(value)}</td>" if value is not None else "<td>n/a</td>"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: unreadable ({error})") from None


def _load_batches(folders: list[Path]) -> tuple[list[dict], dict[str, dict], dict[str, Path]]:
    """Every folder's manifest, and its studies keyed by name (``FOLDER/NAME`` when there
    are several folders) with the folder each came from."""
    manifests, studies, homes = [], {}, {}
    for folder in folders:
        manifest_path = folder / "manifest.json"
        if not manifest_path.is_file():
            raise FileNotFoundError(f"{folder}: not a recon batch folder (no manifest.json)")
        manifests.append(_read_json(manifest_path))
        for path in sorted(folder.glob("*.metrics.json")):
            name = path.name[: -len(".metrics.json")]
            key = f"{folder.name}/{name}" if len(folders) > 1 else name
            studies[key], homes[key] = _read_json(path), folder
    return manifests, studies, homes


def build_batch_report(folders: str | Path | list[str | Path]) -> str:
    """The report's HTML for one or more batch output folders."""
    folders = [Path(folder) for folder in (folders if isinstance(folders, list) else [folders])]
    manifests, studies, homes = _load_batches(folders)
    parts = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>recon batch report</title>",
             f"<style>{STYLE}{ORIENTED_STYLE}</style></head><body><h1>recon batch report</h1>"]
    rows = ['<table class="summary"><thead><tr><th>file</th><th>method</th><th>k-space</th><th>mask</th><th>ratio</th>'
            "<th>PSNR (dB)</th><th>SSIM</th><th>NMSE</th><th>estimated PSNR (dB), no reference [80 % interval]</th><th>s/slice</th>"
            "<th>guard</th><th>DC residual</th><th>added in unmeasured k-space</th></tr></thead><tbody>"]
    unreferenced = 0
    for name, study in studies.items():
        scored = {m: r for m, r in study["methods"].items() if "psnr" in r}
        estimated = {m: r for m, r in study["methods"].items() if "estimated_psnr" in r}
        if scored:
            order = sorted(study["methods"], key=lambda m: -scored.get(m, {}).get("psnr", -1e9))
            best = order[0]
        else:  # no reference: rank by the estimate, and say so
            unreferenced += 1
            order = sorted(study["methods"], key=lambda m: -estimated.get(m, {}).get("estimated_psnr", -1e9))
            best = order[0] if estimated else None
        for method in order:
            record = study["methods"][method]
            energy = record.get("hallucination_energy")
            flag = energy is not None and energy > HALLUCINATION_THRESHOLD
            estimate = "<td>n/a</td>"
            if "estimated_psnr" in record:
                estimate = f"<td>{estimate_text(record)}</td>"
            guarded = record.get("guard_flagged")
            holds = record.get("holds", f"{method} output")
            written = "" if holds == f"{method} output" else f"<br>file holds: {html.escape(holds)}"
            guard_cell = (f'<td class="{"flag" if guarded else ""}">{guarded}/{len(record["guard_flagged_slices"])} slices '
                          f'worse than {html.escape(str(record["guard_reference"]))}{written}</td>' if guarded is not None
                          else "<td>n/a</td>")
            rows.append(
                f'<tr><td>{html.escape(name)}</td><td>{html.escape(method)}{" ★" if method == best else ""}</td>'
                f'<td>{html.escape(study["kspace"])}</td><td>{html.escape(str(study["mask"]))} {html.escape(str(study["mask_type"]))}</td>'
                f'<td>{study["ratio"]:.3f}</td>' + _cell(record.get("psnr"), "{:.2f}") + _cell(record.get("ssim"), "{:.4f}")
                + _cell(record.get("nmse"), "{:.5f}") + estimate + _cell(record["seconds_per_slice"], "{:.3f}") + guard_cell
                + (f'<td>{record["dc_residual_max"]:.1e}{noise_note(record)}</td>' if "dc_residual_max" in record else "<td>n/a</td>")
                + (f'<td class="{"flag" if flag else ""}">{energy:.4f} vs {html.escape(record["hallucination_reference"])}</td>'
                   if energy is not None else "<td>n/a</td>") + "</tr>")
    rows.append("</tbody></table>")
    reasons = [f"<li>{html.escape(name)}, {html.escape(method)}, slice {index}: {html.escape(reason)}</li>"
               for name, study in studies.items() for method, record in study["methods"].items()
               for index, reason in enumerate(record.get("guard_reasons", []))]
    if reasons:
        rows.append(f"<details><summary>The guard, per slice: which output was written and why ({len(reasons)} "
                    f"slices)</summary><ul>{''.join(reasons)}</ul></details>")
    count = len({m for study in studies.values() for m in study["methods"]})
    parts.append(f"<h2>Results ({_plural(len(studies), 'file')}, {_plural(count, 'method')})</h2>" + "".join(rows) +
                 "<p>Methods are listed best first: by PSNR where a reference exists (simulated k-space, or fully sampled "
                 "raw data), else <b>by estimated error</b> (k-space hold-out, no reference: <code>recon.trust.holdout</code>), "
                 f"marked ★. {unreferenced} of {len(studies)} outputs have no reference and are ranked by the estimate. "
                 "The guard flags slices where a learned output's estimated PSNR does not lead the best CS (or "
                 "zero-filled) output's by 1.5 dB less the estimates' spread, and by default writes that output there "
                 "(<code>--no-guard</code> keeps the learned one): the output keeps the learned method's name, and its "
                 "header, its sidecar <code>.json</code>, the preview's caption and the list below say which slices "
                 "hold another method's image. Learned outputs that add more than "
                 f"{HALLUCINATION_THRESHOLD:.0%} of their "
                 "energy in unmeasured k-space relative to the best CS output are marked too.</p>")
    methods = sorted({m for study in studies.values() for m in study["methods"]})
    figures = []
    for key, label in (("psnr", "PSNR (dB)"), ("ssim", "SSIM"), ("estimated_psnr", "estimated PSNR (dB)")):
        columns, groups = [], []
        for m in methods:
            having = [(name, s["methods"][m][key]) for name, s in studies.items() if key in s["methods"].get(m, {})]
            columns.append((m, [value for _, value in having]))
            groups.append([name for name, _ in having])
        figures.append(plots.strip_plot(columns, label, f"{label} per file (mean: bar)", groups=groups))
    parts.append('<div class="plots">' + "".join(figures) + "</div>")
    units = [entry for manifest in manifests for entry in manifest["units"].values()]
    noted = [(entry["input"], note) for entry in units for note in entry.get("notes", [])]
    if noted:
        parts.append("<h2>Notes on the inputs</h2><ul>" + "".join(f"<li>{html.escape(note)}</li>" for _, note in noted) + "</ul>")
    failed = [entry for entry in units if entry.get("status") != "done"]
    if failed:
        parts.append("<h2>Failed inputs</h2><ul>" + "".join(f"<li>{html.escape(e.get('error', e['input']))}</li>" for e in failed) + "</ul>")
    parts.append("<h2>Previews (middle slice)</h2><p>Each output's middle slice as viewers show it (radiological "
                 "convention from the file's geometry: the patient's right on the left of an axial or coronal slice; "
                 "the letters name the patient's side at each edge), the error map |output − reference| on the range "
                 "given under it where there is a reference, and the sampling mask (k-space axes, not the patient's). "
                 "A caption names the image a preview holds when the guard wrote another method's output.</p>")
    for name, study in studies.items():
        parts.append(f'<h3>{html.escape(name)}</h3>{_previews(homes[name], name.split("/")[-1], study)}')
    for folder, manifest in zip(folders, manifests):
        config = manifest.get("config", {})
        parts.append(f"<h2>Provenance: {html.escape(str(folder))}</h2>"
                     + key_value_table({"config": config}, defaults=_batch_defaults(config)))
    parts.append("</body></html>")
    return "".join(parts)


def terminal_table(folder: Path, entries: list[dict], limit: int = 20) -> str:
    """What ``recon batch`` prints at the end: per finished file (the first ``limit``) and
    method, PSNR and SSIM where a reference exists, the estimate, and what the output holds
    when the guard wrote another method's image."""
    lines = []
    for entry in entries[:limit]:
        for relative in (o for o in entry.get("outputs", []) if o.endswith(".metrics.json")):
            try:
                study = json.loads((folder / relative).read_text())
            except (OSError, ValueError):
                continue
            lines.append(f"{relative[: -len('.metrics.json')]} ({study.get('kspace', '?')} k-space, {study.get('mask')} "
                         f"{study.get('mask_type')}, ratio {study.get('ratio', float('nan')):.3f}):")
            for method, record in study.get("methods", {}).items():
                scores = (f"PSNR {record['psnr']:6.2f} dB  SSIM {record['ssim']:.4f}" if "psnr" in record
                          else "no reference")
                estimate = (f"  est. {record['estimated_psnr']:6.2f} dB" if "estimated_psnr" in record else "")
                holds = record.get("holds", f"{method} output")
                written = "" if holds == f"{method} output" else f"  file holds: {holds}"
                lines.append(f"  {method:<12} {scores}{estimate}{written}")
    if len(entries) > limit:
        lines.append(f"... and {len(entries) - limit} more file(s): see report.html")
    return "\n".join(lines)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _previews(folder: Path, name: str, study: dict) -> str:
    """The study's previews: reference, every method (captioned with what it holds), the
    mask; a 3-D acquisition's two other central planes under them."""
    parts = [f'<div class="grid">{_figures(folder, name, study, "")}</div>']
    if study.get("acquisition") == "3d":
        for axis, plane in enumerate(PLANES, start=1):
            figures = _figures(folder, name, study, plane)
            if figures:
                parts.append(f'<p class="sublabel">the central plane across the stack\'s {"NHW"[axis]} axis (as '
                             f'stored)</p><div class="grid">{figures}</div>')
    return "".join(parts)


def _figures(folder: Path, name: str, study: dict, plane: str) -> str:
    """The figures of one plane's previews (``plane``: "" for the middle slice, with the
    mask, else a folder of :data:`pipelines.batch.outputs.PLANES`, shown as stored)."""
    preview = study.get("preview", {})
    layout, scale = (None if plane else preview.get("orientation")), preview.get("error_scale", 0.2)
    middle = preview.get("slice")
    figures = []
    for label in ["reference", *study["methods"]]:
        image = folder / "previews" / plane / f"{name}_{label}.png"
        if not image.is_file():
            continue
        record = study["methods"].get(label, {})
        caption = html.escape(label)
        sources = record.get("guard_output_slices")
        if sources and middle is not None and middle < len(sources) and sources[middle] != label:
            caption += (f'<div class="flag">shows {html.escape(sources[middle])}\'s image: the guard wrote it on this '
                        f"slice ({html.escape(record.get('holds', ''))})</div>")
        elif record.get("holds", label + " output") != label + " output":
            caption += f'<div class="sublabel">{html.escape(record["holds"])}</div>'
        body = labelled(f'<img alt="{html.escape(name)} {html.escape(label)}" src="{file_data(image)}">', layout)
        error = image.with_name(f"{name}_{label}_error.png")
        if error.is_file():
            body += (f'<div class="sublabel">error map, 0 to {scale:.0%} of the reference\'s maximum</div>'
                     + labelled(f'<img alt="{html.escape(label)} error map" src="{file_data(error)}">', layout))
        figures.append(f"<figure><figcaption>{caption}</figcaption>{body}</figure>")
    mask = folder / preview["mask"] if preview.get("mask") and not plane else None
    if mask is not None and mask.is_file():
        figures.append(f'<figure><figcaption>mask: {html.escape(str(study.get("mask")))} '
                       f'{html.escape(str(study.get("mask_type")))}, ratio {study.get("ratio", float("nan")):.3f}</figcaption>'
                       f'<img class="mask" alt="mask {html.escape(name)}" src="{file_data(mask)}">'
                       '<div class="sublabel">white: sampled; vertical: readout, horizontal: phase encoding</div></figure>')
    return "".join(figures)


def _batch_defaults(config: dict) -> dict:
    """BatchConfig's defaults, to fold away what a batch left unchanged."""
    from dataclasses import fields

    from pipelines.config import BatchConfig

    return {f.name: (list(f.default) if isinstance(f.default, tuple) else f.default)
            for f in fields(BatchConfig) if f.name in config and f.default is not MISSING}


def write_batch_report(folders: str | Path | list[str | Path], out: str | Path | None = None) -> Path:
    """Write the report of one or more batch folders atomically to ``out`` (default:
    the first folder's ``report.html``)."""
    folders = folders if isinstance(folders, list) else [folders]
    path = Path(out) if out is not None else Path(folders[0]) / "report.html"
    with atomic_file(path) as tmp:
        tmp.write_text(build_batch_report(folders), encoding="utf-8")
    return path
