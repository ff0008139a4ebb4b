"""The acquisition condition a conditioned model or critic reads from the acquisition.

Models such as CSR-GAN are told how the data were sampled; the shared trainer passes
the same condition to every critic (an unconditioned critic ignores it), so the trainer
needs nothing model-specific. Everything is read from the mask and the coil maps, so
``reconstruct(kspace, mask, coil_maps)`` needs no extra metadata.

Features, in order (all about in [0, 1]):

0. ``r``, the sampled fraction of k-space;
1. ``sqrt(r)``;
2. 1-D lines (every phase-encode column fully sampled or not at all: ``cartesian``,
   ``equispaced``, ``gaussian1d``);
3. 2-D (``random2d``, ``vd2d``, ``radial-raster``, ``lowres``);
4. centre emphasis: how much denser the central quarter of k-space (of the columns,
   for 1-D masks) is sampled than the whole, ``(r_centre - r) / (1 - r)``; near 0 for
   uniform random masks, large for variable density (``gaussian1d``, ``vd2d``,
   ``radial-raster``, ``lowres``);
5. regularity: for 1-D masks, ``1 - min(1, std / mean)`` of the gaps between sampled
   columns outside the fully sampled centre: 1 for ``equispaced``, lower for random
   lines; 0 for 2-D masks;
6. coils, ``log2(C) / 4`` (16 coils -> 1);
7. multi-coil, ``C > 1``.

Features 0-3 were the whole condition of the first CSR-GAN weights (4 features);
:func:`widen_condition_weights` pads such weights with zero columns, so they load
and behave exactly as before.
"""

from __future__ import annotations

import torch

CONDITION_FEATURES = 8
FIRST_FEATURES = 4


def _regularity(columns: torch.Tensor) -> torch.Tensor:
    """1 - min(1, std/mean) of the gaps between sampled columns outside the centre run."""
    out = torch.zeros(columns.shape[0])
    width = columns.shape[-1]
    for index, sampled in enumerate(columns):
        positions = torch.nonzero(sampled).flatten()
        # Gaps on each side of the fully sampled centre (the run of lines around W/2).
        centre = width // 2
        left, right = centre, centre
        if bool(sampled[centre]):
            while left > 0 and bool(sampled[left - 1]):
                left -= 1
            while right < width - 1 and bool(sampled[right + 1]):
                right += 1
        gaps = torch.cat([torch.diff(positions[positions < left]), torch.diff(positions[positions > right])]).float()
        if len(gaps) < 2:
            continue
        out[index] = 1 - min(1.0, float(gaps.std() / gaps.mean().clamp_min(1e-6)))
    return out


def coil_count(coil_maps: torch.Tensor | None, batch: int) -> torch.Tensor:
    """Coils per item: maps that are zero everywhere (padding of a batch with fewer
    coils) do not count. ``None`` is single-coil.

    Shapes
    ------
    coil_maps ``(B, C, H, W)`` or None -> ``(B,)`` float32.
    """
    if coil_maps is None:
        return torch.ones(batch)
    energy = (coil_maps.detach().abs() ** 2).flatten(2).sum(-1)
    counts = (energy > 0).sum(dim=1).float().cpu()
    return counts.expand(batch) if counts.shape[0] == 1 and batch > 1 else counts


def mask_condition(mask: torch.Tensor, batch: int | None = None, coil_maps: torch.Tensor | None = None) -> torch.Tensor:
    """The acquisition condition of each mask and coil count (see the module docstring).

    Shapes
    ------
    mask: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` bool; coil_maps ``(B, C, H, W)``
    or None (single coil) -> ``(B, 8)`` float32 (a single mask is repeated ``batch``
    times).
    """
    masks = mask.detach().reshape(-1, *mask.shape[-2:]).bool().cpu()
    height, width = masks.shape[-2:]
    ratio = masks.float().mean(dim=(-2, -1))
    columns = masks.any(dim=-2)
    lines = (masks.all(dim=-2) == columns).all(dim=-1).float()
    qh, qw = height // 8, width // 8
    centre_2d = masks[:, height // 2 - qh: height // 2 + qh, width // 2 - qw: width // 2 + qw].float().mean(dim=(-2, -1))
    centre_1d = columns[:, width // 2 - qw: width // 2 + qw].float().mean(dim=-1)
    centre = torch.where(lines > 0, centre_1d, centre_2d)
    emphasis = ((centre - ratio) / (1 - ratio).clamp_min(1e-6)).clamp(0, 1)
    regularity = _regularity(columns) * lines
    condition = torch.stack([ratio, ratio.sqrt(), lines, 1 - lines, emphasis, regularity], dim=1)
    count = batch if batch is not None else condition.shape[0]
    if condition.shape[0] == 1 and count > 1:
        condition = condition.expand(count, -1)
    coils = coil_count(coil_maps, condition.shape[0])
    coil_features = torch.stack([coils.clamp_min(1).log2() / 4, (coils > 1).float()], dim=1)
    return torch.cat([condition, coil_features], dim=1)


def widen_condition_weights(state: dict, prefix: str, key: str) -> None:
    """Pad a dense layer's weight that reads the 4-feature condition of the first
    weights with zero columns, in place, so it reads the 8 features and ignores the new
    ones (a state-dict pre-hook)."""
    name = prefix + key
    weight = state.get(name)
    if isinstance(weight, torch.Tensor) and weight.ndim == 2 and weight.shape[1] == FIRST_FEATURES:
        state[name] = torch.cat([weight, weight.new_zeros(weight.shape[0], CONDITION_FEATURES - FIRST_FEATURES)], dim=1)

