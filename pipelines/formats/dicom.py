"""DICOM MR series: read (classic and enhanced multi-frame) and write a derived series.

Reading
-------
Files are grouped by SeriesInstanceUID, and slices are sorted by their position along
the slice normal (``ImagePositionPatient`` projected on ``row x column`` of
``ImageOrientationPatient``), never by file name or InstanceNumber. Stored values are
mapped to real values with RescaleSlope / RescaleIntercept (per frame for enhanced MR,
from the Pixel Value Transformation functional group). Objects without pixel data are
skipped with a note; a compressed transfer syntax whose decoder is not installed, a
truncated file and inconsistent slice sizes each raise :class:`InputError` naming the
file.

Writing is in :mod:`pipelines.formats.dicom_write`.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from pipelines.common.limits import (
    WORKING_COPIES,
    MemoryBudget,
    TooLargeError,
    check_size,
    format_size,
)
from pipelines.formats.study import FILE_PROBLEMS, InputError, Study, check_finite

DEFLATED = "1.2.840.10008.1.2.1.99"

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"


FREQUENCY_AXIS = {"ROW": 1, "COL": 2}
"""The slice stack's frequency-encoded axis (the readout of a 3-D acquisition) by
InPlanePhaseEncodingDirection: ROW, the phase encodes run along each row, so the readout
runs down the columns, the stack's H; COL, the readout runs along the rows, W."""


def _deflated_start(path: Path) -> int | None:
    """Offset of the deflated data set when ``path`` is a Part 10 file in the Deflated
    Explicit VR Little Endian transfer syntax, else None (read from the raw bytes: the
    file meta group is explicit VR little endian and starts with its own length)."""
    with open(path, "rb") as handle:
        head = handle.read(132 + 12)
        if len(head) < 144 or head[128:132] != b"DICM" or head[132:136] != b"\x02\x00\x00\x00":
            return None
        start = 144 + struct.unpack("<I", head[140:144])[0]
        meta = handle.read(min(start - 144, 1 << 16))
    return start if DEFLATED.encode() in meta else None


def _check_inflated(path: Path, budget: MemoryBudget | None) -> None:
    """Refuse a deflated file that inflates beyond the budget, counting the inflated
    bytes in bounded chunks (pydicom would inflate it whole before any check)."""
    start = _deflated_start(path)
    if start is None:
        return
    budget = budget or MemoryBudget.default()
    limit = budget.bytes // WORKING_COPIES
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    total, chunk = 0, 1 << 20
    try:
        with open(path, "rb") as handle:
            handle.seek(start)
            for block in iter(lambda: handle.read(1 << 16), b""):
                total += len(inflater.decompress(block, chunk))
                while inflater.unconsumed_tail and total <= limit:
                    total += len(inflater.decompress(inflater.unconsumed_tail, chunk))
                if total > limit:
                    raise TooLargeError(
                        f"{path}: the deflated DICOM data set inflates to more than {format_size(limit)}; "
                        f"the memory budget is {format_size(budget.bytes)} (raise it with --max-memory)")
    except zlib.error as error:
        raise InputError(f"{path}: deflated DICOM data is corrupt: {error}") from error


def _read_header(path: Path, budget: MemoryBudget | None = None) -> Dataset | None:
    try:
        _check_inflated(path, budget)
        return pydicom.dcmread(path, defer_size=1024)  # large values (pixels) are not loaded
    except InvalidDicomError:
        return None
    except FILE_PROBLEMS:
        raise
    except (OSError, EOFError, ValueError, KeyError, AttributeError, TypeError) as error:
        raise InputError(f"{path}: cannot read DICOM header: {error}") from error


def _declared_pixels(path: Path, header: Dataset) -> tuple[int, int, int]:
    """``(frames, rows, columns)`` that the header declares."""
    try:
        frames = int(header.get("NumberOfFrames") or 1)
        rows, columns = int(header.get("Rows") or 0), int(header.get("Columns") or 0)
    except (TypeError, ValueError) as error:
        raise InputError(f"{path}: Rows, Columns or NumberOfFrames is not a number: {error}") from error
    return frames, rows, columns


