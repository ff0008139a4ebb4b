"""Fitting the hold-out estimate's calibration from ``benchmarks.trust`` records
(``--calibrate``): the lines per method family and mask kind, the offsets per method
family, mask family, coil group and regime with their leave-one-subject-out intervals,
the guard's lead per regime, and applying a calibration to records."""

from __future__ import annotations

import numpy as np

from pipelines.common.evaluation import FALLBACK_FAMILIES
from recon.trust import holdout
from recon.trust.calibration import PLANES, coil_group, offset_keys, psnr_for

FAMILIES = ("baseline", "cs", "learned")
"""The method families a ``--calibrate`` fit refits; entries of a method of its own
(:func:`fit_method_offsets`) are kept by :func:`merge`."""

INTERVAL = (0.1, 0.9)
"""Quantiles of (true - estimated PSNR) on the validation records that bound the stated
interval: it should hold the truth on 80 % of slices."""



def _kind(record: dict) -> str:
    """The record's mask kind (``1d``, ``2d`` or ``block``; records older than the
    super-resolution hold-out have only ``dimensions``)."""
    kind = record.get("kind") or f"{record['dimensions']}d"
    if record.get("mask_type", "").endswith(":nocal") and kind != "block" and not kind.endswith("-nocal"):
        kind += "-nocal"  # records measured before mask_kind told masks without a calibration block apart
    return kind


def fit(records: list[dict], fixed: dict | None = None, folds_used: int | None = None) -> dict:
    """Calibration lines per ``family:kind`` (a line of ``fixed`` is kept as it is), and
    for each the interval of true - estimated PSNR that held :data:`INTERVAL` of the
    records, each source's records against the line fitted on the others when they can
    fit one."""
    groups: dict[str, list[tuple[float, float]]] = {}
    sources: dict[str, list[str]] = {}
    apply(records, {"lines": {}}, folds_used)
    for r in (r for r in records if r.get("regime", "clean") == "clean"):  # noisy data: offsets of their own only
        point = (np.log10(max(np.mean(r["fold_nmse"]), 1e-12)), np.log10(max(r["nmse"], 1e-12)))
        groups.setdefault(f"{r['family']}:{_kind(r)}", []).append(point)
        sources.setdefault(f"{r['family']}:{_kind(r)}", []).append(r["source"])
    lines, residuals, intervals = {}, {}, {}
    for key, points in sorted(groups.items()):
        x, y = np.array(points).T
        if key in (fixed or {}):
            a, b = fixed[key]
        elif len(points) < 6 or np.ptp(x) < 0.3:
            continue
        else:
            b, a = np.polyfit(x, y, 1)
        lines[key] = [float(a), float(b)]
        residuals[key] = float(np.std(y - (a + b * x)))
        # true - estimated PSNR = -10 (log10 NMSE_true - line), each source's against the
        # line of the other sources (when the line was fitted here and they can fit one)
        source = np.array(sources[key])
        gap = -10 * (y - (a + b * x))
        if key not in (fixed or {}):
            for name in set(sources[key]):
                rest = source != name
                if rest.sum() >= 6 and np.ptp(x[rest]) >= 0.3:
                    b_rest, a_rest = np.polyfit(x[rest], y[rest], 1)
                    gap[~rest] = -10 * (y[~rest] - (a_rest + b_rest * x[~rest]))
        intervals[key] = _interval(gap)
    fitted = {"lines": lines, "residual_std_log10": residuals, "interval_db": intervals,
              "interval_quantiles": list(INTERVAL), "points": {k: len(v) for k, v in groups.items()},
              "offsets": fit_offsets(records, folds_used), **({"folds_used": folds_used} if folds_used else {})}
    if leads := guard_leads(records, fitted, folds_used):
        fitted["guard_lead_db"] = leads
    return fitted


GUARD_LEAD_QUANTILE = 0.84
"""The rule of :data:`recon.trust.guard.REQUIRED_LEAD_DB`: the lead a learned output's
estimate must show is how far the estimate overstated the learned lead over the best CS
on this share of the validation slices (one-sided 1 sigma)."""


