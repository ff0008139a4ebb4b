"""The noise level of multi-coil k-space, read from the data: the coils' covariance over
the outermost readout positions, where an image's signal is weak and spans only a few
coil combinations while noise spans all of them. Its smallest eigenvalue is the weakest
noise direction's level (:func:`estimate_noise_std`), its median a typical coil's
(:func:`channel_noise_std`). :mod:`physics.consistency` stops the exact step at the level
a residual holds (:func:`physics.consistency.noise_std`); :mod:`physics.raw` whitens
data whose noise is not white (:func:`physics.raw.whiten_from_band`).

Shapes follow the project: k-space ``(B, C, H, W)`` with H the readout.
"""

from __future__ import annotations

import torch

NOISE_BAND = 0.1
"""Fraction of the readout axis, at each end, whose measured samples estimate the noise."""


def band_covariances(measured: torch.Tensor, mask: torch.Tensor) -> list[tuple[torch.Tensor, int] | None]:
    """Per batch item, the coils' sample covariance (complex128) over the measured samples
    of the outermost readout positions (``NOISE_BAND`` of H at each end), where an image's
    signal is weak and spans few coil combinations, and its number of samples; None for an
    item with fewer samples than coils.

    Shapes
    ------
    measured ``(B, C, H, W)``; mask broadcastable to it; returns ``B`` entries of ``(C, C)``.
    """
    coils, height = measured.shape[1], measured.shape[-2]
    band = max(1, int(round(NOISE_BAND * height)))
    rows = torch.cat([torch.arange(band), torch.arange(height - band, height)]).to(measured.device)
    selected = torch.broadcast_to(mask.to(measured.device).bool(), measured.shape)[:, 0, rows, :]
    result: list[tuple[torch.Tensor, int] | None] = []
    for item in range(measured.shape[0]):
        samples = measured[item][:, rows, :][:, selected[item]].to(torch.complex128)  # (C, P)
        if samples.shape[1] < coils:
            result.append(None)
            continue
        result.append((samples @ samples.conj().T / samples.shape[1], samples.shape[1]))
    return result


def _band_eigenvalues(covariances: list[tuple[torch.Tensor, int] | None], coils: int
                      ) -> list[tuple[torch.Tensor, float] | None]:
    """Per entry of :func:`band_covariances`, its eigenvalues (ascending, float64) and the
    Marchenko-Pastur lower edge ``(1 - sqrt(C / P))^2`` of its ``P`` samples; None where it
    has none."""
    return [None if entry is None else
            (torch.linalg.eigvalsh(entry[0]).clamp_min(0), (1 - (coils / entry[1]) ** 0.5) ** 2)
            for entry in covariances]


def estimate_noise_std(measured: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per batch item, the complex noise standard deviation of one coil's sample, from
    the outermost readout positions (``NOISE_BAND`` of H at each end): the square root
    of the smallest eigenvalue of the coils' covariance there. An image's signal spans
    only a few coil combinations at those frequencies (smooth coil maps), noise spans
    all of them, so the smallest eigenvalue is the noise variance: 1e-10 of the signal
    scale on noise-free data, and at 20 to 50 dB SNR the true variance (8 coils,
    measured on the sample and Colin27), once the sample-size shrinkage of the smallest
    eigenvalue (Marchenko-Pastur) is undone. The median sample energy, tried first,
    counts a brain's high-frequency signal as noise and stopped noise-free
    reconstructions up to 11 dB early. Zero for single-coil data.

    With white coil noise (prewhitened data) this is every coil's noise level. With coil
    noise that is correlated and of unequal gains (a dataset's k-space that was never
    prewhitened) it is the weakest noise direction's, below the typical coil's (0.57 of
    it for :func:`physics.statistics.random_noise_covariance`'s default arrays, 0.28 for
    gains of 0.3-3): :func:`channel_noise_std` is the typical one.

    Shapes
    ------
    measured ``(B, C, H, W)``; mask broadcastable to it; returns ``(B,)`` float.
    """
    return noise_levels(measured, mask)[0]


def noise_levels(measured: torch.Tensor, mask: torch.Tensor,
                 covariances: list[tuple[torch.Tensor, int] | None] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`estimate_noise_std` and :func:`channel_noise_std` from one covariance each
    (``covariances``: what :func:`band_covariances` gave for these data, when the caller
    has it already)."""
    batch = measured.shape[0]
    if measured.shape[1] < 2:
        zeros = torch.zeros(batch, device=measured.device)
        return zeros, zeros
    if covariances is None:
        covariances = band_covariances(measured, mask)
    weakest, typical = [], []
    for band in _band_eigenvalues(covariances, measured.shape[1]):
        if band is None:
            weakest.append(torch.zeros((), dtype=torch.float64, device=measured.device))
            typical.append(weakest[-1])
            continue
        values, edge = band
        weakest.append(values[0] / edge)
        typical.append(torch.maximum(values[(len(values) - 1) // 2], weakest[-1]))  # the lower median
    return torch.stack(weakest).sqrt().to(torch.float32), torch.stack(typical).sqrt().to(torch.float32)


def channel_noise_std(measured: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per batch item, the noise standard deviation of a typical coil's sample: the square
    root of the lower median eigenvalue (``(C - 1) // 2`` from the smallest) of the coils'
    covariance over the outermost readout positions, and never below
    :func:`estimate_noise_std`. A low-rank signal lifts only the top eigenvalues, so the
    median is the noise's; where the coil noise is correlated and of unequal gains it
    spreads over the eigenvalues, and the median is near their mean (the noise energy per
    coil), where the smallest is far below it. For white noise it equals
    :func:`estimate_noise_std` within a few %; with two coils it is the smaller eigenvalue,
    as there. Meant for noisy data: on noise-free data the median may be signal. Zero for
    single-coil data.

    The upper median gives an unbalanced array's noise more fully (8 coils, gains 0.3-3:
    the learned models 1.5 dB below their white-noise figures with the lower median, level
    with them with the upper one), but a signal of rank ``C / 2`` in the band lifts it: a
    sharp phantom at low noise then got no exact step at all (docs/results.md, issue 35,
    sixth part). The lower one needs one more signal direction to be lifted.

    Shapes
    ------
    measured ``(B, C, H, W)``; mask broadcastable to it; returns ``(B,)`` float.
    """
    return noise_levels(measured, mask)[1]
