"""The calibration of the hold-out error estimate: one straight line in log-log space
per method (or family) and mask kind, fitted on validation subjects
(``python -m benchmarks.trust --calibrate``) and shipped as
``recon/weights/holdout-calibration.json``; and the PSNR an estimated NMSE gives."""

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
    """

    nmse: float
    psnr: float
    psnr_spread: float
    nmse_raw: float
    fold_nmse: list[float] = field(default_factory=list)
    calibration: str = "identity"
    psnr_low: float = math.nan
    psnr_high: float = math.nan

    def to_dict(self) -> dict:
        return {"estimated_nmse": self.nmse, "estimated_psnr": self.psnr, "estimated_psnr_spread": self.psnr_spread,
                "estimated_nmse_raw": self.nmse_raw, "estimated_fold_nmse": list(self.fold_nmse),
                "estimate_calibration": self.calibration,
                "estimated_psnr_low": self.psnr_low if math.isfinite(self.psnr_low) else None,
                "estimated_psnr_high": self.psnr_high if math.isfinite(self.psnr_high) else None}


def load_calibration(path: Path | None = None) -> dict:
    """The shipped calibration lines (``{"lines": {key: [a, b]}, ...}``)."""
    global _calibration_cache
    if path is not None:
        return json.loads(Path(path).read_text())
    if _calibration_cache is None:
        _calibration_cache = json.loads(CALIBRATION_FILE.read_text()) if CALIBRATION_FILE.is_file() else {"lines": {}}
    return _calibration_cache


def calibrate(nmse_raw: float, method: str, family: str, kind: int | str, calibration: dict | None = None
              ) -> tuple[float, str]:
    """Map a raw estimate through the method's calibration line for the mask's ``kind``
    (:func:`mask_kind`; a number means ``Nd``); returns the calibrated NMSE and the key
    of the line used."""
    lines = (calibration if calibration is not None else load_calibration()).get("lines", {})
    kind = f"{kind}d" if isinstance(kind, int) else kind
    keys = [f"{method}:{kind}", f"{family}:{kind}"]
    if kind.endswith("-nocal"):  # without a line of its own, the kind with a calibration block
        keys += [f"{method}:{kind[:-6]}", f"{family}:{kind[:-6]}"]
    for key in keys:
        if key in lines:
            a, b = lines[key]
            return float(10 ** (a + b * math.log10(max(nmse_raw, 1e-12)))), key
    return float(nmse_raw), "identity"


def interval_for(key: str, calibration: dict | None = None) -> tuple[float, float]:
    """``(low, high)`` dB offsets of the calibration line ``key``'s stated interval (NaN
    when the calibration has none)."""
    intervals = (calibration if calibration is not None else load_calibration()).get("interval_db", {})
    low, high = intervals.get(key, (math.nan, math.nan))
    return float(low), float(high)


def psnr_for(nmse: float, peak: float, mean_energy: float) -> float:
    """PSNR that an NMSE gives for an image of this peak and mean energy:
    ``10 log10(peak^2 / (nmse * mean|x|^2))``."""
    return float(10 * math.log10(peak**2 / max(nmse * mean_energy, 1e-30)))


def psnr_from_nmse(nmse: float, image: torch.Tensor, data_range: float | None = None) -> float:
    """:func:`psnr_for` an image (peak: ``data_range``, else the image's maximum)."""
    magnitude = image.abs()
    peak = float(magnitude.max()) if data_range is None else float(data_range)
    return psnr_for(nmse, peak, float(magnitude.pow(2).mean()))
