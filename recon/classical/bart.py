"""BART's ``pics`` as reference methods (``bart-l1``, ``bart-tv``), through ``.cfl`` files.

Registered always; usable when the ``bart`` binary (Debian package ``bart``) is on
PATH, otherwise they raise a clear :class:`~recon.registry.MethodUnavailable`.
Data are passed in BART's layout ``(X, Y, Z, COIL)`` = ``(H, W, 1, C)``. BART's FFT
is centred and ``pics`` uses the unitary convention, the same as ours. ``-S``
rescales the result to the input's scale; ``-n`` turns off random wavelet shifts
so results are deterministic.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from physics.coils import coil_support
from physics.nufft import Trajectory
from recon.classical.baselines import TunedWeight
from recon.registry import MethodUnavailable, Reconstructor, register


def _single_thread_env() -> dict[str, str]:
    """The environment of a ``bart`` process that shares the cores with others: one
    OpenMP thread (BART's FFTs gain nothing from more on one 2-D slice)."""
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def write_cfl(base: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as BART's ``base.hdr`` + ``base.cfl`` (complex64, column-major)."""
    base = Path(base)
    dims = list(array.shape) + [1] * (16 - array.ndim)
    base.with_suffix(".hdr").write_text("# Dimensions\n" + " ".join(str(d) for d in dims) + "\n")
    np.asarray(array, dtype=np.complex64).ravel(order="F").tofile(base.with_suffix(".cfl"))


def cfl_dims(base: str | os.PathLike) -> list[int]:
    """The dimensions in BART's ``base.hdr`` (trailing singletons dropped), checked
    against the size of ``base.cfl`` before anything is read."""
    base = Path(base)
    header = base.with_suffix(".hdr")
    with open(header, "rb") as handle:
        text = handle.read(4096).decode("ascii", errors="replace")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if not lines:
        raise ValueError(f"{header}: no dimensions line")
    try:
        dims = [int(d) for d in lines[0].split()]
    except ValueError:
        raise ValueError(f"{header}: dimensions {lines[0][:80]!r} are not integers") from None
    if not dims or any(d < 1 for d in dims):
        raise ValueError(f"{header}: dimensions must be positive, got {dims}")
    while len(dims) > 1 and dims[-1] == 1:
        dims.pop()
    size = os.path.getsize(base.with_suffix(".cfl"))
    if size != int(np.prod(dims, dtype=object)) * 8:
        raise ValueError(f"{base.with_suffix('.cfl')}: holds {size} bytes, but the header's dimensions {dims} need "
                         f"{int(np.prod(dims, dtype=object)) * 8} (complex64)")
    return dims


def read_cfl(base: str | os.PathLike) -> np.ndarray:
    """Read BART's ``base.hdr`` + ``base.cfl``; trailing singleton dimensions are dropped."""
    base = Path(base)
    dims = cfl_dims(base)
    data = np.fromfile(base.with_suffix(".cfl"), dtype=np.complex64)
    return data.reshape(dims, order="F")


def trajectory_to_bart(coords: np.ndarray) -> np.ndarray:
    """``(shots, samples, 2)`` coordinates (H, W order, 1/FOV) as BART's ``(3, samples,
    shots)`` trajectory (x = H, y = W, z = 0)."""
    coords = np.asarray(coords, np.float32)
    shots, samples = coords.shape[0], int(np.prod(coords.shape[1:-1]))
    flat = coords.reshape(shots, samples, 2)
    out = np.zeros((3, samples, shots), np.complex64)
    out[0], out[1] = flat[..., 0].T, flat[..., 1].T
    return out


class _BartPics(TunedWeight, Reconstructor):
    """``bart pics`` on each slice. BART normalises the data itself, so
    ``reg_weight`` is BART's own lambda; defaults tuned like the SigPy methods.
    Its slices run as concurrent ``bart`` processes, one per core (``parallel_slices``:
    callers give it every slice at once)."""

    parallel_slices = True
    host_only = True  # files and processes on the CPU: --device leaves it there

    def __init__(self, reg_weight: float | None = None, max_iter: int = 100):
        self.reg_weight = None if reg_weight is None else float(reg_weight)
        self.max_iter = int(max_iter)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        if shutil.which("bart") is None:
            return "the `bart` binary is not on PATH (install the Debian package `bart`)"
        return None

    def _regularizer_args(self, reg_weight: float) -> list[str]:
        raise NotImplementedError

    def reconstruct(self, kspace, mask, coil_maps=None):
        reason = self.unavailable_reason()
        if reason is not None:
            raise MethodUnavailable(f"method {self.name!r} is unavailable: {reason}")
        trajectory = mask if isinstance(mask, Trajectory) else None
        shape = tuple(trajectory.image_shape) if trajectory is not None else tuple(kspace.shape[-2:])
        with tempfile.TemporaryDirectory(prefix="recon-bart-") as tmp:
            extra = []
            if trajectory is not None:  # pics -t: BART's (3, samples, shots) trajectory, same units (1/FOV)
                write_cfl(f"{tmp}/t", trajectory_to_bart(trajectory.coords.detach().cpu().numpy()))
                extra = ["-t", f"{tmp}/t", "-e"]  # -e: FISTA step from the maximum eigenvalue
            regularizer = self._regularizer_args(self.weight_for(mask))

            def one_slice(index: int) -> np.ndarray:
                data = kspace[index].detach().cpu().numpy()  # (C, H, W), or (C, shots, samples)
                if coil_maps is None:
                    maps = np.ones((data.shape[0], *shape), np.complex64)
                else:
                    maps = coil_maps[index].detach().cpu().numpy()
                base = f"{tmp}/{index}"
                odd = [axis for axis in (1, 2) if trajectory is None and shape[axis - 1] % 2]
                if trajectory is None:  # odd grids padded to even (see _even), the maps resampled onto them
                    write_cfl(f"{base}k", np.transpose(_even(data, odd), (1, 2, 0))[:, :, None, :])
                    maps = _maps_on_even(maps, odd)
                else:  # (1, samples, shots, C)
                    write_cfl(f"{base}k", np.transpose(data, (2, 1, 0))[None])
                write_cfl(f"{base}s", np.transpose(maps, (1, 2, 0))[:, :, None, :])
                command = ["bart", "pics", "-S", "-n", "-i", str(self.max_iter), *extra, *regularizer,
                           f"{base}k", f"{base}s", f"{base}x"]
                result = subprocess.run(command, capture_output=True, text=True, env=env)
                if result.returncode != 0:
                    raise RuntimeError(f"bart pics failed ({result.returncode}): {result.stderr.strip()[-500:]}")
                padded = [size + (axis + 1 in odd) for axis, size in enumerate(shape)]
                return _odd_again(read_cfl(f"{base}x").reshape(padded), [axis - 1 for axis in odd])

            # pics runs on one core here (docs/results.md, "Tour commands in minutes"): one
            # process per core, each on its own slices
            workers = max(1, min(kspace.shape[0], os.cpu_count() or 1))
            env = _single_thread_env() if workers > 1 else None
            if workers == 1:
                out = [one_slice(index) for index in range(kspace.shape[0])]
            else:
                with ThreadPoolExecutor(max_workers=workers) as pool:
                    out = list(pool.map(one_slice, range(kspace.shape[0])))
        image = torch.from_numpy(np.stack(out).astype(np.complex64)).to(kspace.device)
        return image if coil_maps is None else image * coil_support(coil_maps)


@register("bart-l1")
class BartL1(_BartPics):
    """``bart pics -R W:3:0:lambda``: L1-wavelet CS (BART scales the data itself)."""

    description = "BART pics, L1-wavelet"
    weight_table = ((0.1, 3e-3), (0.5, 3e-3))
    trajectory_weight_table = ((0.1, 1e-3), (0.5, 1e-3))  # pics -t: docs/results.md, "Non-Cartesian"

    def _regularizer_args(self, reg_weight):
        return ["-R", f"W:3:0:{reg_weight}"]


@register("bart-tv")
class BartTV(_BartPics):
    """``bart pics -R T:3:0:lambda``: total variation over x and y."""

    description = "BART pics, total variation"
    weight_table = ((0.1, 1e-2), (0.5, 1e-2))
    trajectory_weight_table = ((0.1, 1e-3), (0.5, 1e-3))

    def _regularizer_args(self, reg_weight):
        return ["-R", f"T:3:0:{reg_weight}"]


REGULARIZERS_3D = {"bart-l1": "W:7:0:{}", "bart-tv": "T:7:0:{}"}
"""``pics -R`` of the 3-D anchors: L1-wavelet or total variation over x, y and z (flag 7)."""


def pics_volume(hybrid: torch.Tensor, mask: np.ndarray, method: str, reg_weight: float | None = None,
                max_iter: int | None = 100, calibration: tuple[int, int] = (24, 24)) -> tuple[torch.Tensor, dict[str, float]]:
    """BART on a whole 3-D acquisition, as a BART user runs it: the hybrid planes back to
    3-D k-space ``(X, Y, Z, C)``, ``bart ecalib -m1 -r -k`` (3-D ESPIRiT, its own maps
    from the fully sampled centre: 24 readout points by the (ky, kz) ``calibration``
    block, the kernel at most 6 and half the block on each axis), then ``bart pics`` with 3-D
    L1-wavelet or TV (:data:`REGULARIZERS_3D`), every core to the one process. Returns the
    volume ``(X, Y, Z)`` and the seconds of each step. ``reg_weight`` None: the method's
    2-D table weight; ``max_iter`` 100 as the 2-D adapters (None: BART's own default, 30,
    which left a toy volume at 25.3 dB against 29.5 with 100; 100 takes 11 minutes on a
    1 mm head with 8 coils).

    Shapes
    ------
    hybrid ``(X, C, Y, Z)``; mask ``(Y, Z)`` bool -> ``(X, Y, Z)`` complex64.
    """
    import time

    from physics.volume import from_hybrid
    from recon.registry import get

    if shutil.which("bart") is None:
        raise MethodUnavailable(f"method {method!r} is unavailable: the `bart` binary is not on PATH")
    if method not in REGULARIZERS_3D:
        raise ValueError(f"no 3-D BART anchor for {method!r}; valid: {', '.join(REGULARIZERS_3D)}")
    weight = reg_weight if reg_weight is not None else get(method).weight_for(torch.from_numpy(np.asarray(mask, bool)))
    kspace = from_hybrid(hybrid.to(torch.complex64) * torch.from_numpy(np.asarray(mask, bool)))  # (C, X, Y, Z)
    odd = [axis for axis in (1, 2, 3) if kspace.shape[axis] % 2]
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="recon-bart3d-") as tmp:
        write_cfl(f"{tmp}/k", np.moveaxis(_even(kspace.numpy(), odd), 0, -1))
        del kspace
        region = (min(24, hybrid.shape[0]), *calibration)
        kernel = [max(2, min(6, side // 2)) for side in region]
        ecalib = ["bart", "ecalib", "-m1", "-r", ":".join(map(str, region)), "-k", ":".join(map(str, kernel))]
        for step, command in (("ecalib", [*ecalib, f"{tmp}/k", f"{tmp}/s"]),
                              ("pics", ["bart", "pics", "-S", "-n", *(["-i", str(max_iter)] if max_iter else []), "-R",
                                        REGULARIZERS_3D[method].format(weight), f"{tmp}/k", f"{tmp}/s", f"{tmp}/x"])):
            started = time.perf_counter()
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"bart {step} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
            seconds[step] = time.perf_counter() - started
        padded = [hybrid.shape[0], *hybrid.shape[2:]]
        for axis in odd:
            padded[axis - 1] += 1
        volume = _odd_again(read_cfl(f"{tmp}/x").reshape(padded), [axis - 1 for axis in odd])
    return torch.from_numpy(volume.astype(np.complex64)), seconds


def _even(kspace: np.ndarray, axes: list[int]) -> np.ndarray:
    """``kspace`` with one unmeasured (zero) sample put before the first along each of
    ``axes`` (odd sizes): ``bart pics`` reconstructs wrongly on odd grids (Colin27's
    181 x 217 planes: below zero-filled, while ``bart fft`` agrees with ours), and one more
    sample at the low end keeps the k-space centre where ``N // 2`` of the even grid puts it."""
    pad = [(1, 0) if axis in axes else (0, 0) for axis in range(kspace.ndim)]
    return np.pad(kspace, pad) if axes else kspace


def _maps_on_even(maps: np.ndarray, axes: list[int]) -> np.ndarray:
    """Coil maps ``(C, H, W)`` resampled onto the :func:`_even` grid: their k-space with
    the sample put before the first along each of ``axes``, keeping their values (a
    sensitivity is not an image: the orthonormal transform's size factor is undone)."""
    from physics.fft import fft1c, ifft1c

    data = torch.from_numpy(np.ascontiguousarray(maps.astype(np.complex64)))
    for axis in axes:
        moved = data.movedim(axis, -1)
        size = moved.shape[-1]
        spectrum = torch.nn.functional.pad(fft1c(moved, dim=-1), (1, 0))
        data = (ifft1c(spectrum.contiguous(), dim=-1) * ((size + 1) / size) ** 0.5).movedim(-1, axis)
    return data.numpy()


def _odd_again(image: np.ndarray, axes: list[int]) -> np.ndarray:
    """The image of an :func:`_even` grid back on the odd grid: its k-space without the
    added sample (centred, orthonormal FFTs along each of ``axes``)."""
    from physics.fft import fft1c, ifft1c

    data = torch.from_numpy(np.ascontiguousarray(image.astype(np.complex64)))
    for axis in axes:
        moved = data.movedim(axis, -1)
        spectrum = fft1c(moved, dim=-1)[..., 1:]  # orthonormal both ways: the measured samples, unscaled
        data = ifft1c(spectrum.contiguous(), dim=-1).movedim(-1, axis)
    return data.numpy()
