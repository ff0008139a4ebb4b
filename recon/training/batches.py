"""What the trainer does with one batch besides the loss: the batch's operator, the
critic's input, validation on a fixed set, and the random state a checkpoint keeps."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from physics.complex import peak, to_channels
from physics.operators import LinearOperator, MultiCoil, SingleCoil
from recon import metrics
from recon.training.augment import AcquisitionDataset, collate_acquisitions


def critic_input(image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    scale = peak(reference)
    return to_channels(image / scale)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, DistributedDataParallel) else model


def validate(generator: torch.nn.Module, dataset: AcquisitionDataset, device: torch.device, batch_size: int = 4) -> dict[str, float]:
    """Mean PSNR / SSIM / NMSE of the generator on a fixed validation set (fastMRI
    conventions: magnitudes, data range = the slice's maximum), and ``log_nmse``, the
    mean of log10(NMSE) over slices, which selects the best checkpoint: when a model is
    validated at several ratios, the arithmetic mean NMSE is dominated by the sparsest
    one, the geometric mean weighs every ratio alike."""
    generator.eval()
    scores = []
    with torch.no_grad():
        collate = getattr(dataset, "collate", collate_acquisitions)
        for kspace, mask, target, _, coil_maps in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
            operator = getattr(dataset, "operator", acquisition_operator)(mask.to(device), coil_maps.to(device))
            output = generator(kspace.to(device), operator).cpu()
            for out, ref in zip(output, target):
                scores.append(metrics.evaluate(out, ref))
    generator.train()
    result = {key: float(np.mean([s[key] for s in scores])) for key in ("psnr", "ssim", "nmse")}
    result["log_nmse"] = float(np.mean([np.log10(max(s["nmse"], 1e-30)) for s in scores]))
    return result


def acquisition_operator(mask: torch.Tensor, coil_maps: torch.Tensor) -> LinearOperator:
    """The operator of a training batch: single-coil when the maps are the all-ones
    placeholder of single-coil items, multi-coil otherwise.

    Shapes
    ------
    mask ``(B, 1, H, W)``; coil_maps ``(B, C, H, W)``.
    """
    return SingleCoil(mask) if coil_maps.shape[1] == 1 else MultiCoil(mask, coil_maps)


def rng_state(epoch: int, used_in_epoch: int, generator: torch.Generator) -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "generator": generator.get_state(), "epoch": epoch, "used_in_epoch": used_in_epoch}
