"""Reference reconstructions: zero-filled, L1-wavelet and TV compressed sensing
(SigPy), and CG-SENSE.

Regularisation weights scale with the data: the ``lamda`` handed to SigPy is
``reg_weight * max|A^H y|``, so the objective ``1/2 ||Ax - y||^2 + lamda R(x)`` has
the same minimiser, up to scale, whatever the intensity range.

The default ``reg_weight`` depends on the sampling ratio: sparser sampling needs
more regularisation. Each method has weights tuned at 10pct and 50pct on the
sample data's training slices (``scripts/tune_cs.py``: 6 slices, cartesian and
vd2d masks, the weight with the least mean PSNR regret over both mask types,
PSNR capped at 45 dB); between and beyond those ratios the weight is
interpolated log-linearly in the ratio and clamped.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from physics.coils import coil_support, compress_coils
from physics.operators import sampling_operator
from physics.solvers import admm_total_variation, conjugate_gradient
from recon.registry import Reconstructor, register


def interpolate_weight(table: tuple[tuple[float, float], ...], ratio: float) -> float:
    """Log-linear interpolation of ``((ratio, weight), ...)`` at ``ratio``, clamped."""
    points = sorted(table)
    if ratio <= points[0][0]:
        return points[0][1]
    if ratio >= points[-1][0]:
        return points[-1][1]
    for (r0, w0), (r1, w1) in zip(points, points[1:]):
        if r0 <= ratio <= r1:
            t = (math.log(ratio) - math.log(r0)) / (math.log(r1) - math.log(r0))
            return math.exp(math.log(w0) + t * (math.log(w1) - math.log(w0)))
    raise AssertionError("unreachable")


class TunedWeight:
    """Mixin: a ``reg_weight`` fixed by the user or looked up from ``weight_table``."""

    weight_table: tuple[tuple[float, float], ...] = ((0.1, 1e-3), (0.5, 1e-3))

    def weight_for(self, mask: torch.Tensor) -> float:
        if self.reg_weight is not None:
            return self.reg_weight
        return interpolate_weight(self.weight_table, float(mask.float().mean()))


@register("zero-filled")
class ZeroFilled(Reconstructor):
    """Adjoint of the forward operator: inverse FFT of the zero-filled k-space,
    coil-combined with the conjugate coil maps for multi-coil data."""

    description = "inverse FFT of the zero-filled k-space (A^H y)"
    family = "baseline"

    def reconstruct(self, kspace, mask, coil_maps=None):
        return sampling_operator(mask, coil_maps).adjoint(kspace)


class _SigpyMethod(TunedWeight, Reconstructor):
    """Runs a SigPy app per slice on numpy copies and returns torch tensors."""

    default_max_iter = 100

    def __init__(self, reg_weight: float | None = None, max_iter: int | None = None):
        self.reg_weight = None if reg_weight is None else float(reg_weight)
        self.max_iter = self.default_max_iter if max_iter is None else int(max_iter)

    def _app(self, kspace: np.ndarray, coil_maps: np.ndarray, weights: np.ndarray, lamda: float):
        raise NotImplementedError

    def reconstruct(self, kspace, mask, coil_maps=None):
        zero_filled = sampling_operator(mask, coil_maps).adjoint(kspace)
        weights = mask.detach().cpu().numpy().astype(np.float32)
        reg_weight = self.weight_for(mask)
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
            app = self._app(item, maps, weights, reg_weight * scale)
            out.append(np.asarray(app.run(), dtype=np.complex64))
        image = torch.from_numpy(np.stack(out)).to(kspace.device)
        return image if coil_maps is None else image * coil_support(coil_maps)


@register("cs-l1")
class L1Wavelet(_SigpyMethod):
    """L1-wavelet CS (Daubechies-4), FISTA, ``sigpy.mri.app.L1WaveletRecon``."""

    description = "compressed sensing, L1 on Daubechies-4 wavelets (SigPy, FISTA)"
    weight_table = ((0.1, 1e-3), (0.5, 3e-3))

    def _app(self, kspace, coil_maps, weights, lamda):
        import sigpy.mri.app  # imported here: SigPy takes a second to load

        return sigpy.mri.app.L1WaveletRecon(
            kspace, coil_maps, lamda, weights=weights, max_iter=self.max_iter, show_pbar=False
        )


@register("cs-tv")
class TotalVariation(_SigpyMethod):
    """Anisotropic total-variation CS, ``sigpy.mri.app.TotalVariationRecon`` with ADMM.

    SigPy's default primal-dual solver for TV converged too slowly on brain slices
    (100 iterations were still 4 dB from the optimum at 50pct); ADMM with
    ``rho = 1`` and 10 CG steps per iteration gets there in about 50 iterations.
    ``rho`` is scale-free because ``lamda`` scales with the data.
    """

    description = "compressed sensing, total variation (SigPy ADMM; multi-coil: torch ADMM on compressed coils)"
    weight_table = ((0.1, 1e-2), (0.5, 3e-3))
    default_max_iter = 50
    # Multi-coil data: coils compressed to at most this many virtual coils, then torch
    # ADMM with preconditioned CG (physics.solvers.admm_total_variation). Measured
    # against SigPy's 50 x 10 iterations in docs/results.md ("Multi-coil CS speed").
    virtual_coils = 8
    multicoil_iter, multicoil_cg_iter, multicoil_rho = 30, 2, 0.2

    def reconstruct(self, kspace, mask, coil_maps=None):
        if coil_maps is None:
            return super().reconstruct(kspace, mask, coil_maps)
        kspace, coil_maps = compress_coils(kspace, coil_maps, self.virtual_coils)
        operator = sampling_operator(mask, coil_maps)
        zero_filled = operator.adjoint(kspace)
        lamda = self.weight_for(mask) * zero_filled.abs().flatten(1).amax(dim=1)
        image = admm_total_variation(operator.normal(), zero_filled, lamda, rho=self.multicoil_rho,
                                     max_iter=self.multicoil_iter, cg_iter=self.multicoil_cg_iter,
                                     mask=mask)
        return image * coil_support(coil_maps)

    def _app(self, kspace, coil_maps, weights, lamda):
        import sigpy.mri.app

        return sigpy.mri.app.TotalVariationRecon(
            kspace, coil_maps, lamda, weights=weights, solver="ADMM", rho=1.0,
            max_iter=self.max_iter, show_pbar=False,
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
        operator = sampling_operator(mask, coil_maps)
        return conjugate_gradient(operator.normal(), operator.adjoint(kspace), damping=self.reg_weight,
                                  max_iter=self.max_iter, tol=self.tol)
