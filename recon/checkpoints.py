"""Loading weights and checkpoints without ever unpickling code.

Every ``.pt`` file this project reads goes through :func:`load_state`, which calls
``torch.load(weights_only=True)``: only tensors and plain Python values (dicts, lists,
numbers, strings) are accepted, so a crafted file cannot run code. Checkpoints are
written with those types alone (optimiser states, random-generator states as uint8
tensors, the config as a plain dict).
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch

from recon.files import atomic_file


class UnsafeWeightsError(ValueError):
    """A weights file that cannot be loaded safely; the message names the file."""


def load_state(path: str | Path, map_location: str | torch.device = "cpu", what: str = "weights file") -> dict[str, Any]:
    """Load a state dict or checkpoint from ``path`` with ``weights_only=True``.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    UnsafeWeightsError
        The file holds anything but tensors and plain values (it would need
        unpickling), is corrupt or truncated, or is not a dict. The message is one
        line naming the file; torch's advice to disable the safety check is dropped on
        purpose.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - torch raises many types; one line for all
        reason = "it holds objects other than tensors and plain values, which are never unpickled"
        text = str(error)
        if "weights only" not in text.lower() and "weights_only" not in text:
            reason = "not a readable torch file (corrupt, truncated or another format)"
        raise UnsafeWeightsError(f"{path}: cannot load this {what}: {reason}") from None
    if not isinstance(state, dict):
        raise UnsafeWeightsError(f"{path}: cannot load this {what}: expected a dict of tensors, got {type(state).__name__}")
    return state


def save_state(path: str | Path, state: dict[str, Any]) -> None:
    """Save ``state`` atomically (temporary file + rename)."""
    with atomic_file(path) as tmp:
        torch.save(state, tmp)


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