def _pixels(path: Path) -> tuple[Dataset, np.ndarray]:
    try:
        dataset = pydicom.dcmread(path)
    except (OSError, EOFError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: cannot read DICOM file: {error}") from error
    syntax = dataset.file_meta.get("TransferSyntaxUID")
    try:
        pixels = dataset.pixel_array
    except (RuntimeError, NotImplementedError) as error:
        name = getattr(syntax, "name", str(syntax))
        raise InputError(
            f"{path}: pixel data in transfer syntax {name!r} cannot be decoded here "
            f"(install a decoder such as pylibjpeg or GDCM, or decompress the file): {error}"
        ) from error
    except (ValueError, EOFError, OSError, AttributeError, KeyError) as error:
        raise InputError(f"{path}: pixel data is unreadable (truncated or corrupt file?): {error}") from error
    return dataset, pixels


def _normal(orientation) -> np.ndarray:
    row, column = np.asarray(orientation[:3], float), np.asarray(orientation[3:], float)
    return np.cross(row, column)


def numeric_tag(item: Any, tag: str, default: float, path: Path) -> float:
    """A numeric attribute as a finite float; a clear error naming the file and the tag."""
    try:
        raw = item.get(tag) if hasattr(item, "get") else getattr(item, tag, None)
    except (ValueError, TypeError, KeyError) as error:  # pydicom parses DS lazily
        raise InputError(f"{path}: {tag} cannot be read as a number: {error}") from error
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InputError(f"{path}: {tag} = {str(raw)[:40]!r} is not a number") from None
    if not math.isfinite(value):
        raise InputError(f"{path}: {tag} = {value} is not finite")
    return value


def _rescale(item: Any, path: Path) -> tuple[float, float]:
    slope = numeric_tag(item, "RescaleSlope", 1.0, path)
    if slope == 0:
        raise InputError(f"{path}: RescaleSlope is 0")
    return slope, numeric_tag(item, "RescaleIntercept", 0.0, path)


def _floats(item: Any, tag: str, path: Path) -> list[float] | None:
    """A multi-valued numeric attribute (positions, cosines, spacing) as floats, or None
    when absent; non-numeric values raise an error naming the tag."""
    try:
        if tag not in item:
            return None
        values = item[tag].value
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            values = [values]
        return [float(v) for v in values]
    except (TypeError, ValueError) as error:
        raise InputError(f"{path}: {tag} is not a list of numbers: {error}") from None


def _functional(dataset: Dataset, frame: int, sequence: str) -> Any | None:
    """The item of functional group ``sequence`` for ``frame`` (per-frame, else shared)."""
    for groups in ("PerFrameFunctionalGroupsSequence", "SharedFunctionalGroupsSequence"):
        items = dataset.get(groups)
        if not items:
            continue
        item = items[frame] if groups.startswith("PerFrame") else items[0]
        if sequence in item and len(item[sequence].value):
            return item[sequence].value[0]
    return None


def _enhanced_slices(path: Path, dataset: Dataset, pixels: np.ndarray) -> list[dict[str, Any]]:
    frames = pixels if pixels.ndim == 3 else pixels[None]
    slices = []
    for index, frame in enumerate(frames):
        position = _functional(dataset, index, "PlanePositionSequence")
        orientation = _functional(dataset, index, "PlaneOrientationSequence")
        measures = _functional(dataset, index, "PixelMeasuresSequence")
        transform = _functional(dataset, index, "PixelValueTransformationSequence")
        content = _functional(dataset, index, "FrameContentSequence")
        slope, intercept = _rescale(transform, path) if transform is not None else (1.0, 0.0)
        slices.append({
            "pixels": frame.astype(np.float32) * slope + intercept,
            "position": None if position is None else _floats(position, "ImagePositionPatient", path),
            "orientation": None if orientation is None else _floats(orientation, "ImageOrientationPatient", path),
            "spacing": None if measures is None else _floats(measures, "PixelSpacing", path),
            "thickness": None if measures is None or "SliceThickness" not in measures else numeric_tag(measures, "SliceThickness", 0.0, path),
            "location": None,
            "rescale": (slope, intercept),
            "temporal": int(getattr(content, "TemporalPositionIndex", 0) or 0) if content is not None else 0,
            "sop": str(dataset.SOPInstanceUID), "frame": index + 1, "path": path,
        })
    return slices


def _classic_slice(path: Path, dataset: Dataset, pixels: np.ndarray) -> list[dict[str, Any]]:
    if pixels.ndim != 2:
        raise InputError(f"{path}: expected a single-frame greyscale image, got pixel array of shape {pixels.shape}")
    slope, intercept = _rescale(dataset, path)
    thickness = numeric_tag(dataset, "SliceThickness", math.nan, path)
    location = numeric_tag(dataset, "SliceLocation", math.nan, path)
    return [{
        "pixels": pixels.astype(np.float32) * slope + intercept,
        "position": _floats(dataset, "ImagePositionPatient", path),
        "orientation": _floats(dataset, "ImageOrientationPatient", path),
        "spacing": _floats(dataset, "PixelSpacing", path),
        "thickness": None if math.isnan(thickness) else thickness,
        "location": None if math.isnan(location) else location,
        "rescale": (slope, intercept), "temporal": 0,
        "instance": int(numeric_tag(dataset, "InstanceNumber", 0.0, path)),
        "sop": str(dataset.SOPInstanceUID), "frame": None, "path": path,
    }]


def _geometry_usable(slices: list[dict[str, Any]], source: Path, uid: str, notes: list[str]) -> bool:
    """True when every slice has a finite position and orientation of the right length.
    Mixed orientations are an error (e.g. a three-plane localizer); NaN or malformed
    geometry is dropped with a note, so nothing downstream writes or sorts by it."""
    present = [s for s in slices if s["position"] is not None and s["orientation"] is not None]
    if len(present) < len(slices):
        if present:
            notes.append(f"{source}: series {uid}: {len(slices) - len(present)} of {len(slices)} slices lack "
                         "ImagePositionPatient / ImageOrientationPatient; the geometry is not used")
        return False
    bad = [s for s in slices if len(s["position"]) != 3 or len(s["orientation"]) != 6
           or not np.isfinite(s["position"]).all() or not np.isfinite(s["orientation"]).all()]
    if bad:
        notes.append(f"{source}: series {uid}: {len(bad)} slice(s) have a NaN, infinite or malformed "
                     f"position or orientation (e.g. {bad[0]['path'].name}); the geometry is not used and "
                     "slices are sorted by InstanceNumber")
        return False
    orientations = np.array([s["orientation"] for s in slices])
    if np.abs(orientations - orientations[0]).max() > 1e-3:
        count = len(np.unique(np.round(orientations, 3), axis=0))
        raise InputError(f"{source}: series {uid} mixes {count} slice orientations (a localizer?); "
                         "a volume needs one orientation: put each orientation's files in a folder of its own")
    return True


def _sort(slices: list[dict[str, Any]], source: Path, uid: str, notes: list[str]) -> list[dict[str, Any]]:
    if _geometry_usable(slices, source, uid, notes):
        normal = _normal(slices[0]["orientation"])
        return sorted(slices, key=lambda s: (s["temporal"], float(np.dot(normal, s["position"]))))
    if not any(note.startswith(f"{source}: series {uid}") for note in notes):
        notes.append(f"{source}: no slice geometry (ImagePositionPatient / ImageOrientationPatient); sorted by InstanceNumber")
    for s in slices:
        s["position"] = s["orientation"] = None
    return sorted(slices, key=lambda s: (s["temporal"], s.get("instance", 0), s.get("frame") or 0))


def _drop_duplicates(files: list[Path], headers: dict[Path, Dataset], source: Path, uid: str,
                     notes: list[str]) -> list[Path]:
    """Keep one file per SOPInstanceUID (copies of one object), with a note."""
    seen: dict[str, Path] = {}
    duplicates = []
    for path in files:
        sop = str(headers[path].get("SOPInstanceUID", "")) or str(path)
        if sop in seen:
            duplicates.append((path, seen[sop]))
        else:
            seen[sop] = path
    if duplicates:
        copy, original = duplicates[0]
        notes.append(f"{source}: series {uid}: {len(duplicates)} file(s) repeat another file's SOPInstanceUID "
                     f"(e.g. {copy.name} and {original.name}); each object is read once")
    return list(seen.values())


def dicom_files(folder: Path) -> list[Path]:
    """Every regular file under ``folder`` (DICOM files often have no suffix)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def read_dicom(paths: list[Path], name: str, source: Path, budget: MemoryBudget | None = None) -> tuple[list[Study], list[str]]:
    """Read DICOM files into one :class:`Study` per series.

    Shapes
    ------
    Each study's ``images``: ``(N, Rows, Columns)`` float32 real values, sorted along the
    slice normal. ``meta`` holds the header of the first object (``dataset``) and each
    slice's geometry, rescale and source SOP instance (``slices``).

    The pixels each series declares (Rows x Columns x frames, over its files) are
    checked against ``budget`` before any pixel data is decoded.

    Returns the studies and notes (skipped files, fall-backs).
    """
    notes: list[str] = []
    series: dict[str, list[Path]] = defaultdict(list)
    headers: dict[Path, Dataset] = {}
    for path in paths:
        header = _read_header(path, budget)
        if header is None:
            notes.append(f"{path}: not a DICOM file; skipped")
            continue
        if "PixelData" not in header and "FloatPixelData" not in header and "DoubleFloatPixelData" not in header:
            sop = getattr(getattr(header, "SOPClassUID", None), "name", "unknown SOP class")
            notes.append(f"{path}: no pixel data ({sop}); skipped")
            continue
        uid = str(header.get("SeriesInstanceUID", "no-series-uid"))
        series[uid].append(path)
        headers[path] = header
    if not series:
        raise InputError(f"{source}: no DICOM image found")
    studies = []
    for number, (uid, files) in enumerate(sorted(series.items(), key=lambda item: str(item[1][0]))):
        files = _drop_duplicates(files, headers, source, uid, notes)
        declared = [_declared_pixels(path, headers[path]) for path in files]
        largest = max(declared, key=lambda d: d[1] * d[2])
        check_size(source, (sum(d[0] for d in declared), largest[1], largest[2]), budget,
                   what=f"DICOM series {uid}")
        slices: list[dict[str, Any]] = []
        first = None
        for path in files:
            dataset, pixels = _pixels(path)
            first = first or dataset
            if str(dataset.SOPClassUID) == ENHANCED_MR or "PerFrameFunctionalGroupsSequence" in dataset:
                slices += _enhanced_slices(path, dataset, pixels)
            else:
                slices += _classic_slice(path, dataset, pixels)
        shapes = {s["pixels"].shape for s in slices}
        if len(shapes) > 1:
            raise InputError(f"{source}: series {uid} mixes slice sizes {sorted(shapes)}")
        slices = _sort(slices, source, uid, notes)
        images = np.stack([s.pop("pixels") for s in slices])
        check_finite(images, source, f"series {uid}")
        if not np.any(images):
            raise InputError(f"{source}: series {uid} is all zero")
        if min(images.shape[-2:]) < 16:
            raise InputError(f"{source}: slices of {images.shape[-2:]} are too small (need at least 16x16)")
        del first.PixelData
        label = name if len(series) == 1 else f"{name}_series{first.get('SeriesNumber', number + 1)}"
        if any(study.name == label for study in studies):
            label = f"{label}_{number + 1}"
        if len(series) > 1:
            notes.append(f"{source}: holds {len(series)} series; series {uid} is read as {label}")
        studies.append(Study(name=label, source=source, format="dicom", images=images,
                             meta={"dataset": first, "slices": slices, "series_uid": uid,
                                   "frequency_axis": FREQUENCY_AXIS.get(str(first.get("InPlanePhaseEncodingDirection", "")))}))
    return studies, notes
