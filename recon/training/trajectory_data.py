"""Training data for non-Cartesian acquisitions: each item a fresh trajectory (radial or
spiral, a random rotation) and the NUFFT k-space of an augmented image.

Items are those of :class:`~recon.training.augment.AcquisitionDataset` with the mask
replaced by the packed trajectory ``(M, 3)`` (:func:`physics.nufft_batch.pack_trajectory`)
and k-space ``(C, M)``; :func:`collate_trajectories` pads a batch to its longest
trajectory and :meth:`TrajectoryDataset.operator` builds the batch's
:class:`~physics.nufft_batch.BatchedNUFFT`.
"""

from __future__ import annotations

import torch

from masks import make_trajectory
from physics.acquisition import simulate_kspace
from physics.coils import compress_coils
from physics.nufft import Trajectory
from physics.nufft_batch import BatchedNUFFT, pack_trajectory
from recon.training.augment import AcquisitionDataset
from recon.training.measured import draw_coil_maps


class TrajectoryDataset(AcquisitionDataset):
    """:class:`AcquisitionDataset` for trajectory families (``radial``, ``spiral``, ...):
    a ratio is the trajectory's equivalent Nyquist fraction."""

    def _acquire(self, image, ratio, family, coils, phase, snr, rng, measured=False):
        if measured:  # TrainConfig refuses --measured with trajectory families
            raise ValueError("measured-like acquisitions are simulated for grid masks only")
        made = make_trajectory(float(ratio), image.shape, family, seed=rng)
        trajectory = Trajectory(torch.from_numpy(made.coords), tuple(image.shape), kind=made.kind, ratio=made.ratio)
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        maps = draw_coil_maps(coils, image.shape, rng, self.images.coil_sets)[None] if coils > 1 else None
        kspace, truth = simulate_kspace(torch.from_numpy(image)[None], trajectory, coil_maps=maps, noise_snr=snr,
                                        phase=phase, generator=generator)
        kspace = kspace.reshape(*kspace.shape[:2], -1)
        if maps is not None:
            kspace, maps = compress_coils(kspace, maps, self.virtual_coils)
        maps = torch.ones((1, *image.shape), dtype=torch.complex64) if maps is None else maps[0]
        packed = pack_trajectory(trajectory, trajectory.samples)
        return kspace[0], packed, truth[0], torch.tensor(made.ratio, dtype=torch.float32), maps

    @staticmethod
    def operator(packed: torch.Tensor, coil_maps: torch.Tensor) -> BatchedNUFFT:
        """The batch's operator; single-coil batches carry all-ones placeholder maps."""
        return BatchedNUFFT(packed, coil_maps, single_coil=coil_maps.shape[1] == 1)

    @staticmethod
    def collate(items):
        """Stack items, padding k-space and trajectories to the longest and coils to the most."""
        length = max(item[1].shape[0] for item in items)
        coils = max(item[0].shape[0] for item in items)
        kspace = torch.zeros((len(items), coils, length), dtype=torch.complex64)
        packed = torch.zeros((len(items), length, 3))
        maps = torch.zeros((len(items), coils, *items[0][4].shape[-2:]), dtype=torch.complex64)
        for b, (data, trajectory, _, _, coil_maps) in enumerate(items):
            kspace[b, : data.shape[0], : data.shape[1]] = data
            packed[b, : trajectory.shape[0]] = trajectory
            maps[b, : coil_maps.shape[0]] = coil_maps
        return (kspace, packed, torch.stack([item[2] for item in items]), torch.stack([item[3] for item in items]),
                maps)


def trajectory_families(families: tuple[str, ...]) -> bool:
    """True when every family is a trajectory, False when none is; a mix is refused."""
    from masks import TRAJECTORY_KINDS

    flags = {family in TRAJECTORY_KINDS for family in families}
    if len(flags) > 1:
        raise ValueError("--mask-type: train on grid masks or on trajectories, not both in one run "
                         f"(got {', '.join(families)})")
    return flags == {True}
