"""ISMRMRD raw data (HDF5): k-space from the acquisitions, read with h5py. Cartesian
data is gridded by its encoding indices; radial, spiral and other trajectories are read
as shots with their coordinates (:func:`_read_noncartesian`).

Noise scans, navigators and phase-correction lines are skipped (their header flags);
of repeated scans the first repetition is read, and lines acquired more than once in
it (averages) are averaged.
Each remaining acquisition is placed by its ``kspace_encode_step_1`` (phase encode)
and ``slice`` index. Readout oversampling (encoded x larger than reconSpace x) is
removed by cropping the centre of the readout in image space. Phase-encode lines that
were never acquired make the data undersampled: their mask is the acquired lines.
The file's ``phantom`` image (written by ``ismrmrd_generate_cartesian_shepp_logan``),
when present, is kept in ``meta["phantom"]``; it is not used as the metrics' reference
because its intensity scale is not the coil data's (the reference of fully sampled
data is its root-sum-of-squares image, as for any fully sampled k-space).
"""

from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np

from physics.fft import fft2c, ifft2c
from pipelines.common.limits import MemoryBudget, check_size
from pipelines.formats.study import FILE_PROBLEMS, InputError, Study, check_finite

# ISMRMRD acquisition flags (1-based bit numbers in the standard).
SKIPPED_FLAGS = {"noise measurement": 19, "phase correction": 22, "navigation": 23}


def is_ismrmrd(path: Path) -> bool:
    try:
        with h5py.File(path, "r") as handle:
            return any(isinstance(group, h5py.Group) and "data" in group and "xml" in group for group in handle.values())
    except OSError:
        return False


def _matrix(header: str, space: str, path: Path) -> tuple[int, int]:
    match = re.search(rf"<{space}>.*?<matrixSize>\s*<x>(\d+)</x>\s*<y>(\d+)</y>", header, re.S)
    if not match:
        raise InputError(f"{path}: its ISMRMRD header has no {space} matrix size (<{space}><matrixSize><x>..</x>"
                         "<y>..</y>), so the k-space grid is unknown")
    return int(match[1]), int(match[2])


def _complex_image(dataset) -> np.ndarray:
    data = np.asarray(dataset[()])
    if data.dtype.kind == "V":  # complex64 stored as a pair of float32
        data = data.view(np.complex64) if data.dtype.itemsize == 8 else data.view(np.complex128)
    return data


def _check_declared(path: Path, heads: np.ndarray, header: str, budget: MemoryBudget | None) -> None:
    """The samples the acquisitions carry and the k-space grid they declare, against the budget."""
    if len(heads) == 0:
        raise InputError(f"{path}: no acquisitions")
    samples = heads["number_of_samples"].astype(np.int64)
    channels = heads["active_channels"].astype(np.int64)
    check_size(path, (int((samples * channels).sum()),), budget, what="the acquisitions' samples", copies=2)
    _, encoded_y = _matrix(header, "encodedSpace", path)
    grid = (int(heads["idx"]["slice"].max()) + 1, int(channels.max()), int(samples.max()),
            max(encoded_y, int(heads["idx"]["kspace_encode_step_1"].max()) + 1),
            max(_depth(header), int(heads["idx"]["kspace_encode_step_2"].max()) + 1))
    check_size(path, grid, budget, what="the k-space grid (slices, coils, readout, phase encodes, partitions)")


