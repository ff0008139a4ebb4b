"""Training checkpoints: warm starts from other weights (``--init``) and the log kept
consistent when a run resumes. Loading and saving go through
:mod:`recon.weights.loading`, which never unpickles."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch

from recon.files import atomic_file
from recon.weights.loading import UnsafeWeightsError, load_state


def truncate_log(path: Path, step: int) -> None:
    """Drop log rows written after the checkpoint a run resumes from, so that every step
    appears once in ``log.csv``."""
    if not path.is_file():
        return
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    kept = [row for row in rows if not row or not row[0].isdigit() or int(row[0]) <= step]
    if len(kept) != len(rows):
        with atomic_file(path) as tmp, open(tmp, "w", newline="") as handle:
            csv.writer(handle).writerows(kept)


def load_matching(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> dict[str, Any]:
    """Load every tensor of ``state`` whose name and shape match one of ``model``
    (warm start, e.g. CSR-GAN from GAN-DRN weights: the FiLM layers the source lacks
    keep their identity initialisation). Raises when nothing matches."""
    own = model.state_dict()
    upgrade = getattr(model, "upgrade_state", None)
    if upgrade is not None:  # e.g. CSR-GAN weights of an older condition
        state = dict(state)
        upgrade(state)
    matching = {key: value for key, value in state.items() if key in own and own[key].shape == value.shape}
    if not matching:
        raise ValueError(f"--init: no parameter of {source} fits this model")
    model.load_state_dict(matching, strict=False)
    return {"loaded": sorted(matching), "kept_initial": sorted(set(own) - set(matching)),
            "ignored": sorted(set(state) - set(matching))}


def generator_weights(path: Path, device: torch.device) -> dict[str, torch.Tensor]:
    """Generator weights from a shipped ``.pt`` state dict or a trainer checkpoint."""
    if not path.is_file():
        raise FileNotFoundError(f"--init: no weights at {path}")
    state = load_state(path, device, "--init weights file")
    weights = state["generator"] if "generator" in state else state
    if not isinstance(weights, dict) or not all(isinstance(value, torch.Tensor) for value in weights.values()):
        raise UnsafeWeightsError(f"{path}: --init needs a state dict of tensors (a shipped .pt, best.pt or checkpoint.pt)")
    return weights
