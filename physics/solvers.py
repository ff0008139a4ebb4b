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
) -> torch.Tensor:
    """Solve ``(normal + damping I) x = rhs`` by conjugate gradient.

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
    direction = residual.clone()
    rs_old = _dot(residual, residual)
    start = rs_old.clamp_min(1e-30)
    for _ in range(max_iter):
        if bool((rs_old / start <= tol**2).all()):
            break
        q = apply(direction)
        alpha = rs_old / _dot(direction, q).clamp_min(1e-30)
        x = x + alpha * direction
        residual = residual - alpha * q
        rs_new = _dot(residual, residual)
        direction = residual + (rs_new / rs_old.clamp_min(1e-30)) * direction
        rs_old = rs_new
    return x


def _norms(a: torch.Tensor) -> torch.Tensor:
    """``||a_b||^2`` per batch item, shape ``(B,)``."""
    return (a.abs() ** 2).flatten(1).sum(dim=1)


def _per_item(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return values.reshape(-1, *([1] * (like.ndim - 1)))


def least_squares(
    operator,
    measured: torch.Tensor,
    x0: torch.Tensor,
    max_iter: int = 150,
    tol: float = 5e-5,
    stall: float = 0.01,
) -> torch.Tensor:
    """Least-squares fit ``min ||A x - y||`` by CGLS from ``x0`` (conjugate gradient on
    the normal equations, written so the data residual ``y - A x`` is known at every
    step). Components of ``x0`` in the null space of ``A`` are kept.

    Stops when every batch item's relative data residual ``||y - A x|| / ||y||`` is at
    most ``tol``, or when it fell by less than ``stall`` (relative) over the last 10
    iterations (noisy data, whose residual cannot reach ``tol``), or after ``max_iter``.

    Shapes
    ------
    measured ``(B, C, H, W)``; x0 ``(B, H, W)``; returns ``(B, H, W)``.
    """
    x = x0.clone()
    data_residual = measured - operator(x)
    norm_y = _norms(measured).sqrt().clamp_min(1e-30)
    gradient = operator.adjoint(data_residual)
    direction = gradient.clone()
    gamma = _norms(gradient)
    history = [float((_norms(data_residual).sqrt() / norm_y).max())]
    for _ in range(max_iter):
        if history[-1] <= tol or (len(history) > 10 and history[-1] > (1 - stall) * history[-11]):
            break
        q = operator(direction)
        alpha = gamma / _norms(q).clamp_min(1e-30)
        x = x + _per_item(alpha, x) * direction
        data_residual = data_residual - _per_item(alpha, q) * q
        gradient = operator.adjoint(data_residual)
        gamma_new = _norms(gradient)
        direction = gradient + _per_item(gamma_new / gamma.clamp_min(1e-30), gradient) * direction
        gamma = gamma_new
        history.append(float((_norms(data_residual).sqrt() / norm_y).max()))
    return x