def read_ismrmrd(path: str | Path, group: str | None = None, budget: MemoryBudget | None = None) -> Study:
    """Read Cartesian raw data.

    Shapes
    ------
    ``kspace`` ``(slices, C, H, W)`` complex64 with H the readout (oversampling removed)
    and W the phase encodes; ``mask`` ``(H, W)`` when lines are missing;
    ``meta["phantom"]`` ``(slices, H, W)`` when the file has one.

    The acquisitions' headers are read first; the k-space grid they declare and the
    samples they carry are checked against ``budget`` before any sample is read.
    """
    path = Path(path)
    try:
        with h5py.File(path, "r") as handle:
            name = group or next((key for key, value in handle.items() if isinstance(value, h5py.Group) and "data" in value), None)
            if name is None:
                raise InputError(f"{path}: no ISMRMRD dataset group with 'data'")
            root = handle[name]
            header = root["xml"][0]
            header = header.decode(errors="replace") if isinstance(header, bytes) else str(header)
            data = root["data"]
            if not isinstance(data, h5py.Dataset) or data.dtype.names is None or "head" not in data.dtype.names:
                raise InputError(f"{path}: 'data' is not an ISMRMRD acquisition table")
            heads = data.fields("head")[()]
            _check_declared(path, heads, header, budget)
            acquisitions = data[()]
            phantom = None
            if "phantom" in root:
                check_size(path, root["phantom"].shape, budget, what="'phantom'", copies=2)
                phantom = _complex_image(root["phantom"])
    except FILE_PROBLEMS:
        raise
    except (OSError, KeyError, ValueError, TypeError) as error:
        raise InputError(f"{path}: cannot read ISMRMRD file (truncated or corrupt?): {error}") from error
    if "<trajectory>cartesian</trajectory>" not in header.replace(" ", ""):
        return _read_noncartesian(path, header, acquisitions)
    encoded_x, encoded_y = _matrix(header, "encodedSpace", path)
    recon_x, _ = _matrix(header, "reconSpace", path)
    kept, flags = _kept(acquisitions)  # repeated scans: the first repetition
    if len(kept) == 0:
        raise InputError(f"{path}: no imaging acquisitions (only noise / calibration scans)")
    heads = kept["head"]
    if _depth(header) > 1 or int(heads["idx"]["kspace_encode_step_2"].max()) > 0:
        return _read_3d(path, header, kept, acquisitions, flags, (encoded_y, _depth(header)), recon_x)
    if int(heads["idx"]["kspace_encode_step_1"].max()) >= encoded_y:
        raise InputError(f"{path}: an acquisition's phase-encode index exceeds the header's encoded matrix ({encoded_y})")
    coils = int(heads["active_channels"].max())
    samples = int(heads["number_of_samples"].max())
    slices = int(heads["idx"]["slice"].max()) + 1
    kspace = np.zeros((slices, coils, samples, encoded_y), np.complex64)
    counts = np.zeros((slices, 1, samples, encoded_y), np.float32)
    for head, data in zip(heads, kept["data"]):
        line, where = int(head["idx"]["kspace_encode_step_1"]), int(head["idx"]["slice"])
        count, channels = int(head["number_of_samples"]), int(head["active_channels"])
        values = np.asarray(data, np.float32).view(np.complex64).reshape(channels, count)
        kspace[where, :channels, :count, line] += values
        counts[where, :, :count, line] += 1
    kspace /= np.maximum(counts, 1)  # lines acquired more than once (averages) are averaged
    sampled = counts.max(axis=(0, 1)) > 0
    check_finite(kspace, path, "k-space")
    kspace, whitened = _prewhiten(path, kspace, acquisitions, flags)
    if whitened is None and samples > recon_x and coils > 1:  # no noise scan: the oversampled margin's noise
        kspace, whitened = _prewhiten_from_margin(kspace, samples / recon_x)
    if samples > recon_x:  # readout oversampling: crop the readout's centre in image space
        image = ifft2c(kspace)
        start = (samples - recon_x) // 2
        kspace = fft2c(np.ascontiguousarray(image[..., start : start + recon_x, :])).astype(np.complex64)
        sampled = sampled[start : start + recon_x]
    lines = sampled.any(axis=0)
    mask = None if lines.all() else np.broadcast_to(lines[None, :], kspace.shape[-2:]).copy()
    meta = {"header": header, "corrections": {"prewhitened": whitened or False}}
    if phantom is not None:  # (slices, y, x) -> (slices, H = x, W = y)
        meta["phantom"] = np.abs(np.swapaxes(phantom.reshape(-1, *phantom.shape[-2:]), -1, -2)).astype(np.float32)
    notes = [] if whitened else ["no noise acquisitions in the file: the channels were not prewhitened"]
    if whitened and whitened.startswith("readout"):
        notes.append(f"no noise acquisitions in the file: the channels were prewhitened with the noise of the {whitened}")
    return Study(name=path.stem, source=path, format="ismrmrd", kspace=kspace, mask=mask, meta=meta, notes=notes)


