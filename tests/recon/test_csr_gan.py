import csv
import json

import pytest
import torch

from masks import make_mask
from physics.fft import fft2c
from physics.operators import SingleCoil
from recon.models.csr_gan import (
    PAPER,
    CsrGanConfig,
    CsrGanGenerator,
    ProjectionCritic,
    mask_condition,
)
from recon.models.gan_drn import GanDrnGenerator, GeneratorConfig
from recon.training.checkpoints import load_matching
from recon.training.config import TrainConfig
from recon.training.trainer import train
from tests.toys import toy_slices as _slices

TINY = {"width": 8, "blocks": 1, "stages": 2, "embedding": 8}


def _inputs(shape, ratio=0.25, kind="cartesian", seed=0):
    torch.manual_seed(seed)
    image = torch.randn(1, *shape, dtype=torch.complex64)
    mask = torch.from_numpy(make_mask(ratio, shape, kind, seed=seed).array)
    kspace = mask * fft2c(image)[:, None]
    return SingleCoil(mask).adjoint(kspace), kspace, mask


def test_mask_condition_reads_ratio_and_family():
    lines = torch.from_numpy(make_mask(0.25, (64, 64), "cartesian", seed=0).array)
    spread = torch.from_numpy(make_mask(0.25, (64, 64), "vd2d", seed=0).array)
    condition = mask_condition(torch.stack([lines, spread])[:, None])
    assert condition.shape == (2, 8)
    torch.testing.assert_close(condition[:, 0], torch.stack([lines.float().mean(), spread.float().mean()]))
    assert condition[0, 2] == 1 and condition[1, 2] == 0
    assert mask_condition(lines, batch=3).shape == (3, 8)


def test_mask_condition_tells_the_families_and_the_coils_apart():
    def features(kind, ratio=0.2, coil_maps=None):
        return mask_condition(torch.from_numpy(make_mask(ratio, (128, 128), kind, seed=3).array), 1, coil_maps)[0]

    assert features("equispaced")[5] > 0.8 > 0.5 > features("cartesian")[5]  # regular vs random lines
    assert features("random2d")[5] == 0 and features("vd2d")[3] == 1
    assert features("vd2d")[4] > features("random2d", 0.2)[4] - 1e-6  # variable density
    assert features("gaussian1d", 0.4)[4] > features("cartesian", 0.4)[4]
    single = features("cartesian")
    maps = torch.zeros(1, 12, 128, 128, dtype=torch.complex64)
    maps[:, :8] = 1  # 8 coils, padded with 4 empty ones
    eight = features("cartesian", coil_maps=maps)
    assert single[6] == 0 and single[7] == 0
    assert eight[6] == pytest.approx(3 / 4) and eight[7] == 1
    torch.testing.assert_close(single[:6], eight[:6])


def test_weights_of_the_first_condition_load_and_behave_as_before():
    old = CsrGanGenerator(CsrGanConfig(**TINY))
    torch.nn.init.normal_(old.embed[0].weight, std=0.5)
    with torch.no_grad():
        old.embed[0].weight[:, 4:] = 0  # what a model of the 4 first features computes
    for stage in old.stages:
        torch.nn.init.normal_(stage.film.weight, std=0.5)
        torch.nn.init.normal_(stage.tail.weight, std=0.1)
    state = {**old.state_dict(), "embed.0.weight": old.embed[0].weight[:, :4].clone()}  # a 4-feature file
    new = CsrGanGenerator(CsrGanConfig(**TINY))
    new.load_state_dict(state)
    image, kspace, mask = _inputs((32, 32))
    torch.testing.assert_close(new(kspace, SingleCoil(mask)), old(kspace, SingleCoil(mask)))
    warm = CsrGanGenerator(CsrGanConfig(**TINY))
    assert "embed.0.weight" in load_matching(warm, state, "old weights")["loaded"]


def test_the_condition_changes_the_output():
    generator = CsrGanGenerator(CsrGanConfig(**TINY))
    for stage in generator.stages:
        torch.nn.init.normal_(stage.film.weight, std=0.5)
        torch.nn.init.normal_(stage.tail.weight, std=0.1)
    image, kspace, mask = _inputs((32, 32))
    low = generator(kspace, SingleCoil(mask), condition=torch.tensor([[0.1, 0.1**0.5, 1.0, 0.0, 0.1, 0.2, 0.0, 0.0]]))
    high = generator(kspace, SingleCoil(mask), condition=torch.tensor([[0.5, 0.5**0.5, 1.0, 0.0, 0.1, 0.2, 0.0, 0.0]]))
    assert (low - high).abs().max() > 1e-4


