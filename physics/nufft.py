"""Non-Cartesian sampling: a trajectory, the NUFFT operator, its Toeplitz normal
operator and density compensation.

The transform is FINUFFT's (type 2 forward, type 1 adjoint, tolerance
``NUFFT_TOLERANCE``): on 2 CPU threads it took 14 ms each way for 40 golden-angle spokes
of 512 samples on a 256² grid, where SigPy's Kaiser-Bessel NUFFT needed 44 / 38 ms for the
same accuracy (oversampling 2, width 6: 1.1e-5 against a direct DFT); SigPy's default
(1.25, 4) is 7e-3 off (docs/results.md, "Non-Cartesian", "The operator").

Conventions (docs/CONVENTIONS): coordinates ``(..., 2)`` in units of 1/FOV, from
``-N/2`` to ``N/2`` per axis, ordered like the image axes ``(H, W)``; k-space
``(B, C, *samples)`` with ``samples = coords.shape[:-1]`` (e.g. spokes x readout). The
forward transform is the centred orthonormal DFT at those frequencies, so on Cartesian
grid points it equals :func:`physics.fft.fft2c`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from physics.linear import LinearOperator

NUFFT_TOLERANCE = 1e-5
"""FINUFFT's requested relative accuracy: 1.1e-5 against a direct DFT, measured."""


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Sampling locations of a non-Cartesian acquisition.

    Parameters
    ----------
    coords : torch.Tensor
        float32 ``(..., 2)``, units of 1/FOV in ``[-N/2, N/2]`` per axis (H, W).
    image_shape : tuple[int, int]
        The reconstruction grid ``(H, W)``.
    dcf : torch.Tensor or None
        Density compensation ``coords.shape[:-1]``: each sample's area of k-space in
        units of (1/FOV)^2 (:func:`density_compensation`).
    kind, ratio :
        The trajectory's family and its equivalent fraction of Nyquist sampling.
    """

    coords: torch.Tensor
    image_shape: tuple[int, int]
    dcf: torch.Tensor | None = None
    kind: str = "custom"
    ratio: float = float("nan")
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        check_trajectory(self.coords, self.image_shape)
        if self.dcf is not None and tuple(self.dcf.shape) != tuple(self.coords.shape[:-1]):
            raise ValueError(f"density compensation of shape {tuple(self.dcf.shape)} does not match the trajectory's "
                             f"{tuple(self.coords.shape[:-1])} samples")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.coords.shape[:-1])

    @property
    def samples(self) -> int:
        return math.prod(self.sample_shape)

    def with_dcf(self, dcf: torch.Tensor) -> Trajectory:
        return Trajectory(self.coords, self.image_shape, dcf, self.kind, self.ratio, self.params)


def check_trajectory(coords: torch.Tensor, image_shape: tuple[int, int]) -> None:
    """Raise ``ValueError`` naming the problem: not ``(..., 2)``, no samples, non-finite
    coordinates, or coordinates outside ``[-N/2, N/2]`` of the grid."""
    if not isinstance(coords, torch.Tensor) or coords.is_complex() or not coords.is_floating_point():
        raise ValueError("trajectory coordinates must be a real floating-point tensor (..., 2)")
    if coords.ndim < 2 or coords.shape[-1] != 2:
        raise ValueError(f"trajectory coordinates must be (..., 2) (H, W), got shape {tuple(coords.shape)}")
    if coords.numel() == 0:
        raise ValueError("the trajectory has no samples (zero spokes or interleaves)")
    if len(image_shape) != 2 or min(image_shape) < 2:
        raise ValueError(f"image shape must be (H, W) with H, W >= 2, got {image_shape}")
    if not bool(torch.isfinite(coords).all()):
        raise ValueError("the trajectory has NaN or infinite coordinates")
    for axis, size in enumerate(image_shape):
        extent = float(coords[..., axis].abs().max())
        if extent > size / 2 + 1e-3:
            raise ValueError(f"trajectory coordinates reach {extent:.4g} on axis {axis}, outside +-{size / 2:g} "
                             f"(units of 1/FOV for a grid of {size})")


def _plan(kind: int, shape: tuple[int, int], coords: torch.Tensor, transforms: int, dtype: torch.dtype):
    import finufft

    double = dtype == torch.complex128
    points = (2 * math.pi * coords.detach().reshape(-1, 2).cpu().double() / torch.tensor(shape, dtype=torch.float64))
    points = points.numpy().astype(np.float64 if double else np.float32)
    plan = finufft.Plan(kind, shape, n_trans=transforms, eps=NUFFT_TOLERANCE, isign=-1 if kind == 2 else 1,
                        dtype="complex128" if double else "complex64", nthreads=torch.get_num_threads())
    plan.setpts(np.ascontiguousarray(points[:, 0]), np.ascontiguousarray(points[:, 1]))
    return plan


class _Transform(torch.autograd.Function):
    """The forward or adjoint NUFFT, differentiable (the gradient of one is the other)."""

    @staticmethod
    def forward(ctx, data, operator, direction):  # noqa: D401 - autograd's signature
        ctx.operator, ctx.direction = operator, direction
        return operator._execute(data, direction)

    @staticmethod
    def backward(ctx, grad):
        return ctx.operator._execute(grad.contiguous(), not ctx.direction), None, None


class NUFFT(LinearOperator):
    """Non-Cartesian operator ``A x = N (S x)`` (single coil: ``S = 1``).

    Parameters
    ----------
    trajectory : Trajectory
    coil_maps : torch.Tensor or None
        Complex ``(B, C, H, W)``.

    Shapes
    ------
    forward: image ``(B, H, W)`` -> k-space ``(B, C, *samples)``.
    adjoint: k-space ``(B, C, *samples)`` -> image ``(B, H, W)``.
    """

    cartesian = False
    mask = None

    def __init__(self, trajectory: Trajectory, coil_maps: torch.Tensor | None = None):
        super().__init__()
        if coil_maps is not None and (not torch.is_complex(coil_maps) or coil_maps.ndim != 4
                                      or tuple(coil_maps.shape[-2:]) != tuple(trajectory.image_shape)):
            raise ValueError(f"coil_maps must be complex (B, C, H, W) with (H, W) = {trajectory.image_shape}, got "
                             f"{coil_maps.dtype} {tuple(coil_maps.shape)}")
        self.trajectory = trajectory
        self.register_buffer("coil_maps", coil_maps)
        self._plans: dict = {}
        self._kernels: dict = {}

    @property
    def coils(self) -> int:
        return 1 if self.coil_maps is None else self.coil_maps.shape[1]

    def _execute(self, data: torch.Tensor, forward: bool) -> torch.Tensor:
        """Raw transform of ``(T, H, W)`` images (forward) or ``(T, *samples)`` k-space."""
        shape = tuple(self.trajectory.image_shape)
        transforms = data.shape[0]
        key = (forward, transforms, data.dtype)
        if key not in self._plans:
            self._plans[key] = _plan(2 if forward else 1, shape, self.trajectory.coords, transforms, data.dtype)
        array = data.detach().cpu().reshape(transforms, *(shape if forward else (-1,))).contiguous().numpy()
        out = torch.from_numpy(self._plans[key].execute(array)) / math.sqrt(shape[0] * shape[1])
        out = out.reshape(transforms, *(self.trajectory.sample_shape if forward else shape))
        return out.to(data.device)

    def _transform(self, data: torch.Tensor, forward: bool) -> torch.Tensor:
        inner = 2 if forward else len(self.trajectory.sample_shape)
        flat = data.reshape(-1, *data.shape[data.ndim - inner:])
        out = _Transform.apply(flat, self, forward)
        return out.reshape(*data.shape[: data.ndim - inner], *out.shape[1:])

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 3 or tuple(image.shape[-2:]) != tuple(self.trajectory.image_shape):
            raise ValueError(f"NUFFT: image must be (B, {self.trajectory.image_shape[0]}, "
                             f"{self.trajectory.image_shape[1]}), got shape {tuple(image.shape)}")
        coil_images = image.unsqueeze(1) if self.coil_maps is None else self.coil_maps * image.unsqueeze(1)
        return self._transform(coil_images, True)

    def _check_kspace(self, kspace: torch.Tensor, name: str) -> None:
        expected = (self.coils, *self.trajectory.sample_shape)
        if kspace.ndim != 2 + len(self.trajectory.sample_shape) or tuple(kspace.shape[1:]) != expected:
            raise ValueError(f"{name}: k-space must be (B, {', '.join(map(str, expected))}) for this trajectory, got "
                             f"shape {tuple(kspace.shape)}")

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        self._check_kspace(kspace, "NUFFT.H")
        coil_images = self._transform(kspace, False)
        return coil_images[:, 0] if self.coil_maps is None else (self.coil_maps.conj() * coil_images).sum(dim=1)

    def gridding(self, kspace: torch.Tensor) -> torch.Tensor:
        """``A^H D y``: the density-compensated adjoint (the gridding reconstruction),
        with the trajectory's density compensation (computed once when it has none)."""
        return self.adjoint(kspace * self.density().to(kspace.device))

    def density(self) -> torch.Tensor:
        if self.trajectory.dcf is None:
            self.trajectory = self.trajectory.with_dcf(density_compensation(self.trajectory))
        return self.trajectory.dcf

    def condition_mask(self) -> torch.Tensor:
        """Bool ``(H, W)``: the grid cells the trajectory passes through (a picture of the
        sampling for code that reads a Cartesian mask, e.g. a model's conditioning)."""
        height, width = self.trajectory.image_shape
        coords = self.trajectory.coords.detach().cpu()
        rows = (coords[..., 0] + height // 2).round().long().clamp(0, height - 1)
        cols = (coords[..., 1] + width // 2).round().long().clamp(0, width - 1)
        mask = torch.zeros(height, width, dtype=torch.bool)
        mask[rows.reshape(-1), cols.reshape(-1)] = True
        return mask

    def normal(self, x: torch.Tensor | None = None):
        """``A^H A`` as a Toeplitz operator (:class:`ToeplitzNormal`), or applied to ``x``."""
        operator = ToeplitzNormal(self)
        return operator if x is None else operator(x)

    def psf_spectrum(self, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
        """The FFT of ``h(d) = sum_m exp(2 pi i k_m . d / N)`` on the ``(2H, 2W)`` grid of
        offsets, circularly arranged (computed once per dtype)."""
        if dtype not in self._kernels:
            height, width = self.trajectory.image_shape
            plan = _plan(1, (2 * height, 2 * width), self.trajectory.coords * 2, 1, dtype)
            ones = np.ones(self.trajectory.samples, np.complex128 if dtype == torch.complex128 else np.complex64)
            # coordinates doubled on a doubled grid: the same frequencies, offsets -N..N-1
            psf = torch.from_numpy(plan.execute(ones)).reshape(2 * height, 2 * width)
            self._kernels[dtype] = torch.fft.fft2(torch.fft.ifftshift(psf)) / (height * width)
        return self._kernels[dtype]


class ToeplitzNormal(LinearOperator):
    """``A^H A`` of a :class:`NUFFT` without a NUFFT: per coil, a convolution with the
    point-spread function, computed by FFT on a grid of twice the size (exact up to the
    NUFFT's tolerance). Self-adjoint.

    Shapes
    ------
    image ``(B, H, W)`` -> ``(B, H, W)``.
    """

    def __init__(self, operator: NUFFT):
        super().__init__()
        self.operator = operator
        self.coil_maps = operator.coil_maps

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        height, width = self.operator.trajectory.image_shape
        kernel = self.operator.psf_spectrum(image.dtype).to(image.device)
        coil_images = image.unsqueeze(1) if self.coil_maps is None else self.coil_maps * image.unsqueeze(1)
        padded = torch.nn.functional.pad(coil_images, (0, width, 0, height))
        blurred = torch.fft.ifft2(torch.fft.fft2(padded) * kernel)[..., :height, :width]
        return blurred[:, 0] if self.coil_maps is None else (self.coil_maps.conj() * blurred).sum(dim=1)

    def adjoint(self, image: torch.Tensor) -> torch.Tensor:
        return self.forward(image)


def radial_density(trajectory: Trajectory) -> torch.Tensor:
    """Analytic density compensation of a radial trajectory (full spokes through the
    centre, equally spaced samples): each sample's share of the annulus it sits in,
    ``pi |k| dr / S`` for S spokes and sample spacing dr, and ``pi (dr/2)^2 / S`` at the
    centre.

    Shapes
    ------
    coords ``(S, R, 2)`` -> ``(S, R)``.
    """
    coords = trajectory.coords
    spokes = coords.shape[0]
    radius = coords.norm(dim=-1)
    step = float((coords[0, 1:] - coords[0, :-1]).norm(dim=-1).mean())
    return torch.maximum(math.pi * radius * step / spokes, torch.tensor(math.pi * step**2 / (4 * spokes)))


def voronoi_density(trajectory: Trajectory) -> torch.Tensor:
    """Density compensation by Voronoi areas (Rasche et al. 1999): each sample's weight is
    the area of the k-space cell closer to it than to any other sample, in units of
    (1/FOV)^2. Samples at the same location share their cell; a ring of guard points
    1/FOV outside the outermost sample bounds the cells on the edge, and a cell left
    unbounded takes the largest bounded area.

    Shapes
    ------
    coords ``(..., 2)`` -> ``coords.shape[:-1]`` float32.
    """
    from scipy.spatial import Voronoi

    points = trajectory.coords.detach().cpu().double().reshape(-1, 2).numpy()
    unique, inverse, counts = np.unique(np.round(points, 6), axis=0, return_inverse=True, return_counts=True)
    if len(unique) < 4:
        return torch.ones(trajectory.sample_shape)
    # a ring of guard points 1/FOV outside the outermost sample bounds the edge cells
    outer = float(np.hypot(unique[:, 0], unique[:, 1]).max()) + 1.0
    angles = np.linspace(0, 2 * np.pi, max(16, int(4 * np.pi * outer)), endpoint=False)
    ring = outer * np.stack([np.cos(angles), np.sin(angles)], axis=-1)
    diagram = Voronoi(np.concatenate([unique, ring]))
    areas = np.full(len(unique), np.nan)
    for index, region_index in enumerate(diagram.point_region[: len(unique)]):
        region = diagram.regions[region_index]
        if region and -1 not in region:
            x, y = diagram.vertices[region, 0], diagram.vertices[region, 1]
            areas[index] = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
    cap = np.nanmax(areas) if np.isfinite(areas).any() else 1.0
    areas = np.where(np.isfinite(areas), areas, cap)
    weights = (areas / counts)[inverse.reshape(-1)]
    return torch.from_numpy(weights.astype(np.float32)).reshape(trajectory.sample_shape)


def density_compensation(trajectory: Trajectory) -> torch.Tensor:
    """Density compensation: analytic for radial trajectories (:func:`radial_density`),
    Voronoi areas otherwise (:func:`voronoi_density`; SigPy's Pipe-Menon iteration was
    tried and left a spiral's gridding at 0.43 of the image's scale). Both are areas in
    units of (1/FOV)^2, the scale at which the gridding of a fully sampled disc keeps the
    image's intensity (orthonormal transforms).

    Shapes
    ------
    coords ``(..., 2)`` -> ``coords.shape[:-1]`` float32.
    """
    if trajectory.kind in ("radial", "radial-uniform", "radial-tiny-golden") and trajectory.coords.ndim == 3:
        dcf = radial_density(trajectory)
    else:
        dcf = voronoi_density(trajectory)
    return dcf.float().to(trajectory.coords.device)
