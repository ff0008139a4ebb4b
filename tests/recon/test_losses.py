import pytest
import torch

from recon.metrics import nmse, ssim
from recon.training.losses import frequency_loss, gradient_penalty, nmse_loss, ssim_loss


def _pair(seed=0):
    g = torch.Generator().manual_seed(seed)
    target = torch.complex(torch.rand(2, 24, 24, generator=g), torch.rand(2, 24, 24, generator=g))
    return target + 0.1 * torch.randn(2, 24, 24, generator=g), target


def test_frequency_loss_is_relative_kspace_error():
    prediction, target = _pair()
    expected = torch.stack([(p - t).norm() / t.norm() for p, t in zip(prediction, target)]).mean()
    assert float(frequency_loss(prediction, target)) == pytest.approx(float(expected), rel=1e-4)


def test_nmse_and_ssim_losses_match_metrics():
    prediction, target = _pair(1)
    per_slice = [nmse(p, t) for p, t in zip(prediction, target)]
    assert float(nmse_loss(prediction, target)) == pytest.approx(sum(per_slice) / 2, rel=1e-4)
    per_slice = [ssim(p, t) for p, t in zip(prediction, target)]
    assert float(ssim_loss(prediction, target)) == pytest.approx(1 - sum(per_slice) / 2, rel=1e-3)
    assert float(ssim_loss(target, target)) == pytest.approx(0.0, abs=1e-6)


def test_gradient_penalty_of_a_linear_critic():
    weight = torch.randn(2, 8, 8)

    def critic(x):
        return (x * weight).flatten(1).sum(dim=1)

    real, fake = torch.randn(3, 2, 8, 8), torch.randn(3, 2, 8, 8)
    expected = (weight.norm() - 1) ** 2
    assert float(gradient_penalty(critic, real, fake)) == pytest.approx(float(expected), rel=1e-4)


def test_adversarial_loss_objects_pair_both_sides():
    from recon.training.losses import AdversarialLoss

    real, fake = torch.tensor([3.0, 2.5]), torch.tensor([-1.0, -2.0])
    for kind in AdversarialLoss.KINDS:
        loss = AdversarialLoss(kind)
        # the critic's loss is lower when it tells real from fake than when it confuses them
        assert loss.critic_loss(real, fake) < loss.critic_loss(fake, real)
        # the generator's loss is lower when its fakes score like the real data
        assert loss({"fake_scores": real, "real_scores": fake}) < loss({"fake_scores": fake, "real_scores": real})
    with pytest.raises(ValueError, match="relativistic"):
        AdversarialLoss("least-squares")


def test_log_nmse_loss_is_scale_free_in_the_error():
    from recon.training.losses import log_nmse_loss

    target = torch.rand(2, 16, 16) + 0.5
    errors = [log_nmse_loss(target + e, target) for e in (1e-3, 1e-2, 1e-1)]
    # ten times the error costs the same 2 (log10 of 100x the NMSE) at any error size
    assert float(errors[1] - errors[0]) == pytest.approx(2.0, abs=1e-3)
    assert float(errors[2] - errors[1]) == pytest.approx(2.0, abs=1e-3)
