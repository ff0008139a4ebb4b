"""Reference reconstructions: zero-filled, L1-wavelet (SigPy's FISTA) and TV compressed
sensing (SigPy's ADMM), both in torch, and CG-SENSE.

Regularisation weights scale with the data: ``lamda`` is ``reg_weight * max|A^H y|`` (for
a trajectory, the peak of its gridded image), so the objective
``1/2 ||Ax - y||^2 + lamda R(x)`` has the same minimiser, up to scale, whatever the
intensity range.

The default ``reg_weight`` depends on the sampling ratio: sparser sampling needs
more regularisation. Each method has weights tuned at 10pct and 50pct on the
sample data's training slices (``scripts/tune_cs.py``: 6 slices, cartesian and
vd2d masks, the weight with the least mean PSNR regret over both mask types,
PSNR capped at 45 dB); between and beyond those ratios the weight is
interpolated log-linearly in the ratio and clamped.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from physics.coils import coil_support, compress_coils
from physics.nufft import Trajectory
from physics.operators import sampling_operator, sampling_ratio
from physics.solvers import admm_total_variation, conjugate_gradient, fista_l1_wavelet
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
    """Mixin: a ``reg_weight`` fixed by the user or looked up from ``weight_table``
    (``trajectory_weight_table`` for non-Cartesian trajectories, by their equivalent
    Nyquist fraction)."""

    weight_table: tuple[tuple[float, float], ...] = ((0.1, 1e-3), (0.5, 1e-3))
    trajectory_weight_table: tuple[tuple[float, float], ...] | None = None
    default_max_iter = 100

    def __init__(self, reg_weight: float | None = None, max_iter: int | None = None):
        self.reg_weight = None if reg_weight is None else float(reg_weight)
        self.max_iter = self.default_max_iter if max_iter is None else int(max_iter)

    def weight_for(self, mask) -> float:
        if self.reg_weight is not None:
            return self.reg_weight
        table = self.weight_table
        if isinstance(mask, Trajectory) and self.trajectory_weight_table is not None:
            table = self.trajectory_weight_table
        return interpolate_weight(table, sampling_ratio(mask))


@register("zero-filled")
class ZeroFilled(Reconstructor):
    """Adjoint of the forward operator: inverse FFT of the zero-filled k-space,
    coil-combined with the conjugate coil maps for multi-coil data."""

    description = "inverse FFT of the zero-filled k-space (A^H y); gridding (A^H D y) for a trajectory"
    family = "baseline"

    def reconstruct(self, kspace, mask, coil_maps=None):
        operator = sampling_operator(mask, coil_maps)
        if isinstance(mask, Trajectory):  # density-compensated adjoint: gridding
            return operator.gridding(kspace)
        return operator.adjoint(kspace)


@register("cs-l1")
class L1Wavelet(TunedWeight, Reconstructor):
    """L1-wavelet CS (Daubechies-4) by FISTA: SigPy's ``sigpy.mri.app.L1WaveletRecon``
    step for step, in torch (:func:`physics.solvers.fista_l1_wavelet`): from zero,
    ``max_iter`` accelerated gradient steps of size ``1 / max eig(A^H A)``, every band of
    ``pywt.wavedecn(..., mode="zero")`` soft-thresholded, a batch at a time.

    Cartesian data (single- and multi-coil) give SigPy's images to float rounding, in
    hybrid space for a 1-D mask. Trajectories run on the project's NUFFT
    (:class:`physics.nufft.NUFFT`, its Toeplitz normal operator), which is more exact than
    SigPy's default Kaiser-Bessel one; their images differ from SigPy's by about 2e-3 of
    the peak, and their PSNR by at most 0.003 dB (docs/results.md, issue 36, ninth part).
    """

    description = "compressed sensing, L1 on Daubechies-4 wavelets (FISTA as SigPy's, in torch)"
    weight_table = ((0.1, 1e-3), (0.5, 3e-3))
    trajectory_weight_table = ((0.1, 3e-2), (0.5, 3e-2))  # lamda = w * max|gridding|; docs/results.md

    def reconstruct(self, kspace, mask, coil_maps=None):
        if isinstance(mask, Trajectory):
            operator = sampling_operator(mask, coil_maps)
            normal, rhs = operator.normal(), operator.adjoint(kspace)
            scale = operator.gridding(kspace).abs().flatten(1).amax(dim=1)  # as tuned: the gridded image's peak
        else:
            normal, rhs = normal_equations(kspace, mask, coil_maps)
            scale = rhs.abs().flatten(1).amax(dim=1)
        image = fista_l1_wavelet(normal, rhs, self.weight_for(mask) * scale, max_iter=self.max_iter)
        image = torch.where(scale.reshape(-1, 1, 1) == 0, torch.zeros_like(image), image)  # no data: zeros
        return image if coil_maps is None else image * coil_support(coil_maps)


def normal_equations(kspace: torch.Tensor, mask: torch.Tensor,
                     coil_maps: torch.Tensor | None = None) -> tuple[Callable[[torch.Tensor], torch.Tensor], torch.Tensor]:
    """``(A^H A, A^H y)`` of a Cartesian acquisition, in hybrid space when the mask is 1-D
    (:meth:`physics.operators.SingleCoil.hybrid`: the same normal operator on the image
    with 1-D FFTs).

    Shapes
    ------
    kspace ``(B, C, H, W)``; mask ``(H, W)`` bool; coil_maps ``(B, C, H, W)`` or None; the
    normal operator maps ``(B, H, W)`` images, ``A^H y`` is one.
    """
    operator = sampling_operator(mask, coil_maps)
    hybrid = operator.hybrid()
    if hybrid is None:
        return operator.normal(), operator.adjoint(kspace)
    return hybrid.normal(), hybrid.adjoint(hybrid.measurement(kspace))


@register("cs-tv")
class TotalVariation(TunedWeight, Reconstructor):
    """Anisotropic total-variation CS by ADMM (:func:`physics.solvers.admm_total_variation`).

    Single-coil Cartesian data: SigPy's ``TotalVariationRecon(solver="ADMM", rho=1)``
    step for step (from zero, 50 iterations of 10 CG steps, circular finite differences;
    SigPy's default primal-dual solver converged too slowly on brain slices, 100 iterations
    still 4 dB from the optimum at 50pct), written in torch on the project's operator, in
    hybrid space for a 1-D mask: the same images as SigPy to 3e-6 of the peak at a third to
    a half of its time (docs/results.md, issue 35, seventh part). ``rho`` is scale-free
    because ``lamda`` scales with the data.
    """

    description = "compressed sensing, total variation (ADMM as SigPy's, in torch; multi-coil: on compressed coils)"
    weight_table = ((0.1, 1e-2), (0.5, 3e-3))
    # lamda = w * max|A^H y| for trajectories; tuned on 4 training slices of the sample
    # (golden-angle radial, 10pct and 50pct: docs/results.md, "Non-Cartesian")
    trajectory_weight_table = ((0.1, 4e-4), (0.5, 1e-4))
    default_max_iter = 50
    single_coil_cg_iter, single_coil_rho = 10, 1.0  # SigPy's TotalVariationRecon defaults
    # Multi-coil data: coils compressed to at most this many virtual coils, then torch
    # ADMM with preconditioned CG (physics.solvers.admm_total_variation). Measured
    # against SigPy's 50 x 10 iterations in docs/results.md ("Multi-coil CS speed").
    virtual_coils = 8
    multicoil_iter, multicoil_cg_iter, multicoil_rho = 30, 2, 0.2

    # Trajectories (single- and multi-coil): the same torch ADMM on the NUFFT's Toeplitz
    # normal operator, without a preconditioner, so more CG steps per iteration. 80
    # iterations (weights tuned at 40) were mixed on the held-out subjects, -0.85 to
    # +0.7 dB at twice the time (docs/results.md); a circulant preconditioner from the
    # point-spread function was tried and slowed convergence.
    trajectory_iter, trajectory_cg_iter, trajectory_rho = 40, 4, 0.2

    def reconstruct(self, kspace, mask, coil_maps=None):
        trajectory = isinstance(mask, Trajectory)
        if coil_maps is None and not trajectory:
            return self._single_coil(kspace, mask)
        if coil_maps is not None:
            kspace, coil_maps = compress_coils(kspace, coil_maps, self.virtual_coils)
        operator = sampling_operator(mask, coil_maps)
        rhs = operator.adjoint(kspace)
        start = operator.gridding(kspace) if trajectory else rhs
        lamda = self.weight_for(mask) * rhs.abs().flatten(1).amax(dim=1)
        iterations = ((self.trajectory_iter, self.trajectory_cg_iter, self.trajectory_rho) if trajectory
                      else (self.multicoil_iter, self.multicoil_cg_iter, self.multicoil_rho))
        image = admm_total_variation(operator.normal(), rhs, lamda, rho=iterations[2], max_iter=iterations[0],
                                     cg_iter=iterations[1], mask=None if trajectory else mask,
                                     x0=start)
        return image if coil_maps is None else image * coil_support(coil_maps)

    def _single_coil(self, kspace, mask):
        """SigPy's ADMM (see the class) on single-coil Cartesian data, in hybrid space
        when the mask is 1-D (:func:`normal_equations`)."""
        normal, rhs = normal_equations(kspace, mask)
        scale = rhs.abs().flatten(1).amax(dim=1)
        image = admm_total_variation(normal, rhs, self.weight_for(mask) * scale, rho=self.single_coil_rho,
                                     max_iter=self.max_iter, cg_iter=self.single_coil_cg_iter, x0=torch.zeros_like(rhs))
        return torch.where(scale.reshape(-1, 1, 1) == 0, torch.zeros_like(image), image)  # no data: zeros, as SigPy's path


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
