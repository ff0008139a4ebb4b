"""Corrections of raw multi-coil k-space, in the order a scanner's data needs them:
noise prewhitening (from a noise scan's channel covariance), then readout oversampling
removed in hybrid space. Coil compression follows (:func:`physics.coils.compress_coils`).

Shapes follow the project: k-space ``(N, C, H, W)`` with H the readout.
"""

from __future__ import annotations

import torch

from physics.fft import fft1c, ifft1c


def noise_covariance(noise: torch.Tensor) -> torch.Tensor:
    """The channel covariance ``Ψ = X^H X / n`` of noise samples.

    Shapes
    ------
    noise ``(C, ...)`` complex (all axes but the first are samples) -> ``(C, C)``.
    """
    samples = noise.reshape(noise.shape[0], -1).to(torch.complex128)
    if samples.shape[1] < 2:
        raise ValueError("a noise covariance needs at least 2 samples per channel")
    return (samples @ samples.conj().T) / samples.shape[1]


def whitening_matrix(covariance: torch.Tensor) -> torch.Tensor:
    """``L^{-1}`` for ``Ψ = L L^H`` (Cholesky), scaled so that the whitened channels keep
    the mean noise variance of the original ones (intensities stay comparable).

    Raises ``ValueError`` for a covariance that is not positive definite (a dead or
    duplicated channel)."""
    covariance = covariance.to(torch.complex128)
    try:
        lower = torch.linalg.cholesky(covariance)
    except RuntimeError:
        raise ValueError("the noise covariance is not positive definite (a dead or duplicated channel?)") from None
    mean_variance = covariance.diagonal().real.mean()
    return torch.linalg.inv(lower) * mean_variance.sqrt()


def prewhiten(kspace: torch.Tensor, whitening: torch.Tensor) -> torch.Tensor:
    """Apply a whitening matrix over the coil axis.

    Shapes
    ------
    kspace ``(N, C, H, W)``; whitening ``(C, C)`` -> ``(N, C, H, W)`` of kspace's dtype.
    """
    out = torch.einsum("dc,nchw->ndhw", whitening.to(torch.complex128), kspace.to(torch.complex128))
    return out.to(kspace.dtype)


