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
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


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
    return lut[np.round(np.clip(values, 0, 1) * 255).astype(int)]


def colour_bar(name: str, vmax: float, label: str) -> str:
    """A horizontal, labelled colour bar for ``[0, vmax]``."""
    import matplotlib

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(3.4, 0.55))
    matplotlib.colorbar.ColorbarBase(axis, cmap=matplotlib.colormaps[name], orientation="horizontal",
                                     norm=matplotlib.colors.Normalize(0, vmax))
    axis.set_xlabel(label)
    return _svg(figure)


def strip_plot(columns: Sequence[tuple[str, Sequence[float]]], ylabel: str, title: str) -> str:
    """Per-slice values, one column of jittered dots (and a bar at the mean) per
    ``(label, values)``."""
    columns = [(label, [v for v in values if np.isfinite(v)]) for label, values in columns]
    columns = [(label, values) for label, values in columns if values]
    if not columns:
        return ""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(max(3.5, 0.75 * len(columns) + 1.5), 3.0))
    rng = np.random.default_rng(0)
    for index, (_, values) in enumerate(columns):
        colour = PALETTE[index % len(PALETTE)]
        axis.scatter(index + rng.uniform(-0.15, 0.15, len(values)), values, s=14, color=colour, alpha=0.75)
        axis.hlines(np.mean(values), index - 0.28, index + 0.28, color="black", linewidth=1.8)
    axis.set_xticks(range(len(columns)), [label for label, _ in columns], rotation=30, ha="right")
    axis.set_xlim(-0.6, len(columns) - 0.4)
    axis.set_xlabel("method")
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(axis="y", alpha=0.3)
    return _svg(figure)


def line_plot(series: dict[str, Sequence[tuple[float, float]]], xlabel: str, ylabel: str, title: str) -> str:
    """One line per method through its ``(x, y)`` points."""
    if not series:
        return ""
    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(4.8, 3.2))
    for index, (name, points) in enumerate(sorted(series.items())):
        xs, ys = zip(*sorted(points))
        axis.plot(xs, ys, marker="o", color=PALETTE[index % len(PALETTE)], label=name)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8, loc="best")
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
    for index, (name, values) in enumerate(sorted(points.items())):
        true, estimated = zip(*values)
        axis.scatter(true, estimated, s=16, color=PALETTE[index % len(PALETTE)], label=name)
    axis.set_xlabel("true PSNR (dB, against the reference)")
    axis.set_ylabel("estimated PSNR (dB, no reference)")
    axis.set_title(title)
    axis.set_xlim(low, high)
    axis.set_ylim(low, high)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7, loc="upper left")
    return _svg(figure)
