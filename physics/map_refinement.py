"""Coil maps refined from an image estimate, for the exact data-consistency step.

On noise-free multi-coil data a learned cascade ends with an exact least-squares step
(:func:`physics.consistency.exact_consistency`). With ESPIRiT's maps that step gains far
less than with the maps the data were made with (docs/results.md, "Learned models on
measured k-space (issue 35): fifth part"): ESPIRiT's maps match the true ones to |<S_est, S_true>| = 0.9999 on the
object, but the 0.8 % of a pixel's sensitivity they cannot explain is amplified by the
ill-posed undersampled problem. The cascade itself is insensitive to it; the step is not.

So, as JSENSE does, the maps are fitted to the data given the image: a band-limited
correction ``D_c`` to every coil's map (its spectrum on the central ``width`` x ``width``
of k-space, as smooth as a coil sensitivity), by damped conjugate gradient on

    min_D  sum_c ||M F((S_c + D_c) x) - y_c||^2 + damping * mean|x|^2 * ||D||^2,

and the exact step runs again from the network's output with the refined maps; a few
rounds alternate the two (:func:`exact_consistency_refining_maps`). It runs only where
the data are noise-free (on noisy data the step stops at the discrepancy floor whatever
maps it has) and where the step with the given maps stalled far above its tolerance
(the maps cannot explain the data: with the simulation's own maps the step ends at a
relative residual of 3e-5 to 1e-4, with ESPIRiT's at 0.008 to 0.014).
"""

from __future__ import annotations

import torch

from physics.consistency import EXACT_MAX_CHANGE, exact_consistency, noise_reading
from physics.fft import fft2c, ifft2c
from physics.operators import sampling_operator
from physics.solvers import conjugate_gradient, squared_norms

MAP_REFINE_WIDTH = 16
"""Side of the k-space block each map correction lives on (16 of 256: a sensitivity's smoothness)."""
MAP_REFINE_DAMPING = 0.1
"""Tikhonov weight of the correction, relative to the image's mean energy per pixel."""
MAP_REFINE_ROUNDS = 4
"""Rounds of (refine the maps, exact step again). Width, damping, rounds and iterations
were chosen on the sample's val slices (6; 8 birdcage coils; noise-free; `cartesian` 10 and
25 %; gan-drn): 16 / 0.1 / 4 rounds, 10 CG iterations a fit and 15 CGLS iterations in the
steps before the last gained +0.56 dB at 10 % (no val slice lost) and +1.53 dB at 25 %.
Weaker damping (1e-3) gained more at 25 % (+2.05) but lost up to 1.3 dB on a 10 % slice,
where the network's output is far from the image and the maps absorb its errors; full
steps in every round gained less at 10 % (+0.36) and cost twice the time."""
MAP_REFINE_ITER = 10
"""Conjugate-gradient iterations of one map fit."""
MAP_ROUND_STEP_ITER = 15
"""Most CGLS iterations of the exact step in a round before the last (it only feeds the next map fit)."""
CAPPED_SHARE = 0.95
"""A refined step whose change reached this share of ``EXACT_MAX_CHANGE`` is not kept (the
plain step's output is)."""
MAP_MISFIT = 1e-3
"""Refine only items whose exact step ended above this relative data residual
``||A x - y|| / ||y||`` (the step's tolerance is 2e-5)."""


