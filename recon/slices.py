"""Through-plane super-resolution: thin slices from thick ones (SOUP-GAN's clinical use).

A thick-slice volume is taken as the average of ``F`` thin slices per thick slice
(``F`` = 2 or 4), :class:`physics.operators.SliceAverage`. Restoring the thin slices:

- ``cubic``: Keys cubic interpolation along z from the thick slices' centres;
- ``sinc``: band-limited interpolation along z (zero-padding the z spectrum, shifted
  to the thick slices' centres);
- ``soup-gan``: the cubic estimate refined by SOUP-GAN's deep LeakyReLU generator
  (trained as ``soup-gan-z`` through the shared trainer, on the train subjects' real
  planes containing z and on corpus slices degraded along one axis), on every plane
  that contains z (both orientations, averaged),
  then hard data consistency: each group of F restored slices averages exactly to its
  measured thick slice.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from physics.complex import peak
from physics.operators import SliceAverage
from recon.augment import SliceSet, augment, bias_field
from recon.learned import register_model
from recon.soup_gan import SPEC as SOUP_GAN
from recon.soup_gan import DeepConvBody, SoupGanConfig
from recon.superres import unshuffled_residual

METHODS = ("cubic", "sinc", "soup-gan")
MIN_PLANE = 16
FACTORS = (2, 4)


def thicken(volume: np.ndarray, factor: int) -> np.ndarray:
    """Average every ``factor`` consecutive slices: ``(Z, H, W)`` -> ``(Z // factor, H, W)``
    (trailing slices that do not fill a group are dropped)."""
    count = volume.shape[0] // factor
    if count < 1:
        raise ValueError(f"{volume.shape[0]} slices cannot make a thick slice of {factor}")
    return volume[: count * factor].reshape(count, factor, *volume.shape[1:]).mean(axis=1)


def cubic_rows(thick: torch.Tensor, factor: int) -> torch.Tensor:
    """Cubic-spline interpolation (not-a-knot) of ``(B, h, W)`` rows (thick slices) to
    ``(B, h F, W)``: thick row ``k`` sits at thin row ``k F + (F - 1) / 2``, its group's
    centre; the first and last half groups are extrapolated by the end cubics. It
    reproduces cubic polynomials along z exactly (PyTorch's bicubic kernel, a = -0.75,
    does not even reproduce a straight ramp). No gradient flows through it: it only
    ever interpolates measured data.

    Shapes
    ------
    thick ``(B, h, W)`` real or complex -> ``(B, h F, W)`` of the same dtype.
    """
    from scipy.interpolate import CubicSpline

    count = thick.shape[-2]
    values = thick.detach().cpu().numpy()
    centres = np.arange(count) * factor + (factor - 1) / 2
    thin = np.arange(count * factor, dtype=np.float64)
    if count < 2:
        raise ValueError("through-plane interpolation needs at least 2 thick slices")
    out = CubicSpline(centres, values, axis=-2, bc_type="not-a-knot")(thin)  # 2 or 3 slices: a line or a parabola
    return torch.from_numpy(np.ascontiguousarray(out)).to(device=thick.device, dtype=thick.dtype)


def sinc_rows(thick: torch.Tensor, factor: int) -> torch.Tensor:
    """Band-limited interpolation of ``(B, h, W)`` rows to ``(B, h F, W)``: the z spectrum
    zero-padded, with the half-slice shift that puts each thick slice at its group's
    centre."""
    count = thick.shape[-2]
    spectrum = torch.fft.fftshift(torch.fft.fft(thick.to(torch.complex64), dim=-2), dim=-2)
    frequencies = torch.arange(count) - count // 2
    shift = torch.exp(-2j * torch.pi * frequencies * (factor - 1) / (2 * factor * count)).to(torch.complex64)
    padded = torch.zeros((*thick.shape[:-2], count * factor, thick.shape[-1]), dtype=torch.complex64)
    start = count * factor // 2 - count // 2
    padded[..., start:start + count, :] = spectrum * shift[:, None]
    out = torch.fft.ifft(torch.fft.ifftshift(padded, dim=-2), dim=-2) * factor
    return out if thick.is_complex() else out.real


class SoupGanSlices(nn.Module):
    """SOUP-GAN for through-plane SR: the cubic estimate, projected onto the measured
    thick slices, refined by a deep LeakyReLU CNN (pixel-unshuffled by 2), projected
    again.

    Shapes
    ------
    forward(measured ``(B, 1, H, W)`` (each thick slice repeated along H), a
    :class:`~physics.operators.SliceAverage`) -> ``(B, H, W)``.
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


class SliceAverageDataset(torch.utils.data.Dataset):
    """Training items for through-plane SR, in the shared trainer's layout: each image
    (augmented as for the reconstructors) is thickened along H by a factor drawn from
    ``factors``; the item is ``(measured (1, H, W), starts (1, H, W), target (H, W),
    1 / factor, ones (1, H, W))`` with the factor carried by the
    :meth:`~physics.operators.SliceAverage.starts` marker in the mask slot.
    Validation items (``train=False``) hold every slice at every factor.

    When ``images.planes`` holds training volumes' planes containing z (``(P, Z,
    side)``, z first), half the training items are such a plane (flipped, with a bias
    field), thickened along its real z; the other half are augmented slices cropped to
    a random window of ``Z`` rows, so a batch has one shape."""

    PLANE_FRACTION = 0.5

    def __init__(self, images: SliceSet, factors: tuple[int, ...] = FACTORS, seed: int = 0, train: bool = True):
        self.images, self.factors, self.seed, self.train, self.epoch = images, tuple(factors), int(seed), train, 0
        planes = images.planes if train else None
        self.planes = planes if planes is not None and len(planes) else None
        if self.planes is not None:
            depth, side = self.planes.shape[1:]
            if side != images.images.shape[-1] or depth > images.images.shape[-2] or depth % math.lcm(*self.factors):
                raise ValueError(f"training planes of {depth}x{side} do not fit slices of {images.images.shape[-2]}x"
                                 f"{images.images.shape[-1]} (same width, depth a multiple of every factor)")

    @staticmethod
    def operator(starts: torch.Tensor, coil_maps: torch.Tensor | None = None) -> SliceAverage:
        return SliceAverage.from_starts(starts)

    def __len__(self) -> int:
        return len(self.images) * (1 if self.train else len(self.factors))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __getitem__(self, item: int):
        if self.train:
            rng = np.random.default_rng([self.seed, self.epoch, item])
            if self.planes is not None and rng.random() < self.PLANE_FRACTION:
                image = self._plane(rng)
            else:
                image = augment(self.images, item, rng)
                if self.planes is not None:
                    depth = self.planes.shape[1]
                    top = int(rng.integers(image.shape[0] - depth + 1))
                    image = np.ascontiguousarray(image[top: top + depth])
            factor = self.factors[int(rng.integers(len(self.factors)))]
        else:
            image = np.asarray(self.images.images[item % len(self.images)], dtype=np.float32)
            factor = self.factors[item // len(self.images)]
        target = torch.from_numpy(np.ascontiguousarray(image)).to(torch.complex64)
        operator = SliceAverage([factor])
        measured = operator(target[None])[0]
        return (measured, SliceAverage.starts(factor, image.shape), target, torch.tensor(1.0 / factor),
                torch.ones((1, *image.shape), dtype=torch.complex64))

    def _plane(self, rng: np.random.Generator) -> np.ndarray:
        """A random training plane containing z, flipped along either axis (z flipped
        whole, so its thick groups stay groups), with a bias field, scaled to max 1."""
        image = self.planes[int(rng.integers(len(self.planes)))]
        if rng.random() < 0.5:
            image = image[::-1]
        if rng.random() < 0.5:
            image = image[:, ::-1]
        image = image * bias_field(image.shape, rng)
        peak = float(image.max())
        return np.ascontiguousarray(image / peak if peak > 0 else image, dtype=np.float32)


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
    model trained for that factor alone wins: :func:`recon.learned.nearest_weights`);
    None for ``cubic`` and ``sinc``."""
    if method != "soup-gan":
        return None
    if weights is not None:
        return str(weights)
    from recon.learned import nearest_weights

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
        from recon.learned import load_generator

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
