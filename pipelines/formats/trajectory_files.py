"""Non-Cartesian k-space in ``.npy`` and BART files: k-space plus a trajectory file.

- ``scan.npy`` (complex k-space ``(shots, samples)`` or ``(C, shots, samples)``, or
  ``(N, C, shots, samples)`` for several slices) with ``scan.traj.npy``, the coordinates
  ``(shots, samples, 2)`` (H, W order) in units of 1/FOV, from ``-N/2`` to ``N/2``;
- ``scan.cfl``/``.hdr`` (BART's ``(1, samples, shots, coils)``) with ``scan_traj.cfl``/
  ``.hdr`` (BART's ``(3, samples, shots)``, the same units, as ``bart traj`` writes).

The reconstruction grid is ``2 ceil(max |k|)`` along each axis (the extent the
coordinates declare). Trajectory files are sidecars: a folder's scan never counts them
as units of their own.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from pipelines.common.limits import MemoryBudget, check_size
from pipelines.formats.study import FILE_PROBLEMS, InputError, Study, check_finite

SIDECAR_ENDINGS = (".traj.npy", "_traj.cfl", "_traj.hdr")


def is_sidecar(path: Path) -> bool:
    return path.name.lower().endswith(SIDECAR_ENDINGS)


def sidecar(path: Path) -> Path | None:
    """The trajectory file beside k-space ``path``, when there is one."""
    name = path.name
    if name.lower().endswith(".npy"):
        candidate = path.with_name(name[:-4] + ".traj.npy")
    elif name.lower().endswith((".cfl", ".hdr")):
        candidate = path.with_name(name[:-4] + "_traj.cfl")
    else:
        return None
    return candidate if candidate.is_file() else None


def _load_npy(path: Path, budget: MemoryBudget | None, what: str) -> np.ndarray:
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
        check_size(path, tuple(mapped.shape), budget, itemsize=max(8, mapped.dtype.itemsize), what=what)
        return np.asarray(mapped)
    except FILE_PROBLEMS:
        raise
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: cannot read {what}: {error}") from error


def grid_of(coords: np.ndarray) -> tuple[int, int]:
    """The reconstruction grid the coordinates declare: ``2 ceil(max |k|)`` per axis."""
    extent = np.abs(coords.reshape(-1, 2)).max(axis=0)
    return tuple(max(4, 2 * math.ceil(float(value) - 1e-3)) for value in extent)


def check_trajectory_file(coords: np.ndarray, shape: tuple[int, int], source: Path) -> None:
    """Raise :class:`InputError` naming ``source`` for a trajectory the NUFFT cannot take."""
    import torch

    from physics.nufft import Trajectory

    try:
        Trajectory(torch.from_numpy(np.array(coords, np.float32)), tuple(shape))
    except ValueError as error:
        raise InputError(f"{source}: {error}") from None


def _study(kspace: np.ndarray, coords: np.ndarray, name: str, source: Path, fmt: str, sidecar_path: Path) -> Study:
    coords = np.array(coords, np.float32)  # a writable copy
    if coords.ndim == 2:
        coords = coords[None]
    if coords.ndim != 3 or coords.shape[-1] != 2 or coords.size == 0:
        raise InputError(f"{sidecar_path}: a trajectory must be (shots, samples, 2) coordinates, got {coords.shape}")
    shape = grid_of(coords) if np.isfinite(coords).all() else (4, 4)
    check_trajectory_file(coords, shape, sidecar_path)
    samples = coords.shape[:2]
    if not np.iscomplexobj(kspace):
        raise InputError(f"{source}: non-Cartesian k-space must be complex, got {kspace.dtype}")
    if kspace.shape[-2:] != samples:
        raise InputError(f"{source}: k-space of shape {kspace.shape} does not match the trajectory's {samples} "
                         f"(shots, samples) in {sidecar_path.name}")
    kspace = kspace.reshape((1,) * (4 - kspace.ndim) + kspace.shape) if kspace.ndim < 4 else kspace
    if kspace.ndim != 4:
        raise InputError(f"{source}: expected k-space (shots, samples), (C, shots, samples) or (N, C, shots, "
                         f"samples), got {kspace.shape}")
    check_finite(kspace, source, "k-space")
    if not np.any(kspace):
        raise InputError(f"{source}: k-space is all zero")
    meta = {"trajectory": coords, "image_shape": shape}
    return Study(name=name, source=source, format=fmt, kspace=kspace.astype(np.complex64), meta=meta,
                 notes=[f"{source.name}: non-Cartesian, {samples[0]} shots x {samples[1]} samples on a "
                        f"{shape[0]}x{shape[1]} grid (trajectory {sidecar_path.name})"])


def read_npy_pair(path: Path, trajectory: Path, budget: MemoryBudget | None = None) -> Study:
    kspace = _load_npy(path, budget, "k-space")
    coords = _load_npy(trajectory, budget, "the trajectory")
    if coords.dtype.kind not in "fiu":
        raise InputError(f"{trajectory}: a trajectory must be real coordinates, got {coords.dtype}")
    return _study(kspace, coords, path.name[:-4], path, "npy", trajectory)


def read_cfl_pair(path: Path, trajectory: Path, budget: MemoryBudget | None = None) -> Study:
    from recon.classical.bart import cfl_dims, read_cfl

    base, traj_base = path.with_suffix(""), trajectory.with_suffix("")
    try:
        check_size(f"{base}.cfl", tuple(cfl_dims(base)), budget, what="the BART header")
        check_size(f"{traj_base}.cfl", tuple(cfl_dims(traj_base)), budget, what="the trajectory's BART header")
        data, traj = read_cfl(base), read_cfl(traj_base)
    except FILE_PROBLEMS:
        raise
    except (OSError, ValueError) as error:
        raise InputError(f"{base}.cfl: cannot read the BART pair: {error}") from error
    traj = traj.reshape(traj.shape + (1,) * (3 - traj.ndim)) if traj.ndim < 3 else traj
    if traj.ndim != 3 or traj.shape[0] != 3:
        raise InputError(f"{traj_base}.cfl: a BART trajectory is (3, samples, shots), got {traj.shape}")
    coords = np.stack([traj[0].real, traj[1].real], axis=-1).transpose(1, 0, 2)  # (shots, samples, 2)
    data = data.reshape(data.shape + (1,) * (4 - data.ndim)) if data.ndim < 4 else data
    if data.ndim != 4 or data.shape[0] != 1:
        raise InputError(f"{base}.cfl: non-Cartesian BART k-space is (1, samples, shots, coils), got {data.shape}")
    kspace = np.transpose(data[0], (2, 1, 0))  # (C, shots, samples)
    return _study(kspace, coords, base.name, path, "cfl", trajectory)
