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

from physics.coils import compress_coils
from physics.fft import reflect_centred
from physics.operators import sampling_operator, sampling_ratio
from physics.raw import whiten_from_band
from recon.classical.superres import central_block
from recon.models.spec import SPECS, GanSpec, get_spec
from recon.registry import Reconstructor, register
from recon.weights import WEIGHTS_DIR, nearest_of, ratio_distance, shipped_weights
from recon.weights.loading import load_state

VIRTUAL_COILS = 8
"""Multi-coil data reach the learned models compressed to at most this many virtual
coils (the training data simulate this many, :mod:`recon.training.augment`)."""

PLANE_MIRRORS: tuple[tuple[int, ...], ...] = ((), (-2, -1))
"""The self-ensemble of a reconstructor of 3-D (ky, kz) planes: the scan as measured and
mirrored through its centre (both axes, :func:`physics.fft.reflect_centred`), the two
outputs mirrored back and averaged. Chosen on the validation volumes (8 coils, 30 dB,
Poisson-disc; docs/results.md, "3-D acquisitions (issue 37): fifth part"): +0.05 to
+0.30 dB and a higher SSIM at twice the learned seconds, where four mirrors gained
0.05-0.1 dB more at four times. 2-D slices keep one pass (their speed targets)."""


@lru_cache(maxsize=8)
def load_generator(path: str) -> torch.nn.Module:
    """Build the generator described by the card beside ``path`` (a shipped ``.pt``), or
    by the config inside a trainer's ``best.pt`` / ``checkpoint.pt``, and load its weights."""
    weights = Path(path)
    state = load_state(weights)
    if "generator" in state and isinstance(state.get("config"), dict):
        model, options, state = state["config"]["model"], state["config"].get("generator", {}), state["generator"]
    else:
        card_path = weights.with_suffix(".json")
        if not card_path.is_file():
            raise FileNotFoundError(f"{weights}: no card {card_path.name} beside it (and not a trainer checkpoint)")
        card = json.loads(card_path.read_text())
        model, options = card["model"], card["generator"]
    generator = get_spec(model).build_generator(dict(options))
    generator.load_state_dict(state)
    generator.eval()
    # Convolutions with channels-last weights run in channels-last (oneDNN's native
    # layout on CPU): the same images to 1e-6, 0 to 30 % faster per learned slice.
    return generator.to(memory_format=torch.channels_last)