OWN_LEAD_REGIMES = ("measured", "noisy@planes", "measured@planes")
"""The regimes whose guard takes the lead its own validation records give
(:func:`recon.trust.guard.lead_regime`). ``noisy`` 2-D slices were given their own too
(3.24 dB) and the held-out test subjects with noise showed it too cautious: it fell back
on 54 % of the slices where the learned output was better (90/166); so noisy slices keep
the clean lead (docs/results.md, issue 36, fourth part). The (ky, kz) planes of a 3-D
acquisition (``noisy@planes``), calibrated on planes, have an estimate whose learned lead
errs by 0.9 dB (sd) about -0.5 dB on the validation volumes: the clean 1.5 dB fell back on
11 of their 15 volumes where the learned output was better; judged against the full scan
(``measured@planes``), its lead is its own as on measured slices (fifth part)."""


def guard_leads(records: list[dict], fitted: dict, folds_used: int | None = None) -> dict[str, float]:
    """Per regime of :data:`OWN_LEAD_REGIMES` among the records, the guard's required lead:
    the :data:`GUARD_LEAD_QUANTILE` of (estimated - true) lead of each learned method over
    the CS method with the best estimate, on masks with a calibration block, the estimates
    calibrated by ``fitted``. Other data keep :data:`recon.trust.guard.REQUIRED_LEAD_DB`."""
    def regime(r: dict) -> str:
        return r.get("regime", "clean") + (PLANES if r.get("mask_type", "").endswith(PLANES) else "")

    noisy = [r for r in records if regime(r) in OWN_LEAD_REGIMES and not _kind(r).endswith("-nocal")]
    apply(noisy, fitted, folds_used)
    slices: dict[tuple, list[dict]] = {}
    for r in noisy:
        slices.setdefault((r["source"], r["slice"], r["mask"], r["mask_type"], r["coils"], regime(r)), []).append(r)
    overstated: dict[str, list[float]] = {}
    for key, rows in slices.items():
        cs = [r for r in rows if r["family"] in FALLBACK_FAMILIES]
        if not cs:
            continue
        best = max(cs, key=lambda r: r["est_psnr"])
        for r in (r for r in rows if r["family"] == "learned"):
            overstated.setdefault(key[5], []).append((r["est_psnr"] - best["est_psnr"]) - (r["psnr"] - best["psnr"]))
    return {regime: round(float(np.quantile(values, GUARD_LEAD_QUANTILE)), 2)
            for regime, values in sorted(overstated.items()) if len(values) >= OFFSET_MIN_POINTS}


OFFSET_MIN_POINTS = 8
"""Records an offset entry needs (fewer: the next, broader entry, or the kind's line)."""
OFFSET_MAX_SPREAD_DB = 3.0
"""An offset entry whose validation sources disagree by more than this (the range of their
median true - raw PSNR) is left out: a shift that differs that much between subjects does
not carry to others (equispaced masks: the hold-out cannot see their aliasing, and the
shift ran from -8 to +7 dB between subjects), so the kind's line serves instead."""


def fit_offsets(records: list[dict], folds_used: int | None = None) -> dict:
    """Offset entries (:mod:`recon.trust.calibration`): per method family, mask family
    and coil group, and per family and mask family, the median of true - raw PSNR and
    the interval (10th and 90th percentiles, taken outward) of true - calibrated PSNR,
    each source's gaps taken against the median of the other sources' (leave one source
    out: the interval must hold for a subject the fit never saw); none where the
    sources' medians differ by more than :data:`OFFSET_MAX_SPREAD_DB`."""
    apply(records, {"lines": {}}, folds_used)  # the raw estimates
    gaps: dict[str, list[float]] = {}
    by_source: dict[str, dict[str, list[float]]] = {}
    for r in records:
        raw = psnr_for(float(np.mean(r["fold_nmse"])), r["data_range"], r["mean_energy"])
        keys = offset_keys(r["family"], r.get("mask_type"), r.get("coils", 1), _kind(r), r.get("regime", "clean"))
        if r.get("mask_type", "").endswith(PLANES):  # a 3-D acquisition's planes fit their own entries alone
            keys = [key for key in keys if PLANES in key]
        regime = r.get("regime", "clean")
        for key in keys if regime == "clean" else [k for k in keys if k.endswith(f"-{regime}")]:  # noisy: their own
            gaps.setdefault(key, []).append(r["psnr"] - raw)
            by_source.setdefault(key, {}).setdefault(r["source"], []).append(r["psnr"] - raw)
    offsets = {}
    for key, values in sorted(gaps.items()):
        medians = {name: float(np.median(v)) for name, v in by_source[key].items()}
        if len(values) < OFFSET_MIN_POINTS or max(medians.values()) - min(medians.values()) > OFFSET_MAX_SPREAD_DB:
            continue
        median = float(np.median(values))
        # each source's gaps against the offset of the others: the interval then holds a
        # subject whose shift the fit never saw, as a user's will be
        remaining = [np.array(v) - (float(np.median(np.concatenate([w for other, w in by_source[key].items() if other != name])))
                                    if len(medians) > 1 else median) for name, v in by_source[key].items()]
        offsets[key] = {"offset_db": median, "interval_db": _interval(np.concatenate(remaining)), "points": len(values),
                        "sources": len(medians)}
    return offsets


