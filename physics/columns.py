"""A 1-D Cartesian acquisition in hybrid space, holding only its sampled columns.

:class:`~physics.operators.HybridCartesian` maps an image to hybrid data ``(B, C, H, W)``
that is zero outside the sampled phase-encode columns. At the low ratios where learned
and iterative reconstruction matter, most of that array is zeros that every conjugate-
gradient iteration and every data-consistency stage still multiplies, subtracts and
sums. :class:`SampledColumns` is the same operator restricted to the ``K`` sampled
columns, ``x -> P F_W (S x)`` with ``P`` the column selection: its data are
``(B, C, H, K)``, and the centred 1-D DFT of only those columns is one matrix product
with a ``(W, K)`` block of the DFT matrix while ``K`` is small; above
:data:`MATRIX_FRACTION` of the columns the full 1-D FFT followed by the column selection
is cheaper, and the operator uses it. Every data-space operation shrinks by ``W / K``.

Readout rows where every coil map is zero (ESPIRiT maps outside the object) give zero
data and a zero adjoint, so the transforms run on the rows from the first to the last
that a map covers.

Least-squares iterates and data-consistency images are the same as with the full
hybrid operator: ``P`` is an isometry on the sampled columns, and the unsampled ones
carry zeros in both the data and the model.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from physics.fft import centring_signs, fft1c, ifft1c
from physics.linear import coil_sum
from physics.operators import LinearOperator

MAX_FRACTION = 1 / 3
"""Above this fraction of sampled columns :meth:`SampledColumns.of` declines and the full
hybrid operator is used (the limit set when the transform was always a matrix product;
not measured again since the FFT path)."""

MATRIX_FRACTION = 0.15
"""Up to this fraction of sampled columns the transform is a matrix product with the
``(W, K)`` block of the DFT matrix; above it, the full 1-D FFT and a selection of the
columns. Measured on 2 idle cores (one forward and one adjoint, complex64): 8 coils at
640x368, 16-17 ms by the product against 10-12 ms by the FFT at K/W = 0.10-0.25, but
18 against 29 ms at 0.05; 8 coils at 256x256, the FFT ahead from 0.10; one coil at
256x256, the product ahead up to 0.20 by 0.05 ms or less. On one thread the FFT of 368
points (a factor 23) is slower, and at 640x368 the product stays ahead up to 0.20.
The two give the same values to float rounding."""


class _Parts(NamedTuple):
    """A :class:`SampledColumns` transform's constants for one device and dtype."""

    maps: torch.Tensor | None  # (B, C, H, W), times the input modulation on the FFT path
    conjugate: torch.Tensor | None  # their conjugate
    dft: torch.Tensor | None  # (W, K) block of the centred DFT matrix (matrix path)
    inverse: torch.Tensor | None  # its adjoint (K, W)
    columns: torch.Tensor  # (K,) long
    modulation: torch.Tensor | None  # (W,) signs (-1)^n (FFT path, even W)
    signs: torch.Tensor | None  # (K,) output signs on the sampled columns (FFT path, even W)
    rows: slice | None  # the readout rows where a map is non-zero, when not all (maps and conjugate hold only these)


