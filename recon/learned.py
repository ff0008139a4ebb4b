"""Learned reconstructors with weights shipped in the package (``recon/weights``).

Each weights file ``NAME.pt`` holds a generator ``state_dict`` (loaded with
``torch.load(weights_only=True)``) and has a JSON card ``NAME.json``: the model, the
ratios it was trained on, the data, the command, steps, wall time, validation metrics
and the generator configuration. ``reconstruct`` picks the weights whose training
ratios lie nearest to the mask's ratio (a model conditioned on a range such as
CSR-GAN's covers every ratio inside it) and warns when the mask's ratio lies more
than 2 percentage points outside them.
"""

from __future__ import annotations

import json
import warnings
from functools import lru_cache
from pathlib import Path

import torch

from physics.operators import sampling_operator
from recon.checkpoints import load_state
from recon.gans import get_spec
from recon.registry import Reconstructor, register

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
def shipped_weights(model: str, folder: Path = WEIGHTS_DIR) -> dict[Path, tuple[float, float]]:
    """``{weights path: (lowest, highest) training ratio}`` for ``model``, read from the cards."""
    found = {}
    for path in sorted(folder.glob("*.pt")):
        card_path = path.with_suffix(".json")
        if not card_path.is_file():
            continue
        card = json.loads(card_path.read_text())
        if card.get("model") == model:
            found[path] = (min(card["trained_ratios"]), max(card["trained_ratios"]))
    return found


def ratio_distance(ratio: float, trained: tuple[float, float]) -> float:
    """How far ``ratio`` lies outside the trained range (0 inside it)."""
    return max(trained[0] - ratio, 0.0, ratio - trained[1])


@lru_cache(maxsize=8)
def load_generator(path: str) -> torch.nn.Module:
    """Build the generator described by the card beside ``path`` and load its weights."""
    weights = Path(path)
    card = json.loads(weights.with_suffix(".json").read_text())
    spec = get_spec(card["model"])
    generator = spec.build_generator(dict(card["generator"]))
    generator.load_state_dict(load_state(weights))
    generator.eval()
    return generator


class _Learned(Reconstructor):
    model = ""
    family = "learned"

    def __init__(self, weights: str | None = None, device: str = "cpu"):
        self.weights = weights
        self.device = torch.device(device)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if not shipped_weights(cls.model):
            return f"no shipped weights for {cls.model} in {WEIGHTS_DIR}"
        return None

    def _choose(self, ratio: float) -> Path:
        if self.weights is not None:
            return Path(self.weights)
        options = shipped_weights(self.model)
        nearest = min(options, key=lambda path: ratio_distance(ratio, options[path]))
        if ratio_distance(ratio, options[nearest]) > 0.02:
            low, high = options[nearest]
            trained = f"{low:.2f}" if low == high else f"{low:.2f}-{high:.2f}"
            warnings.warn(
                f"{self.model}: mask ratio {ratio:.3f} differs from the nearest trained ratio {trained}; "
                "quality may be lower than the model card says",
                stacklevel=3,
            )
        return nearest

    def reconstruct(self, kspace, mask, coil_maps=None):
        generator = load_generator(str(self._choose(float(mask.float().mean())))).to(self.device)
        operator = sampling_operator(mask, coil_maps).to(self.device)
        with torch.no_grad():
            return generator(kspace.to(self.device), operator)


@register("gan-drn")
class GanDrn(_Learned):
    """GAN-DRN: cascade of residual generators with hard data consistency (shipped weights)."""

    description = "GAN-DRN, residual cascade with data consistency, trained adversarially (shipped weights)"
    model = "gan-drn"


@register("csr-gan")
class CsrGan(_Learned):
    """CSR-GAN: one generator conditioned on the mask's ratio and family (shipped weights)."""

    description = "CSR-GAN, one residual cascade conditioned on the acquisition (FiLM), for any ratio (shipped weights)"
    model = "csr-gan"
