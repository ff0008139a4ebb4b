"""Reference reconstructions: zero-filled, L1-wavelet and TV compressed sensing
(SigPy), and CG-SENSE.

Regularisation weights scale with the data: the ``lamda`` handed to SigPy is
``reg_weight * max|A^H y|``, so the objective ``1/2 ||Ax - y||^2 + lamda R(x)`` has
the same minimiser, up to scale, whatever the intensity range. The default
``reg_weight`` values were tuned on the sample data's training slices
(``scripts/tune_cs.py``; see the README).
"""

from __future__ import annotations

import numpy as np
import sigpy
import sigpy.mri.app
import torch

from physics.operators import MultiCoil, SingleCoil
from recon.registry import Reconstructor, register


def _operator(mask: torch.Tensor, coil_maps: torch.Tensor | None):
    return SingleCoil(mask) if coil_maps is None else MultiCoil(mask, coil_maps)


@register("zero-filled")
class ZeroFilled(Reconstructor):
    """Adjoint of the forward operator: inverse FFT of the zero-filled k-space,
    coil-combined with the conjugate coil maps for multi-coil data."""

    description = "inverse FFT of the zero-filled k-space (A^H y)"

    def reconstruct(self, kspace, mask, coil_maps=None):
        return _operator(mask, coil_maps).adjoint(kspace)


class _SigpyMethod(Reconstructor):
    """Runs a SigPy app per slice on numpy copies and returns torch tensors."""

    default_reg_weight = 0.0

    def __init__(self, reg_weight: float | None = None, max_iter: int = 100):
        self.reg_weight = self.default_reg_weight if reg_weight is None else float(reg_weight)
        self.max_iter = int(max_iter)

    def _app(self, kspace: np.ndarray, coil_maps: np.ndarray, weights: np.ndarray, lamda: float):
        raise NotImplementedError

    def reconstruct(self, kspace, mask, coil_maps=None):
        zero_filled = _operator(mask, coil_maps).adjoint(kspace)
        weights = mask.detach().cpu().numpy().astype(np.float32)
        out = []
        for index in range(kspace.shape[0]):
            item = kspace[index].detach().cpu().numpy().astype(np.complex64)
            if coil_maps is None:
                maps = np.ones((1, *item.shape[-2:]), dtype=np.complex64)
            else:
                maps = coil_maps[index].detach().cpu().numpy().astype(np.complex64)
            scale = float(zero_filled[index].abs().max())
            if scale == 0:
                out.append(np.zeros(item.shape[-2:], dtype=np.complex64))
                continue
            app = self._app(item, maps, weights, self.reg_weight * scale)
            out.append(np.asarray(app.run(), dtype=np.complex64))
        return torch.from_numpy(np.stack(out)).to(kspace.device)


@register("cs-l1")
class L1Wavelet(_SigpyMethod):
    """L1-wavelet CS (Daubechies-4), FISTA, ``sigpy.mri.app.L1WaveletRecon``."""

    description = "compressed sensing, L1 on Daubechies-4 wavelets (SigPy, FISTA)"
    default_reg_weight = 0.002

    def _app(self, kspace, coil_maps, weights, lamda):
        return sigpy.mri.app.L1WaveletRecon(
            kspace, coil_maps, lamda, weights=weights, max_iter=self.max_iter, show_pbar=False
        )


@register("cs-tv")
class TotalVariation(_SigpyMethod):
    """Anisotropic total-variation CS, primal-dual, ``sigpy.mri.app.TotalVariationRecon``."""

    description = "compressed sensing, total variation (SigPy, primal-dual)"
    default_reg_weight = 0.002

    def _app(self, kspace, coil_maps, weights, lamda):
        return sigpy.mri.app.TotalVariationRecon(
            kspace, coil_maps, lamda, weights=weights, max_iter=self.max_iter, show_pbar=False
        )


@register("cg-sense")
class CGSense(Reconstructor):
    """CG-SENSE: conjugate gradient on ``(A^H A + lamda I) x = A^H y``.

    Written in torch on the project's own operator. On single-coil Cartesian data
    it equals zero-filled, so ``recon run`` uses it only for multi-coil data.
    """

    description = "conjugate-gradient SENSE (Tikhonov-regularised least squares)"
    multicoil_only = True

    def __init__(self, reg_weight: float = 1e-3, max_iter: int = 30, tol: float = 1e-6):
        self.reg_weight = float(reg_weight)
        self.max_iter = int(max_iter)
        self.tol = float(tol)

    def reconstruct(self, kspace, mask, coil_maps=None):
        operator = _operator(mask, coil_maps)
        rhs = operator.adjoint(kspace)

        def apply(x):
            return operator.normal(x) + self.reg_weight * x

        x = torch.zeros_like(rhs)
        residual = rhs.clone()
        direction = residual.clone()
        dims = (-2, -1)
        rs_old = (residual.abs() ** 2).sum(dim=dims, keepdim=True)
        rhs_norm = rs_old.clamp_min(1e-30)
        for _ in range(self.max_iter):
            q = apply(direction)
            alpha = rs_old / (direction.conj() * q).sum(dim=dims, keepdim=True).real.clamp_min(1e-30)
            x = x + alpha * direction
            residual = residual - alpha * q
            rs_new = (residual.abs() ** 2).sum(dim=dims, keepdim=True)
            if bool((rs_new / rhs_norm <= self.tol**2).all()):
                break
            direction = residual + (rs_new / rs_old.clamp_min(1e-30)) * direction
            rs_old = rs_new
        return x
