"""Non-Cartesian studies in ``recon batch``: the trajectory of a study (its file's, or
the one ``--mask-type radial|spiral`` draws) and its acquisition."""

from __future__ import annotations

import numpy as np
import torch

import masks
from physics.acquisition import simulate_kspace
from physics.coils import compress_coils
from physics.nufft import Trajectory, density_compensation
from pipelines.config import BatchConfig
from pipelines.formats.study import Study, check_simulable
from recon.api import as_sampling, trajectory_coil_maps


def edge_fraction(coords: torch.Tensor, areas: torch.Tensor) -> float:
    """A file trajectory's sampling density at the edge of k-space relative to Nyquist:
    ``1 / A`` for ``A`` the median Voronoi area (``areas``, its density compensation, in
    units of (1/FOV)^2) of its samples in the outer tenth of the radius, at most 1. It
    stands in for the equivalent Nyquist fraction when choosing regularisation weights
    and trained weights."""
    radius = coords.reshape(-1, 2).norm(dim=-1)
    outer = areas.reshape(-1)[radius >= 0.9 * radius.max()]
    return float(min(1.0, 1.0 / max(float(outer.median()), 1e-6)))


def _file_trajectory(study: Study) -> Trajectory:
    """The file's own trajectory, with its (Voronoi) density compensation computed once."""
    coords = torch.from_numpy(np.array(study.meta["trajectory"], np.float32))
    trajectory = Trajectory(coords, tuple(study.meta["image_shape"]), kind="from file")
    areas = density_compensation(trajectory)
    return Trajectory(coords, trajectory.image_shape, areas, "from file", edge_fraction(coords, areas),
                      {"file": str(study.source)})


def trajectory_acquisition(study: Study, config: BatchConfig, notes: list[str]):
    """k-space ``(N, C, *samples)``, the :class:`~physics.nufft.Trajectory` (with its
    density compensation), the reference and ESPIRiT maps of a non-Cartesian study:
    measured with the file's trajectory, or simulated by NUFFT from images along the one
    ``--mask-type`` draws. None for a Cartesian acquisition."""
    if study.meta.get("trajectory") is None:
        if not (study.simulated and masks.is_trajectory(config.mask_type)):
            return None
        check_simulable(study.images, study.source)
        seed = masks.seed_from_name(study.name, config.seed)
        made = masks.make_trajectory(config.mask, tuple(study.images.shape[-2:]), config.mask_type, seed=seed)
        sampling = as_sampling(made)
        generator = torch.Generator().manual_seed(seed)
        kspace, truth = simulate_kspace(torch.from_numpy(study.images), sampling, generator=generator)
        notes.append(f"{made.summary()}; k-space simulated by NUFFT")
        return kspace.numpy(), sampling, truth.abs().numpy(), None
    sampling = _file_trajectory(study)
    kspace = study.kspace
    if config.virtual_coils and kspace.shape[1] > config.virtual_coils:
        compressed, _ = compress_coils(torch.from_numpy(kspace), None, config.virtual_coils)
        notes.append(f"coils compressed {kspace.shape[1]} -> {config.virtual_coils} (SVD of the samples)")
        kspace = compressed.numpy()
    coil_maps = None
    if kspace.shape[1] > 1:
        coil_maps = trajectory_coil_maps(torch.from_numpy(kspace), sampling).numpy()
    return kspace, sampling, study.reference, coil_maps
