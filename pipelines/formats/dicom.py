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

import os
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from pipelines.formats.study import InputError, Study, check_finite

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
PATIENT_STUDY_TAGS = (
    "SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
    "StudyDescription", "FrameOfReferenceUID", "PositionReferenceIndicator", "Manufacturer",
    "InstitutionName", "BodyPartExamined", "PatientPosition", "MagneticFieldStrength",
)
MR_TAGS = ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "EchoTime",
           "RepetitionTime", "EchoTrainLength", "InversionTime", "FlipAngle")


def _read_header(path: Path) -> Dataset | None:
    try:
        return pydicom.dcmread(path, defer_size=1024)  # large values (pixels) are not loaded
    except InvalidDicomError:
        return None
    except (OSError, EOFError, ValueError, KeyError, AttributeError) as error:
        raise InputError(f"{path}: cannot read DICOM header: {error}") from error


def _pixels(path: Path) -> tuple[Dataset, np.ndarray]:
    try:
        dataset = pydicom.dcmread(path)
    except (OSError, EOFError, ValueError, KeyError) as error:
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


def _rescale(item: Any) -> tuple[float, float]:
    slope = float(getattr(item, "RescaleSlope", 1) or 1)
    intercept = float(getattr(item, "RescaleIntercept", 0) or 0)
    return slope, intercept


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
        slope, intercept = _rescale(transform) if transform is not None else (1.0, 0.0)
        slices.append({
            "pixels": frame.astype(np.float32) * slope + intercept,
            "position": None if position is None else [float(v) for v in position.ImagePositionPatient],
            "orientation": None if orientation is None else [float(v) for v in orientation.ImageOrientationPatient],
            "spacing": None if measures is None or "PixelSpacing" not in measures else [float(v) for v in measures.PixelSpacing],
            "thickness": None if measures is None or "SliceThickness" not in measures else float(measures.SliceThickness),
            "rescale": (slope, intercept),
            "temporal": int(getattr(content, "TemporalPositionIndex", 0) or 0) if content is not None else 0,
            "sop": str(dataset.SOPInstanceUID), "frame": index + 1, "path": path,
        })
    return slices


def _classic_slice(path: Path, dataset: Dataset, pixels: np.ndarray) -> list[dict[str, Any]]:
    if pixels.ndim != 2:
        raise InputError(f"{path}: expected a single-frame greyscale image, got pixel array of shape {pixels.shape}")
    slope, intercept = _rescale(dataset)
    return [{
        "pixels": pixels.astype(np.float32) * slope + intercept,
        "position": [float(v) for v in dataset.ImagePositionPatient] if "ImagePositionPatient" in dataset else None,
        "orientation": [float(v) for v in dataset.ImageOrientationPatient] if "ImageOrientationPatient" in dataset else None,
        "spacing": [float(v) for v in dataset.PixelSpacing] if "PixelSpacing" in dataset else None,
        "thickness": float(dataset.SliceThickness) if dataset.get("SliceThickness") not in (None, "") else None,
        "rescale": (slope, intercept), "temporal": 0,
        "instance": int(dataset.get("InstanceNumber") or 0),
        "sop": str(dataset.SOPInstanceUID), "frame": None, "path": path,
    }]


def _sort(slices: list[dict[str, Any]], source: Path, notes: list[str]) -> list[dict[str, Any]]:
    if all(s["position"] is not None and s["orientation"] is not None for s in slices):
        normal = _normal(slices[0]["orientation"])
        return sorted(slices, key=lambda s: (s["temporal"], float(np.dot(normal, s["position"]))))
    notes.append(f"{source}: no slice geometry (ImagePositionPatient / ImageOrientationPatient); sorted by InstanceNumber")
    return sorted(slices, key=lambda s: (s["temporal"], s.get("instance", 0), s.get("frame") or 0))


def dicom_files(folder: Path) -> list[Path]:
    """Every regular file under ``folder`` (DICOM files often have no suffix)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))


def read_dicom(paths: list[Path], name: str, source: Path) -> tuple[list[Study], list[str]]:
    """Read DICOM files into one :class:`Study` per series.

    Shapes
    ------
    Each study's ``images``: ``(N, Rows, Columns)`` float32 real values, sorted along the
    slice normal. ``meta`` holds the header of the first object (``dataset``) and each
    slice's geometry, rescale and source SOP instance (``slices``).

    Returns the studies and notes (skipped files, fall-backs).
    """
    notes: list[str] = []
    series: dict[str, list[Path]] = defaultdict(list)
    headers: dict[Path, Dataset] = {}
    for path in paths:
        header = _read_header(path)
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
        slices = _sort(slices, source, notes)
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


def _window(images: np.ndarray) -> tuple[float, float]:
    low, high = np.percentile(images, [0.5, 99.5])
    return float((low + high) / 2), float(max(high - low, 1.0))


def write_dicom_series(folder: str | Path, images: np.ndarray, meta: dict[str, Any], description: str) -> list[Path]:
    """Write ``images`` ``(N, H, W)`` as a derived MR Image Storage series in ``folder``.

    Each file is written to a temporary name and renamed. Returns the written paths.
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
    series_number = int(source.get("SeriesNumber") or 0) + 1000
    written = []
    for index, (image, info) in enumerate(zip(images, slices)):
        slope, intercept = info["rescale"]
        stored = np.clip(np.rint((image - intercept) / slope), 0, 65535).astype(np.uint16)
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
        ds.SliceThickness = f"{info['thickness']:.6g}" if info["thickness"] is not None else None
        if (slope, intercept) != (1.0, 0.0):
            ds.RescaleSlope, ds.RescaleIntercept = f"{slope:.6g}", f"{intercept:.6g}"
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
        tmp = folder / f".{path.name}.tmp"
        ds.save_as(tmp, enforce_file_format=True)
        os.replace(tmp, path)
        written.append(path)
    return written