def refine_coil_maps(image: torch.Tensor, measured: torch.Tensor, mask: torch.Tensor, coil_maps: torch.Tensor,
                     width: int | None = None, damping: float | None = None,
                     max_iter: int | None = None) -> torch.Tensor:
    """``coil_maps`` plus the band-limited correction that best fits ``measured`` given
    ``image`` (see the module docstring); None takes :data:`MAP_REFINE_WIDTH`,
    :data:`MAP_REFINE_DAMPING` and :data:`MAP_REFINE_ITER`.

    Shapes
    ------
    image ``(B, H, W)`` complex; measured ``(B, C, H, W)`` (zero where not sampled); mask
    ``(H, W)`` or ``(B, 1, H, W)`` bool; coil_maps ``(B, C, H, W)``; returns ``(B, C, H, W)``.
    """
    width = MAP_REFINE_WIDTH if width is None else width
    damping = MAP_REFINE_DAMPING if damping is None else damping
    max_iter = MAP_REFINE_ITER if max_iter is None else max_iter
    height, width_ = image.shape[-2:]
    block = (min(width, height), min(width, width_))
    top, left = height // 2 - block[0] // 2, width_ // 2 - block[1] // 2
    rows, columns = slice(top, top + block[0]), slice(left, left + block[1])
    x = image[:, None]
    sampled = mask.to(device=image.device, dtype=torch.bool)
    weight = (damping * squared_norms(image) / image[0].numel()).reshape(-1, 1, 1, 1)

    def pad(coefficients: torch.Tensor) -> torch.Tensor:
        full = torch.zeros_like(coil_maps)
        full[..., rows, columns] = coefficients
        return full

    def forward(coefficients: torch.Tensor) -> torch.Tensor:
        return fft2c(x * ifft2c(pad(coefficients))) * sampled

    def adjoint(residual: torch.Tensor) -> torch.Tensor:
        return fft2c(x.conj() * ifft2c(residual * sampled))[..., rows, columns]

    rhs = adjoint(measured - fft2c(coil_maps * x) * sampled)
    correction = conjugate_gradient(lambda c: adjoint(forward(c)) + weight * c, rhs, max_iter=max_iter, tol=1e-8)
    return coil_maps + ifft2c(pad(correction))


def _relative_residual(image: torch.Tensor, measured: torch.Tensor, operator) -> torch.Tensor:
    return (squared_norms(operator(image) - measured) / squared_norms(measured).clamp_min(1e-30)).sqrt()


def exact_consistency_refining_maps(image: torch.Tensor, stepped: torch.Tensor, measured: torch.Tensor, operator,
                                    rounds: int | None = None) -> torch.Tensor:
    """``stepped`` (the exact step from ``image`` with ``operator``'s maps), except on the
    noise-free items whose step ended above :data:`MAP_MISFIT`: there, ``rounds`` times,
    the maps are refined from the latest image (:func:`refine_coil_maps`, cut to the
    maps' support) and the exact step runs again from ``image`` with them (``rounds``
    None: :data:`MAP_REFINE_ROUNDS`).

    Shapes
    ------
    image, stepped ``(B, H, W)``; measured ``(B, C, H, W)``; a Cartesian multi-coil
    operator with maps ``(B, C, H, W)`` and a mask ``(H, W)`` or ``(B, 1, H, W)``;
    returns ``(B, H, W)``.
    """
    rounds = MAP_REFINE_ROUNDS if rounds is None else rounds
    if rounds <= 0 or operator.coil_maps is None or getattr(operator, "cartesian", True) is False:
        return stepped
    noise_free = ~noise_reading(measured, operator.mask)[2]  # the exact step's own test
    if not bool(noise_free.any()):  # noisy data (a scanner's): the residual's forward operator is not needed
        return stepped
    todo = noise_free & (_relative_residual(stepped, measured, operator) > MAP_MISFIT)
    if not bool(todo.any()):
        return stepped
    mask = operator.mask if operator.mask.ndim == 2 else operator.mask[todo]
    maps, data, start = operator.coil_maps[todo], measured[todo], image[todo]
    support = (maps.abs().sum(dim=1, keepdim=True) > 0).to(maps.dtype)
    current = start
    for round_ in range(rounds):
        maps = refine_coil_maps(current, data, mask, maps) * support
        last = round_ == rounds - 1
        current = exact_consistency(start, data, sampling_operator(mask, maps), max_change=EXACT_MAX_CHANGE,
                                    **({} if last else {"max_iter": MAP_ROUND_STEP_ITER}))
    # A refined step that ran into the change cap went on through directions the data do not
    # determine (noise-free (ky, kz) planes lost up to 7 dB that way): keep the plain step
    # there. (Keeping the network's own output where the plain step ran into the cap too
    # helped those planes but cost held-out 2-D slices up to 1.65 dB: docs/results.md.)
    capped = _reached_cap(current, start)
    out = stepped.clone()
    out[todo] = torch.where(capped.reshape(-1, 1, 1), stepped[todo], current)
    return out


def _reached_cap(stepped: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """Per item, whether a step from ``start`` changed it by :data:`CAPPED_SHARE` of ``EXACT_MAX_CHANGE`` or more."""
    change = squared_norms(stepped - start).sqrt() / squared_norms(start).sqrt().clamp_min(1e-30)
    return change >= CAPPED_SHARE * EXACT_MAX_CHANGE
