"""The report's plots and colour maps, drawn with matplotlib (Agg, no display).

Every plot is returned as inline SVG with its text kept as text (``svg.fonttype =
none``), so the page stays self-contained, its labels are searchable, and a test can
check that every axis is labelled. Colour maps are matplotlib's perceptually uniform
ones: ``magma`` for errors, ``cividis`` for what a learned method added in unmeasured
k-space (a different map and its own scale bar, so the two are never confused).
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np

ERROR_CMAP = "magma"
ADDED_CMAP = "cividis"
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
           "#393b79", "#ad494a", "#8ca252", "#bd9e39", "#7b4173", "#3182bd", "#e6550d", "#31a354", "#756bb1", "#636363"]
MARKERS = "osD^vP*Xp<>h"


def method_colour(name: str) -> str:
    """One colour per method, the same in every plot of every report: the built-in
    methods in the registry's order, then any other name by a stable hash."""
    from recon.registry import BUILTIN  # the table only: no torch

    order = list(BUILTIN)
    if name in order:
        return PALETTE[order.index(name) % len(PALETTE)]
    import zlib

    return PALETTE[(len(order) + zlib.crc32(name.encode())) % len(PALETTE)]


def _legend_outside(axis, **options) -> None:
    """A legend to the right of the axes, where it never covers data."""
    axis.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, frameon=False, **options)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.titlesize": 10, "figure.dpi": 100,
                         "svg.hashsalt": "recon"})  # fixed ids: the same plot gives the same SVG
    return plt


def _svg(figure) -> str:
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    _pyplot().close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def colormap(values: np.ndarray, name: str) -> np.ndarray:
    """Values in [0, 1] (clipped) through a matplotlib colour map -> ``(H, W, 3)`` uint8."""
    import matplotlib

    lut = (matplotlib.colormaps[name](np.linspace(0, 1, 256))[:, :3] * 255).round().astype(np.uint8)
    return lut[np.round(np.clip(np.nan_to_num(values, nan=1.0, posinf=1.0), 0, 1) * 255).astype(int)]


def colour_bar(name: str, vmax: float, label: str) -> str:
    """A horizontal, labelled colour bar for ``[0, vmax]``."""
    import matplotlib

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(3.4, 0.55))
    matplotlib.colorbar.ColorbarBase(axis, cmap=matplotlib.colormaps[name], orientation="horizontal",
                                     norm=matplotlib.colors.Normalize(0, vmax))
    axis.set_xlabel(label)
    return _svg(figure)


def strip_plot(columns: Sequence[tuple[str, Sequence[float]]], ylabel: str, title: str,
               colours: Sequence[str] | None = None, groups: Sequence[Sequence[str]] | None = None) -> str:
    """Per-slice (or per-file) values, one column of jittered dots (and a bar at the
    mean) per ``(label, values)``. ``colours`` gives each column's colour (by default the
    method named by the label, :func:`method_colour`); ``groups`` names each value's
    group (e.g. the file it came from), drawn with its own marker and listed in a legend
    beside the plot, so the points of one file can be told apart."""
    kept = [(index, label, [(v, (groups[index][k] if groups else None)) for k, v in enumerate(values) if np.isfinite(v)])
            for index, (label, values) in enumerate(columns)]
    kept = [(index, label, values) for index, label, values in kept if values]
    if not kept:
        return ""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(max(3.5, 0.75 * len(kept) + 1.5), 3.0))
    rng = np.random.default_rng(0)
    names = sorted({group for _, _, values in kept for _, group in values if group is not None})
    for position, (index, label, values) in enumerate(kept):
        colour = colours[index] if colours else method_colour(label.split(" (")[0])
        jitter = position + rng.uniform(-0.15, 0.15, len(values))
        for (value, group), x in zip(values, jitter):
            marker = MARKERS[names.index(group) % len(MARKERS)] if group is not None else "o"
            axis.scatter([x], [value], s=16, color=colour, alpha=0.8, marker=marker)
        axis.hlines(np.mean([v for v, _ in values]), position - 0.28, position + 0.28, color="black", linewidth=1.8)
    axis.set_xticks(range(len(kept)), [label for _, label, _ in kept], rotation=30, ha="right")
    axis.set_xlim(-0.6, len(kept) - 0.4)
    axis.set_xlabel("method")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(axis="y", alpha=0.3)
    if names:
        for number, name in enumerate(names):
            axis.scatter([], [], marker=MARKERS[number % len(MARKERS)], color="#555", label=name)
        _legend_outside(axis, fontsize=7, title="file", title_fontsize=7)
    return _svg(figure)


def line_plot(series: dict[str, Sequence[tuple[float, float]]], xlabel: str, ylabel: str, title: str) -> str:
    """One line per series through its ``(x, y)`` points; a series named ``method (…)``
    takes the method's colour, and series of one method differ by line style."""
    if not series:
        return ""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.8, 3.2))
    styles = ["-", "--", ":", "-."]
    seen: dict[str, int] = {}
    for name, points in sorted(series.items()):
        method = name.split(" (")[0]
        style = styles[seen.setdefault(method, 0) % len(styles)]
        seen[method] += 1
        xs, ys = zip(*sorted(points))
        axis.plot(xs, ys, marker="o", linestyle=style, color=method_colour(method), label=name)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    _legend_outside(axis, fontsize=8)
    return _svg(figure)


def estimate_plot(points: dict[str, Sequence[tuple[float, float]]], title: str) -> str:
    """Estimated against true PSNR, one colour per method, with the identity line."""
    if not points:
        return ""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.2, 3.6))
    every = [v for values in points.values() for pair in values for v in pair]
    low, high = min(every) - 1, max(every) + 1
    axis.plot([low, high], [low, high], color="#999", linewidth=1, label="estimate = truth")
    for name, values in sorted(points.items()):
        true, estimated = zip(*values)
        axis.scatter(true, estimated, s=16, color=method_colour(name), label=name)
    axis.set_xlabel("true PSNR (dB, against the reference)")
    axis.set_ylabel("estimated PSNR (dB, no reference)")
    axis.set_title(title)
    axis.set_xlim(low, high)
    axis.set_ylim(low, high)
    axis.grid(alpha=0.3)
    _legend_outside(axis, fontsize=7)
    return _svg(figure)
