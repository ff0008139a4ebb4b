"""The calibration of the hold-out error estimate, fitted on validation subjects
(``python -m benchmarks.trust --calibrate``) and shipped as
``recon/weights/holdout-calibration.json``; and the PSNR an estimated NMSE gives.

Two kinds of entry, tried in this order:

- **offsets** (issue 36), per method family, mask family (``cartesian``,
  ``equispaced``, ``vd2d:nocal``, ...) and coil group (``1c`` single coil, ``mc``
  multi-coil), then per family and mask family: the median of true − raw PSNR (dB) on the
  validation records, added to the raw estimate, and the 10th and 90th percentiles of
  true − calibrated PSNR, the stated 80 % interval, each validation subject's taken
  against the offset of the others (leave one subject out: the interval then holds the
  shift between subjects, which a user's data will have; with the plain residuals it
  held 53–65 % of the test subjects' records, with these 67–81 %). The raw hold-out estimate's bias
  depends first on how the mask's geometry lets a fold imitate the unmeasured k-space
  (on 2-D masks it stays within 1–2 dB across subjects), but also on the subject: for
  the learned family on 1-D masks it differed by up to 8 dB between validation and test
  subjects, and on equispaced masks by up to 18 dB (docs/results.md, issue 36). An offset
  whose validation sources disagree by more than 3 dB is not fitted, so the kind's line
  serves there;
- **lines**, per method (or family) and mask kind (``1d``, ``2d``, their ``-nocal``
  variants, ``block``): ``log10 NMSE_true = a + b log10 NMSE_raw``, for masks whose
  family is unknown (a mask read from a file) and for super-resolution.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from recon.weights import WEIGHTS_DIR

CALIBRATION_FILE = WEIGHTS_DIR / "holdout-calibration.json"
_calibration_cache: dict | None = None


@dataclass
class ErrorEstimate:
    """A method's estimated error on one slice.

    Attributes
    ----------
    nmse, psnr : float
        Calibrated estimates (NMSE = ||x - x_true||^2 / ||x_true||^2; PSNR with the
        data range given, else the image's maximum).
    psnr_spread : float
        Standard deviation of the per-fold PSNR estimates (dB).
    nmse_raw : float
        The uncalibrated estimate (mean over folds).
    fold_nmse : list of float
        Raw estimate of every fold.
    calibration : str
        Which calibration line was used (``method:dims``, ``family:dims`` or
        ``identity``).
    psnr_low, psnr_high : float
        The interval that held the true PSNR on 80 % of the validation slices of this
        line (its 10th and 90th percentiles of true - estimated); NaN without one.
    untrusted : str
        Why the estimate cannot judge this slice although it has a calibration (more
        coils than :data:`CHECKED_COILS`); empty when it can. The guard then falls back.
    """

    nmse: float
    psnr: float
    psnr_spread: float
    nmse_raw: float
    fold_nmse: list[float] = field(default_factory=list)
    calibration: str = "identity"
    psnr_low: float = math.nan
    psnr_high: float = math.nan
    untrusted: str = ""

    def to_dict(self) -> dict:
        return {"estimated_nmse": self.nmse, "estimated_psnr": self.psnr, "estimated_psnr_spread": self.psnr_spread,
                "estimated_nmse_raw": self.nmse_raw, "estimated_fold_nmse": list(self.fold_nmse),
                "estimate_calibration": self.calibration,
                "estimated_psnr_low": self.psnr_low if math.isfinite(self.psnr_low) else None,
                "estimated_psnr_high": self.psnr_high if math.isfinite(self.psnr_high) else None,
                **({"estimate_untrusted": self.untrusted} if self.untrusted else {})}


def load_calibration(path: Path | None = None) -> dict:
    """The shipped calibration lines (``{"lines": {key: [a, b]}, ...}``)."""
    global _calibration_cache
    if path is not None:
        return json.loads(Path(path).read_text())
    if _calibration_cache is None:
        _calibration_cache = json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.is_file() else {"lines": {}}
    return _calibration_cache


CHECKED_COILS = 32
"""The most coils the estimate's calibration was checked on: its multi-coil entries were
fitted on validation records with 8 coils (CG-SENSE's with 8 and 16) and held on the test
subjects with 2, 4, 8, 16 and 32 (at 32: intervals 87 %, mean |error| 1.65 dB, the guard 11/13
losses and 2/50 false fallbacks, as at 16: 87 %, 1.88 dB; docs/results.md, issue 36, tenth
part). Data with more coils (a 64-channel array) gets an estimate, from the multi-coil
entries, but no interval, and the guard falls back: nothing has measured whether those
entries hold there (issue 36: the guard never passes a learned output it cannot judge).
``recon batch --virtual-coils 32`` compresses such data into the checked range."""


def unchecked_coils(coils: int) -> str:
    """Why an estimate on ``coils`` coils cannot be trusted (``""`` when it can)."""
    if coils <= CHECKED_COILS:
        return ""
    return (f"{coils} coils, more than the {CHECKED_COILS} the estimate was checked on; "
            f"recon batch --virtual-coils {CHECKED_COILS} compresses them")


def coil_group(coils: int) -> str:
    """``1c`` for single-coil data, ``mc`` for multi-coil: the calibration's coil groups."""
    return "1c" if coils <= 1 else "mc"


REGIMES = ("clean", "noisy", "measured")
"""What the data and its reference are: ``clean``, k-space simulated without noise from an
image (the image is the truth); ``noisy``, simulated with acquisition noise and judged
against the noise-free image (``recon run --noise-snr``, a 3-D run); ``measured``, a
scanner's k-space, judged against the full scan's own image (noise and all, fastMRI's
convention). The noise moves the raw estimate's bias by several dB, so the last two have
offsets of their own (fitted on validation subjects with noise added) before the
``clean`` ones."""


def regime_of(key: str) -> str:
    """The regime of a calibration entry (``cs:poisson:mc-measured`` -> ``measured``;
    ``clean`` for an entry of no regime of its own)."""
    suffix = key.rsplit("-", 1)[-1]
    return suffix if suffix in REGIMES and key.endswith(f"-{suffix}") else "clean"


PLANES = "@planes"
"""The suffix of a mask family applied to the (ky, kz) planes of a 3-D acquisition
(``poisson@planes``, :func:`on_planes`): its offsets are fitted on such planes
(``benchmarks.trust --planes``), whose hold-out is biased unlike a 2-D slice's (an
elliptical mask, maps from a (ky, kz) block; on the sample's 3-D default the slice
offsets made the learned estimates 1.8-3.8 dB high), and tried before the slice entries."""


def on_planes(mask_type: str | None) -> str:
    """``mask_type`` as the family of a 3-D acquisition's (ky, kz) planes (:data:`PLANES`;
    a mask read from the data, None, becomes ``@planes``: its kind's plane entry)."""
    mask_type = mask_type or ""
    return mask_type if mask_type.endswith(PLANES) else f"{mask_type}{PLANES}"


def offset_keys(family: str, mask_type: str | None, coils: int, kind: str = "", regime: str = "clean") -> list[str]:
    """The offset entries that may calibrate an estimate, most specific first. The mask
    family is ``mask_type``'s (``vd2d:nocal`` -> ``vd2d``), with ``:nocal`` when the mask
    has no calibration block (``kind`` ending in ``-nocal``, whatever the family's
    default centre). A ``regime`` other than ``clean`` (:data:`REGIMES`) tries its own
    entries first: the mask family's (``cs:poisson:mc-noisy``), then the mask kind's
    (``cs:2d:mc-noisy``), which also serves a mask read from a file (no family known).
    A family on 3-D planes (``poisson@planes``) tries its planes' own entries, the mask
    family's then the kind's (``cs:poisson@planes:mc-noisy``, ``cs:2d@planes:mc-noisy``,
    which also serves a mask read from the data, ``@planes``), then the slice entries."""
    if mask_type and mask_type.endswith(PLANES):
        base = mask_type[: -len(PLANES)] or None
        group = f"{coil_group(coils)}-{regime}"
        name = (base or "").split(":")[0] + (":nocal" if kind.endswith("-nocal") else "")
        planes = ([f"{family}:{name}{PLANES}:{group}"] if base else []) + [f"{family}:{kind}{PLANES}:{group}"]
        return [*planes, *offset_keys(family, base, coils, kind, regime)]
    group = coil_group(coils)
    own = [] if regime == "clean" else [f"{family}:{kind}:{group}-{regime}"] if kind else []
    if not mask_type:
        return own
    name = mask_type.split(":")[0] + (":nocal" if kind.endswith("-nocal") else "")
    keys = [f"{family}:{name}:{group}", f"{family}:{name}"]
    return keys if regime == "clean" else [f"{family}:{name}:{group}-{regime}", *own, *keys]


def calibrate(nmse_raw: float, method: str, family: str, kind: int | str, calibration: dict | None = None,
              mask_type: str | None = None, coils: int = 1, regime: str = "clean") -> tuple[float, str]:
    """Map a raw estimate through the calibration: the offset of the method (an entry of
    its own, ``cg-sense:cartesian:mc``, fitted by ``benchmarks.trust --method-offsets``) or
    else of its family (a planes or regime entry of the family before a clean one of the
    method), per mask family (``mask_type``, e.g. ``cartesian`` or
    ``vd2d:nocal``) and coil group when the calibration has one, else the line of the
    method (or family) for the mask's
    ``kind`` (:func:`mask_kind`; a number means ``Nd``); ``regime``: :data:`REGIMES`.
    Returns the calibrated NMSE and the key of the entry used."""
    calibration = calibration if calibration is not None else load_calibration()
    kind = f"{kind}d" if isinstance(kind, int) else kind
    offsets = calibration.get("offsets", {})
    # the data's condition first (a 3-D acquisition's planes, then the regime's own entries,
    # then the clean ones), and within each a method's own entries (``cg-sense:cartesian:mc``)
    # before its family's: a method's clean entry never takes noisy data from its family's
    # noisy one
    keys = [*offset_keys(method, mask_type, coils, kind, regime), *offset_keys(family, mask_type, coils, kind, regime)]
    for key in sorted(keys, key=_condition_tier):
        if key in offsets:  # + offset dB of PSNR = NMSE / 10^(offset / 10)
            return float(nmse_raw * 10 ** (-offsets[key]["offset_db"] / 10)), key
    lines = calibration.get("lines", {})
    keys = [f"{method}:{kind}", f"{family}:{kind}"]
    if kind.endswith("-nocal"):  # without a line of its own, the kind with a calibration block
        keys += [f"{method}:{kind[:-6]}", f"{family}:{kind[:-6]}"]
    for key in keys:
        if key in lines:
            a, b = lines[key]
            return float(10 ** (a + b * math.log10(max(nmse_raw, 1e-12)))), key
    return float(nmse_raw), "identity"


def _condition_tier(key: str) -> int:
    """0 for an entry of a 3-D acquisition's planes, 1 for one of a regime of its own
    (noisy, measured), 2 for a clean slice entry: :func:`calibrate`'s order."""
    return 0 if PLANES in key else 1 if regime_of(key) != "clean" else 2


def interval_for(key: str, calibration: dict | None = None) -> tuple[float, float]:
    """``(low, high)`` dB offsets, from the calibrated estimate, of the entry ``key``'s
    stated interval (NaN when the calibration has none)."""
    calibration = calibration if calibration is not None else load_calibration()
    if key in calibration.get("offsets", {}):
        low, high = calibration["offsets"][key]["interval_db"]
        return float(low), float(high)
    low, high = calibration.get("interval_db", {}).get(key, (math.nan, math.nan))
    return float(low), float(high)


def checked_interval(key: str, coils: int, calibration: dict | None = None) -> tuple[float, float, str]:
    """:func:`interval_for` the entry ``key`` on data of ``coils`` coils, and why the estimate
    cannot be trusted there (:func:`unchecked_coils`): then no interval (NaN), as none was
    checked."""
    untrusted = unchecked_coils(coils)
    return (math.nan, math.nan, untrusted) if untrusted else (*interval_for(key, calibration), "")


def psnr_for(nmse: float, peak: float, mean_energy: float) -> float:
    """PSNR that an NMSE gives for an image of this peak and mean energy:
    ``10 log10(peak^2 / (nmse * mean|x|^2))``."""
    return float(10 * math.log10(peak**2 / max(nmse * mean_energy, 1e-30)))


def psnr_from_nmse(nmse: float, image: torch.Tensor, data_range: float | None = None) -> float:
    """:func:`psnr_for` an image (peak: ``data_range``, else the image's maximum)."""
    magnitude = image.abs()
    peak = float(magnitude.max()) if data_range is None else float(data_range)
    return psnr_for(nmse, peak, float(magnitude.pow(2).mean()))
