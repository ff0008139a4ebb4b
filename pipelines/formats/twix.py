"""Siemens twix raw data (``.dat``, VB and VD/VE) through twixtools.

twixtools (PyPI, MIT, maintained by Philipp Ehses) reads both file generations, maps the
acquisitions onto a labelled array (lines, channels, columns, slices, averages, ...),
and parses the protocol and the slice geometry; pyMapVBVD does the same, but its
arrays follow MATLAB's mapVBVD layout and it does not give the geometry. What we do
with the data, in the project's order (``CONVENTIONS.md``, raw scanner data):

1. the imaging scan of the file's last measurement; averages are averaged, other
   counters (echoes, repetitions, sets, phases) take their first index, with a note;
   2-D multi-slice only (3-D partition encoding and non-Cartesian trajectories are
   refused, as is an asymmetric echo);
2. the reference (ACS) lines of a separate reference scan fill the imaging scan's
   missing lines where the two have one grid (they were measured);
3. noise prewhitening from the file's noise scan (:mod:`physics.raw`); without one,
   from the noise of the oversampled readout margin, with a note;
4. readout oversampling removed in hybrid space;
5. the acquired lines are the mask; partial Fourier lines that were not acquired stay
   unmeasured (zero), so every method sees what the scanner measured.

Everything the reader did is in ``meta["corrections"]`` and the study's notes.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

import numpy as np

from pipelines.common.limits import MemoryBudget, check_size
from pipelines.formats.study import FILE_PROBLEMS, InputError, Study, check_finite

TWIX_MIN_BYTES = 10 * 1024
OTHER_COUNTERS = ("Ide", "Idd", "Idc", "Idb", "Ida", "Set", "Rep", "Phs", "Eco")
"""Counters whose first index is read (averages and segments are averaged by twixtools)."""


def _read(path: Path):
    """twixtools' scans and mapped measurements, its prints and warnings kept quiet."""
    import twixtools

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scans = twixtools.read_twix(str(path), verbose=False, parse_pmu=False)
        if not scans:
            raise InputError(f"{path}: no measurement in this twix file")
        return scans, twixtools.map_twix(scans)


def _grid(array, outer: str = "Sli") -> np.ndarray:
    """``(outer, Cha, Col, Lin)`` of a twix array (``outer`` slices, or partitions of a
    3-D scan), other counters at index 0."""
    kept = (outer, "Lin", "Cha", "Col")
    index = tuple(slice(None) if name in kept else 0 for name in array.dims)
    data = np.asarray(array[index])  # the dims left, in twixtools' order
    order = [name for name in array.dims if name in kept]
    return np.transpose(data, [order.index(name) for name in (outer, "Cha", "Col", "Lin")])


