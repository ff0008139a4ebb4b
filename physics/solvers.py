"""Iterative solvers that work on any operator's ``normal()``.

:func:`conjugate_gradient` solves ``(A^H A + damping I) x = b`` for a batch of images,
with one step size per batch item, as CG-SENSE and the exact multi-coil data
consistency need.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def _dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Real part of ``<a, b>`` per batch item, shaped to broadcast over the rest."""
    dims = tuple(range(1, a.ndim))
    return (a.conj() * b).sum(dim=dims, keepdim=True).real


def conjugate_gradient(
    normal: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    x0: torch.Tensor | None = None,
    damping: float = 0.0,
    max_iter: int = 30,
    tol: float = 1e-6,
    preconditioner: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Solve ``(normal + damping I) x = rhs`` by (preconditioned) conjugate gradient.

    Parameters
    ----------
    normal : callable
        A Hermitian positive semi-definite operator, typically ``A.normal()``.
    rhs : torch.Tensor
        Right-hand side, e.g. ``A^H y``.
    x0 : torch.Tensor, optional
        Starting point (zeros by default). Components of ``x0`` in the null space of
        ``normal`` are kept when ``damping`` is 0.
    damping : float
        Tikhonov weight ``lambda`` >= 0.
    max_iter : int
        Most iterations.
    tol : float
        Stop when every batch item's residual norm is below ``tol`` times its initial one.
    preconditioner : callable, optional
        ``M^{-1}``, Hermitian positive definite, approximating the system's inverse.

    Shapes
    ------
    rhs, x0 ``(B, ...)`` complex; returns ``(B, ...)``.
    """
    if damping < 0:
        raise ValueError(f"damping must be >= 0, got {damping}")

    def apply(x: torch.Tensor) -> torch.Tensor:
        return normal(x) + damping * x if damping else normal(x)

    x = torch.zeros_like(rhs) if x0 is None else x0.clone()
    residual = rhs - apply(x) if x0 is not None else rhs.clone()
    precondition = preconditioner or (lambda r: r)
    preconditioned = precondition(residual)
    direction = preconditioned.clone()
    rs_old = _dot(residual, preconditioned)
    start = _dot(residual, residual).clamp_min(1e-30)
    for _ in range(max_iter):
        if tol > 0 and bool((_dot(residual, residual) / start <= tol**2).all()):
            break
        q = apply(direction)
        alpha = rs_old / _dot(direction, q).clamp_min(1e-30)
        x = x + alpha * direction
        residual = residual - alpha * q
        preconditioned = precondition(residual)
        rs_new = _dot(residual, preconditioned)
        direction = preconditioned + (rs_new / rs_old.clamp_min(1e-30)) * direction
        rs_old = rs_new
    return x


def squared_norms(a: torch.Tensor) -> torch.Tensor:
    """``||a_b||^2`` per batch item, shape ``(B,)``. Squares the real and imaginary parts
    (``view_as_real``): 9 times faster than ``abs() ** 2``, which takes a square root."""
    parts = torch.view_as_real(a) if a.is_complex() else a
    return parts.pow(2).flatten(1).sum(dim=1)


def _per_item(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.ndim - 1)))


def least_squares(
    operator,
    measured: torch.Tensor,
    x0: torch.Tensor,
    max_iter: int = 150,
    tol: float = 5e-5,
    stall: float = 0.01,
    window: int | torch.Tensor = 10,
    floor: torch.Tensor | None = None,
    max_change: float | None = None,
) -> torch.Tensor:
    """Least-squares fit ``min ||A x - y||`` by CGLS from ``x0`` (conjugate gradient on
    the normal equations, written so the data residual ``y - A x`` is known at every
    step). Components of ``x0`` in the null space of ``A`` are kept.

    Each batch item stops when its relative data residual ``||y - A x|| / ||y||`` is at
    most ``tol``, or at most ``floor / ||y||`` (``floor``: per item, the residual norm
    the noise alone explains; fitting below it only fits noise, which the conditioning
    of ``A`` amplifies), or when that residual relative to its target fell by less than
    ``stall`` (relative) over its last ``window`` iterations (an int, or ``(B,)`` per
    item); an item that has stopped is no longer updated, so each item gets what it gets
    alone. The solve ends when every item has stopped, or after ``max_iter``.
    ``max_change``: an item also stops, at its last iterate, when the step would take
    ``||x - x0||`` past ``max_change * ||x0||``: CGLS's semi-convergence, where the fit
    goes on only through the operator's ill-conditioned directions (estimated coil maps
    that cannot explain noise-free data exactly; issue 37).

    Shapes
    ------
    measured ``(B, C, H, W)``; x0 ``(B, H, W)``; floor ``(B,)`` or None; returns ``(B, H, W)``.
    """
    x = x0.clone()
    data_residual = measured - operator(x)
    norm_y = squared_norms(measured).sqrt().clamp_min(1e-30)
    target = torch.full_like(norm_y, tol)
    if floor is not None:
        target = torch.maximum(target, floor.to(norm_y.dtype).reshape(norm_y.shape) / norm_y)
    gradient = operator.adjoint(data_residual)
    direction = gradient.clone()
    gamma = squared_norms(gradient)
    ratio = squared_norms(data_residual).sqrt() / norm_y / target
    history = [ratio]
    window = torch.as_tensor(window, device=ratio.device).long().expand_as(ratio)
    items = torch.arange(ratio.numel(), device=ratio.device)
    start_norm = squared_norms(x0).sqrt()
    frozen = torch.zeros_like(ratio, dtype=torch.bool)  # stopped for good: stalled, or at max_change
    for _ in range(max_iter):
        past = torch.stack(history)[(len(history) - 1 - window).clamp_min(0), items]
        frozen = frozen | ((len(history) > window) & (ratio > (1 - stall) * past))
        if not bool(((ratio > 1) & ~frozen).any()):
            break
        q = operator(direction)
        alpha = gamma / squared_norms(q).clamp_min(1e-30) * (ratio > 1) * ~frozen  # items at their target stay where they are
        step = x + _per_item(alpha, x) * direction
        if max_change is not None:
            frozen = frozen | (squared_norms(step - x0).sqrt() > max_change * start_norm)
            alpha = alpha * ~frozen
            step = x + _per_item(alpha, x) * direction
        x = step
        data_residual = data_residual - _per_item(alpha, q) * q
        gradient = operator.adjoint(data_residual)
        gamma_new = squared_norms(gradient)
        direction = gradient + _per_item(gamma_new / gamma.clamp_min(1e-30), gradient) * direction
        gamma = gamma_new
        ratio = squared_norms(data_residual).sqrt() / norm_y / target
        history.append(ratio)
    return x


def finite_differences(image: torch.Tensor) -> torch.Tensor:
    """Forward differences along H and W with circular boundaries (as SigPy's
    ``FiniteDifference``), ``(B, H, W) -> (B, 2, H, W)``."""
    return torch.stack([torch.roll(image, -1, dims=-2) - image, torch.roll(image, -1, dims=-1) - image], dim=1)


def finite_differences_adjoint(gradient: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`finite_differences`, ``(B, 2, H, W) -> (B, H, W)``."""
    dy, dx = gradient[:, 0], gradient[:, 1]
    return (torch.roll(dy, 1, dims=-2) - dy) + (torch.roll(dx, 1, dims=-1) - dx)


