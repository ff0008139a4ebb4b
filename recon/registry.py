"""The registry of reconstruction methods: names, descriptions and availability without
importing torch or any model, and the methods themselves on first use.

Every method has one interface, ``reconstruct(kspace, mask, coil_maps=None) -> image``
on torch tensors (see :class:`Reconstructor`). The built-in methods are listed in
:data:`BUILTIN`, an explicit table of each name's module, one-line description, family
and what it needs to run here; nothing is found by scanning packages. :func:`get`
imports a method's module the first time it is asked for, and that module registers its
class with :func:`register`. Another method module registers when it is imported.

>>> from recon import registry
>>> registry.info("cs-tv").family
'cs'
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the registry itself never imports torch
    import torch


class MethodUnavailable(RuntimeError):
    """A registered method cannot run here (e.g. the ``bart`` binary is missing)."""


class Reconstructor:
    """Base class of reconstruction methods.

    Subclasses set ``name`` and ``description`` and implement :meth:`reconstruct`.

    Attributes
    ----------
    multicoil_only : bool
        The method only makes sense for multi-coil data (e.g. CG-SENSE, which on
        single-coil Cartesian data is exactly zero-filled).
    superres_only : bool
        The method needs a central k-space block (a ``lowres`` mask): bicubic and the
        super-resolution GANs. ``recon run`` offers it only for such masks.
    family : str
        ``baseline`` (zero-filled), ``cs`` (compressed sensing / iterative) or
        ``learned``; reports group methods by it and the trust check compares every
        learned method with the best ``cs`` one.
    host_only : bool
        The method computes outside torch, on the CPU (BART's processes): ``--device``
        leaves it there (:func:`recon.device.on_device`).
    """

    name: str = ""
    description: str = ""
    multicoil_only: bool = False
    superres_only: bool = False
    family: str = "cs"
    host_only: bool = False

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why this method cannot run here, or None when it can."""
        return None

    def why_unavailable(self) -> str | None:
        """Why this configured instance cannot run (e.g. the weights it was given are
        missing); by default the class's reason."""
        return self.unavailable_reason()

    def reconstruct(
        self, kspace: torch.Tensor, mask: torch.Tensor, coil_maps: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Reconstruct complex images.

        Parameters
        ----------
        kspace : torch.Tensor
            complex64 undersampled k-space, zero where not sampled.
        mask : torch.Tensor
            Bool sampling mask.
        coil_maps : torch.Tensor, optional
            complex64 coil sensitivities; None for single-coil data (C = 1).

        Shapes
        ------
        kspace ``(B, C, H, W)``; mask ``(H, W)``; coil_maps ``(B, C, H, W)``.
        Returns ``(B, H, W)`` complex64.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class MethodInfo:
    """What the registry knows of a method without building it.

    ``needs`` is ``""`` (runs anywhere), ``"bart"`` (the ``bart`` binary on PATH) or
    ``"weights:MODEL"`` (shipped weights whose card names MODEL)."""

    module: str
    description: str
    family: str = "cs"
    needs: str = ""
    multicoil_only: bool = False
    superres_only: bool = False


_CLASSICAL = "recon.classical.baselines"
_SR_ONLY = "(lowres masks only; shipped weights)"

BUILTIN: dict[str, MethodInfo] = {
    "zero-filled": MethodInfo(_CLASSICAL, "inverse FFT of the zero-filled k-space (A^H y)", "baseline"),
    "cs-l1": MethodInfo(_CLASSICAL, "compressed sensing, L1 on Daubechies-4 wavelets (FISTA as SigPy's, in torch)"),
    "cs-tv": MethodInfo(_CLASSICAL, "compressed sensing, total variation (ADMM as SigPy's, in torch; multi-coil: on "
                                    "compressed coils)"),
    "cg-sense": MethodInfo(_CLASSICAL, "conjugate-gradient SENSE (Tikhonov-regularised least squares)",
                           multicoil_only=True),
    "bart-l1": MethodInfo("recon.classical.bart", "BART pics, L1-wavelet", needs="bart"),
    "bart-tv": MethodInfo("recon.classical.bart", "BART pics, total variation", needs="bart"),
    "bicubic": MethodInfo("recon.classical.superres", "bicubic interpolation of the low-resolution image "
                                                      "(lowres masks only)", "baseline", superres_only=True),
    "gan-drn": MethodInfo("recon.models.gan_drn", "GAN-DRN, residual cascade with data consistency, trained "
                                                  "adversarially (shipped weights)", "learned", "weights:gan-drn"),
    "csr-gan": MethodInfo("recon.models.csr_gan", "CSR-GAN, one residual cascade conditioned on the acquisition "
                                                  "(FiLM), for any ratio (shipped weights)", "learned", "weights:csr-gan"),
    "esrgan": MethodInfo("recon.models.esrgan", "ESRGAN framework super-resolution, RRDB generator, MSE + "
                                                f"perceptual + relativistic adversarial {_SR_ONLY}", "learned",
                         "weights:esrgan", superres_only=True),
    "med-gan": MethodInfo("recon.models.med_gan", "Med-GAN super-resolution, RRDB without batch norm, multi-scale "
                                                  f"fusion, relativistic average discriminator {_SR_ONLY}", "learned",
                          "weights:med-gan", superres_only=True),
    "mpp-gan": MethodInfo("recon.models.mpp_gan", "multi-path progressive GAN super-resolution, 3/5/7 paths, "
                                                  "ResNet-34 body, two sub-pixel 2x stages, (LR, HR) pair "
                                                  f"discriminator {_SR_ONLY}", "learned", "weights:mpp-gan",
                          superres_only=True),
    "soup-gan": MethodInfo("recon.models.soup_gan", "SOUP-GAN super-resolution, deep LeakyReLU CNN, "
                                                    f"perceptual-tuned GAN {_SR_ONLY}", "learned", "weights:soup-gan",
                           superres_only=True),
}
"""Every built-in method: its module (imported on first use), one-line description,
family, what it needs, and its flags. A test checks each entry against the class its
module registers."""

_REGISTRY: dict[str, Callable[..., Reconstructor]] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator that registers a method under ``name``."""

    def decorate(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"reconstruction method {name!r} is already registered")
        cls.name = name
        _REGISTRY[name] = cls
        return cls

    return decorate


def load_builtin_methods() -> None:
    """Import the module of every built-in method (each registers its classes)."""
    for entry in BUILTIN.values():
        importlib.import_module(entry.module)


def registered() -> list[str]:
    """Every method name, built in or registered, usable here or not (imports nothing)."""
    return sorted(set(BUILTIN) | set(_REGISTRY))


def _unknown(name: str) -> ValueError:
    return ValueError(f"unknown method {name!r}; valid methods: {', '.join(registered())}")


def info(name: str) -> MethodInfo:
    """What the registry knows of ``name``, from the table for a built-in method (nothing
    is imported) or from the registered class. Raises ``ValueError`` listing the valid
    names for an unknown one."""
    if name in BUILTIN:
        return BUILTIN[name]
    if name not in _REGISTRY:
        raise _unknown(name)
    cls = _REGISTRY[name]
    return MethodInfo(cls.__module__, cls.description, cls.family, "class", cls.multicoil_only, cls.superres_only)


def unavailable_reason(name: str) -> str | None:
    """Why ``name`` cannot run on this machine, or None when it can. Built-in methods
    are judged from the table (the ``bart`` binary, the weights cards), so no torch and
    no model is imported; other methods ask their class."""
    needs = info(name).needs
    if needs == "class":
        return _REGISTRY[name].unavailable_reason()
    if needs == "bart" and shutil.which("bart") is None:
        return "the `bart` binary is not on PATH (install the Debian package `bart`)"
    if needs.startswith("weights:"):
        from recon.weights import WEIGHTS_DIR, shipped_weights

        model = needs.split(":", 1)[1]
        if not shipped_weights(model):
            return f"no shipped weights for {model} in {WEIGHTS_DIR} (pass weights=PATH)"
    return None


def available() -> list[str]:
    """The method names that can run on this machine."""
    return [name for name in registered() if unavailable_reason(name) is None]


def method_class(name: str) -> type:
    """The class registered as ``name`` (its module imported on first use)."""
    if name in BUILTIN and name not in _REGISTRY:
        importlib.import_module(BUILTIN[name].module)
    if name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY[name]


def get(name: str, **options: Any) -> Reconstructor:
    """Build the method registered as ``name``.

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid names.
    MethodUnavailable
        The method is registered but cannot run here; the message says why.
    """
    method = method_class(name)(**options)
    reason = method.why_unavailable()
    if reason is not None:
        raise MethodUnavailable(f"method {name!r} is unavailable: {reason}")
    return method