def _interval(gaps: np.ndarray) -> list[float]:
    """The :data:`INTERVAL` quantiles of true - estimated PSNR, taken outward."""
    return [float(np.quantile(gaps, INTERVAL[0], method="lower")), float(np.quantile(gaps, INTERVAL[1], method="higher"))]


def merge(earlier: dict, fitted: dict, kinds: set[str], mask_families: set[str] = frozenset()) -> dict:
    """``fitted`` with the lines (and their statistics) of ``earlier`` for the mask kinds
    outside ``kinds`` (those of the records ``fitted`` came from), so a calibration on
    super-resolution records alone keeps the 1-D and 2-D lines, and the offsets of
    ``earlier`` for the mask families outside ``mask_families`` (those of the records: an
    offset the new fit left out, its sources disagreeing, stays out); ``fitted_on``
    records both fits."""
    names = ("lines", "residual_std_log10", "interval_db", "points")
    merged: dict = {name: dict(fitted.get(name, {})) for name in names}
    merged["interval_quantiles"] = fitted.get("interval_quantiles", list(INTERVAL))
    for name in names:
        for key, value in earlier.get(name, {}).items():
            if key.split(":")[1] not in kinds:
                merged[name][key] = value
    # offsets: the new fit's, and the earlier ones of the mask families its records lack
    kept_offsets = {key: value for key, value in earlier.get("offsets", {}).items()
                    if (key.split(":")[1] not in mask_families or key.split(":")[0] not in FAMILIES)
                    and "offset_from" not in value}  # a method's own stay; one on its family's offset is redrawn
    merged["offsets"] = {**kept_offsets, **fitted.get("offsets", {})}
    kept = sorted({key.split(":")[1] for key in earlier.get("lines", {})} - kinds)
    if "guard_lead_db" in fitted or "guard_lead_db" in earlier:
        merged["guard_lead_db"] = {**earlier.get("guard_lead_db", {}), **fitted.get("guard_lead_db", {})}
    merged["fitted_on"] = fitted.get("fitted_on", "")
    if kept:
        merged["fitted_on"] += f"; lines {', '.join(kept)} from the earlier fit ({earlier.get('fitted_on', 'unknown')})"
    return merged


def apply(records: list[dict], calibration: dict, folds_used: int | None = None) -> None:
    """Add the calibrated estimates (``est_nmse``, ``est_psnr``, ``est_spread``) to records
    (recomputing the raw per-fold estimates from the stored residuals; ``folds_used``:
    from the first that many folds only, as a run that reconstructs only those would)."""
    for r in records:
        r["fold_nmse"] = holdout.raw_estimates([np.array(f) for f in r["residuals"][:folds_used]], np.array(r["unmeasured"]), r["energy"],
                                               r.get("spectrum"), r.get("inside", 0.0))
        estimate = holdout.summarise_folds(r["fold_nmse"], r["method"], r["family"], _kind(r), r["data_range"],
                                           r["mean_energy"], calibration, r.get("mask_type"), r.get("coils", 1),
                                           r.get("regime", "clean"))
        r["est_nmse"], r["est_psnr"], r["est_spread"] = estimate.nmse, estimate.psnr, estimate.psnr_spread
        r["est_calibration"] = estimate.calibration
        r["est_low"], r["est_high"] = estimate.psnr_low, estimate.psnr_high
        r["true_psnr_like_est"] = psnr_for(r["nmse"], r["data_range"], r["mean_energy"])


