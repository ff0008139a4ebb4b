"""The trust check of learned outputs, shared by ``recon run`` and ``recon batch``.

For every learned method and slice: the data-consistency residual (``recon.trust``) on
the acquisition's operator, and the energy it adds in unmeasured k-space relative to
the best compressed-sensing output of the same run (by mean PSNR when a reference
exists, else the first CS method), with its map.
"""

from __future__ import annotations

import numpy as np
import torch

import recon
from physics.operators import sampling_operator
from recon import trust


def cs_reference(methods: list[str], psnr: dict[str, float] | None) -> str | None:
    """The CS method the learned ones are compared with: the best by PSNR when known,
    else the first CS method; None when the run has none."""
    cs = [name for name in methods if recon.registry.method_class(name).family == "cs"]
    if not cs:
        return None
    if psnr and all(name in psnr for name in cs):
        return max(cs, key=lambda name: psnr[name])
    return cs[0]


def trust_check(outputs: dict[str, list[torch.Tensor]], kspace: torch.Tensor, mask: torch.Tensor,
                coil_maps: torch.Tensor | None, psnr: dict[str, float] | None = None
                ) -> tuple[dict[str, list[dict]], dict[str, list[np.ndarray]], str | None]:
    """Per-slice trust records and hallucination maps of every learned method.

    Returns ``({method: [record per slice]}, {method: [|h| map per slice]}, reference)``;
    a record holds ``dc_residual`` and, with a CS reference, ``hallucination_reference``,
    ``hallucination_energy`` and ``hallucination_flagged``.

    Shapes
    ------
    outputs: per method, ``N`` complex images ``(H, W)``; kspace ``(N, C, H, W)``; mask
    ``(H, W)`` bool; coil_maps ``(N, C, H, W)`` or None.
    """
    methods = list(outputs)
    learned = [name for name in methods if recon.registry.method_class(name).family == "learned"]
    reference = cs_reference(methods, psnr)
    records: dict[str, list[dict]] = {}
    maps: dict[str, list[np.ndarray]] = {}
    for name in learned:
        records[name], maps[name] = [], []
        for index, image in enumerate(outputs[name]):
            operator = sampling_operator(mask, None if coil_maps is None else coil_maps[index : index + 1])
            record = {"dc_residual": trust.consistency_residual(image, kspace[index], operator)}
            if reference is not None:
                added, energy = trust.hallucination(image, outputs[reference][index], mask)
                record.update(hallucination_reference=reference, hallucination_energy=energy,
                              hallucination_flagged=energy > trust.HALLUCINATION_THRESHOLD)
                maps[name].append(added.abs().numpy())
            records[name].append(record)
        if reference is None:
            del maps[name]
    return records, maps, reference
