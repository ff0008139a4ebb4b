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

Writing
-------
A derived classic *MR Image Storage* series: new SeriesInstanceUID and
SOPInstanceUIDs, ``ImageType`` ``DERIVED\\SECONDARY\\OTHER``, patient, study, frame-of-reference
and geometry tags kept, the series description naming the method and the mask, the
pixel values stored in the input's units (its rescale slope/intercept) and the window
recomputed from the reconstruction. The files pass ``dciodvfy`` (dicom3tools).
"""

from __future__ import annotations

import math
import struct
import zlib
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from pipelines.formats.study import FILE_PROBLEMS, InputError, Study, check_finite
from pipelines.limits import WORKING_COPIES, MemoryBudget, TooLargeError, check_size, format_size
from pipelines.output import atomic_file

DEFLATED = "1.2.840.10008.1.2.1.99"

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
PATIENT_STUDY_TAGS = (
    "SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
    "StudyDescription", "FrameOfReferenceUID", "PositionReferenceIndicator", "Manufacturer",
    "InstitutionName", "BodyPartExamined", "PatientPosition", "MagneticFieldStrength",
)
MR_TAGS = ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "EchoTime",
           "RepetitionTime", "EchoTrainLength", "InversionTime", "FlipAngle")


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


def _number(item: Any, tag: str, default: float, path: Path) -> float:
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
    slope = _number(item, "RescaleSlope", 1.0, path)
    if slope == 0:
        raise InputError(f"{path}: RescaleSlope is 0")
    return slope, _number(item, "RescaleIntercept", 0.0, path)


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
            "thickness": None if measures is None or "SliceThickness" not in measures else _number(measures, "SliceThickness", 0.0, path),
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
    thickness = _number(dataset, "SliceThickness", math.nan, path)
    location = _number(dataset, "SliceLocation", math.nan, path)
    return [{
        "pixels": pixels.astype(np.float32) * slope + intercept,
        "position": _floats(dataset, "ImagePositionPatient", path),
        "orientation": _floats(dataset, "ImageOrientationPatient", path),
        "spacing": _floats(dataset, "PixelSpacing", path),
        "thickness": None if math.isnan(thickness) else thickness,
        "location": None if math.isnan(location) else location,
        "rescale": (slope, intercept), "temporal": 0,
        "instance": int(_number(dataset, "InstanceNumber", 0.0, path)),
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
                             meta={"dataset": first, "slices": slices, "series_uid": uid}))
    return studies, notes


def nifti_geometry(meta: dict[str, Any], count: int) -> tuple[np.ndarray, tuple[int, ...]] | None:
    """The NIfTI affine (RAS+, scanner coordinates) of a DICOM series written as
    ``data[row, column, slice(, time)]`` and its trailing shape ``(slices,)`` or
    ``(slices, times)``; None when the series has no usable geometry.

    A pixel at (row r, column c) of slice k lies at ``IPP_k + c * Δc * F_row + r * Δr * F_col``
    in DICOM's LPS patient coordinates (F_row and F_col the two direction cosines of
    ImageOrientationPatient, Δr and Δc the PixelSpacing). The slice axis is the step from
    the first slice's position to the next (slices are sorted along the normal), so the
    world coordinate of every voxel matches dcm2niix's conversion of the same series;
    x and y are negated for RAS.
    """
    slices = meta["slices"]
    if not slices or any(s["position"] is None or s["orientation"] is None for s in slices):
        return None
    times = sorted({s["temporal"] for s in slices})
    per_volume = len(slices) // len(times)
    if per_volume * len(times) != len(slices) or count != len(slices):
        return None
    first = slices[0]
    row_cosine = np.asarray(first["orientation"][:3], float)
    column_cosine = np.asarray(first["orientation"][3:], float)
    spacing = first["spacing"] or [1.0, 1.0]
    origin = np.asarray(first["position"], float)
    if per_volume > 1:
        step = (np.asarray(slices[per_volume - 1]["position"], float) - origin) / (per_volume - 1)
    else:
        step = np.cross(row_cosine, column_cosine) * (first["thickness"] or 1.0)
    lps = np.eye(4)
    lps[:3, 0] = column_cosine * spacing[0]  # along rows (data axis 0)
    lps[:3, 1] = row_cosine * spacing[1]  # along columns (data axis 1)
    lps[:3, 2] = step
    lps[:3, 3] = origin
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return affine, (per_volume,) if len(times) == 1 else (per_volume, len(times))


def _window(images: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(images, [0.5, 99.5])
    return float((low + high) / 2), float(max(high - low, 1.0))


STORED_MAX = 65535


def _ds(value: float) -> str:
    """A decimal string (DS, at most 16 characters) that parses back to itself."""
    for digits in (12, 10, 8):
        text = f"{value:.{digits}g}"
        if len(text) <= 16:
            return text
    return f"{value:.6g}"  # pragma: no cover


def output_rescale(images: np.ndarray, slices: list[dict[str, Any]]) -> list[tuple[float, float]]:
    """Rescale slope and intercept for each output slice, so no value is clipped.

    The input's own rescale is kept when every reconstructed value fits its 16-bit
    stored range (values stay in the input's units at the input's precision);
    otherwise one slope and intercept for the whole series are chosen from the
    output's range. Both are written as decimal strings, so the returned numbers are
    those strings parsed back: what a reader gets is exactly what was quantised.
    """
    def fits(image: np.ndarray, slope: float, intercept: float) -> bool:
        stored = (image - intercept) / slope
        return float(stored.min()) >= -0.5 and float(stored.max()) <= STORED_MAX + 0.5

    kept = [(float(_ds(info["rescale"][0])), float(_ds(info["rescale"][1]))) for info in slices]
    if all(fits(image, *rescale) for image, rescale in zip(images, kept)):
        return kept
    low, high = min(0.0, float(images.min())), float(images.max())
    intercept = float(_ds(low))
    if intercept > low:
        intercept = float(_ds(low - abs(low) * 1e-9 - 1e-12))
    slope = float(_ds(max(high - intercept, 1e-12) / STORED_MAX * (1 + 1e-9)))
    while (high - intercept) / slope > STORED_MAX:
        slope = float(_ds(slope * (1 + 1e-7)))
    return [(slope, intercept)] * len(images)


def write_dicom_series(folder: str | Path, images: np.ndarray, meta: dict[str, Any], description: str,
                       series_offset: int = 0) -> list[Path]:
    """Write ``images`` ``(N, H, W)`` as a derived MR Image Storage series in ``folder``.

    The series number is the input's plus 1000 plus ``series_offset`` (one per method,
    so each method's series can be told apart). Rescale slope and intercept come from
    :func:`output_rescale`, so no value is clipped; SliceLocation and
    SpacingBetweenSlices are kept from the input. Each file is written to a temporary
    name and renamed. Returns the written paths.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    source: Dataset = meta["dataset"]
    slices = meta["slices"]
    if len(slices) != len(images):
        raise ValueError(f"{len(images)} images for a series of {len(slices)} slices")
    series_uid = generate_uid()
    now = datetime.now()
    center, width = _window(images)
    series_number = int(_number(source, "SeriesNumber", 0.0, folder)) + 1000 + series_offset
    rescales = output_rescale(np.asarray(images, np.float64), slices)
    written = []
    for index, (image, info, (slope, intercept)) in enumerate(zip(images, slices, rescales)):
        stored = np.clip(np.rint((image - intercept) / slope), 0, STORED_MAX).astype(np.uint16)
        ds = Dataset()
        for tag in PATIENT_STUDY_TAGS + MR_TAGS:
            if tag in source and source[tag].value not in (None, ""):
                ds[tag] = source[tag]
        for tag in ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
                    "ReferringPhysicianName", "StudyID", "AccessionNumber", "Manufacturer", "PositionReferenceIndicator"):
            if tag not in ds:
                setattr(ds, tag, "")
        ds.StudyInstanceUID = source.get("StudyInstanceUID") or generate_uid()
        ds.FrameOfReferenceUID = source.get("FrameOfReferenceUID") or generate_uid()
        # MR Image module: type 1 attributes get "research mode" / "none" when the source
        # (e.g. an enhanced MR object, which keeps them in functional groups) lacks them.
        ds.ScanningSequence = ds.get("ScanningSequence") or "RM"
        ds.SequenceVariant = ds.get("SequenceVariant") or "NONE"
        for tag in ("ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength", "RepetitionTime"):
            if tag not in ds:
                setattr(ds, tag, None)
        for tag in ("PatientPosition", "Laterality"):
            if tag not in ds:
                setattr(ds, tag, source.get(tag) or None)
        ds.SOPClassUID = MRImageStorage
        ds.SOPInstanceUID = generate_uid()
        ds.Modality = "MR"
        ds.ImageType = ["DERIVED", "SECONDARY", "OTHER"]
        ds.SeriesInstanceUID = series_uid
        ds.SeriesNumber = series_number
        ds.SeriesDescription = description[:64]
        ds.SeriesDate = ds.ContentDate = now.strftime("%Y%m%d")
        ds.SeriesTime = ds.ContentTime = now.strftime("%H%M%S")
        ds.InstanceNumber = index + 1
        ds.DerivationDescription = description[:1024]
        reference = Dataset()
        reference.ReferencedSOPClassUID = source.SOPClassUID
        reference.ReferencedSOPInstanceUID = info["sop"]
        if info.get("frame"):
            reference.ReferencedFrameNumber = info["frame"]
        ds.SourceImageSequence = [reference]
        if info["position"] is not None and info["orientation"] is not None:
            ds.ImagePositionPatient = [f"{v:.6g}" for v in info["position"]]
            ds.ImageOrientationPatient = [f"{v:.6g}" for v in info["orientation"]]
        else:
            ds.PatientOrientation = ""
        if info["spacing"] is not None:
            ds.PixelSpacing = [f"{v:.6g}" for v in info["spacing"]]
        ds.SliceThickness = _ds(info["thickness"]) if info["thickness"] is not None else None
        if info.get("location") is not None:
            ds.SliceLocation = _ds(info["location"])
        if source.get("SpacingBetweenSlices") not in (None, ""):
            ds.SpacingBetweenSlices = source.SpacingBetweenSlices
        if (slope, intercept) != (1.0, 0.0):
            ds.RescaleSlope, ds.RescaleIntercept = _ds(slope), _ds(intercept)
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows, ds.Columns = stored.shape
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.WindowCenter, ds.WindowWidth = f"{center:.6g}", f"{width:.6g}"
        ds.PixelData = stored.tobytes()
        meta_info = FileMetaDataset()
        meta_info.MediaStorageSOPClassUID = ds.SOPClassUID
        meta_info.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta_info.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta_info
        path = folder / f"{index + 1:04d}.dcm"
        with atomic_file(path) as tmp:
            ds.save_as(tmp, enforce_file_format=True)
        written.append(path)
    return written
