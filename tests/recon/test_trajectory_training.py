"""Training on non-Cartesian acquisitions: a fresh trajectory per item, padded batches,
the batch operator, and the shared trainer end to end."""

import numpy as np
import pytest
import torch

from physics.nufft_batch import BatchedNUFFT
from recon.training.config import TrainConfig
from recon.training.trainer import train
from recon.training.trajectory_data import TrajectoryDataset
from tests.toys import toy_slices


def test_items_draw_trajectories_and_batches_pad_to_the_longest():
    dataset = TrajectoryDataset(toy_slices(4, 32), (0.1, 0.5), ("radial", "spiral"), seed=0, coils=(1, 3))
    items = [dataset[i] for i in range(4)]
    lengths = {int(item[1][:, 2].sum()) for item in items}
    assert len(lengths) > 1  # different trajectories, different lengths
    kspace, packed, target, ratio, maps = dataset.collate(items)
    assert kspace.shape[-1] == packed.shape[1] == max(lengths) and target.shape == (4, 32, 32)
    operator = dataset.operator(packed, maps)
    assert isinstance(operator, BatchedNUFFT)
    # padding changes nothing: the padded samples of the forward model are zero, and the
    # operator is the adjoint of its adjoint
    image = torch.randn((4, 32, 32), dtype=torch.complex64)
    forward = operator(image)
    assert (forward[~operator.valid[:, None].expand_as(forward)] == 0).all()
    lhs = torch.vdot(forward.flatten(), kspace.flatten())
    rhs = torch.vdot(image.flatten(), operator.adjoint(kspace).flatten())
    assert abs(lhs - rhs) <= 1e-4 * abs(lhs)


def test_the_trainer_fine_tunes_on_radial_and_spiral(tmp_path):
    config = TrainConfig(steps=3, batch_size=2, val_every=3, checkpoint_every=3, generator={"width": 8, "blocks": 1,
                         "stages": 2}, out=str(tmp_path / "run"), ratios=(0.2,), mask_type="radial,spiral", seed=1,
                         threads=1)
    summary = train(config, toy_slices(4, 32), toy_slices(2, 32, seed=1), progress=False)
    assert summary["steps"] == 3 and np.isfinite(summary["history"][-1]["psnr"])
    with pytest.raises(ValueError, match="not both in one run"):
        TrainConfig(mask_type="cartesian,radial")
