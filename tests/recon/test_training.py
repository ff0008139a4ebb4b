import csv
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from recon.models.spec import get_spec
from recon.training.augment import AcquisitionDataset, synthesize_contrast
from recon.training.config import COSINE_FLOOR, TrainConfig, lr_factor
from recon.training.trainer import train
from tests.toys import toy_slices

TINY = {"width": 8, "blocks": 1, "stages": 2}


def _slices(n=6, size=48, seed=0):
    return toy_slices(n, size, seed)


def _config(tmp_path, **overrides):
    values = dict(steps=20, batch_size=2, val_every=10, checkpoint_every=10, generator=TINY, out=str(tmp_path / "run"),
                  ratios=(0.3,), lr_g=3e-3, seed=1, threads=1)
    values.update(overrides)
    return TrainConfig(**values)


def _losses(path):
    with open(path) as handle:
        return [float(row["loss_nmse"]) for row in csv.DictReader(handle)]


def test_short_training_lowers_the_loss_and_resumes(tmp_path):
    data = _slices()
    summary = train(_config(tmp_path), data, _slices(2, seed=1), progress=False)
    assert summary["steps"] == 20
    run = tmp_path / "run"
    assert (run / "checkpoint.pt").is_file() and (run / "best.pt").is_file()
    losses = _losses(run / "log.csv")
    assert len(losses) == 20
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    # resume to 30 steps: continues at step 21
    train(_config(tmp_path, steps=30, resume=True), data, _slices(2, seed=1), progress=False)
    with open(run / "log.csv") as handle:
        steps = [int(row["step"]) for row in csv.DictReader(handle)]
    assert steps == list(range(1, 31))
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["step"] == 30 and "opt_g" in state and "rng" in state


def test_resume_is_exact(tmp_path):
    data, val = _slices(), _slices(2, seed=1)
    train(_config(tmp_path / "a", steps=6, checkpoint_every=3, val_every=100), data, val, progress=False)
    train(_config(tmp_path / "b", steps=3, checkpoint_every=3, val_every=100), data, val, progress=False)
    train(_config(tmp_path / "b", steps=6, checkpoint_every=3, val_every=100, resume=True), data, val, progress=False)
    a = torch.load(tmp_path / "a" / "run" / "checkpoint.pt", weights_only=True)["generator"]
    b = torch.load(tmp_path / "b" / "run" / "checkpoint.pt", weights_only=True)["generator"]
    for key in a:
        torch.testing.assert_close(a[key], b[key])


def test_resume_drops_log_rows_of_the_interrupted_run_and_keeps_the_clock(tmp_path):
    data, val = _slices(), _slices(2, seed=1)
    train(_config(tmp_path, steps=3, checkpoint_every=3, val_every=100), data, val, progress=False)
    log = tmp_path / "run" / "log.csv"
    with open(log, "a", newline="") as handle:  # rows an interrupted run wrote after its last checkpoint
        csv.writer(handle).writerows([[4, 0, 1, 0, 1, 1, 0, 999.0], [5, 0, 1, 0, 1, 1, 0, 999.5]])
    train(_config(tmp_path, steps=6, checkpoint_every=3, val_every=100, resume=True), data, val, progress=False)
    with open(log) as handle:
        rows = list(csv.DictReader(handle))
    assert [int(row["step"]) for row in rows] == list(range(1, 7))
    seconds = [float(row["seconds"]) for row in rows]
    assert seconds == sorted(seconds) and seconds[-1] < 999


