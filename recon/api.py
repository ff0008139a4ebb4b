"""The numpy-facing entry point: ``recon.reconstruct(kspace, mask, method=...)``."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from masks import TrajectoryMask, calibration_region
from physics.coils import espirit_through_compression, estimate_coil_maps
from physics.nufft import Trajectory, density_compensation
from recon import registry
from recon.device import on_device

MAPS_VIRTUAL_COILS = 8
"""Coil maps of data with more coils are estimated on this many compressed ones and
taken back to all of them (0.14 s instead of 0.50 s on a 15-coil 640×368 slice)."""


def validate_inputs(kspace: np.ndarray, mask: np.ndarray, coil_maps: np.ndarray | None = None) -> None:
    """Raise ``ValueError`` with a one-line reason when inputs cannot be reconstructed.

    Shapes
    ------
    kspace ``(H, W)`` or ``(C, H, W)``; mask ``(H, W)``; coil_maps like kspace.
    """
    kspace = np.asarray(kspace)
    mask = np.asarray(mask)
    if kspace.ndim not in (2, 3):
        raise ValueError(f"k-space must be (H, W) or (C, H, W), got shape {kspace.shape}")
    if not np.issubdtype(kspace.dtype, np.number):
        raise ValueError(f"k-space must be numeric, got dtype {kspace.dtype}")
    if not np.isfinite(kspace).all():
        bad = int((~np.isfinite(kspace)).sum())
        raise ValueError(f"k-space contains {bad} NaN or Inf values")
    if mask.shape != kspace.shape[-2:]:
        raise ValueError(f"mask shape {mask.shape} does not match k-space (H, W) = {kspace.shape[-2:]}")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError(f"mask must be boolean (or 0/1), got values outside {{0, 1}} ({mask.dtype})")
    if not mask.any():
        raise ValueError("mask samples no k-space point")
    if not np.any(kspace[..., mask.astype(bool)]):
        raise ValueError("k-space is all zero on the sampled points: nothing to reconstruct")
    if coil_maps is not None:
        coil_maps = np.asarray(coil_maps)
        expected = kspace.shape if kspace.ndim == 3 else (1, *kspace.shape)
        if coil_maps.shape != expected:
            raise ValueError(f"coil_maps shape {coil_maps.shape} does not match k-space {expected}")


def coil_maps_for(kspace: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
    """ESPIRiT maps from the fully sampled centre that ``mask`` leaves (up to 24 wide
    on each side: a rectangle for a 1-D mask, :func:`masks.calibration_region`), computed
    on at most ``MAPS_VIRTUAL_COILS`` compressed coils
    (:func:`physics.coils.espirit_through_compression`).

    Shapes
    ------
    kspace ``(B, C, H, W)``; mask ``(H, W)``; returns ``(B, C, H, W)``.
    """
    return espirit_through_compression(kspace, calibration_region(np.asarray(mask, dtype=bool)), MAPS_VIRTUAL_COILS)


def as_sampling(mask: Any):
    """What a reconstructor takes as its ``mask``: the bool tensor ``(H, W)`` of a grid
    mask (:class:`masks.Mask` or an array), or the :class:`physics.nufft.Trajectory` of a
    :class:`masks.TrajectoryMask` (its density compensation computed once here)."""
    if isinstance(mask, TrajectoryMask):
        trajectory = Trajectory(torch.from_numpy(np.asarray(mask.coords, np.float32)), tuple(mask.shape),
                                kind=mask.kind, ratio=mask.ratio, params=dict(mask.params))
        return trajectory.with_dcf(density_compensation(trajectory))
    return torch.from_numpy(np.asarray(getattr(mask, "array", mask)).astype(bool))


def trajectory_coil_maps(kspace: torch.Tensor, trajectory: Trajectory, calib_width: int = 24) -> torch.Tensor:
    """ESPIRiT maps for non-Cartesian data: each coil's gridding (density-compensated
    adjoint) is taken back to a Cartesian k-space, whose ``calib_width`` centre the
    trajectory samples densely, and ESPIRiT runs on that centre.

    Shapes
    ------
    kspace ``(B, C, *samples)`` -> ``(B, C, H, W)``.
    """
    from physics.fft import fft2c
    from physics.nufft import NUFFT

    operator = NUFFT(trajectory)
    batch, coils = kspace.shape[:2]
    images = operator.gridding(kspace.reshape(batch * coils, 1, *trajectory.sample_shape))
    grid = fft2c(images).reshape(batch, coils, *trajectory.image_shape)
    return estimate_coil_maps(grid, calib_width=min(calib_width, *trajectory.image_shape))


def _mask_array(mask: Any) -> np.ndarray:
    """The bool array of a :class:`masks.Mask` (what ``masks.make_mask`` returns) or of
    an array-like."""
    return np.asarray(getattr(mask, "array", mask))


CENTRE_TOLERANCE = 0.25
"""k-space whose energy peak lies further than this fraction of the grid from the
centre looks un-centred (a DC at index 0, from an FFT without shifts)."""


def check_centred(kspace: np.ndarray, mask: np.ndarray) -> str | None:
    """A warning text when the energy peak of the sampled k-space is far from the
    centre ``(H//2, W//2)``, else None.

    Shapes
    ------
    kspace ``(H, W)`` or ``(C, H, W)``; mask ``(H, W)``.
    """
    energy = (np.abs(np.asarray(kspace)) ** 2).reshape(-1, *kspace.shape[-2:]).sum(axis=0) * mask
    height, width = energy.shape
    row, column = np.unravel_index(int(np.argmax(energy)), energy.shape)
    off_row, off_column = abs(row - height // 2) / height, abs(column - width // 2) / width
    sampled = energy[np.asarray(mask, bool)]
    dominant = sampled.size and energy[row, column] > 50 * float(sampled.mean())  # an image's DC, not noise
    if dominant and max(off_row, off_column) > CENTRE_TOLERANCE:
        return (f"k-space energy peaks at ({row}, {column}), far from the centre ({height // 2}, {width // 2}); "
                "recon expects centred k-space (DC in the middle, as fastMRI, SigPy and BART store it): "
                "apply numpy.fft.fftshift to un-centred data")
    return None


def reconstruct(
    kspace: np.ndarray,
    mask: Any,
    method: str = "zero-filled",
    coil_maps: np.ndarray | None = None,
    device: str | None = None,
    **options: Any,
) -> np.ndarray:
    """Reconstruct one slice with a registered method.

    Parameters
    ----------
    kspace : numpy.ndarray
        Complex k-space, centred (DC at ``(H//2, W//2)``), orthonormal FFT convention.
        Unsampled points are ignored (the mask is applied).
    mask : numpy.ndarray or masks.Mask
        Bool sampling mask, or the :class:`~masks.Mask` that ``masks.make_mask`` returns.
    method : str
        A name from :func:`recon.available`.
    coil_maps : numpy.ndarray, optional
        Coil sensitivities for multi-coil data. Without them, multi-coil data gets
        ESPIRiT maps estimated from the fully sampled centre.
    device : str, optional
        Where the method computes: ``cpu`` (None, the default), ``auto`` (CUDA when
        present), ``cuda`` or ``cuda:N`` (:mod:`recon.device`; BART stays on the CPU).
    **options
        Passed to the method (e.g. ``reg_weight``, ``max_iter``).

    Returns
    -------
    numpy.ndarray
        complex64 image.

    Shapes
    ------
    kspace ``(H, W)`` single-coil or ``(C, H, W)`` multi-coil; mask ``(H, W)``;
    coil_maps ``(C, H, W)``; returns ``(H, W)``. With a non-Cartesian trajectory
    (:class:`masks.TrajectoryMask` or :class:`physics.nufft.Trajectory`) in place of the
    mask: kspace ``(*samples)`` or ``(C, *samples)``, ``samples`` the trajectory's
    ``(shots, samples per shot)``; the image has the trajectory's grid.

    Warns (``UserWarning``) when the k-space looks un-centred (energy peak far from
    the centre).
    """
    if isinstance(mask, (TrajectoryMask, Trajectory)):
        return _reconstruct_trajectory(kspace, mask, method, coil_maps, device, **options)
    mask = _mask_array(mask)
    validate_inputs(kspace, mask, coil_maps)
    reconstructor = on_device(registry.get(method, **options), device)
    warning = check_centred(np.asarray(kspace), np.asarray(mask).astype(bool))
    if warning:
        warnings.warn(warning, UserWarning, stacklevel=2)
    mask_np = np.asarray(mask).astype(bool)
    data = np.asarray(kspace, dtype=np.complex64)
    data = data[None] if data.ndim == 2 else data
    kspace_t = torch.from_numpy(data[None] * mask_np)
    mask_t = torch.from_numpy(mask_np)
    if coil_maps is not None:
        maps_t = torch.from_numpy(np.asarray(coil_maps, dtype=np.complex64).reshape(kspace_t.shape))
    elif kspace_t.shape[1] > 1:
        maps_t = coil_maps_for(kspace_t, mask_np)
    else:
        maps_t = None
    with torch.no_grad():
        image = reconstructor.reconstruct(kspace_t, mask_t, maps_t)
    return image[0].cpu().numpy().astype(np.complex64)


def _reconstruct_trajectory(kspace: np.ndarray, trajectory, method: str, coil_maps: np.ndarray | None,
                            device: str | None = None, **options: Any) -> np.ndarray:
    """:func:`reconstruct` for non-Cartesian k-space (see its docstring)."""
    if isinstance(trajectory, TrajectoryMask):
        trajectory = as_sampling(trajectory)
    elif trajectory.dcf is None:
        trajectory = trajectory.with_dcf(density_compensation(trajectory))
    data = np.asarray(kspace)
    samples = trajectory.sample_shape
    if not np.issubdtype(data.dtype, np.number):
        raise ValueError(f"k-space must be numeric, got dtype {data.dtype}")
    if data.shape[-len(samples):] != samples or data.ndim not in (len(samples), len(samples) + 1):
        raise ValueError(f"k-space of shape {data.shape} does not match the trajectory's {samples} samples "
                         "(expected (*samples) or (C, *samples))")
    if not np.isfinite(data).all():
        raise ValueError(f"k-space contains {int((~np.isfinite(data)).sum())} NaN or Inf values")
    if not data.any():
        raise ValueError("k-space is all zero: nothing to reconstruct")
    data = data.astype(np.complex64)
    kspace_t = torch.from_numpy(data[None] if data.ndim > len(samples) else data[None, None])
    if coil_maps is not None:
        maps_t = torch.from_numpy(np.asarray(coil_maps, dtype=np.complex64).reshape(1, kspace_t.shape[1],
                                                                                    *trajectory.image_shape))
    elif kspace_t.shape[1] > 1:
        maps_t = trajectory_coil_maps(kspace_t, trajectory)
    else:
        maps_t = None
    reconstructor = on_device(registry.get(method, **options), device)
    with torch.no_grad():
        image = reconstructor.reconstruct(kspace_t, trajectory, maps_t)
    return image[0].cpu().numpy().astype(np.complex64)
