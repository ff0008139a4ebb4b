"""The report's images of a 3-D acquisition: the three central orthogonal planes of
every method's volume, with error maps, and the volume's and each plane's metrics."""

from __future__ import annotations

import html

from pipelines.reports import plots
from pipelines.reports.page import file_data

PLANE_TITLES = {"x": "(y, z) plane at readout position", "y": "(x, z) plane at y", "z": "(x, y) plane at z"}


def plane_grid(run: dict, methods: list[str]) -> str:
    """HTML of the three planes (``images/PLANE_METHOD.png`` beside the reference)."""
    folder = run["dir"] / "images"
    planes = run["metrics"].get("planes") or []
    scores = run["metrics"].get("volume") or {}
    if not folder.is_dir() or not planes:
        return ""
    data_range = float(run["metrics"].get("data_range", 1.0))
    scale = float(run["config"].get("error_map_fraction", 0.2))
    rows = ["<tr><th>method</th><th>volume PSNR (dB)</th><th>volume SSIM</th><th>volume NMSE</th>"
            + "".join(f"<th>{html.escape(p)} PSNR / SSIM</th>" for p in planes) + "</tr>"]
    for method in methods:
        score = scores.get(method)
        if not score:
            continue
        cells = "".join(f"<td>{score['planes'][p]['psnr']:.2f} / {score['planes'][p]['ssim']:.3f}</td>" for p in planes)
        rows.append(f"<tr><td>{html.escape(method)}</td><td>{score['volume_psnr']:.2f}</td>"
                    f"<td>{score['volume_ssim']:.4f}</td><td>{score['volume_nmse']:.5f}</td>{cells}</tr>")
    parts = ["<p>A 3-D acquisition: every readout position's (ky, kz) plane was reconstructed; shown are the three "
             "central orthogonal planes of each method's volume. Volume metrics follow fastMRI (one data range, the "
             "reference volume's maximum; SSIM averaged over the readout planes).</p>",
             f"<table>{''.join(rows)}</table>", '<div class="bars">',
             plots.colour_bar(plots.ERROR_CMAP, scale * data_range, f"|recon - reference| (0 to {scale:.0%} of the data range)"),
             "</div>"]
    for plane in planes:
        columns = []
        reference = folder / f"{plane}_reference.png"
        if reference.is_file():
            columns.append(_figure("reference", f'<img alt="reference {html.escape(plane)}" src="{file_data(reference)}">'))
        for method in methods:
            image, error = folder / f"{plane}_{method}.png", folder / f"{plane}_{method}_error.png"
            if not image.is_file():
                continue
            score = scores.get(method, {}).get("planes", {}).get(plane, {})
            label = f"{method}: {score.get('psnr', float('nan')):.2f} dB, SSIM {score.get('ssim', float('nan')):.3f}"
            columns.append(_figure(label, f'<img alt="{html.escape(method)}" src="{file_data(image)}">'
                                          f'<div class="sublabel">error map</div>'
                                          f'<img alt="{html.escape(method)} error map" src="{file_data(error)}">'))
        title = f"{PLANE_TITLES.get(plane[0], 'plane')} {plane[1:]}"
        parts.append(f'<h3>{html.escape(run["label"])}, {html.escape(title)}</h3><div class="row">{"".join(columns)}</div>')
    return "".join(parts)


def _figure(label: str, body: str) -> str:
    return f'<figure><div class="label">{html.escape(label)}</div>{body}</figure>'
