import numpy as np
import pytest
import torch

from physics import fft2c
from physics.operators import SingleCoil
from recon.models.gan_drn import PAPER, GanDrnGenerator, GeneratorConfig, ResNetCritic


def _inputs(height, width, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    truth = torch.complex(torch.rand(batch, height, width, generator=g), 0.1 * torch.rand(batch, height, width, generator=g))
    mask = torch.rand((height, width), generator=g) < 0.3
    kspace = fft2c(truth.unsqueeze(1)) * mask
    from physics import ifft2c

    return ifft2c(kspace)[:, 0], kspace, mask, truth


@pytest.mark.parametrize("shape", [(32, 32), (33, 47), (17, 64), (1 + 2 * 20, 21)])
def test_generator_keeps_any_shape(shape):
    generator = GanDrnGenerator(GeneratorConfig(width=8, blocks=1, stages=2))
    zero_filled, kspace, mask, _ = _inputs(*shape)
    out = generator(kspace, SingleCoil(mask))
    assert out.shape == zero_filled.shape and out.dtype == torch.complex64


def test_hard_data_consistency_keeps_measurements_exactly():
    generator = GanDrnGenerator(GeneratorConfig(width=8, blocks=1, stages=3))
    with torch.no_grad():  # make the network do something non-trivial
        for parameter in generator.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    zero_filled, kspace, mask, _ = _inputs(40, 36)
    out = generator(kspace, SingleCoil(mask))
    predicted = fft2c(out.unsqueeze(1))
    assert not torch.allclose(out, zero_filled, atol=1e-3)
    torch.testing.assert_close(predicted[..., mask], kspace[..., mask], atol=1e-5, rtol=1e-5)


def test_critic_output_shape_is_size_independent():
    critic = ResNetCritic(width=8, stages=3)
    for shape in [(64, 64), (37, 51), (256, 200)]:
        assert critic(torch.randn(3, 2, *shape)).shape == (3,)


def test_paper_configuration_forward_and_backward():
    generator = GanDrnGenerator(PAPER)
    assert sum(p.numel() for p in generator.parameters()) > 20_000_000  # ResNet-50-sized
    zero_filled, kspace, mask, truth = _inputs(35, 29, batch=2)
    out = generator(kspace, SingleCoil(mask))
    assert out.shape == (2, 35, 29)
    (out - truth).abs().pow(2).mean().backward()
    grads = [p.grad for p in generator.parameters() if p.grad is not None]
    assert len(grads) > 100 and all(torch.isfinite(g).all() for g in grads)


def test_generator_config_validation():
    with pytest.raises(ValueError, match="cascade"):
        GeneratorConfig(kind="unet")
    assert np.isclose(GeneratorConfig().to_dict()["stages"], 8)