def _depth(header: str) -> int:
    """The encoded matrix's z (partitions of a 3-D scan; 1 for 2-D)."""
    match = re.search(r"<encodedSpace>.*?<matrixSize>.*?<z>(\d+)</z>", header, re.S)
    return int(match[1]) if match else 1


def _read_3d(path: Path, header: str, kept: np.ndarray, acquisitions: np.ndarray, flags: np.ndarray,
             grid: tuple[int, int], recon_x: int) -> Study:
    """A 3-D Cartesian scan: each acquisition placed by ``kspace_encode_step_1`` (ky) and
    ``kspace_encode_step_2`` (kz) on the encoded (y, z) matrix, then
    :func:`pipelines.formats.volume3d.hybrid_study`. A kz outside the matrix, or slices
    of several slabs, are refused by name."""
    from pipelines.formats.volume3d import hybrid_study

    heads = kept["head"]
    rows, depth = grid
    if int(heads["idx"]["kspace_encode_step_2"].max()) >= depth:
        raise InputError(f"{path}: an acquisition's kz index ({int(heads['idx']['kspace_encode_step_2'].max())}) is "
                         f"outside the header's encoded matrix ({depth} partitions)")
    if int(heads["idx"]["kspace_encode_step_1"].max()) >= rows:
        raise InputError(f"{path}: an acquisition's ky index exceeds the header's encoded matrix ({rows})")
    if int(heads["idx"]["slice"].max()) > 0:
        raise InputError(f"{path}: a 3-D scan of several slabs (slice index > 0); this reader takes one slab")
    coils, samples = int(heads["active_channels"].max()), int(heads["number_of_samples"].max())
    kspace = np.zeros((coils, samples, rows, depth), np.complex64)
    counts = np.zeros((rows, depth), np.float32)
    for head, data in zip(heads, kept["data"]):
        line, partition = int(head["idx"]["kspace_encode_step_1"]), int(head["idx"]["kspace_encode_step_2"])
        count, channels = int(head["number_of_samples"]), int(head["active_channels"])
        kspace[:channels, :count, line, partition] += np.asarray(data, np.float32).view(np.complex64).reshape(channels, count)
        counts[line, partition] += 1
    kspace /= np.maximum(counts, 1)[None, None]
    noisy = (flags & np.uint64(1 << (SKIPPED_FLAGS["noise measurement"] - 1))) != 0
    blocks = [np.asarray(d, np.float32).view(np.complex64).reshape(int(h["active_channels"]), int(h["number_of_samples"]))
              for h, d in zip(acquisitions["head"][noisy], acquisitions["data"][noisy]) if int(h["active_channels"]) == coils]
    noise = np.concatenate(blocks, axis=1) if blocks else None
    return hybrid_study(path, path.stem, "ismrmrd", kspace, noise=noise, oversampling=samples / recon_x,
                        meta={"header": header})


