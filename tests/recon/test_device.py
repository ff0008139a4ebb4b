"""``--device``: which devices are accepted, and what :class:`recon.device.OnDevice` moves.

No GPU is needed: the moves are checked on PyTorch's ``meta`` device, which has shapes but
no data, and the methods' own device-following on the CPU."""

import numpy as np
import pytest
import torch

import recon
from recon.device import OnDevice, check_device, on_device, resolve_device
from recon.registry import Reconstructor

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@pytest.mark.parametrize("name", ["auto", "cpu"])
def test_auto_and_cpu_are_always_accepted(name):
    check_device(name)


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "CPU", ""])
def test_unknown_device_names_the_option(name):
    with pytest.raises(ValueError, match="--device must be auto, cpu, cuda or cuda:N"):
        check_device(name)


@NO_CUDA
def test_cuda_without_cuda_is_refused_and_auto_is_the_cpu():
    with pytest.raises(ValueError, match="CUDA is not available on this machine"):
        check_device("cuda:0")
    assert resolve_device("auto") == torch.device("cpu")


class _Recorder(Reconstructor):
    """Records the devices its inputs arrive on; returns a CPU image."""

    name = "recorder"
    family = "learned"

    def __init__(self):
        self.seen = []

    def reconstruct(self, kspace, mask, coil_maps=None):
        self.seen.append((kspace.device.type, getattr(mask, "device", None), None if coil_maps is None else coil_maps.device.type))
        return torch.ones(kspace.shape[0], *kspace.shape[-2:], dtype=torch.complex64)


def test_on_device_moves_the_inputs_and_brings_the_image_home():
    inner = _Recorder()
    wrapped = on_device(inner, torch.device("meta"))
    assert isinstance(wrapped, OnDevice) and wrapped.name == "recorder" and wrapped.family == "learned"
    kspace = torch.zeros(1, 2, 8, 8, dtype=torch.complex64)
    image = wrapped.reconstruct(kspace, torch.ones(8, 8, dtype=torch.bool), torch.ones_like(kspace))
    assert inner.seen == [("meta", torch.device("meta"), "meta")]
    assert image.device == kspace.device and image.shape == (1, 8, 8)
    # a trajectory (not a tensor) stays where the NUFFT computes
    trajectory = object()
    wrapped.reconstruct(kspace, trajectory)
    assert inner.seen[-1] == ("meta", None, None)


def test_the_cpu_and_host_only_methods_are_not_wrapped():
    method = _Recorder()
    assert on_device(method, None) is method and on_device(method, "cpu") is method
    host = _Recorder()
    host.host_only = True  # BART: files and processes on the CPU
    assert on_device(host, torch.device("cuda")) is host
    from recon.classical.bart import BartTV

    assert BartTV.host_only and not recon.registry.Reconstructor.host_only


def test_learned_model_follows_its_input_device():
    model = recon.get("gan-drn")
    assert model.device is None  # the k-space's device, which OnDevice sets
    kspace = torch.zeros(1, 1, 64, 64, dtype=torch.complex64)
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[:, 28:36] = True
    kspace[..., 32, 32] = 1
    assert model.reconstruct(kspace, mask).device == kspace.device


def test_api_device_gives_the_same_image():
    rng = np.random.default_rng(0)
    kspace = (rng.standard_normal((32, 32)) + 1j * rng.standard_normal((32, 32))).astype(np.complex64)
    mask = np.zeros((32, 32), bool)
    mask[:, ::2] = True
    plain = recon.reconstruct(kspace, mask, "cs-tv")
    assert np.array_equal(recon.reconstruct(kspace, mask, "cs-tv", device="cpu"), plain)
    assert np.array_equal(recon.reconstruct(kspace, mask, "cs-tv", device="auto"), plain) or torch.cuda.is_available()
    with pytest.raises(ValueError, match="--device must be"):
        recon.reconstruct(kspace, mask, "cs-tv", device="tpu")


@NO_CUDA
def test_a_run_on_the_cpu_says_nothing_of_its_device():
    from recon.device import device_note

    assert device_note("cpu") == "" and device_note("auto") == ""
