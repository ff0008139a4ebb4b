"""The registry of reconstruction methods.

Every method has one interface, ``reconstruct(kspace, mask, coil_maps=None) -> image``
on torch tensors (see :class:`Reconstructor`). Methods register by name with
:func:`register`; :func:`get` builds one; :func:`available` lists those usable on
this machine. Nothing is found by string-import magic: the built-in method modules
are imported by name in :func:`load_builtin_methods`, the first time the registry is
asked; another method module registers when it is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    """

    name: str = ""
    description: str = ""
    multicoil_only: bool = False
    superres_only: bool = False
    family: str = "cs"

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


_BUILTIN_LOADED = False


def load_builtin_methods() -> None:
    """Import the modules of the built-in methods, which register them (once)."""
    global _BUILTIN_LOADED
    if _BUILTIN_LOADED:
        return
    _BUILTIN_LOADED = True
    from recon import (  # noqa: F401  (each registers its methods)
        bart,
        baselines,
        csr_gan,
        esrgan,
        gan_drn,
        med_gan,
        mpp_gan,
        slices,
        soup_gan,
        superres,
    )


def registered() -> list[str]:
    """Every registered method name, usable here or not."""
    load_builtin_methods()
    return sorted(_REGISTRY)


def available() -> list[str]:
    """The method names that can run on this machine."""
    return [name for name in registered() if _REGISTRY[name].unavailable_reason() is None]


def get(name: str, **options: Any) -> Reconstructor:
    """Build the method registered as ``name``.

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid names.
    MethodUnavailable
        The method is registered but cannot run here; the message says why.
    """
    load_builtin_methods()
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(registered())}")
    method = _REGISTRY[name](**options)
    reason = method.why_unavailable()
    if reason is not None:
        raise MethodUnavailable(f"method {name!r} is unavailable: {reason}")
    return method


def method_class(name: str) -> type:
    """The class registered as ``name`` (for its attributes, without building it)."""
    load_builtin_methods()
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(registered())}")
    return _REGISTRY[name]
