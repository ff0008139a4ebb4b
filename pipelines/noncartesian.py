"""Non-Cartesian studies in ``recon batch``: the trajectory of a study (its file's, or
the one ``--mask-type radial|spiral`` draws) and its acquisition."""

from __future__ import annotations

import numpy as np
import torch

import masks
from physics.acquisition import simulate_kspace
from physics.coils import compress_coils
from physics.nufft import Trajectory, voronoi_density
from pipelines.config import BatchConfig
from pipelines.formats.study import Study, check_simulable
from recon.api import as_sampling, trajectory_coil_maps


def edge_fraction(coords: np.ndarray, shape: tuple[int, int]) -> float:
    """A file trajectory's sampling density at the edge of k-space relative to Nyquist:
    ``1 / A`` for ``A`` the median Voronoi area (units of (1/FOV)^2) of its samples in the
    outer tenth of the radius, at most 1. It stands in for the equivalent Nyquist
    fraction when choosing regularisation weights and trained weights."""
    trajectory = Trajectory(torch.from_numpy(np.asarray(coords, np.float32)), tuple(shape))
    areas = voronoi_density(trajectory).reshape(-1).numpy()
    radius = np.hypot(*np.asarray(coords, np.float32).reshape(-1, 2).T)
    outer = areas[radius >= 0.9 * radius.max()]
    return float(min(1.0, 1.0 / max(float(np.median(outer)), 1e-6)))


def trajectory_of(study: Study, config: BatchConfig) -> masks.TrajectoryMask | None:
    """The trajectory of a study: the file's own (measured non-Cartesian k-space), or the
    one ``--mask-type`` draws for simulated k-space; None for Cartesian acquisitions."""
    coords = study.meta.get("trajectory")
    if coords is not None:
        shape = tuple(study.meta["image_shape"])
        ratio = edge_fraction(coords, shape)
        return masks.TrajectoryMask(np.asarray(coords, np.float32), shape, "from file", ratio, ratio,
                                    {"file": str(study.source), "nyquist_shots": float("nan")})
    if study.simulated and masks.is_trajectory(config.mask_type):
        seed = masks.seed_from_name(study.name, config.seed)
        return masks.make_trajectory(config.mask, tuple(study.images.shape[-2:]), config.mask_type, seed=seed)
    return None


def trajectory_acquisition(study: Study, trajectory: masks.TrajectoryMask, config: BatchConfig, notes: list[str]):
    """k-space ``(N, C, *samples)``, the trajectory, the reference and ESPIRiT maps of a
    non-Cartesian study (simulated by NUFFT from images, or measured)."""
    sampling = as_sampling(trajectory)
    if study.simulated:
        check_simulable(study.images, study.source)
        generator = torch.Generator().manual_seed(masks.seed_from_name(study.name, config.seed))
        kspace, truth = simulate_kspace(torch.from_numpy(study.images), sampling, generator=generator)
        notes.append(f"{trajectory.summary()}; k-space simulated by NUFFT")
        return kspace.numpy(), trajectory, truth.abs().numpy(), None
    kspace = study.kspace
    if config.virtual_coils and kspace.shape[1] > config.virtual_coils:
        compressed, _ = compress_coils(torch.from_numpy(kspace), None, config.virtual_coils)
        notes.append(f"coils compressed {kspace.shape[1]} -> {config.virtual_coils} (SVD of the samples)")
        kspace = compressed.numpy()
    coil_maps = None
    if kspace.shape[1] > 1:
        coil_maps = trajectory_coil_maps(torch.from_numpy(kspace), sampling).numpy()
    return kspace, trajectory, study.reference, coil_maps
