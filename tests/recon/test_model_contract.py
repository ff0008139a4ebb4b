"""Contract tests over the model registry: every registered model, built with its
default configuration and random weights, keeps odd image sizes, treats the items of a
batch independently, and keeps the measured k-space (single-coil hard data
consistency; multi-coil exact least squares). A new model gets these tests by
registering."""

import pytest
import torch

from physics import simulate_coil_maps
from physics.consistency import discrepancy_floor
from physics.fft import fft2c
from physics.operators import MultiCoil, SingleCoil
from recon.models.spec import get_spec, trainable_models

# Models of k-space acquisitions (through-plane models have their own contract in
# tests/recon/test_superres.py).
KSPACE_MODELS = [name for name in trainable_models() if get_spec(name).trained_masks != "slices"]


def _data(batch, height, width, seed=0):
    generator = torch.Generator().manual_seed(seed)
    truth = torch.complex(torch.rand(batch, height, width, generator=generator),
                          0.2 * torch.rand(batch, height, width, generator=generator))
    mask = torch.zeros(height, width, dtype=torch.bool)
    mask[:, ::3] = True
    mask[:, width // 2 - 3 : width // 2 + 3] = True
    return truth, mask


def _model(name):
    torch.manual_seed(0)
    generator = get_spec(name).build_generator({})
    for parameter in generator.parameters():  # a model that is not the identity
        torch.nn.init.normal_(parameter, std=0.05)
    return generator.eval()


@pytest.mark.parametrize("name", KSPACE_MODELS)
def test_odd_sizes_and_single_coil_data_consistency(name):
    generator = _model(name)
    truth, mask = _data(1, 33, 47)
    kspace = fft2c(truth.unsqueeze(1)) * mask
    with torch.no_grad():
        output = generator(kspace, SingleCoil(mask))
    assert output.shape == (1, 33, 47) and torch.is_complex(output)
    torch.testing.assert_close(fft2c(output.unsqueeze(1)) * mask, kspace, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", KSPACE_MODELS)
def test_batch_items_are_independent(name):
    generator = _model(name)
    truth, mask = _data(2, 32, 40, seed=1)
    kspace = fft2c(truth.unsqueeze(1)) * mask
    with torch.no_grad():
        together = generator(kspace, SingleCoil(mask))
        alone = torch.cat([generator(kspace[i : i + 1], SingleCoil(mask)) for i in range(2)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", KSPACE_MODELS)
def test_multicoil_output_fits_the_measurement(name, monkeypatch):
    # Random weights put the output far from the data; the cap on how far the exact step
    # may move a learned output (physics.consistency.EXACT_MAX_CHANGE, for trained
    # outputs; tests/physics/test_solvers.py and tests/recon/test_shipped_weights.py) is
    # lifted, so the step itself is what is tested.
    import recon.models.blocks as blocks

    monkeypatch.setattr(blocks, "EXACT_MAX_CHANGE", None)
    generator = _model(name)
    _, mask = _data(1, 32, 32, seed=2)
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 32), indexing="ij")
    truth = torch.exp(-((xx / 0.6) ** 2 + (yy / 0.7) ** 2) * 2).to(torch.complex64)[None]  # smooth, noise-free
    maps = simulate_coil_maps(4, (32, 32)).unsqueeze(0)
    operator = MultiCoil(mask, maps)
    kspace = operator(truth)
    with torch.no_grad():
        output = generator(kspace, operator)
    residual = (operator(output) - kspace).norm() / kspace.norm()
    # Exact up to what the data's estimated noise explains (physics.consistency.discrepancy_floor),
    # which for smooth noise-free data is nothing.
    floor = float(discrepancy_floor(kspace * mask, mask)[0] / (kspace * mask).norm())
    assert residual <= max(1e-4, 1.05 * floor) and floor < 1e-3


@pytest.mark.parametrize("name", KSPACE_MODELS)
@pytest.mark.parametrize("coils", [1, 4])
def test_a_global_phase_passes_through(name, coils):
    """Scanners and ESPIRiT maps give images any global phase: the output turns with the
    input (the network sees the image with its global phase taken out)."""
    generator = _model(name)
    truth, mask = _data(2, 32, 40, seed=3)
    maps = simulate_coil_maps(coils, (32, 40))[None] if coils > 1 else None
    operator = SingleCoil(mask) if maps is None else MultiCoil(mask, maps)
    kspace = operator(truth)
    turn = torch.polar(torch.ones(2), torch.tensor([1.3, -2.5]))
    with torch.no_grad():
        output = generator(kspace, operator)
        turned = generator(kspace * turn[:, None, None, None], operator)
    torch.testing.assert_close(turned, output * turn[:, None, None], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("name", KSPACE_MODELS)
def test_maps_zero_outside_the_object_give_the_same_image_on_the_window(name, monkeypatch):
    """Where the coil maps vanish outside the object (ESPIRiT's crop), a local cascade
    refines only the window around their support (recon.models.blocks.support_window):
    the same image as refining the whole frame. The support starts on odd rows and
    columns, so a window on the wrong stride grid would differ."""
    from recon.models import blocks

    generator = _model(name)
    truth, mask = _data(2, 72, 88, seed=4)
    maps = simulate_coil_maps(4, (72, 88))[None].repeat(2, 1, 1, 1)
    maps[0, :, :22], maps[0, :, 51:], maps[0, ..., :32], maps[0, ..., 62:] = 0, 0, 0, 0
    maps[1, :, :25], maps[1, :, 45:], maps[1, ..., :35], maps[1, ..., 58:] = 0, 0, 0, 0
    operator = MultiCoil(mask, maps)
    kspace = operator(truth)
    windows = []
    original = blocks.support_window
    monkeypatch.setattr(blocks, "support_window", lambda *args: windows.append(original(*args)) or windows[-1])
    with torch.no_grad():
        windowed = generator(kspace, operator)
        monkeypatch.setattr(blocks, "support_window", lambda *args: None)
        whole = generator(kspace, operator)
    torch.testing.assert_close(windowed, whole, atol=1e-5, rtol=1e-4)
    if getattr(getattr(generator, "config", None), "kind", None) != "cascade":  # not a local cascade: no window
        assert all(window is None for window in windows)
        return
    assert windows[0] is not None and windows[0][0].stop - windows[0][0].start < 72
    torch.testing.assert_close(windowed, whole, atol=1e-5, rtol=1e-4)
