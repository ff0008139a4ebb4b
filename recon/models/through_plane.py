"""Through-plane super-resolution: thin slices from thick ones (SOUP-GAN's clinical use).

A thick-slice volume is taken as the average of ``F`` thin slices per thick slice
(``F`` = 2 or 4), :class:`physics.resolution.SliceAverage`. Restoring the thin slices:

- ``cubic`` and ``sinc``: interpolation along z (:mod:`recon.classical.through_plane`);
- ``soup-gan``: the cubic estimate refined by SOUP-GAN's deep LeakyReLU generator
  (trained as ``soup-gan-z`` through the shared trainer, on the train subjects' real
  planes containing z and on corpus slices degraded along one axis), on every plane
  that contains z (both orientations, averaged),
  then hard data consistency: each group of F restored slices averages exactly to its
  measured thick slice.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from physics.complex import peak
from physics.resolution import SliceAverage
from recon.classical.through_plane import cubic_rows, sinc_rows, thicken
from recon.models.learned import register_model
from recon.models.soup_gan import SPEC as SOUP_GAN
from recon.models.soup_gan import DeepConvBody, SoupGanConfig
from recon.models.superres import unshuffled_residual

METHODS = ("cubic", "sinc", "soup-gan")
MIN_PLANE = 16
FACTORS = (2, 4)


class SoupGanSlices(nn.Module):
    """SOUP-GAN for through-plane SR: the cubic estimate, projected onto the measured
    thick slices, refined by a deep LeakyReLU CNN (pixel-unshuffled by 2), projected
    again.

    Shapes
    ------
    forward(measured ``(B, 1, H, W)`` (each thick slice repeated along H), a
    :class:`~physics.resolution.SliceAverage`) -> ``(B, H, W)``.
    """

    def __init__(self, config: SoupGanConfig | None = None):
        super().__init__()
        self.config = config = config or SoupGanConfig()
        self.body = DeepConvBody(config)

    def forward(self, measured: torch.Tensor, operator: SliceAverage) -> torch.Tensor:
        thick = measured[:, 0]
        scale = peak(thick)
        thick = thick / scale
        estimates = []
        for item, factor in zip(thick, operator.factors if len(operator.factors) == len(thick) else operator.factors * len(thick)):
            estimates.append(cubic_rows(item[None, ::factor], factor)[0])
        x = operator.project(torch.stack(estimates), thick[:, None])
        channels = torch.stack([x.real, x.imag], dim=1)
        residual = unshuffled_residual(self.body, channels, self.config.scale, self.config.scale)
        x = x + torch.complex(residual[:, 0], residual[:, 1])
        return operator.project(x, thick[:, None]) * scale


register_model(replace(
    SOUP_GAN,
    name="soup-gan-z",
    description="SOUP-GAN through-plane super-resolution (thin slices from thick ones; recon sr --slice-factor 2|4)",
    build_generator=lambda options: SoupGanSlices(SoupGanConfig(**options)),
    trained_masks="slices",
))


def _planes_restore(generator: nn.Module, thick: torch.Tensor, factor: int, batch: int = 16) -> torch.Tensor:
    """Run ``generator`` on every plane containing z, both orientations, and average.

    Shapes
    ------
    thick ``(h, H, W)`` -> ``(h F, H, W)``.
    """
    expanded = thick.repeat_interleave(factor, dim=0).to(torch.complex64)
    results = []
    # Planes (z, H) for each column and (z, W) for each row; an orientation whose planes
    # are narrower than MIN_PLANE pixels (a single-row "volume") is left out.
    for axis, back in ((2, (1, 2, 0)), (1, (1, 0, 2))):
        if expanded.shape[3 - axis] < MIN_PLANE:
            continue
        planes = expanded.permute(axis, 0, 3 - axis)
        out = []
        with torch.no_grad():
            for start in range(0, planes.shape[0], batch):
                chunk = planes[start:start + batch].contiguous()
                out.append(generator(chunk[:, None], SliceAverage([factor] * len(chunk))))
        results.append(torch.cat(out).permute(*back))
    if not results:
        raise ValueError(f"slices of {tuple(thick.shape[1:])} are too small for soup-gan (need {MIN_PLANE} pixels)")
    return sum(results) / len(results)


def resolved_weights(factor: int, method: str = "soup-gan", weights: str | None = None) -> str | None:
    """The weights file :func:`restore` runs: ``weights`` when given, else the shipped
    ``soup-gan-z`` weights trained for ``factor`` (a card's ratio is 1 / factor, and a
    model trained for that factor alone wins: :func:`recon.weights.nearest_weights`);
    None for ``cubic`` and ``sinc``."""
    if method != "soup-gan":
        return None
    if weights is not None:
        return str(weights)
    from recon.weights import nearest_weights

    return str(nearest_weights("soup-gan-z", 1 / factor))


def restore(thick: np.ndarray, factor: int, method: str = "soup-gan", weights: str | None = None) -> np.ndarray:
    """Thin slices from a thick-slice volume ``(h, H, W)`` -> ``(h F, H, W)`` float32.

    ``method``: ``cubic``, ``sinc`` or ``soup-gan`` (:func:`resolved_weights`)."""
    if factor not in FACTORS:
        raise ValueError(f"--slice-factor must be one of {', '.join(map(str, FACTORS))}, got {factor}")
    if method not in METHODS:
        raise ValueError(f"unknown through-plane method {method!r}; methods: {', '.join(METHODS)}")
    volume = torch.from_numpy(np.ascontiguousarray(thick, dtype=np.float32))
    if method == "cubic":
        out = cubic_rows(volume.permute(2, 0, 1), factor).permute(1, 2, 0)
    elif method == "sinc":
        out = sinc_rows(volume.permute(2, 0, 1), factor).permute(1, 2, 0)
    else:
        from recon.models.learned import load_generator

        weights = resolved_weights(factor, method, weights)
        out = _planes_restore(load_generator(weights), volume, factor).real  # real data: the real part keeps the thick averages exact
    return np.asarray(out, dtype=np.float32)


def through_plane_benchmark(volumes: dict[str, np.ndarray], factor: int, methods: tuple[str, ...] = METHODS,
                            weights: str | None = None) -> dict[str, dict]:
    """Mean PSNR and SSIM over the thin slices of each volume that are not empty (data
    range: the volume's maximum), averaged over volumes, and seconds per volume, for each
    method."""
    from recon import metrics

    table = {}
    for method in methods:
        psnr, ssim, seconds = [], [], []
        for volume in volumes.values():
            thin = volume[: volume.shape[0] // factor * factor]
            tick = time.perf_counter()
            restored = restore(thicken(thin, factor), factor, method, weights)
            seconds.append(time.perf_counter() - tick)
            data_range = float(thin.max())
            # an empty thin slice (air beyond the anatomy) has no NMSE: it is left out
            scores = [metrics.evaluate(torch.from_numpy(r), torch.from_numpy(t), data_range)
                      for r, t in zip(restored, thin) if t.any()]
            psnr.append(float(np.mean([s["psnr"] for s in scores])))
            ssim.append(float(np.mean([s["ssim"] for s in scores])))
        table[method] = {"psnr": float(np.mean(psnr)), "ssim": float(np.mean(ssim)), "seconds": float(np.mean(seconds)),
                         "psnr_by_volume": dict(zip(volumes, psnr))}
    return table