DRAWN_KINDS = ("1d", "1d-nocal", "2d")
"""The mask kinds whose stated intervals :func:`draw_intervals` takes from records with a
mask drawn for every slice: on 1-D masks the hold-out's bias follows the draw of the few
lines outside the centre (docs/results.md, issue 36, sixth and seventh parts); on 2-D masks
with a calibration block it moves less, but the one-draw intervals held 72 % of the clean
test records and CG-SENSE's Poisson-disc estimate, calibrated by the ``cs`` family's entry,
moved by up to 10 dB between draws (tenth part). Masks without a calibration block
(``2d-nocal``) have no validation records drawn per slice."""


def estimated_maps(record: dict) -> bool:
    """Whether the record's methods got ESPIRiT maps estimated from the data
    (``benchmarks.trust --espirit``), as ``recon run`` and ``recon batch`` give them on
    multi-coil data, rather than the simulation's own maps."""
    return record.get("maps") == "espirit"


def drawn_per_slice(record: dict) -> bool:
    """Whether the record's mask was drawn for its slice (``benchmarks.trust
    --mask-per-slice``: ``mask_seed`` is ``source:slice``) rather than once for its source
    (``mask_seed`` is the source's name; records older than ``mask_seed`` were drawn so)."""
    return record.get("mask_seed", record["source"]) != record["source"]


DRAWN_REGIMES = ("clean", "noisy", "measured")
"""The regimes :func:`draw_intervals` serves: all of them."""


OWN_INTERVAL_METHODS = ("cg-sense",)
"""Methods whose records drawn per slice widen an interval of their own where they borrow
their family's offset (:func:`draw_intervals`): CG-SENSE, which has grid offsets of its own
(:func:`fit_method_offsets`) but none for clean Poisson-disc, gaussian1d or masks without a
calibration block, where the ``cs`` family's offset read it 2.4 to 12 dB low between draws
and widened the family's interval for cs-l1 and cs-tv too (``cs:poisson:mc`` to +6.3 dB;
docs/results.md, issue 36, tenth part)."""


