"""Reconstruction methods, metrics and the method registry.

>>> from recon import reconstruct, available
>>> image = reconstruct(kspace, mask, method="cs-l1")  # doctest: +SKIP
"""

from recon import bart as _bart  # noqa: F401  (registers bart-l1, bart-tv)
from recon import baselines as _baselines  # noqa: F401  (registers the reference methods)
from recon import learned as _learned  # noqa: F401  (registers the learned methods)
from recon.api import reconstruct
from recon.registry import MethodUnavailable, Reconstructor, available, get, register, registered

__version__ = "0.1.0"

__all__ = [
    "MethodUnavailable",
    "Reconstructor",
    "available",
    "get",
    "reconstruct",
    "register",
    "registered",
]