def whiten(kspace: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """Prewhiten ``kspace`` with the channel covariance of ``noise`` samples: the three
    steps above in one call. Raises ``ValueError`` when the covariance is degenerate.

    Shapes
    ------
    kspace ``(N, C, H, W)``; noise ``(C, ...)`` -> ``(N, C, H, W)``.
    """
    return prewhiten(kspace, whitening_matrix(noise_covariance(noise)))


def remove_readout_oversampling(kspace: torch.Tensor, factor: float = 2.0) -> torch.Tensor:
    """Keep the central ``H / factor`` of the readout's field of view: inverse FFT along
    the readout, crop the image-space centre, FFT back (hybrid space, so the phase
    encodes are untouched and unmeasured lines stay zero). The image of the result is
    exactly the central crop of the original's (orthonormal transforms), and white
    noise keeps its variance per sample.

    Shapes
    ------
    kspace ``(..., H, W)`` -> ``(..., round(H / factor), W)``.
    """
    height = kspace.shape[-2]
    keep = int(round(height / factor))
    if factor < 1 or keep < 1:
        raise ValueError(f"readout oversampling factor must be >= 1 and leave samples, got {factor}")
    if keep == height:
        return kspace
    hybrid = ifft1c(kspace, dim=-2)
    start = height // 2 - keep // 2
    cropped = hybrid[..., start:start + keep, :]
    return fft1c(cropped, dim=-2)


def geometric_coil_compression(kspace: torch.Tensor, virtual: int, lines: torch.Tensor | None = None) -> torch.Tensor:
    """Geometric coil compression (Zhang et al. 2013, as BART ``cc -G``) for 1-D masks.

    Along the fully sampled readout, each image position x gets its own compression:
    the ``virtual`` principal components of the coils over the measured lines of every
    slice at that x (hybrid space). Neighbouring positions' bases are rotated onto each
    other from the centre outwards, so the virtual coils vary smoothly along x and coil
    maps can be estimated from the compressed data. Each position's transform is
    orthonormal, so with ``virtual >= C`` the root-sum-of-squares image is unchanged.

    Shapes
    ------
    kspace ``(N, C, H, W)``; lines ``(W,)`` bool, the measured lines (default: every
    line with a non-zero sample) -> ``(N, min(C, virtual), H, W)``.
    """
    slices, coils, height, width = kspace.shape
    if virtual < 1:
        raise ValueError(f"virtual coils must be >= 1, got {virtual}")
    if coils <= virtual:
        return kspace
    if lines is None:
        lines = kspace.abs().sum(dim=(0, 1, 2)) > 0
    hybrid = ifft1c(kspace.to(torch.complex64), dim=-2)
    samples = hybrid[..., lines].permute(2, 1, 0, 3).reshape(height, coils, -1)  # (H, C, slices x lines)
    gram = samples @ samples.conj().transpose(1, 2)
    _, vectors = torch.linalg.eigh(gram)
    basis = vectors[..., -virtual:].flip(-1).clone()  # (H, C, V): largest components first
    centre = height // 2
    for position in [*range(centre + 1, height), *range(centre - 1, -1, -1)]:
        neighbour = basis[position - 1] if position > centre else basis[position + 1]
        left, _, right = torch.linalg.svd(basis[position].conj().T @ neighbour)  # min ||B R - neighbour||: R = U V^H
        basis[position] = basis[position] @ (left @ right)
    compressed = torch.einsum("hcv,nchw->nvhw", basis.conj(), hybrid)
    return fft1c(compressed, dim=-2).to(kspace.dtype)


def noise_from_oversampling(kspace: torch.Tensor, factor: float, margin: float = 0.5) -> torch.Tensor | None:
    """Noise samples from the readout's oversampled margin, for data without a noise
    scan: along the readout, an ``factor``-times oversampled image's outer
    ``(1 - 1/factor) / 2`` at each end lies outside the prescribed field of view; the
    outer ``margin`` of that band (away from the object's edge) holds noise. Returns the
    samples ``(C, n)`` of the measured lines there, or None when there is no such band
    (no oversampling, or too few samples for a covariance).

    Shapes
    ------
    kspace ``(N, C, H, W)`` -> ``(C, n)`` or None.
    """
    height = kspace.shape[-2]
    band = int((height - round(height / factor)) / 2 * margin)
    lines = kspace.abs().sum(dim=(0, 1, 2)) > 0
    if factor <= 1 or band < 1 or int(lines.sum()) < 1:
        return None
    hybrid = ifft1c(kspace, dim=-2)[..., lines]
    edges = torch.cat([hybrid[..., :band, :], hybrid[..., height - band:, :]], dim=-2)  # (N, C, 2 band, L)
    samples = edges.transpose(0, 1).reshape(kspace.shape[1], -1)
    return samples if samples.shape[1] >= 10 * kspace.shape[1] else None


def whiten_from_oversampling(kspace: torch.Tensor, factor: float) -> tuple[torch.Tensor, int] | None:
    """For data without a noise scan: :func:`whiten` with the noise of the readout's
    oversampled margin (:func:`noise_from_oversampling`). Returns the whitened k-space and
    the noise samples per channel it used, or None (single coil, no usable margin, or a
    degenerate covariance), leaving the data as they are.

    Shapes
    ------
    kspace ``(N, C, H, W)`` -> ``(N, C, H, W)``.
    """
    samples = noise_from_oversampling(kspace, factor) if kspace.shape[1] > 1 else None
    if samples is None:
        return None
    try:
        return whiten(kspace, samples), samples.shape[1]
    except ValueError:
        return None


BAND_WHITENING_SPREAD = 1.3
""":func:`whiten_from_band` whitens an item whose typical coil's noise variance is at least
this many times its weakest noise direction's (white noise: 1.0, to a few %)."""


def whiten_from_band(kspace: torch.Tensor, mask: torch.Tensor, coil_maps: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """Prewhiten noisy multi-coil data that were never prewhitened, with the channel
    covariance of their outermost readout positions (``physics.noise_level.band_covariances``)
    for a noise scan, and give the maps the same mixing.

    Data reaching ``recon.reconstruct`` as a dataset holds them keep a receive array's
    noise: correlated between channels, of unequal gains. The learned models were trained
    on white coil noise. An item is whitened where it is noisy and its noise is not white:
    a typical coil's noise variance (:func:`physics.noise_level.channel_noise_std`) at least
    :data:`BAND_WHITENING_SPREAD` times the weakest direction's. The band's covariance holds
    the signal there too; on noisy data it is small. The whitened maps ``W S`` are divided
    by their root-sum-of-squares ``g`` (so they are normalised as ESPIRiT's are), and the
    image they give is ``g x``: divide a reconstruction by ``gain`` to get ``x`` back.

    Returns None when no item is whitened (noise-free, white, fewer than 3 coils), else
    ``(kspace, coil_maps, gain)`` with items not whitened unchanged (their gain 1).

    Shapes
    ------
    kspace ``(B, C, H, W)``; mask broadcastable to ``(H, W)``; coil_maps ``(B, C, H, W)`` ->
    ``(B, C, H, W)``, ``(B, C, H, W)``, gain ``(B, H, W)`` float.
    """
    from physics.consistency import noise_reading
    from physics.noise_level import band_covariances

    if kspace.shape[1] < 3:
        return None
    mask = torch.as_tensor(mask)
    covariances = band_covariances(kspace, mask)  # one covariance an item, for the test and the whitening
    weakest, typical, noisy = noise_reading(kspace, mask, covariances)  # noisy as the exact step tells it
    spread = typical.pow(2) >= BAND_WHITENING_SPREAD * weakest.pow(2)
    chosen = [index for index in range(kspace.shape[0]) if bool(noisy[index]) and bool(spread[index])]
    if not chosen:
        return None
    kspace = kspace.clone()
    coil_maps = coil_maps.expand(kspace.shape[0], *coil_maps.shape[1:]).clone()  # maps shared by the batch: one each
    gain = torch.ones(kspace.shape[0], *kspace.shape[-2:], dtype=torch.float32, device=kspace.device)
    for index in chosen:
        try:
            whitening = whitening_matrix(covariances[index][0])
        except ValueError:  # a degenerate band (a dead channel): leave the item as it is
            continue
        kspace[index : index + 1] = prewhiten(kspace[index : index + 1], whitening)
        maps = prewhiten(coil_maps[index : index + 1], whitening)[0]
        norm = maps.abs().pow(2).sum(0).sqrt()
        coil_maps[index] = torch.where(norm > 0, maps / norm.clamp_min(1e-12), torch.zeros_like(maps))
        gain[index] = norm
    return kspace, coil_maps, gain