class SampledColumns(LinearOperator):
    """``x -> P F_W (S x)``: the sampled phase-encode columns of a 1-D Cartesian
    acquisition, with the readout axis H in image space.

    Parameters
    ----------
    columns : torch.Tensor
        Long ``(K,)``: the sampled columns, ``0 <= k < width``, shared by the batch.
    width : int
        W, the number of phase-encode columns.
    coil_maps : torch.Tensor or None
        Complex ``(B, C, H, W)`` (B may be 1 for maps shared by the batch); None for
        single-coil data.

    Shapes
    ------
    forward: image ``(B, H, W)`` -> data ``(B, C, H, K)``; adjoint the reverse.
    """

    cartesian = True

    def __init__(self, columns: torch.Tensor, width: int, coil_maps: torch.Tensor | None = None):
        super().__init__()
        columns = torch.as_tensor(columns).reshape(-1).long()
        if columns.numel() and (int(columns.min()) < 0 or int(columns.max()) >= width):
            raise ValueError(f"SampledColumns: columns must lie in [0, {width}), got {columns.min()}..{columns.max()}")
        if coil_maps is not None and coil_maps.shape[-1] != width:
            raise ValueError(f"SampledColumns: coil maps of width {coil_maps.shape[-1]}, expected {width}")
        self.width = int(width)
        self.register_buffer("columns", columns)
        self.register_buffer("_coil_maps", coil_maps)
        mask = torch.zeros(1, 1, width, dtype=torch.bool, device=columns.device)  # indexed by columns: theirs
        mask[..., columns] = True
        self.register_buffer("mask", mask)  # what callers that look at a mask see
        self._cache = None
        self._scratch = None

    @classmethod
    def of(cls, mask: torch.Tensor, coil_maps: torch.Tensor | None = None) -> SampledColumns | None:
        """The compact operator of a hybrid mask ``(..., 1, W)`` when every batch item
        samples the same columns and at most :data:`MAX_FRACTION` of them, else None."""
        rows = mask.reshape(-1, mask.shape[-1])
        if not bool((rows == rows[:1]).all()):
            return None
        columns = torch.nonzero(rows[0]).reshape(-1)
        if columns.numel() == 0 or columns.numel() > MAX_FRACTION * mask.shape[-1]:
            return None
        return cls(columns, mask.shape[-1], coil_maps)

    @property
    def coil_maps(self) -> torch.Tensor | None:
        return self._coil_maps

    def measurement(self, kspace: torch.Tensor) -> torch.Tensor:
        """Measured k-space ``(B, C, H, W)`` in this operator's range: the sampled
        columns of ``F_H^H y``, ``(B, C, H, K)``."""
        return ifft1c(kspace[..., self.columns.to(kspace.device)], dim=-2)

    @property
    def by_matrix(self) -> bool:
        """Whether the transform is a matrix product (few columns) or an FFT and a
        selection (:data:`MATRIX_FRACTION`)."""
        return self.columns.numel() <= MATRIX_FRACTION * self.width

    def _parts(self, like: torch.Tensor) -> _Parts:
        """What a transform needs, for ``like``'s device and dtype (computed once)."""
        key = (like.device, like.dtype)
        if self._cache is None or self._cache[0] != key:
            columns = self.columns.to(like.device)
            maps = None if self._coil_maps is None else self._coil_maps.to(device=like.device, dtype=like.dtype)
            dft = inverse = modulation = signs = None
            if self.by_matrix:
                identity = torch.eye(self.width, dtype=torch.complex128, device=like.device)
                dft = fft1c(identity, dim=-1)[:, columns].to(like.dtype)
                inverse = dft.conj().T.contiguous()
            elif self.width % 2 == 0:
                # fft1c is (-1)^(W/2) (-1)^k fft((-1)^n x) for an even W (physics.fft.centring_signs):
                # the input signs go into the maps once, the output signs onto the K columns
                modulation, after = centring_signs(self.width, like.real.dtype, like.device)
                signs = after[columns]
                maps = None if maps is None else maps * modulation
            rows = None if maps is None else _support_rows(maps)
            if rows is not None:
                maps = maps[..., rows, :].contiguous()
            conjugate = None if maps is None else maps.conj().resolve_conj()
            self._cache = (key, _Parts(maps, conjugate, dft, inverse, columns, modulation, signs, rows))
        return self._cache[1]

    def _check(self, x: torch.Tensor, ndim: int, name: str) -> None:
        height = None if self._coil_maps is None else self._coil_maps.shape[-2]
        coils = 1 if self._coil_maps is None else self._coil_maps.shape[1]
        last = self.width if ndim == 3 else self.columns.numel()
        if x.ndim != ndim or x.shape[-1] != last or (height is not None and x.shape[-2] != height) or (
                ndim == 4 and x.shape[1] != coils):
            what = "image (B, H, W)" if ndim == 3 else f"data (B, {coils}, H, K)"
            raise ValueError(f"{name}: expected {what} with H = {height or 'any'}, "
                             f"{'W' if ndim == 3 else 'K'} = {last}, got {tuple(x.shape)}")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self._check(image, 3, "SampledColumns")
        parts = self._parts(image)
        if parts.rows is None:
            return self._forward(image, parts)
        # Rows where every map is zero give zero data: transform only the others.
        data = image.new_zeros(image.shape[0], parts.maps.shape[1], image.shape[-2], parts.columns.numel())
        data[..., parts.rows, :] = self._forward(image[..., parts.rows, :], parts)
        return data

    def adjoint(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data, 4, "SampledColumns.H")
        parts = self._parts(data)
        if parts.rows is None:
            return self._adjoint(data, parts)
        image = data.new_zeros(data.shape[0], data.shape[-2], self.width)
        image[..., parts.rows, :] = self._adjoint(data[..., parts.rows, :], parts)
        return image

    @staticmethod
    def _forward(image: torch.Tensor, parts: _Parts) -> torch.Tensor:
        if parts.maps is not None:
            coil_images = parts.maps * image.unsqueeze(1)
        else:
            coil_images = (image if parts.modulation is None else image * parts.modulation).unsqueeze(1)
        if parts.dft is not None:
            return coil_images @ parts.dft
        if parts.signs is None:  # an odd width: the shifts are rolls
            return fft1c(coil_images, dim=-1)[..., parts.columns]
        return torch.fft.fft(coil_images, dim=-1, norm="ortho")[..., parts.columns] * parts.signs

    def _zeros_outside(self, data: torch.Tensor) -> torch.Tensor:
        """A ``(..., W)`` array for ``data``'s columns to be written into, zero on every other
        column. Without a gradient it is kept and reused: only the sampled columns are ever
        written, so the others stay zero, and a multi-coil slice's adjoints skip writing
        the whole array (1 of 7 ms per 8-coil 640x368 adjoint). A reconstruction builds its
        own operator, so no two threads share one."""
        shape = (*data.shape[:-1], self.width)
        if torch.is_grad_enabled():
            return data.new_zeros(shape)
        kept = self._scratch
        if kept is None or kept.shape != shape or kept.dtype != data.dtype or kept.device != data.device \
                or kept.is_inference() != torch.is_inference_mode_enabled():  # no in-place writes across the two
            kept = self._scratch = data.new_zeros(shape)
        return kept

    def _adjoint(self, data: torch.Tensor, parts: _Parts) -> torch.Tensor:
        if parts.inverse is not None:
            coil_images = data @ parts.inverse
        else:
            full = self._zeros_outside(data)
            if parts.signs is None:
                full[..., parts.columns] = data
                coil_images = ifft1c(full, dim=-1)
            else:
                full[..., parts.columns] = data * parts.signs
                coil_images = torch.fft.ifft(full, dim=-1, norm="ortho")
        if parts.conjugate is not None:
            return coil_sum(parts.conjugate, coil_images)
        return coil_images[:, 0] if parts.modulation is None else coil_images[:, 0] * parts.modulation


def _support_rows(maps: torch.Tensor) -> slice | None:
    """The readout rows from the first to the last where some map is non-zero (ESPIRiT
    maps vanish outside the object), or None when that is every row (or none)."""
    rows = torch.nonzero((maps != 0).flatten(0, 1).any(dim=0).any(dim=-1)).reshape(-1)
    if rows.numel() == 0 or (int(rows[0]) == 0 and int(rows[-1]) == maps.shape[-2] - 1):
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1)