def test_cosine_schedule_sets_the_optimiser_learning_rates(tmp_path):
    factors = [lr_factor("cosine", step, 10) for step in range(11)]
    assert factors[0] == 1.0 and factors[-1] == pytest.approx(COSINE_FLOOR)
    assert all(a > b for a, b in zip(factors, factors[1:]))
    assert lr_factor("constant", 7, 10) == 1.0
    ramp = [lr_factor("constant", step, 10, warmup=4) for step in range(6)]
    assert ramp == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0, 1.0])
    assert lr_factor("cosine", 1, 10, warmup=4) == pytest.approx(0.5 * lr_factor("cosine", 1, 10))
    config = _config(tmp_path, steps=4, val_every=100, lr_schedule="cosine")
    train(config, _slices(), _slices(2, seed=1), progress=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["opt_g"]["param_groups"][0]["lr"] == pytest.approx(config.lr_g * lr_factor("cosine", 3, 4))
    lr_d = get_spec("gan-drn").lr_d  # the model's default
    assert state["opt_d"]["param_groups"][0]["lr"] == pytest.approx(lr_d * lr_factor("cosine", 3, 4))
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")


def test_weight_clipping_keeps_critic_parameters_bounded(tmp_path):
    train(_config(tmp_path, steps=3, lipschitz="clip", val_every=100), _slices(), _slices(2, seed=1), progress=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert all(float(v.abs().max()) <= 0.01 + 1e-7 for v in state["critic"].values())


def test_dataset_draws_a_new_mask_per_sample_and_fixed_validation_masks():
    data = _slices()
    train_set = AcquisitionDataset(data, (0.3,), seed=0)
    masks_ = [train_set[i][1] for i in range(3)]
    assert not torch.equal(masks_[0], masks_[1])
    val_set = AcquisitionDataset(data, (0.3,), seed=0, train=False)
    assert torch.equal(val_set[0][1], val_set[0][1])
    train_set.set_epoch(1)
    assert not torch.equal(train_set[0][1], masks_[0])


def test_contrast_synthesis_changes_contrast():
    data = _slices(1)
    rng = np.random.default_rng(0)
    image = synthesize_contrast(data.images[0], data.grey_matter[0], data.white_matter[0], rng)
    assert image.shape == data.images[0].shape and not np.allclose(image, data.images[0])


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank, world, port, out):
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    config = TrainConfig(steps=4, batch_size=1, val_every=2, checkpoint_every=2, generator=TINY, out=out,
                         ratios=(0.3,), device="cpu", seed=3)
    train(config, _slices(4), _slices(2, seed=1), progress=False)
    torch.distributed.destroy_process_group()


def test_distributed_two_cpu_processes_with_gloo(tmp_path):
    out = str(tmp_path / "ddp")
    mp.spawn(_ddp_worker, args=(2, _free_port(), out), nprocs=2, join=True)
    state = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 4
    with open(tmp_path / "ddp" / "log.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 4  # rank 0 alone logs


def test_init_from_weights(tmp_path):
    data, val = _slices(), _slices(2, seed=1)
    train(_config(tmp_path / "a", steps=2, val_every=2), data, val, progress=False)
    best = tmp_path / "a" / "run" / "best.pt"
    summary = train(_config(tmp_path / "b", steps=1, val_every=1, lr_g=1e-12, init=str(best)), data, val, progress=False)
    first = torch.load(best, weights_only=True)["val"]["nmse"]
    assert summary["history"][0]["step"] == 0  # a fine-tune is validated before its first step
    assert summary["history"][0]["nmse"] == pytest.approx(first, rel=1e-3)
    # a fine-tune that only makes the weights worse returns them unchanged as best.pt
    ruined = train(_config(tmp_path / "d", steps=2, val_every=1, lr_g=0.5, init=str(best)), data, val, progress=False)
    assert [row["step"] for row in ruined["history"]] == [0, 1, 2]
    assert all(row["nmse"] > ruined["history"][0]["nmse"] for row in ruined["history"][1:])
    kept = torch.load(tmp_path / "d" / "run" / "best.pt", weights_only=True)
    assert kept["step"] == 0
    for name, value in torch.load(best, weights_only=True)["generator"].items():
        torch.testing.assert_close(kept["generator"][name], value)
    with pytest.raises(FileNotFoundError, match="--init"):
        train(_config(tmp_path / "c", steps=1, init=str(tmp_path / "missing.pt")), data, val, progress=False)


def test_time_limit_stops_with_a_validated_checkpoint(tmp_path):
    summary = train(_config(tmp_path, steps=50, val_every=100, time_limit=0.0), _slices(), _slices(2, seed=1), progress=False)
    assert summary["steps"] == 1 and len(summary["history"]) == 1
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 1


def test_named_loss_terms_are_weighted_and_logged_by_name(tmp_path):
    config = _config(tmp_path, steps=2, val_every=2, losses={"l1": 1.0, "fm": 0.01, "ssim": 0.0})
    train(config, _slices(), _slices(2, seed=5), progress=False)
    with open(tmp_path / "run" / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {"loss_g", "loss_d", "loss_l1", "loss_fm", "loss_nmse", "loss_adv"} <= set(rows[0])
    assert "loss_ssim" not in rows[0]  # weight 0: not computed
    assert all(float(row["loss_l1"]) > 0 and float(row["loss_fm"]) >= 0 for row in rows)
    with pytest.raises(ValueError, match="unknown term 'vgg'"):
        _config(tmp_path, losses={"vgg": 1.0})


def test_multicoil_training_data_and_a_short_run(tmp_path):
    data = _slices(4)
    dataset = AcquisitionDataset(data, (0.3,), seed=0, coils=4)
    kspace, mask, target, _, maps = dataset[0]
    assert kspace.shape == (4, 48, 48) and maps.shape == (4, 48, 48)
    torch.testing.assert_close((maps.abs() ** 2).sum(0), torch.ones(48, 48), atol=1e-4, rtol=1e-4)  # unit RSS
    assert not torch.equal(dataset[1][4], maps)  # coil profiles differ per item
    single = AcquisitionDataset(data, (0.3,), seed=0)[0]
    assert single[0].shape == (1, 48, 48) and single[4].shape == (1, 48, 48)
    summary = train(_config(tmp_path, steps=2, val_every=2, coils=4), data, _slices(2, seed=5), progress=False)
    assert summary["steps"] == 2 and summary["history"][-1]["psnr"] > 0


def test_training_families_may_drop_the_calibration_block():
    from recon.training.augment import AcquisitionDataset, SliceSet
    from recon.training.config import TrainConfig

    TrainConfig(model="gan-drn", ratios=(0.1,), mask_type="cartesian,vd2d:nocal,poisson:nocal")
    with pytest.raises(ValueError, match="unknown family"):
        TrainConfig(model="gan-drn", ratios=(0.1,), mask_type="radial:nocal")
    images = SliceSet(np.random.default_rng(0).random((2, 48, 48)).astype(np.float32))
    dataset = AcquisitionDataset(images, (0.3,), ("poisson:nocal",), seed=1)
    _, mask, *_ = dataset[0]
    assert abs(float(mask.float().mean()) - 0.3) < 0.01
    again = AcquisitionDataset(images, (0.3,), ("poisson:nocal",), seed=1)[0][1]
    assert torch.equal(mask, again)  # pooled Poisson-disc masks are seeded from their key: a resumed run sees the same