@pytest.mark.parametrize("shape", [(33, 47), (40, 40)])
def test_output_shape_and_hard_data_consistency(shape):
    generator = CsrGanGenerator(CsrGanConfig(**TINY))
    torch.nn.init.normal_(generator.stages[0].tail.weight, std=0.1)
    image, kspace, mask = _inputs(shape)
    output = generator(kspace, SingleCoil(mask))
    assert output.shape == (1, *shape) and output.dtype == torch.complex64
    torch.testing.assert_close((fft2c(output)[:, None] * mask), kspace, atol=1e-5, rtol=1e-5)


def test_paper_configuration_runs_forward_and_backward():
    generator = CsrGanGenerator(PAPER)
    torch.nn.init.normal_(generator.stages[0].tail.weight, std=0.01)
    image, kspace, mask = _inputs((24, 24))
    output = generator(kspace, SingleCoil(mask))
    output.abs().mean().backward()
    assert generator.stages[0].head.weight.grad is not None
    assert generator.stages[0].body[0].conv1.kernel_size == (5, 5) and len(generator.stages[0].body) == 8


def test_gan_drn_weights_initialise_an_identical_csr_gan():
    gan_drn = GanDrnGenerator(GeneratorConfig(width=8, blocks=1, stages=2))
    for stage in gan_drn.stages:
        torch.nn.init.normal_(stage.tail.weight, std=0.1)
    csr = CsrGanGenerator(CsrGanConfig(**TINY))
    report = load_matching(csr, gan_drn.state_dict(), "gan-drn")
    assert not report["ignored"] and all("film" in key or "embed" in key for key in report["kept_initial"])
    image, kspace, mask = _inputs((32, 32))
    torch.testing.assert_close(csr(kspace, SingleCoil(mask)), gan_drn(kspace, SingleCoil(mask)))
    with pytest.raises(ValueError, match="no parameter"):
        load_matching(csr, {"other": torch.zeros(1)}, "elsewhere")


def test_critic_is_size_independent_conditional_and_spectrally_normalised():
    critic = ProjectionCritic(width=8, stages=3)
    condition = torch.tensor([[0.1, 0.1**0.5, 1.0, 0.0, 0.1, 0.2, 0.0, 0.0], [0.5, 0.5**0.5, 0.0, 1.0, 0.8, 0.0, 0.75, 1.0]])
    for shape in [(48, 48), (57, 33)]:
        x = torch.randn(2, 2, *shape)
        assert critic(x, condition).shape == (2,)
        score, maps = critic(x, condition, features=True)
        assert len(maps) == 4  # three residual blocks and the attention block
    # the projection on the condition changes the score
    x = torch.randn(1, 2, 48, 48).expand(2, -1, -1, -1)
    assert not torch.allclose(*critic(x, condition))
    # spectral norm: after power iterations each layer's largest singular value is ~1
    for _ in range(30):
        critic(torch.randn(2, 2, 48, 48), condition)
    critic.eval()
    layers = [m for m in critic.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(layers) >= 10
    for layer in layers:
        sigma = torch.linalg.matrix_norm(layer.weight.flatten(1), ord=2)
        assert abs(float(sigma.detach()) - 1) < 0.05, layer


def test_short_csr_gan_training_over_a_ratio_range_lowers_the_loss_and_resumes(tmp_path):
    config = dict(model="csr-gan", steps=24, batch_size=2, val_every=12, checkpoint_every=12, generator=TINY,
                  out=str(tmp_path / "run"), ratios=(0.2, 0.3, 0.4), lr_g=3e-3, seed=1, threads=1)
    data, val = _slices(), _slices(2, seed=1)
    train(TrainConfig(**config), data, val, progress=False)
    with open(tmp_path / "run" / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 24
    # Training-loss curves of 24 noisy steps say little; the fixed validation set does.
    history = json.loads((tmp_path / "run" / "val.json").read_text())
    assert [h["step"] for h in history] == [12, 24] and history[1]["nmse"] < history[0]["nmse"]
    assert any(float(row["loss_d"]) != 0 for row in rows)  # the discriminator trains
    train(TrainConfig(**{**config, "steps": 30, "resume": True}), data, val, progress=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert state["step"] == 30