def admm_total_variation(
    normal: Callable[[torch.Tensor], torch.Tensor],
    rhs: torch.Tensor,
    lamda: torch.Tensor | float,
    rho: float = 1.0,
    max_iter: int = 20,
    cg_iter: int = 4,
    x0: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Anisotropic total-variation least squares,
    ``min_x 1/2 ||A x - y||^2 + lamda ||D x||_1``, by ADMM on ``z = D x``:

    - ``x <- (A^H A + rho D^H D)^{-1} (A^H y + rho D^H (z - u))`` by ``cg_iter``
      conjugate-gradient steps, warm-started from the previous ``x`` (inexact ADMM:
      a few steps per iteration suffice once the iterates settle);
    - ``z <- soft(D x + u, lamda / rho)`` (complex soft threshold);
    - ``u <- u + D x - z``.

    The same splitting as SigPy's ``TotalVariationRecon(solver="ADMM")``, in torch on
    any operator's ``normal()``, so it runs on every core and on a GPU. With the
    Cartesian ``mask``, CG is preconditioned by the exact inverse of the single-coil
    system ``F^H (M + rho |d|^2) F`` (``|d|^2``: the Fourier symbol of ``D^H D``), which
    is close to the multi-coil one when the maps' root-sum-of-squares is 1; then a few
    CG steps per iteration do what ten did.

    Shapes
    ------
    rhs ``(B, H, W)`` = ``A^H y``; ``lamda`` a float or ``(B,)``; returns ``(B, H, W)``.
    """
    lamda_t = torch.as_tensor(lamda, dtype=rhs.real.dtype, device=rhs.device).reshape(-1, 1, 1, 1)
    x = rhs.clone() if x0 is None else x0.clone()
    z = finite_differences(x)
    u = torch.zeros_like(z)

    def system(image: torch.Tensor) -> torch.Tensor:
        return normal(image) + rho * finite_differences_adjoint(finite_differences(image))

    preconditioner = None if mask is None else _circulant_inverse(mask.to(rhs.device), rho, rhs.shape[-2:])
    for _ in range(max_iter):
        x = conjugate_gradient(system, rhs + rho * finite_differences_adjoint(z - u), x0=x, max_iter=cg_iter, tol=0.0,
                               preconditioner=preconditioner)
        gradient = finite_differences(x)
        shifted = gradient + u
        magnitude = shifted.abs()
        z = shifted * torch.clamp(1 - (lamda_t / rho) / magnitude.clamp_min(1e-12), min=0.0)
        u = shifted - z
    return x


def _circulant_inverse(mask: torch.Tensor, rho: float, shape) -> Callable[[torch.Tensor], torch.Tensor]:
    """``r -> F^H (M + rho |d|^2)^{-1} F r`` for the centred orthonormal FFT."""
    from physics.fft import fft2c, ifft2c

    height, width = shape
    # |d|^2 of circular forward differences, at centred frequencies.
    fy = torch.fft.fftshift(torch.fft.fftfreq(height, device=mask.device))[:, None]
    fx = torch.fft.fftshift(torch.fft.fftfreq(width, device=mask.device))[None, :]
    symbol = 4 * torch.sin(torch.pi * fy) ** 2 + 4 * torch.sin(torch.pi * fx) ** 2
    inverse = 1.0 / (mask.reshape(-1, height, width).float() + rho * symbol).clamp_min(1e-6)
    return lambda residual: ifft2c(fft2c(residual) * inverse)


def max_eigenvalue(normal: Callable[[torch.Tensor], torch.Tensor], like: torch.Tensor, max_iter: int = 30,
                   seed: int = 0) -> torch.Tensor:
    """The largest eigenvalue of each item's ``normal`` by ``max_iter`` power iterations
    from a seeded random start (SigPy's ``MaxEig``, which starts from numpy's global
    random state), ``(B,)``.

    Shapes
    ------
    like ``(B, ...)``: the shape, dtype and device of ``normal``'s input.
    """
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(like.shape, dtype=like.dtype, generator=generator).to(like.device)
    eigenvalue = torch.zeros(like.shape[0], dtype=like.real.dtype, device=like.device)
    for _ in range(max_iter):
        y = normal(x)
        eigenvalue = squared_norms(y).sqrt()
        x = y / _per_item(eigenvalue.clamp_min(1e-30), y)
    return eigenvalue


def fista_l1_wavelet(normal: Callable[[torch.Tensor], torch.Tensor], rhs: torch.Tensor, lamda: torch.Tensor | float,
                     max_iter: int = 100, power_iter: int = 30, wavelet: str = "db4") -> torch.Tensor:
    """L1-wavelet least squares, ``min_x 1/2 ||A x - y||^2 + lamda ||W x||_1``, by FISTA
    from zero with the step ``1 / max eig(A^H A)``: SigPy's ``L1WaveletRecon`` (its
    ``GradientMethod`` with Nesterov's acceleration, the ``UnitaryTransform`` of an L1
    prox on ``pywt`` wavelets) step for step, in torch (:mod:`physics.wavelets`), for a
    batch with one ``lamda`` and one step per item.

    Shapes
    ------
    rhs ``(B, H, W)`` = ``A^H y``; ``lamda`` a float or ``(B,)``; returns ``(B, H, W)``.
    """
    from physics.wavelets import soft_threshold_wavelet

    eigenvalue = max_eigenvalue(normal, rhs, power_iter)
    step = torch.where(eigenvalue > 0, 1 / eigenvalue.clamp_min(1e-30), torch.ones_like(eigenvalue))
    threshold = torch.as_tensor(lamda, dtype=step.dtype, device=rhs.device) * step
    step = _per_item(step, rhs)
    x = torch.zeros_like(rhs)
    z, momentum = x, 1.0
    for _ in range(max_iter):
        previous = x
        x = soft_threshold_wavelet(z - step * (normal(z) - rhs), threshold, wavelet)
        earlier, momentum = momentum, (1 + (1 + 4 * momentum**2) ** 0.5) / 2
        z = x + ((earlier - 1) / momentum) * (x - previous)
    return x