def _kept(acquisitions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The imaging acquisitions (noise, phase-correction and navigator scans skipped;
    the first repetition of repeated scans), and every acquisition's flags."""
    flags = acquisitions["head"]["flags"].astype(np.uint64)
    skip = np.zeros(len(acquisitions), bool)
    for bit in SKIPPED_FLAGS.values():
        skip |= (flags & np.uint64(1 << (bit - 1))) != 0
    repetition = acquisitions["head"]["idx"]["repetition"]
    if (~skip).any():
        skip |= repetition != repetition[~skip].min()
    return acquisitions[~skip], flags


def _read_noncartesian(path: Path, header: str, acquisitions: np.ndarray) -> Study:
    """Radial, spiral or other trajectories: every imaging acquisition is one shot, its
    ``traj`` its coordinates. Coordinates within +-0.5 (Gadgetron's normalisation) are
    scaled by the encoded matrix to units of 1/FOV; the grid is reconSpace's matrix.

    Shapes
    ------
    ``kspace`` ``(slices, C, shots, samples)``; ``meta["trajectory"]`` ``(shots, samples, 2)``.
    """
    kind = re.search(r"<trajectory>\s*(\w+)\s*</trajectory>", header)
    kept, flags = _kept(acquisitions)
    if len(kept) == 0:
        raise InputError(f"{path}: no imaging acquisitions (only noise / calibration scans)")
    heads = kept["head"]
    dimensions = {int(d) for d in heads["trajectory_dimensions"]}
    counts = {int(c) for c in heads["number_of_samples"]}
    coils = {int(c) for c in heads["active_channels"]}
    if dimensions != {2}:
        raise InputError(f"{path}: a {kind[1] if kind else 'non-Cartesian'} acquisition needs 2-D trajectories "
                         f"(trajectory_dimensions 2), got {sorted(dimensions)}")
    if len(counts) != 1 or len(coils) != 1 or 0 in coils or 0 in counts:
        raise InputError(f"{path}: every shot needs the same samples and coils (>= 1), got samples {sorted(counts)} "
                         f"and coils {sorted(coils)}")
    (samples,), (channels,) = counts, coils
    slices = heads["idx"]["slice"].astype(int)
    shots = np.bincount(slices)
    if len(set(shots[shots > 0])) != 1 or (shots == 0).any():
        raise InputError(f"{path}: slices hold different numbers of shots ({shots.tolist()})")
    trajectory = np.stack([np.asarray(t, np.float32).reshape(samples, 2) for t in kept["traj"][slices == 0]])
    encoded = _matrix(header, "encodedSpace", path)
    if np.isfinite(trajectory).all() and np.abs(trajectory).max() <= 0.5 + 1e-3:
        trajectory = trajectory * np.array(encoded, np.float32)
    data = np.stack([np.asarray(d, np.float32).view(np.complex64).reshape(channels, samples) for d in kept["data"]])
    kspace = np.zeros((len(shots), channels, int(shots[0]), samples), np.complex64)
    for where in range(len(shots)):
        kspace[where] = np.transpose(data[slices == where], (1, 0, 2))
    check_finite(kspace, path, "k-space")
    kspace, whitened = _prewhiten(path, kspace, acquisitions, flags)
    recon_x, recon_y = _matrix(header, "reconSpace", path)
    from pipelines.formats.trajectory_files import check_trajectory_file

    check_trajectory_file(trajectory, (recon_x, recon_y), path)
    notes = [f"{path.name}: {kind[1] if kind else 'non-Cartesian'}, {shots[0]} shots x {samples} samples on a "
             f"{recon_x}x{recon_y} grid"]
    if not whitened and channels > 1:
        notes.append("no noise acquisitions in the file: the channels were not prewhitened")
    meta = {"header": header, "trajectory": trajectory, "image_shape": (recon_x, recon_y),
            "corrections": {"prewhitened": whitened or False}}
    return Study(name=path.stem, source=path, format="ismrmrd", kspace=kspace, meta=meta, notes=notes)


def _prewhiten_from_margin(kspace: np.ndarray, factor: float) -> tuple[np.ndarray, str | None]:
    """Whiten with the noise of the readout's oversampled margin (:mod:`physics.raw`)."""
    import torch

    from physics.raw import whiten_from_oversampling

    result = whiten_from_oversampling(torch.from_numpy(kspace), factor)
    if result is None:
        return kspace, None
    whitened, samples = result
    return whitened.numpy().astype(np.complex64), f"readout's oversampled margin, {samples} samples per channel"


def _prewhiten(path: Path, kspace: np.ndarray, acquisitions: np.ndarray, flags: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Whiten the channels with the covariance of the file's noise acquisitions (flag
    ``ACQ_IS_NOISE_MEASUREMENT``, :mod:`physics.raw`); unchanged, and None, without any."""
    import torch

    from physics.raw import whiten

    noisy = (flags & np.uint64(1 << (SKIPPED_FLAGS["noise measurement"] - 1))) != 0
    coils = kspace.shape[1]
    blocks = []
    for head, data in zip(acquisitions["head"][noisy], acquisitions["data"][noisy]):
        channels, count = int(head["active_channels"]), int(head["number_of_samples"])
        if channels == coils and count > 0:
            blocks.append(np.asarray(data, np.float32).view(np.complex64).reshape(channels, count))
    if not blocks:
        return kspace, None
    samples = torch.from_numpy(np.concatenate(blocks, axis=1))
    try:
        whitened = whiten(torch.from_numpy(kspace), samples).numpy().astype(np.complex64)
    except ValueError as error:
        raise InputError(f"{path}: its noise acquisitions cannot whiten the channels: {error}") from None
    return whitened, f"noise acquisitions, {samples.shape[1]} samples per channel"
