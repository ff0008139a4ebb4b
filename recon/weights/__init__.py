"""The shipped weights and their JSON cards, read without torch.

Every learned model's weights ship here as ``NAME.pt`` beside a card ``NAME.json`` (the
model, the ratios it was trained on, the data, the command, steps, seconds and
validation metrics). This module reads the cards only, so listing methods and their
availability never imports torch; :mod:`recon.weights.loading` loads a ``.pt`` file
without unpickling anything.
"""

from __future__ import annotations

import json
from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent
def shipped_weights(model: str, folder: Path = WEIGHTS_DIR, sampling: str = "grid") -> dict[Path, tuple[float, float]]:
    """``{weights path: (lowest, highest) training ratio}`` for ``model``, read from the cards.

    ``sampling``: ``grid`` (Cartesian masks), ``trajectory`` (non-Cartesian, cards with
    ``"sampling": "trajectory"``) or ``plane`` (the (ky, kz) planes of a 3-D acquisition,
    cards with ``"sampling": "plane"``). With no weights trained for trajectories or
    planes, those get the grid weights."""
    found: dict[str, dict[Path, tuple[float, float]]] = {"grid": {}, "trajectory": {}, "plane": {}}
    for path in sorted(folder.glob("*.pt")):
        card_path = path.with_suffix(".json")
        if not card_path.is_file():
            continue
        card = json.loads(card_path.read_text())
        if card.get("model") == model:
            found[card.get("sampling", "grid")][path] = (min(card["trained_ratios"]), max(card["trained_ratios"]))
    return found[sampling] or found["grid"]


def sampling_of(path: Path) -> str:
    """What the weights at ``path`` were trained for, from their card: ``grid``,
    ``trajectory`` or ``plane`` (``grid`` when the card says nothing or is missing)."""
    card_path = Path(path).with_suffix(".json")
    return json.loads(card_path.read_text()).get("sampling", "grid") if card_path.is_file() else "grid"


def ratio_distance(ratio: float, trained: tuple[float, float]) -> float:
    """How far ``ratio`` lies outside the trained range (0 inside it)."""
    return max(trained[0] - ratio, 0.0, ratio - trained[1])


def nearest_weights(model: str, ratio: float, folder: Path = WEIGHTS_DIR) -> Path:
    """The shipped weights of ``model`` whose trained ratios lie nearest ``ratio``; of
    several that cover it, the most specialised (the narrowest range)."""
    return nearest_of(shipped_weights(model, folder), model, ratio)


def nearest_of(options: dict[Path, tuple[float, float]], model: str, ratio: float) -> Path:
    """:func:`nearest_weights` among ``options`` (:func:`shipped_weights`' answer)."""
    if not options:
        raise FileNotFoundError(f"no shipped {model} weights (train them with recon train --model {model})")
    return min(options, key=lambda path: (ratio_distance(ratio, options[path]), options[path][1] - options[path][0]))
