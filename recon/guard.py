"""The guard: is a learned output estimably worse than the best compressed sensing?

With no reference, :mod:`recon.holdout` gives every method an estimated PSNR and its
spread over the hold-out folds. A learned method is *flagged* on a slice when its
estimated PSNR is below the best CS method's (the CS method with the highest estimated
PSNR) by more than the spread of the two estimates, ``sqrt(s_learned^2 + s_cs^2)``,
plus :data:`MARGIN_DB`. ``recon run`` and ``recon batch`` record the verdict, and with
``--guard`` they write the best CS output instead of a flagged one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MARGIN_DB = 0.0
"""Extra dB the gap must exceed beyond the estimates' spread (0: the spread alone)."""


@dataclass(frozen=True)
class Verdict:
    """The guard's verdict on one learned output.

    Attributes
    ----------
    flagged : bool
        The learned output is estimably worse than ``reference``.
    reference : str or None
        The best CS method by estimated PSNR (None when there is none).
    gap_db : float
        ``estimated PSNR(reference) - estimated PSNR(learned)``; positive when the
        learned output looks worse.
    threshold_db : float
        The gap above which it is flagged.
    """

    flagged: bool
    reference: str | None
    gap_db: float
    threshold_db: float

    def to_dict(self) -> dict:
        return {"guard_flagged": self.flagged, "guard_reference": self.reference,
                "guard_gap_db": self.gap_db, "guard_threshold_db": self.threshold_db}


def compare(psnr: float, spread: float, cs: list[tuple[str, float, float]], margin_db: float = MARGIN_DB) -> Verdict:
    """Compare a learned method's estimate with the CS methods' ``(name, psnr, spread)``."""
    if not cs:
        return Verdict(False, None, float("nan"), float("nan"))
    name, best_psnr, best_spread = max(cs, key=lambda item: item[1])
    gap = best_psnr - psnr
    threshold = math.sqrt(spread**2 + best_spread**2) + margin_db
    return Verdict(bool(gap > threshold), name, float(gap), float(threshold))