class _Learned(Reconstructor):
    model = ""
    family = "learned"

    def __init__(self, weights: str | None = None, device: str | None = None, planes: bool = False,
                 mirrors: tuple[tuple[int, ...], ...] | None = None):
        """``device``: where the generator computes (None: the k-space's device, which
        :class:`recon.device.OnDevice` sets). ``planes``: the data are the (ky, kz) planes of a 3-D acquisition, so the
        weights trained for them (cards with ``"sampling": "plane"``) are preferred and
        the output is the self-ensemble over :data:`PLANE_MIRRORS`. ``mirrors``: the axes
        mirrored in each pass of a self-ensemble (``((),)``: one pass as measured; None:
        ``PLANE_MIRRORS`` for planes, else one pass)."""
        self.weights = weights
        self.device = None if device is None else torch.device(device)
        self.planes = planes
        self.mirrors = tuple(tuple(axes) for axes in (mirrors if mirrors is not None
                                                      else PLANE_MIRRORS if planes else ((),)))
        if not self.mirrors or any(axis not in (-2, -1) for axes in self.mirrors for axis in axes):
            raise ValueError(f"mirrors: a tuple of passes, each a tuple of axes from -2 and -1; got {self.mirrors!r}")

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if not shipped_weights(cls.model):
            return f"no shipped weights for {cls.model} in {WEIGHTS_DIR} (pass weights=PATH)"
        return None

    def why_unavailable(self) -> str | None:
        if self.weights is not None:
            return None if Path(self.weights).is_file() else f"no weights file {self.weights}"
        return self.unavailable_reason()

    def _choose(self, ratio: float, sampling: str | None = None) -> Path:
        """The weights for a mask of this ratio; ``sampling`` None: ``plane`` for a
        reconstructor of 3-D planes, else ``grid``."""
        if self.weights is not None:
            return Path(self.weights)
        sampling = sampling or ("plane" if self.planes else "grid")
        options = shipped_weights(self.model, sampling=sampling)  # the cards are read once per call
        nearest = nearest_of(options, self.model, ratio)
        if ratio_distance(ratio, options[nearest]) > 0.02:
            low, high = options[nearest]
            trained = f"{low:.2f}" if low == high else f"{low:.2f}-{high:.2f}"
            warnings.warn(
                f"{self.model}: mask ratio {ratio:.3f} differs from the nearest trained ratio {trained}; "
                "quality may be lower than the model card says",
                stacklevel=3,
            )
        return nearest

    def weights_for(self, ratio: float) -> Path:
        """The weights file this reconstructor uses on a Cartesian mask of ``ratio``."""
        return self._choose(ratio)

    def reconstruct(self, kspace, mask, coil_maps=None):
        if self.superres_only:
            central_block(mask)  # a clear error for a mask that is not a central block
        sampling = None if getattr(mask, "coords", None) is None else "trajectory"
        device = self.device or kspace.device
        generator = load_generator(str(self._choose(sampling_ratio(mask), sampling))).to(device)
        gain = None
        if coil_maps is not None and sampling is None:  # noise never prewhitened: whitened as trained
            whitened = whiten_from_band(kspace, mask, coil_maps)
            if whitened is not None:
                kspace, coil_maps, gain = whitened
        if coil_maps is not None:  # the models train on at most VIRTUAL_COILS (compressed) coils
            kspace, coil_maps = compress_coils(kspace, coil_maps, VIRTUAL_COILS)
        image = self._passes(generator, kspace, mask, coil_maps, sampling, device).to(kspace.device)
        if gain is None:
            return image
        gain = gain.to(image.device)  # the whitened maps' image is gain x: back to x
        return torch.where(gain > 0, image / gain.clamp_min(1e-12), torch.zeros_like(image))

    def _passes(self, generator: torch.nn.Module, kspace, mask, coil_maps, sampling: str | None, device: torch.device):
        if sampling == "trajectory" or self.superres_only or self.mirrors == ((),):
            return self._one_pass(generator, kspace, mask, coil_maps, device)
        mask = torch.as_tensor(mask)
        outputs = []
        for axes in self.mirrors:  # the scan mirrored is the mirrored object's scan (reflect_centred)
            mirrored = [None if x is None else reflect_centred(x, axes) for x in (kspace, mask, coil_maps)]
            outputs.append(reflect_centred(self._one_pass(generator, *mirrored, device), axes))
        first = outputs[0]
        aligned = [out * torch.exp(-1j * torch.angle((out * first.conj()).sum(dim=(-2, -1), keepdim=True)))
                   for out in outputs]  # one global phase per image (the outputs agree on it to rounding)
        return torch.stack(aligned).mean(0)

    def _one_pass(self, generator: torch.nn.Module, kspace, mask, coil_maps, device: torch.device):
        operator = sampling_operator(mask, coil_maps).to(device)
        with torch.no_grad():
            return generator(kspace.to(device), operator)


def register_model(spec: GanSpec) -> type | None:
    """Register a trainable model: its spec for the shared trainer (``recon train --model
    NAME``) and its reconstructor in the method registry (``recon.get(NAME)``), which
    uses the shipped weights whose card names the model, or ``weights=PATH`` (a shipped
    ``.pt`` or a trainer's ``best.pt``). Returns the reconstructor class (None for a
    through-plane model, ``trained_masks="slices"``, which ``recon sr`` runs)."""
    if spec.name in SPECS:
        raise ValueError(f"model {spec.name!r} is already registered")
    SPECS[spec.name] = spec
    if spec.trained_masks == "slices":  # through-plane SR: recon sr, not a k-space reconstructor
        return None
    reconstructor = type(
        "".join(part.capitalize() for part in spec.name.replace("_", "-").split("-")),
        (_Learned,),
        {"__doc__": f"{spec.description} (learned, registered by recon.models.learned.register_model).",
         "description": spec.description, "model": spec.name, "superres_only": spec.trained_masks == "lowres"},
    )
    return register(spec.name)(reconstructor)


def unregister_model(name: str) -> None:
    """Remove a model registered with :func:`register_model` (tests use it to leave the
    registries as they found them)."""
    from recon import registry

    SPECS.pop(name, None)
    registry._REGISTRY.pop(name, None)
