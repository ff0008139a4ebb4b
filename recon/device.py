"""Where a method computes: ``--device auto|cpu|cuda|cuda:N`` for training and inference.

Training (``recon train``) moves its model and batches itself. Inference wraps a method in
:class:`OnDevice`: the k-space, the mask and the coil maps go to the device, the method
computes there, and its image comes back to the device the k-space came from. So
everything around a method (metrics, the error estimate's residuals, the writers) keeps
working on the CPU tensors it always had, and a method's seconds include the transfers
(the copy back waits for the device to finish).

The methods follow their input's device: the CS solvers and the operators build every
buffer on it, and a learned model moves its generator there. BART runs its own processes
on the CPU (:attr:`recon.registry.Reconstructor.host_only`), so it is never wrapped; nor
are non-Cartesian trajectories moved (the NUFFT runs FINUFFT on the CPU and returns its
result on the data's device).
"""

from __future__ import annotations

import re

import torch

from recon.registry import Reconstructor

DEVICES = "auto, cpu, cuda or cuda:N"


def check_device(name: str) -> None:
    """Raise ``ValueError`` naming ``--device`` unless ``name`` is ``auto``, ``cpu``,
    ``cuda`` or ``cuda:N`` that this machine has."""
    if name in ("auto", "cpu"):
        return
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if not match:
        raise ValueError(f"--device must be {DEVICES}, got {name!r}")
    if not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine (use auto or cpu)")
    if match[1] is not None and int(match[1]) >= torch.cuda.device_count():
        raise ValueError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when present, else CPU; the others as named (checked by
    :func:`check_device`)."""
    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class OnDevice:
    """``reconstructor`` computing on ``device``: its inputs are moved there and its image
    comes back to the k-space's device. Every other attribute is the wrapped method's
    (``name``, ``family``, ``parallel_slices``, ``weights_for``, ...): no class attribute
    of :class:`~recon.registry.Reconstructor` may shadow them, so this is not one."""

    def __init__(self, reconstructor: Reconstructor, device: torch.device):
        self.inner = reconstructor
        self.device = torch.device(device)

    def __getattr__(self, name: str):
        if name == "inner":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.inner, name)

    def reconstruct(self, kspace: torch.Tensor, mask, coil_maps: torch.Tensor | None = None) -> torch.Tensor:
        home = kspace.device
        if isinstance(mask, torch.Tensor):  # a trajectory stays where the NUFFT computes (the CPU)
            mask = mask.to(self.device)
        image = self.inner.reconstruct(kspace.to(self.device), mask,
                                       None if coil_maps is None else coil_maps.to(self.device))
        return image.to(home)


def device_note(name: str) -> str:
    """What a run or batch says of ``--device name`` when its methods compute off the
    CPU (``""`` when they compute on it)."""
    device = resolve_device(name)
    if device.type == "cpu":
        return ""
    return f"methods computed on {device} (--device {name}); BART and --adapt on the CPU"


def on_device(reconstructor: Reconstructor, device: torch.device | str | None) -> Reconstructor | OnDevice:
    """``reconstructor`` as it is on the CPU (or ``device`` None) and for a method that
    runs on the host (BART), else wrapped in :class:`OnDevice`; a name (``auto``,
    ``cuda:1``, the ``--device`` option) is resolved first (:func:`resolve_device`)."""
    if isinstance(device, str):
        device = resolve_device(device)
    if device is None or torch.device(device).type == "cpu" or getattr(reconstructor, "host_only", False):
        return reconstructor
    return OnDevice(reconstructor, torch.device(device))
