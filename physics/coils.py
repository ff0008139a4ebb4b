"""Coil sensitivity maps: simulation, ESPIRiT estimation and RSS combination."""

from __future__ import annotations

import numpy as np
import torch


def simulate_coil_maps(
    n_coils: int, shape: tuple[int, int], relative_radius: float = 1.5, normalize: bool = True
) -> torch.Tensor:
    """Birdcage coil sensitivities (``sigpy.mri.birdcage_maps``).

    Parameters
    ----------
    n_coils : int
        Number of coils.
    shape : (int, int)
        Image shape ``(H, W)``.
    relative_radius : float
        Coil radius relative to the field of view.
    normalize : bool
        Scale the maps so their root-sum-of-squares is 1 at every pixel. Then the
        SENSE-combined image of simulated data equals the simulated image exactly,
        so metrics against it are unambiguous.

    Returns
    -------
    torch.Tensor
        complex64 maps.

    Shapes
    ------
    returns ``(C, H, W)``.
    """
    if n_coils < 1:
        raise ValueError(f"n_coils must be >= 1, got {n_coils}")
    import sigpy.mri  # imported here: SigPy takes a second to load

    maps = sigpy.mri.birdcage_maps((n_coils, *shape), r=relative_radius).astype(np.complex64)
    if normalize:
        maps /= np.sqrt((np.abs(maps) ** 2).sum(axis=0, keepdims=True))
    return torch.from_numpy(maps)


def estimate_coil_maps(
    kspace: torch.Tensor,
    calib_width: int = 24,
    kernel_width: int = 6,
    threshold: float = 0.02,
    crop: float = 0.95,
) -> torch.Tensor:
    """Estimate coil maps with ESPIRiT (``sigpy.mri.app.EspiritCalib``).

    The calibration region is the central ``calib_width`` square of k-space, which
    must be fully sampled (``masks.calibration_size`` measures it; BART's
    ``ecalib`` defaults to 24). The kernel shrinks when the region is small.

    Parameters
    ----------
    kspace : torch.Tensor
        Multi-coil k-space, complex.
    calib_width, kernel_width, threshold, crop
        ESPIRiT parameters (see SigPy's ``EspiritCalib``).

    Returns
    -------
    torch.Tensor
        complex64 maps with the shape of ``kspace``; zero where the eigenvalue is
        below ``crop`` (outside the object).

    Shapes
    ------
    kspace: ``(B, C, H, W)`` or ``(C, H, W)``; returns the same shape.
    """
    batched = kspace.ndim == 4
    data = kspace if batched else kspace.unsqueeze(0)
    if calib_width < 4:
        raise ValueError(
            f"cannot estimate coil maps: the fully sampled k-space centre is only {calib_width} wide; "
            "use a mask with a larger centre or pass coil maps"
        )
    kernel_width = min(kernel_width, max(2, calib_width // 2))
    out = []
    for item in data.detach().cpu().numpy():
        import sigpy.mri.app

        maps = sigpy.mri.app.EspiritCalib(
            item.astype(np.complex64),
            calib_width=calib_width,
            kernel_width=kernel_width,
            thresh=threshold,
            crop=crop,
            show_pbar=False,
        ).run()
        out.append(np.asarray(maps, dtype=np.complex64))
    maps = torch.from_numpy(np.stack(out)).to(kspace.device)
    return maps if batched else maps[0]


def rss(coil_images: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Root-sum-of-squares coil combination.

    Shapes
    ------
    coil_images: ``(B, C, H, W)`` -> ``(B, H, W)`` real (for the default ``dim=1``).
    """
    return torch.sqrt((coil_images.abs() ** 2).sum(dim=dim))


def coil_support(coil_maps: torch.Tensor, threshold: float = 1e-6) -> torch.Tensor:
    """Where any coil is sensitive: the only pixels multi-coil data can observe.

    ESPIRiT maps are zero outside the object (``crop``); a regularised solver has no
    data there, and TV in particular smears the object's edge into that region, so
    reconstructions are restricted to this support.

    Shapes
    ------
    coil_maps: ``(B, C, H, W)`` -> ``(B, H, W)`` bool.
    """
    return (coil_maps.abs() ** 2).sum(dim=1) > threshold
