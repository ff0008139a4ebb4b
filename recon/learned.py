"""Learned reconstructors with weights shipped in the package (``recon/weights``).

Each weights file ``NAME-Npct.pt`` holds a generator ``state_dict`` (loaded with
``torch.load(weights_only=True)``) and has a JSON card ``NAME-Npct.json``: the data it
was trained on, the command, steps, wall time, validation metrics and the generator
configuration. ``reconstruct`` picks the weights whose training ratio is nearest to
the mask's ratio and warns when they differ by more than 2 percentage points.
"""

from __future__ import annotations

import json
import re
import warnings
from functools import lru_cache
from pathlib import Path

import torch

from physics.operators import MultiCoil, SingleCoil
from recon.gans import get_spec
from recon.registry import Reconstructor, register

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
_NAME = re.compile(r"^(?P<model>[a-z0-9-]+)-(?P<pct>\d+(?:\.\d+)?)pct\.pt$")


def shipped_weights(model: str, folder: Path = WEIGHTS_DIR) -> dict[float, Path]:
    """``{training ratio: weights path}`` for ``model``."""
    found = {}
    for path in sorted(folder.glob(f"{model}-*pct.pt")):
        match = _NAME.match(path.name)
        if match and match["model"] == model:
            found[float(match["pct"]) / 100] = path
    return found


@lru_cache(maxsize=8)
def load_generator(path: str) -> torch.nn.Module:
    """Build the generator described by the card beside ``path`` and load its weights."""
    weights = Path(path)
    card = json.loads(weights.with_suffix(".json").read_text())
    spec = get_spec(card["model"])
    generator = spec.build_generator(dict(card["generator"]))
    generator.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    generator.eval()
    return generator


class _Learned(Reconstructor):
    model = ""

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
        nearest = min(options, key=lambda r: abs(r - ratio))
        if abs(nearest - ratio) > 0.02:
            warnings.warn(
                f"{self.model}: mask ratio {ratio:.3f} differs from the nearest trained ratio {nearest:.2f}; "
                "quality may be lower than the model card says",
                stacklevel=3,
            )
        return options[nearest]

    def reconstruct(self, kspace, mask, coil_maps=None):
        generator = load_generator(str(self._choose(float(mask.float().mean())))).to(self.device)
        operator = SingleCoil(mask) if coil_maps is None else MultiCoil(mask, coil_maps)
        kspace = kspace.to(self.device)
        with torch.no_grad():
            return generator(operator.adjoint(kspace), kspace, mask.to(self.device), coil_maps)


@register("gan-drn")
class GanDrn(_Learned):
    """GAN-DRN: cascade of residual generators with hard data consistency (shipped weights)."""

    description = "GAN-DRN, residual cascade with data consistency, trained adversarially (shipped weights)"
    model = "gan-drn"
