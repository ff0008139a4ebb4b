"""DICOM output: a derived MR series, and the NIfTI geometry of a DICOM series.

Writing
-------
A derived classic *MR Image Storage* series: new SeriesInstanceUID and
SOPInstanceUIDs, ``ImageType`` ``DERIVED\\SECONDARY\\OTHER``, patient, study, frame-of-reference
and geometry tags kept (SliceLocation and SpacingBetweenSlices too), the series
description naming the method and the mask, one SeriesNumber per method, the window
recomputed from the reconstruction, and real values never clipped: the input's rescale
slope/intercept when the output fits its 16-bit range, else ones chosen from the
output's range (:func:`output_rescale`). The files pass ``dciodvfy`` (dicom3tools).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

from pipelines.common.output import atomic_file
from pipelines.formats.dicom import numeric_tag

PATIENT_STUDY_TAGS = (
    "SpecificCharacterSet", "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "PatientAge",
    "StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName",
    "StudyDescription", "FrameOfReferenceUID", "PositionReferenceIndicator", "Manufacturer",
    "InstitutionName", "BodyPartExamined", "PatientPosition", "MagneticFieldStrength",
)
MR_TAGS = ("ScanningSequence", "SequenceVariant", "ScanOptions", "MRAcquisitionType", "EchoTime",
           "RepetitionTime", "EchoTrainLength", "InversionTime", "FlipAngle")


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
                       series_offset: int = 0, comments: list[str] | None = None) -> list[Path]:
    """Write ``images`` ``(N, H, W)`` as a derived MR Image Storage series in ``folder``.

    The series number is the input's plus 1000 plus ``series_offset`` (one per method,
    so each method's series can be told apart). Rescale slope and intercept come from
    :func:`output_rescale`, so no value is clipped; SliceLocation and
    SpacingBetweenSlices are kept from the input. Each file is written to a temporary
    name and renamed. ``comments`` (one per image) go into each instance's ImageComments
    and DerivationDescription, after ``description``. Returns the written paths.
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
    series_number = int(numeric_tag(source, "SeriesNumber", 0.0, folder)) + 1000 + series_offset
    rescales = output_rescale(np.asarray(images, np.float64), slices)
    written = []
    for index, (image, info, (slope, intercept)) in enumerate(zip(images, slices, rescales)):
        stored = np.clip(np.rint((image - intercept) / slope), 0, STORED_MAX).astype(np.uint16)
        ds = _patient_study_and_mr(source)
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
        if comments is not None:
            ds.ImageComments = comments[index][:10240]
            ds.DerivationDescription = f"{description}; this slice: {comments[index]}"[:1024]
        reference = Dataset()
        reference.ReferencedSOPClassUID = source.SOPClassUID
        reference.ReferencedSOPInstanceUID = info["sop"]
        if info.get("frame"):
            reference.ReferencedFrameNumber = info["frame"]
        ds.SourceImageSequence = [reference]
        _geometry(ds, info, source, slope, intercept)
        _pixels(ds, stored, center, width)
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


def _patient_study_and_mr(source: Dataset) -> Dataset:
    """A new dataset with the source's patient, study and MR attributes; type 2 ones it
    lacks are empty, and the MR Image module's type 1 ones get "research mode" / "none"
    (an enhanced MR object keeps them in functional groups)."""
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
    ds.ScanningSequence = ds.get("ScanningSequence") or "RM"
    ds.SequenceVariant = ds.get("SequenceVariant") or "NONE"
    for tag in ("ScanOptions", "MRAcquisitionType", "EchoTime", "EchoTrainLength", "RepetitionTime"):
        if tag not in ds:
            setattr(ds, tag, None)
    for tag in ("PatientPosition", "Laterality"):
        if tag not in ds:
            setattr(ds, tag, source.get(tag) or None)
    return ds


def _geometry(ds: Dataset, info: dict[str, Any], source: Dataset, slope: float, intercept: float) -> None:
    """Position, orientation, spacing, thickness, location and the rescale of one slice."""
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


def _pixels(ds: Dataset, stored: np.ndarray, center: float, width: float) -> None:
    """The 16-bit unsigned MONOCHROME2 pixel data and its window."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = stored.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.WindowCenter, ds.WindowWidth = f"{center:.6g}", f"{width:.6g}"
    ds.PixelData = stored.tobytes()
