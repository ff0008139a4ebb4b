"""Fixtures the tests write themselves: small training data, DICOM series and fastMRI files."""

from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pydicom

from physics.fft import fft2c
from recon.training.augment import SliceSet

PYDICOM_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
NIBABEL_DICOM = Path(nib.__file__).parent / "nicom" / "tests" / "data"


def toy_slices(n: int = 6, size: int = 48, seed: int = 0) -> SliceSet:
    """``n`` random two-level disks, with grey/white-matter maps for contrast synthesis."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    images = []
    for _ in range(n):
        cy, cx, r = rng.uniform(18, 30), rng.uniform(18, 30), rng.uniform(8, 15)
        disk = ((yy - cy) ** 2 + (xx - cx) ** 2 < r**2).astype(np.float32)
        inner = ((yy - cy) ** 2 + (xx - cx) ** 2 < (r / 2) ** 2).astype(np.float32)
        images.append(0.6 * disk + 0.4 * inner)
    images = np.stack(images)
    return SliceSet(images, grey_matter=0.5 * images, white_matter=0.3 * images)


def dicom_series_fixture(folder: Path, count: int = 4, slope: float = 1.0, intercept: float = 0.0, uid: str | None = None) -> np.ndarray:
    """A classic MR series from pydicom's MR_small.dcm: slices at z = 0, 5, 10, ... written in
    shuffled file-name and InstanceNumber order. Returns the real values in slice order."""
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(PYDICOM_FILES / "MR_small.dcm")
    uid = uid or pydicom.uid.generate_uid()
    rng = np.random.default_rng(0)
    values = []
    order = [2, 0, 3, 1, 4, 5][:count]
    for z in range(count):
        ds = template.copy()
        stored = (rng.integers(10, 1000, size=(ds.Rows, ds.Columns)) + 200 * z).astype(np.int16)
        ds.PixelData = stored.tobytes()
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [0, 0, 5.0 * z]
        ds.InstanceNumber = count - z  # reversed: sorting must not use it
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.save_as(folder / f"img{order[z]:02d}.dcm")
        values.append(stored.astype(np.float32) * slope + intercept)
    return np.stack(values)


def fastmri_fixture(path: Path, mask: bool) -> np.ndarray:
    rng = np.random.default_rng(1)
    image = np.zeros((3, 64, 48), np.complex64)
    image[:, 16:48, 12:36] = 1 + rng.random((3, 32, 24))
    coils = np.exp(1j * np.linspace(0, 1, 4))[None, :, None, None]
    kspace = fft2c(image[:, None] * coils).astype(np.complex64)
    header = "<ismrmrdHeader><encoding><reconSpace><matrixSize><x>40</x><y>40</y><z>1</z></matrixSize></reconSpace></encoding></ismrmrdHeader>"
    with h5py.File(path, "w") as handle:
        columns = np.zeros(48, bool)
        columns[::3] = columns[20:28] = True
        handle.create_dataset("kspace", data=kspace * columns if mask else kspace)
        handle.create_dataset("reconstruction_rss", data=np.abs(image) * 2)
        handle.create_dataset("ismrmrd_header", data=header)
        if mask:
            handle.create_dataset("mask", data=columns)
        handle.attrs["acquisition"] = "AXT1"
    return np.abs(image) * 2


def radial_ismrmrd(path: Path, folder: Path, spokes: int = 32, coils: int = 4, size: int = 64):
    """An ISMRMRD file of golden-angle radial k-space: Shepp-Logan coil images of
    ``ismrmrd_generate_cartesian_shepp_logan`` sampled along ``spokes`` spokes by NUFFT,
    one acquisition per spoke with its ``traj`` normalised to +-0.5 (Gadgetron's units).
    Returns the coil-combined truth ``(size, size)`` and the trajectory."""
    import re
    import subprocess

    import torch

    from masks import make_trajectory
    from physics.fft import ifft2c
    from physics.nufft import NUFFT
    from pipelines.formats import read_input
    from recon.api import as_sampling

    cartesian = folder / "cartesian.h5"
    subprocess.run(["ismrmrd_generate_cartesian_shepp_logan", "-m", str(size), "-c", str(coils), "-o", str(cartesian)],
                   check=True, capture_output=True)
    (study,), _ = read_input(cartesian)
    coil_images = ifft2c(torch.from_numpy(study.kspace))[0]  # (C, H, W)
    made = make_trajectory(f"{spokes}spokes", (size, size), "radial", seed=0)
    kspace = NUFFT(as_sampling(made))(coil_images).numpy()  # each coil as a batch item: (C, 1, S, R)
    with h5py.File(cartesian, "r") as handle:
        table, xml = handle["dataset/data"], handle["dataset/xml"][0]
        dtype, template = table.dtype, table[0]
    xml = xml.decode() if isinstance(xml, bytes) else str(xml)
    xml = xml.replace("<trajectory>cartesian</trajectory>", "<trajectory>radial</trajectory>")
    xml = re.sub(r"(<encodedSpace>.*?<matrixSize>\s*<x>)\d+", rf"\g<1>{size}", xml, flags=re.S)
    rows = np.zeros(spokes, dtype)
    for spoke in range(spokes):
        row = template.copy()
        row["head"]["number_of_samples"] = made.coords.shape[1]
        row["head"]["active_channels"] = coils
        row["head"]["trajectory_dimensions"] = 2
        row["head"]["flags"] = 0
        row["head"]["idx"]["kspace_encode_step_1"] = spoke
        row["traj"] = (made.coords[spoke] / size).astype(np.float32).ravel()
        row["data"] = np.ascontiguousarray(kspace[:, 0, spoke]).view(np.float32).ravel()
        rows[spoke] = row
    with h5py.File(path, "w") as handle:
        group = handle.create_group("dataset")
        group.create_dataset("data", data=rows)
        group.create_dataset("xml", data=[xml.encode()], dtype=h5py.string_dtype())
    truth = np.sqrt((np.abs(coil_images.numpy()) ** 2).sum(axis=0))
    return truth, made


def kspace_3d(shape=(32, 40, 24), coils: int = 4, oversampling: int = 1):
    """Fully sampled 3-D k-space ``(C, X * oversampling, Y, Z)`` of an ellipsoid head
    with a brighter core seen by 3-D birdcage coils, and its RSS truth ``(X, Y, Z)``
    (readout oversampling: the object sits in the central ``X`` of a wider readout FOV)."""
    import torch

    from physics.volume import birdcage_maps_3d, from_hybrid, simulate_hybrid

    grid = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    head = (0.6 * (sum((a / 0.8) ** 2 for a in grid) < 1) + 0.4 * (sum((a / 0.35) ** 2 for a in grid) < 1)).astype(np.float32)
    wide = np.zeros((shape[0] * oversampling, *shape[1:]), np.float32)
    start = (wide.shape[0] - shape[0]) // 2
    wide[start : start + shape[0]] = head
    maps = birdcage_maps_3d(coils, wide.shape)
    hybrid = simulate_hybrid(torch.from_numpy(wide), maps)
    return from_hybrid(hybrid).numpy(), head


def ismrmrd_3d(path: Path, folder: Path, kspace: np.ndarray, readout_recon: int, drop: np.ndarray | None = None,
               partitions: int | None = None):
    """An ISMRMRD file of 3-D Cartesian k-space ``(C, X, Y, Z)``: one acquisition per
    (ky, kz) with its ``kspace_encode_step_1/2``, the table's layout taken from
    ``ismrmrd_generate_cartesian_shepp_logan``; ``drop`` (Y, Z) bool leaves points out;
    ``partitions`` overrides the header's encoded z."""
    import re
    import subprocess

    coils, readout, rows, depth = kspace.shape
    template_file = folder / "template.h5"
    subprocess.run(["ismrmrd_generate_cartesian_shepp_logan", "-m", "16", "-c", str(coils), "-o", str(template_file)],
                   check=True, capture_output=True)
    with h5py.File(template_file, "r") as handle:
        table, xml = handle["dataset/data"], handle["dataset/xml"][0]
        dtype, template = table.dtype, table[0]
    xml = xml.decode() if isinstance(xml, bytes) else str(xml)
    space = (f"<matrixSize><x>{readout}</x><y>{rows}</y><z>{partitions or depth}</z></matrixSize>")
    xml = re.sub(r"(<encodedSpace>\s*)<matrixSize>.*?</matrixSize>", rf"\g<1>{space}", xml, flags=re.S)
    xml = re.sub(r"(<reconSpace>\s*)<matrixSize>.*?</matrixSize>",
                 rf"\g<1><matrixSize><x>{readout_recon}</x><y>{rows}</y><z>{depth}</z></matrixSize>", xml, flags=re.S)
    points = [(y, z) for z in range(depth) for y in range(rows) if drop is None or not drop[y, z]]
    table_rows = np.zeros(len(points), np.dtype([(name, dtype[name]) for name in dtype.names if name != "data"]
                                              + [("data", h5py.vlen_dtype(np.float32))]))
    for index, (y, z) in enumerate(points):
        row = template.copy()
        row["head"]["number_of_samples"] = readout
        row["head"]["active_channels"] = coils
        row["head"]["flags"] = 0
        row["head"]["idx"]["kspace_encode_step_1"] = y
        row["head"]["idx"]["kspace_encode_step_2"] = z
        row["head"]["idx"]["slice"] = 0
        for name in dtype.names:
            if name != "data":
                table_rows[index][name] = row[name]
        table_rows[index]["data"] = np.ascontiguousarray(kspace[:, :, y, z]).astype(np.complex64).view(np.float32).ravel()
    with h5py.File(path, "w") as handle:
        group = handle.create_group("dataset")
        group.create_dataset("data", data=table_rows)
        group.create_dataset("xml", data=[xml.encode()], dtype=h5py.string_dtype())


def twix_3d(path: Path, partitions: int = 8, lines: int | None = None, drop_partition: int | None = None,
            declared: int | None = None, partial_fourier: bool = False, reference: int | None = None):
    """A 3-D twix file made from the tests' real ``gre.dat``: each imaging line repeated
    over ``partitions`` partitions (``Counter[3]``), its samples weighted by the kz
    spectrum of a Gaussian slab profile (no kz is zero), so the object is ``gre.dat``'s
    image times a Gaussian along z. ``lines`` keeps the first lines
    only; ``declared`` sets the protocol's ``lPartitions``; ``drop_partition`` leaves one
    partition out; ``partial_fourier`` declares kz partial Fourier; ``reference`` makes it
    a 2 x 2 accelerated scan (even lines of even partitions) with a separate reference
    scan (``PATREFSCAN``) of the central ``reference`` x ``reference`` (line, partition)
    block, as Siemens' 3-D iPAT with a separate reference scan writes it."""
    import contextlib
    import io

    import twixtools
    from twixtools.mdb import Mdb_local

    gre = Path(__file__).resolve().parent / "data" / "twix" / "gre.dat"
    with contextlib.redirect_stdout(io.StringIO()):
        scans = twixtools.read_twix(str(gre), verbose=False, keep_acqend=True)
    scan = scans[-1]
    profile = np.exp(-0.5 * ((np.arange(partitions) - partitions // 2) / (partitions / 6)) ** 2)
    weights = np.fft.fftshift(np.fft.fft(np.fft.ifftshift(profile), norm="ortho"))
    imaging = [mdb for mdb in scan["mdb"] if mdb.is_image_scan()]
    others = [mdb for mdb in scan["mdb"] if not mdb.is_image_scan()]
    kept = imaging if lines is None else [mdb for mdb in imaging if mdb.mdh.Counter.Lin < lines]
    made, references = [], []
    for partition in range(partitions):
        if partition == drop_partition:
            continue
        for mdb in kept:
            line = mdb.mdh.Counter.Lin
            central = reference is not None and -(reference // 2) <= line - mdb.mdh.CenterLin < reference // 2 \
                and -(reference // 2) <= partition - partitions // 2 < reference // 2
            for target, wanted in ((made, reference is None or (line % 2 == 0 and partition % 2 == 0)),
                                   (references, central)):
                if not wanted:
                    continue
                copied = Mdb_local(version_is_ve=mdb.version_is_ve)
                copied.mdh = type(mdb.mdh).from_buffer_copy(bytes(mdb.mdh))
                if mdb.version_is_ve:
                    copied.channel_hdr = [type(h).from_buffer_copy(bytes(h)) for h in mdb.channel_hdr]
                copied.mdh.Counter.Par = partition
                copied.mdh.CenterPar = partitions // 2
                if target is references:
                    copied.add_flag("PATREFSCAN")
                copied.data = (mdb.data * weights[partition]).astype(np.complex64)
                target.append(copied)
    # the noise scan first, the reference scan before the imaging scan, the end of acquisition last
    scan["mdb"] = others[:-1] + references + made + others[-1:]
    text = scan["hdr_str"].tobytes()  # the protocol as written: same-length edits keep its offsets
    for key, value in (("lPartitions", declared or partitions), ("lImagesPerSlab", declared or partitions),
                       ("ucSlicePartialFourier", 4 if partial_fourier else 16)):
        text = text.replace(b"sKSpace.%s\t = \t16" % key.encode(), b"sKSpace.%s\t = \t%02d" % (key.encode(), value))
    text = text.replace(b"sKSpace.ucDimension\t = \t2", b"sKSpace.ucDimension\t = \t4")
    scan["hdr_str"] = np.frombuffer(text, dtype=scan["hdr_str"].dtype).copy()
    with contextlib.redirect_stdout(io.StringIO()):
        twixtools.write_twix(scans, str(path), version_is_ve=imaging[0].version_is_ve)
    return path


def twix_even_lines(path: Path) -> Path:
    """The tests' ``gre.dat`` with its odd lines left out, as a 2 x accelerated scan
    writes it: the last line (159 of 160) is not acquired."""
    import contextlib
    import io

    import twixtools

    gre = Path(__file__).resolve().parent / "data" / "twix" / "gre.dat"
    with contextlib.redirect_stdout(io.StringIO()):
        scans = twixtools.read_twix(str(gre), verbose=False, keep_acqend=True)
    scans[-1]["mdb"] = [mdb for mdb in scans[-1]["mdb"] if not mdb.is_image_scan() or mdb.mdh.Counter.Lin % 2 == 0]
    with contextlib.redirect_stdout(io.StringIO()):
        twixtools.write_twix(scans, str(path), version_is_ve=scans[-1]["mdb"][0].version_is_ve)
    return path
