"""The acquisition condition a conditioned model or critic reads from the mask.

Models such as CSR-GAN are told how the data were sampled; the shared trainer passes
the same condition to every critic (an unconditioned critic ignores it), so the trainer
needs nothing model-specific.
"""

from __future__ import annotations

import torch

CONDITION_FEATURES = 4


def mask_condition(mask: torch.Tensor, batch: int | None = None) -> torch.Tensor:
    """The acquisition condition of each mask: ``[r, sqrt(r), lines, 2-D]``.

    Shapes
    ------
    mask: ``(H, W)``, ``(B, H, W)`` or ``(B, 1, H, W)`` bool -> ``(B, 4)`` float32
    (a single mask is repeated ``batch`` times).
    """
    masks = mask.reshape(-1, *mask.shape[-2:]).bool()
    ratio = masks.float().mean(dim=(-2, -1))
    lines = (masks.all(dim=-2) == masks.any(dim=-2)).all(dim=-1).float()
    condition = torch.stack([ratio, ratio.sqrt(), lines, 1 - lines], dim=1)
    if batch is not None and condition.shape[0] == 1 and batch > 1:
        condition = condition.expand(batch, -1)
    return condition
