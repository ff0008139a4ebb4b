"""Loading weights and checkpoints without ever unpickling code.

Every ``.pt`` file this project reads goes through :func:`load_state`, which calls
``torch.load(weights_only=True)``: only tensors and plain Python values (dicts, lists,
numbers, strings) are accepted, so a crafted file cannot run code. Checkpoints are
written with those types alone (optimiser states, random-generator states as uint8
tensors, the config as a plain dict).
"""

from __future__ import annotations

import warnings
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
        with warnings.catch_warnings():  # torch's advice on a refused file is not for our users
            warnings.simplefilter("ignore")
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