def draw_intervals(calibration: dict, records: list[dict], regimes: tuple[str, ...] = DRAWN_REGIMES) -> dict:
    """``calibration`` with the stated interval of every entry that serves records of
    :data:`DRAWN_KINDS` and ``regimes`` taken from validation records with a mask drawn per slice:
    the :data:`INTERVAL` quantiles of true − calibrated PSNR over those records, pooled
    over their subjects and draws, where an entry serves at least :data:`OFFSET_MIN_POINTS`
    of them, joined with the entry's interval from the subjects (leave one subject out):
    the records behind the offsets drew one mask per subject, so they show the subjects'
    shift but not the draw's, and the records drawn per slice are too few (12-32 an entry)
    to show the subjects'. Alone, the draws' interval was narrower than the subjects' on
    many entries and missed cs-l1's truth on README command 1 (docs/results.md, issue 36,
    seventh part). The entries' points (offsets and lines) are kept, so every estimate,
    and every verdict of the guard, stays as it was. Each changed entry says so
    (``interval_from``).

    Records whose methods got ESPIRiT maps (:func:`estimated_maps`) join the same way,
    drawn per slice or not: the offsets were fitted with the simulation's own maps, while a
    run on multi-coil data estimates them, and on the validation subjects with ESPIRiT maps
    the learned models' measured 2-D intervals held 33-38 % (tenth part).

    A method of :data:`OWN_INTERVAL_METHODS` whose record was calibrated by its family's
    offset entry gets an entry of its own for that interval, with the family's offset
    (``offset_from``): its draws widen its own interval, not the family's."""
    drawn = [dict(record) for record in records if (drawn_per_slice(record) or estimated_maps(record))
             and _kind(record) in DRAWN_KINDS and record.get("regime", "clean") in regimes]
    apply(drawn, calibration)
    updated = {**calibration, "offsets": {key: dict(entry) for key, entry in calibration.get("offsets", {}).items()},
               "interval_db": dict(calibration.get("interval_db", {})),
               "subject_interval_db": dict(calibration.get("subject_interval_db", {}))}
    own = set(OWN_INTERVAL_METHODS)
    borrowed: dict[str, str] = {}  # a method's own interval entry -> the family entry whose offset it takes
    gaps: dict[str, dict[str, list[float]]] = {}  # entry -> condition -> true - estimated PSNR
    sources: dict[tuple[str, str], set[str]] = {}  # (entry, condition) -> subjects
    for record in drawn:
        key = record["est_calibration"]
        if record["method"] in own and key in updated["offsets"] and not key.startswith(f"{record['method']}:"):
            borrowed[own_key := f"{record['method']}:{key.split(':', 1)[1]}"] = key
            key = own_key
        condition = "ESPIRiT maps" if estimated_maps(record) else "a mask drawn per slice"
        gaps.setdefault(key, {}).setdefault(condition, []).append(record["psnr"] - record["est_psnr"])
        sources.setdefault((key, condition), set()).add(record["source"])
    if "interval_from" in calibration:  # the input stays as it was
        updated["interval_from"] = dict(calibration["interval_from"])
    for key, by_condition in sorted(gaps.items()):
        # each condition's interval apart (it must hold in each), from enough records
        found = {condition: _interval(np.array(values)) for condition, values in sorted(by_condition.items())
                 if len(values) >= OFFSET_MIN_POINTS}
        if not found or key == "identity":
            continue
        if key in borrowed:  # the family's offset and subjects' interval, under the method's name
            family = updated["offsets"][borrowed[key]]
            updated["offsets"][key] = {"offset_db": family["offset_db"], "offset_from": borrowed[key],
                                       "interval_db": family.get("subject_interval_db", family["interval_db"]),
                                       "points": family["points"], "sources": family["sources"]}
        entry = updated["offsets"].get(key)
        # joined with the subjects' interval (kept as subject_interval_db: a rerun starts from it again)
        earlier = (entry.get("subject_interval_db", entry["interval_db"]) if entry is not None
                   else updated.get("subject_interval_db", {}).get(key, updated["interval_db"].get(key)))
        bounds = [*found.values(), *([earlier] if earlier else [])]
        interval = [min(low for low, _ in bounds), max(high for _, high in bounds)]
        origin = "; ".join(f"{len(by_condition[condition])} validation records with {condition}, {len(sources[key, condition])} "
                           f"subjects: [{low:.2f}, {high:.2f}]" for condition, (low, high) in found.items())
        origin += ", joined with the subjects' interval" if earlier else ""
        if entry is not None:
            entry.update({"interval_db": interval, "interval_from": origin, **({"subject_interval_db": earlier} if earlier else {})})
        else:
            updated["interval_db"][key] = interval
            updated.setdefault("interval_from", {})[key] = origin
            if earlier:
                updated["subject_interval_db"][key] = earlier
    if not updated["subject_interval_db"]:
        del updated["subject_interval_db"]
    return updated


def fit_method_offsets(records: list[dict], folds_used: int | None = None) -> dict:
    """Offset entries of each method of ``records`` on its own (``cg-sense:cartesian:mc``),
    fitted as :func:`fit_offsets` fits a family's; :func:`recon.trust.calibration.calibrate`
    tries them before the family's. For a method whose hold-out behaves unlike the rest of
    its family: CG-SENSE is a ``baseline`` like zero-filled, but with 8 coils it predicts
    an unmeasured line next to a measured one 12-15 dB better than a far one, where
    zero-filled predicts nothing anywhere, and zero-filled's offsets left its estimate
    2-6 dB optimistic (docs/results.md, issue 36, seventh part).

    An entry without a coil group (``cg-sense:cartesian``) serves every coil count, so it
    is kept only when the records hold both coil groups: fitted on 8 and 16 coils alone,
    it would calibrate a single-coil run with a multi-coil shift."""
    fitted = fit_offsets([{**record, "family": record["method"].rstrip("@")} for record in records], folds_used)
    groups = {coil_group(record.get("coils", 1)) for record in records}
    return {key: entry for key, entry in fitted.items() if len(groups) > 1 or _coil_grouped(key)}


def _coil_grouped(key: str) -> bool:
    """Whether an offset key names its coil group (``cs:cartesian:mc``, ``cs:2d:1c-noisy``)."""
    return key.rsplit(":", 1)[-1].split("-")[0] in ("1c", "mc")
