"""Adding a model is one file: a toy model defined here registers, trains through the
shared trainer and reconstructs, with no edit anywhere else."""

import numpy as np
import pytest
from torch import nn

import recon
from masks import make_mask
from physics.consistency import DataConsistency
from physics.fft import fft2c
from recon.models.blocks import run_cascade
from recon.models.learned import register_model, unregister_model
from recon.models.spec import GanSpec, LossWeights, trainable_models
from recon.training.config import TrainConfig
from recon.training.trainer import train
from tests.toys import toy_slices

NAME = "toy-test-model"


class ToyGenerator(nn.Module):
    """One 3x3 convolution as the refinement, then hard data consistency."""

    def __init__(self, width: int = 4):
        super().__init__()
        self.refine = nn.Sequential(nn.Conv2d(2, width, 3, padding=1), nn.LeakyReLU(0.2), nn.Conv2d(width, 2, 3, padding=1))
        self.consistency = nn.ModuleList([DataConsistency()])

    def forward(self, kspace, operator):
        return run_cascade(kspace, operator, [self.refine], list(self.consistency))


class ToyCritic(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 4, 3, stride=2, padding=1)
        self.dense = nn.Linear(4, 1)

    def forward(self, x, condition=None, features=False):
        maps = self.conv(x)
        score = self.dense(maps.mean(dim=(-2, -1))).squeeze(-1)
        return (score, [maps]) if features else score


STEPS_SEEN: list[int] = []


@pytest.fixture
def toy_model():
    STEPS_SEEN.clear()
    register_model(GanSpec(
        name=NAME, description="a toy model defined in a test",
        build_generator=lambda options: ToyGenerator(**options), build_critic=ToyCritic,
        loss_weights=LossWeights(adversarial=1e-3, freq=1.0, nmse=1.0), lipschitz="clip", adversarial="relativistic",
        on_step=lambda step, generator: STEPS_SEEN.append(step),  # a stage schedule would go here
    ))
    yield NAME
    unregister_model(NAME)


def test_a_model_in_one_file_registers_trains_and_reconstructs(toy_model, tmp_path):
    assert toy_model in trainable_models() and toy_model in recon.registered()
    assert toy_model not in recon.available()  # no shipped weights
    slices = toy_slices(6, size=32)
    config = TrainConfig(model=toy_model, ratios=(0.3,), steps=3, batch_size=2, val_every=3,
                         generator={"width": 4}, out=str(tmp_path / "run"))
    summary = train(config, slices, toy_slices(2, size=32, seed=1), progress=False)
    assert summary["steps"] == 3 and (tmp_path / "run" / "best.pt").is_file()
    assert STEPS_SEEN == [0, 1, 2]  # the model's hook ran before every step
    truth = slices.images[0].astype(np.complex64)
    mask = make_mask("30pct", truth.shape, "cartesian", seed=0)
    kspace = fft2c(truth) * mask.array
    image = recon.reconstruct(kspace, mask, toy_model, weights=str(tmp_path / "run" / "best.pt"))
    assert image.shape == truth.shape
    np.testing.assert_allclose(fft2c(image)[mask.array], kspace[mask.array], atol=1e-4)  # its data consistency
    with pytest.raises(recon.MethodUnavailable, match="pass weights=PATH"):
        recon.get(toy_model)


def test_registering_a_name_twice_is_an_error(toy_model):
    with pytest.raises(ValueError, match="already registered"):
        register_model(GanSpec(name=toy_model, description="again", build_generator=lambda o: ToyGenerator(),
                               build_critic=ToyCritic))


def test_nearest_weights_prefers_the_specialist_that_covers_the_ratio(tmp_path):
    # a general model (trained for 1/2 and 1/4) and a 4x specialist (1/4 only)
    import json

    from recon.weights import nearest_weights

    for name, ratios in (("general", [0.5, 0.25]), ("specialist", [0.25]), ("other", [0.25])):
        (tmp_path / f"{name}.pt").write_bytes(b"")
        (tmp_path / f"{name}.json").write_text(json.dumps({"model": "soup-gan-z" if name != "other" else "x",
                                                           "trained_ratios": ratios}))
    assert nearest_weights("soup-gan-z", 0.25, tmp_path).name == "specialist.pt"
    assert nearest_weights("soup-gan-z", 0.5, tmp_path).name == "general.pt"
    assert nearest_weights("soup-gan-z", 0.45, tmp_path).name == "general.pt"
    with pytest.raises(FileNotFoundError, match="no shipped nope weights"):
        nearest_weights("nope", 0.25, tmp_path)