def read_twix(path: str | Path, budget: MemoryBudget | None = None) -> Study:
    """Read a Siemens ``.dat`` file as measured k-space.

    Shapes
    ------
    ``kspace`` ``(slices, C, H, W)`` complex64, H the readout (oversampling removed), W
    the phase encodes; ``mask`` ``(H, W)`` when lines were not acquired.
    """
    path = Path(path)
    size = path.stat().st_size
    if size < TWIX_MIN_BYTES:
        raise InputError(f"{path}: {size} bytes is too small for a Siemens twix file")
    check_size(path, (size // 8,), budget, what="the file's raw samples", copies=3)
    try:
        scans, mapped = _read(path)
    except FILE_PROBLEMS:
        raise
    except Exception as error:  # noqa: BLE001 - twixtools raises many types for a bad file
        raise InputError(f"{path}: cannot read twix file (truncated, corrupt or not a Siemens .dat): "
                         f"{type(error).__name__}: {str(error)[:120]}") from None
    measurement, header = mapped[-1], scans[-1].get("hdr", {})
    if "image" not in measurement:
        only = " (only a noise scan)" if "noise" in measurement else ""
        raise InputError(f"{path}: holds no imaging scan{only}")
    channels = {int(mdb.mdh.UsedChannels) for mdb in scans[-1]["mdb"] if mdb.is_image_scan()}
    if 0 in channels or len(channels) > 1:
        raise InputError(f"{path}: its imaging lines declare {sorted(channels)} coil channels; a scan needs the same "
                         "number, at least 1, on every line")
    image = measurement["image"]
    dims = dict(zip(image.dims, image.shape))
    space = header.get("MeasYaps", {}).get("sKSpace", {})
    if int(space.get("ucTrajectory", 1)) != 1:
        raise InputError(f"{path}: non-Cartesian trajectory (sKSpace.ucTrajectory {space.get('ucTrajectory')}); "
                         "this reader takes Cartesian scans")
    if dims.get("Cha", 0) < 1 or dims.get("Col", 0) < 2 or dims.get("Lin", 0) < 2:
        raise InputError(f"{path}: an imaging scan of {dims.get('Cha', 0)} channels x {dims.get('Col', 0)} samples x "
                         f"{dims.get('Lin', 0)} lines holds no image")
    check_size(path, (int(np.prod(list(dims.values()), dtype=np.int64)),), budget, what="the twix k-space grid", copies=3)
    notes = [f"{name}: {dims[name]} indices, the first is used" for name in OTHER_COUNTERS if dims.get(name, 1) > 1]
    if dims.get("Par", 1) > 1:
        from pipelines.formats.twix3d import read_3d

        noise = _grid(measurement["noise"]) if "noise" in measurement else None
        grid, merged = _complete_grid(_grid(image, "Par").astype(np.complex64), header, scans[-1], notes), {}
        _merge_reference(grid, measurement, notes, merged, outer="Par")
        study = read_3d(path, grid, dims, noise, header, scans[-1], notes, merged)
        readout, _, rows, depth = study.kspace.shape
        study.meta["affine"] = _affine(scans[-1], (1, 1, readout, rows), depth=depth)  # (read, phase, partition)
        return study
    kspace = _complete_grid(_grid(image).astype(np.complex64), header, scans[-1], notes, partitions=False)
    corrections = {"averages": int(dims.get("Ave", 1))}
    _merge_reference(kspace, measurement, notes, corrections)
    check_finite(kspace, path, "k-space")
    return _finish(path, kspace, measurement, header, scans[-1], notes, corrections)


MAX_MISSING = 8
"""The most trailing lines (or partitions) :func:`_complete_grid` adds: an accelerated
scan skips at most its acceleration factor less one."""


def _complete_grid(grid: np.ndarray, header: dict, scan: dict, notes: list[str], partitions: bool = True) -> np.ndarray:
    """``grid`` with the lines (and with ``partitions``, the partitions of a 3-D scan)
    that the protocol's matrix has beyond the last acquired ones, as zeros: twixtools
    sizes the grid by the highest counter, so an accelerated scan that skips the last
    line or partition comes one short, and its k-space centre is no longer the grid's.
    Padded only where the centre the scan's lines declare (``CenterLin``,
    ``CenterPar``) is then the grid's centre, and by at most :data:`MAX_MISSING` (a
    header cannot make the reader allocate more).

    Shapes
    ------
    grid ``(Par, Cha, Col, Lin)``, or ``(Sli, Cha, Col, Lin)`` without ``partitions``.
    """
    space = header.get("MeasYaps", {}).get("sKSpace", {})
    first = next((mdb.mdh for mdb in scan.get("mdb", []) if mdb.is_image_scan()), None)
    if first is None:
        return grid
    try:
        lines = round(int(space.get("lPhaseEncodingLines", 0) or 0)
                      * (1 + float(space.get("dPhaseOversamplingForDialog", 0) or 0)))
        depth = round(int(space.get("lPartitions", 0) or 0) * (1 + float(space.get("dSliceOversamplingForDialog", 0) or 0)))
    except (TypeError, ValueError, OverflowError):  # a protocol without usable sizes: the grid as the counters make it
        return grid
    pad = [(0, 0)] * 4
    for axis, size, centre, name in ((3, lines, int(first.CenterLin), "lines"),
                                     (0, depth if partitions else 0, int(first.CenterPar), "partitions")):
        if grid.shape[axis] < size <= grid.shape[axis] + MAX_MISSING and centre == size // 2:
            pad[axis] = (0, size - grid.shape[axis])
            notes.append(f"{name}: the protocol's {size}, the last {size - grid.shape[axis]} not acquired")
    return np.pad(grid, pad) if any(p != (0, 0) for p in pad) else grid


def _merge_reference(kspace: np.ndarray, measurement: dict, notes: list[str], corrections: dict,
                     outer: str = "Sli") -> None:
    """Fill what the imaging scan did not acquire, in place, from a separate reference
    (ACS) scan: whole phase-encode lines of a 2-D scan (``outer`` "Sli"), (line,
    partition) positions of a 3-D one (``outer`` "Par"). The reference's counters index
    the imaging grid, so a reference that stops at its last acquired line or partition
    is placed where its counters say; one with other coils or readout, or counters
    beyond the grid, is not used (a note says so).

    Shapes
    ------
    kspace ``(outer, C, Col, Lin)``.
    """
    if "refscan" not in measurement:
        return
    reference = _grid(measurement["refscan"], outer).astype(np.complex64)
    if reference.shape[1:3] != kspace.shape[1:3] or reference.shape[0] > kspace.shape[0] \
            or reference.shape[3] > kspace.shape[3]:
        notes.append(f"reference scan of {reference.shape} ({outer}, Cha, Col, Lin) does not fit the imaging grid "
                     f"{kspace.shape}; not used")
        return
    region = kspace[: reference.shape[0], ..., : reference.shape[3]]  # a view: where the reference's counters reach
    axes = (0, 1, 2) if outer == "Sli" else (1, 2)  # per line, or per (partition, line) position
    filled = ~np.abs(region).any(axis=axes) & np.abs(reference).any(axis=axes)
    if outer == "Sli":
        region[..., filled] = reference[..., filled]
    else:
        np.moveaxis(region, 0, 2)[..., filled] = np.moveaxis(reference, 0, 2)[..., filled]
    what = "lines" if outer == "Sli" else "(line, partition) positions"
    corrections["reference_lines" if outer == "Sli" else "reference_positions"] = int(filled.sum())
    if filled.any():
        notes.append(f"{int(filled.sum())} reference (ACS) {what} fill {what} the imaging scan did not acquire")


def _finish(path: Path, kspace: np.ndarray, measurement: dict, header: dict, scan: dict, notes: list[str],
            corrections: dict) -> Study:
    """Prewhitening, oversampling, the mask, the geometry: the study."""
    import torch

    from physics.raw import remove_readout_oversampling, whiten

    first = scan["mdb"][0].mdh if scan.get("mdb") else None
    centre = int(getattr(first, "ushKSpaceCentreColumn", kspace.shape[2] // 2)) if first is not None else kspace.shape[2] // 2
    if centre != kspace.shape[2] // 2:
        raise InputError(f"{path}: asymmetric echo (k-space centre at readout sample {centre} of {kspace.shape[2]}); "
                         "not supported: reconstruct it with partial-Fourier-aware scanner software")
    data = torch.from_numpy(kspace)
    factor = float(header.get("Dicom", {}).get("flReadoutOSFactor", 1.0) or 1.0)
    if "noise" in measurement:
        noise = np.asarray(_grid(measurement["noise"]), np.complex64)  # (Sli, Cha, Col, Lin)
        samples = torch.from_numpy(np.moveaxis(noise, 1, 0))
        try:
            data = whiten(data, samples)
        except ValueError as error:
            raise InputError(f"{path}: its noise scan cannot whiten the channels: {error}") from None
        corrections["prewhitened"] = f"noise scan, {samples[0].numel()} samples per channel"
    else:
        data = _whiten_from_margin(data, factor, notes, corrections)
    if factor > 1:
        data = remove_readout_oversampling(data, factor)
        corrections["readout_oversampling_removed"] = factor
    kspace = np.ascontiguousarray(data.numpy().astype(np.complex64))
    lines = np.abs(kspace).any(axis=(0, 1, 2))
    if not lines.any():
        raise InputError(f"{path}: k-space is all zero")
    if int(header.get("MeasYaps", {}).get("sKSpace", {}).get("ucPhasePartialFourier", 16)) not in (16, 0):
        corrections["partial_fourier"] = f"{int((~lines).sum())} lines not acquired, left unmeasured"
        notes.append(f"partial Fourier: {int((~lines).sum())} phase-encode lines were not acquired (unmeasured)")
    mask = None if lines.all() else np.broadcast_to(lines[None, :], kspace.shape[-2:]).copy()
    meta = {"corrections": corrections, "affine": _affine(scan, kspace.shape)}
    return Study(name=path.stem, source=path, format="twix", kspace=kspace, mask=mask, meta=meta, notes=notes)


def _whiten_from_margin(data, factor: float, notes: list[str], corrections: dict):
    """Without a noise scan: prewhiten with the noise of the readout's oversampled margin
    (:func:`physics.raw.whiten_from_oversampling`), or leave the channels as they are."""
    from physics.raw import whiten_from_oversampling

    result = whiten_from_oversampling(data, factor)
    if result is None:
        notes.append("no noise scan in the file and no usable oversampled margin to estimate the noise from: the "
                     "channels were not prewhitened")
        corrections["prewhitened"] = False
        return data
    data, samples = result
    notes.append(f"no noise scan in the file: the channels were prewhitened with the noise of the readout's "
                 f"oversampled margin ({samples} samples per channel)")
    corrections["prewhitened"] = f"readout oversampling margin, {samples} samples per channel"
    return data


def _affine(scan: dict, shape: tuple[int, ...], depth: int | None = None) -> np.ndarray | None:
    """The NIfTI affine (RAS+) of ``data[readout, phase, slice]`` from twixtools' slice
    geometry: the voxel at the grid's centre lies at the slice's offset; the readout, phase
    and slice directions are the protocol's (``prs_to_pcs``, in patient coordinates,
    DICOM's LPS; the slice direction is the slice normal), and x and y are negated for
    RAS. The in-plane signs are not checked against a scanner's own DICOM of the same
    scan. ``depth``: a 3-D slab's partitions, whose central one lies at the offset (the
    partition step is the protocol's voxel size along the slab normal). None when the
    file has no geometry."""
    geometry = scan.get("geometry") or []
    if not geometry:
        return None
    first = geometry[0]
    try:
        rotation = np.asarray(first.prs_to_pcs(), float)[:, [1, 0, 2]]  # (read, phase, slice) in LPS
        step = np.asarray(first.voxelsize, float)  # mm: readout (same with or without oversampling), phase, slice
    except Exception:  # noqa: BLE001 - a protocol without the geometry fields
        return None
    if rotation.shape != (3, 3) or step.shape != (3,) or not np.isfinite(step).all():
        return None
    readout, phase = shape[2], shape[3]
    lps = np.eye(4)
    lps[:3, :3] = rotation * step
    centre = np.array([readout // 2, phase // 2, 0.0 if depth is None else depth // 2])
    lps[:3, 3] = np.asarray(first.offset, float) - lps[:3, :3] @ centre
    if len(geometry) > 1 and depth is None:  # several slices: the slice axis steps from the first offset to the next
        lps[:3, 2] = np.asarray(geometry[1].offset, float) - np.asarray(first.offset, float)
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
