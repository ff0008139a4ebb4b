"""What the run and batch reports share: the page's style, embedded PNGs, key-value tables."""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def png_data(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def file_data(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode()


def estimate_text(record: dict) -> str:
    """A record's (or summary row's) estimated PSNR with its uncertainty: the calibrated
    80 % interval where it has one, else the hold-out folds' spread. (On 1-D masks the
    folds agree by construction, each distance bin holding one fold's lines, so their
    spread, 0, says nothing there; every calibrated mask kind has an interval.)"""
    low, high = record.get("estimated_psnr_low"), record.get("estimated_psnr_high")
    if low is not None and high is not None and np.isfinite(low) and np.isfinite(high):
        return f"{record['estimated_psnr']:.2f} [{low:.1f}, {high:.1f}]"
    return f"{record['estimated_psnr']:.2f} ± {record.get('estimated_psnr_spread', float('nan')):.2f}"


def noise_note(record: dict) -> str:
    """The residual against the data's noise level, when it could be estimated."""
    if "dc_residual_to_noise" not in record:
        return ""
    return f" ({record['dc_residual_to_noise']:.2f}× the noise level σ√M)"


def _flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [item for key, inner in value.items() for item in _flatten(inner, f"{prefix}{key}." if prefix or key else "")]
    if isinstance(value, list) and len(value) > 8:
        return [(prefix.rstrip("."), f"{len(value)} items: {', '.join(map(str, value[:4]))}, …")]
    if isinstance(value, float):  # 0.04, not 0.04000000000000001
        return [(prefix.rstrip("."), f"{value:.6g}")]
    return [(prefix.rstrip("."), str(value))]


def key_value_table(data: dict, defaults: dict | None = None) -> str:
    """A nested dict as a readable two-column table (``a.b.c`` keys). Keys of
    ``data["config"]`` whose value equals ``defaults`` are folded away under a
    "defaults" line, so what was chosen stands out."""
    def rows(items: list[tuple[str, str]]) -> str:
        return "".join(f"<tr><th>{html.escape(key)}</th><td>{html.escape(text)}</td></tr>" for key, text in items)

    items = _flatten(data)
    if defaults:
        default_keys = {f"config.{key}" for key, value in defaults.items()
                        if key in data.get("config", {}) and data["config"][key] == value}
        chosen = [(key, text) for key, text in items if key not in default_keys]
        folded = [(key, text) for key, text in items if key in default_keys]
        table = f'<table class="provenance"><tbody>{rows(chosen)}</tbody></table>'
        if folded:
            table += (f"<details><summary>{len(folded)} settings left at their defaults</summary>"
                      f'<table class="provenance"><tbody>{rows(folded)}</tbody></table></details>')
        return table
    return f'<table class="provenance"><tbody>{rows(items)}</tbody></table>'


STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:nth-child(-n+2),th{text-align:left}td.best{font-weight:bold;background:#eef7ee}td.flag,.flag{background:#fde2e2;font-weight:bold}
table.provenance td{text-align:left;font-family:monospace;font-size:12px}table.provenance th{font-weight:normal;color:#555}
.row,.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px;padding-bottom:6px}
figure{margin:0;min-width:0}figure img{width:100%;max-width:256px;display:block;margin-bottom:3px}
details summary{cursor:pointer;color:#555;font-size:13px;margin:4px 0}
figure img.zoom{image-rendering:pixelated}.label{font-size:12px;font-weight:bold;min-height:2.6em;overflow-wrap:anywhere}
.sublabel{font-size:11px;color:#444;margin-top:2px}.bars{display:flex;gap:24px;flex-wrap:wrap}
.plots{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}.plots svg{max-width:100%;height:auto}
.maskrow{display:flex;gap:16px;align-items:flex-start}img.mask{width:256px;border:1px solid #888}
.identity{background:#f3f5f8;border:1px solid #d5dbe3;padding:6px 10px;font-size:14px}
.key{list-style:none;font-size:12px;padding:0}.swatch{display:inline-block;width:12px;height:12px;border:1px solid #888;margin-right:6px}
"""
