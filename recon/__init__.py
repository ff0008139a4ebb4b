"""Reconstruction methods, metrics and the method registry.

>>> from recon import reconstruct, available
>>> image = reconstruct(kspace, mask, method="cs-l1")  # doctest: +SKIP

The package imports its parts when they are first used (PEP 562), so that importing
``recon`` for its version, or the command line's ``--help``, does not load torch and
SigPy. The registry lists the built-in methods from a table without importing them;
each method's module is imported, and registers it, when the method is first built
(see :mod:`recon.registry`). The rooms: :mod:`recon.classical`, :mod:`recon.models`,
:mod:`recon.training`, :mod:`recon.trust` (``docs/architecture.md``).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_REGISTRY_NAMES = ("MethodUnavailable", "Reconstructor", "available", "get", "register", "registered")

__all__ = [*_REGISTRY_NAMES, "reconstruct"]


def __getattr__(name: str) -> Any:
    if name == "reconstruct":
        from recon.api import reconstruct

        return reconstruct
    if name in _REGISTRY_NAMES:
        from recon import registry

        return getattr(registry, name)
    if not name.startswith("_"):
        try:  # a submodule, e.g. recon.metrics, recon.trust.check
            return importlib.import_module(f"recon.{name}")
        except ModuleNotFoundError as error:
            if error.name != f"recon.{name}":
                raise
    raise AttributeError(f"module 'recon' has no attribute {name!r}")
