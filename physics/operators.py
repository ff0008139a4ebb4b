"""Linear MRI operators as values: ``A(x)``, ``A.H``, ``A.normal()`` and ``A @ B``.

Every operator is a :class:`LinearOperator` (a ``torch.nn.Module``, so masks and coil
maps are buffers that follow ``.to(device)``) with ``forward(x) -> y`` and
``adjoint(y) -> x``. From those two the algebra follows:

- ``A.H`` is the adjoint as an operator (``A.H.H is A``);
- ``A.normal()`` is ``A^H A`` as an operator, and ``A.normal(x)`` applies it;
- ``A @ B`` composes (``(A @ B)(x) == A(B(x))``, ``(A @ B).H == B.H @ A.H``).

Operators never change in place: :meth:`with_mask` returns a new one. Each checks the
shape it is given and names what it expected. :func:`sampling_operator` picks the
single- or multi-coil Cartesian operator; the operators of super-resolution (a k-space
crop, a slice average) are in :mod:`physics.resolution`. Every operator passes the
shared adjointness test ``<A x, y> == <x, A^H y>`` (``tests/physics/test_operators.py``).
"""

from __future__ import annotations

import functools

import torch

from physics.fft import centring_ramps, centring_signs, ifft1c
from physics.linear import LinearOperator, coil_sum


def _mask_buffer(mask: torch.Tensor) -> torch.Tensor:
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be bool, got {mask.dtype}")
    if mask.ndim < 2:
        raise ValueError(f"mask must be at least (H, W), got shape {tuple(mask.shape)}")
    return mask


def _check_image(image: torch.Tensor, mask: torch.Tensor, name: str) -> None:
    if image.ndim != 3:
        raise ValueError(f"{name}: image must be (B, H, W), got shape {tuple(image.shape)}")
    if tuple(image.shape[-2:]) != tuple(mask.shape[-2:]):
        raise ValueError(f"{name}: image of (H, W) = {tuple(image.shape[-2:])} does not match the mask's {tuple(mask.shape[-2:])}")


def _check_kspace(kspace: torch.Tensor, mask: torch.Tensor, coils: int | None, name: str) -> None:
    if kspace.ndim != 4:
        raise ValueError(f"{name}: k-space must be (B, C, H, W), got shape {tuple(kspace.shape)}")
    if tuple(kspace.shape[-2:]) != tuple(mask.shape[-2:]):
        raise ValueError(f"{name}: k-space of (H, W) = {tuple(kspace.shape[-2:])} does not match the mask's {tuple(mask.shape[-2:])}")
    if coils is not None and kspace.shape[1] != coils:
        raise ValueError(f"{name}: k-space has {kspace.shape[1]} coils, the operator {coils}")


def _plain_parts(operator, like: torch.Tensor, axes: tuple[int, ...] = (-2, -1)):
    """``(maps, conjugate maps, weights, conjugate weights, transform, inverse)`` of a
    Cartesian operator's application over ``axes`` (:class:`SingleCoil`, :class:`MultiCoil`:
    both image axes; :class:`HybridCartesian`: the phase-encode axis), computed once per
    device and dtype. The centred FFT is ``a FFT(b u)`` with ``b`` and ``a`` products of one
    pattern per axis: for an even size the signs ``(-1)^n`` and ``(-1)^(N/2) (-1)^k``
    (:func:`physics.fft.centring_signs`), for an odd one phase ramps
    (:func:`physics.fft.centring_ramps`); the inverse is ``conj(b) IFFT(conj(a) U)``. ``b``
    is folded into the maps (single-coil: the maps are ``b``) and ``a`` into the mask
    weights, so each application is a plain FFT with no shifts or flips of its own (two
    full-array products or copies fewer per transform; the same values to rounding)."""
    dtype = like.dtype if like.is_complex() else torch.complex128 if like.dtype == torch.float64 else torch.complex64
    cache = operator._cache
    if cache is not None and cache[2].device == like.device and cache[2].dtype == dtype:
        return cache
    real = torch.float64 if dtype == torch.complex128 else torch.float32
    before = after = torch.ones((), dtype=real, device=like.device)
    for axis in axes:
        size = operator.mask.shape[axis]
        first, second = centring_signs(size, real, like.device) if size % 2 == 0 else centring_ramps(size, dtype, like.device)
        shape = (-1,) + (1,) * (-1 - axis)
        before, after = before * first.reshape(shape), after * second.reshape(shape)
    maps = before.to(dtype) if operator.coil_maps is None else operator.coil_maps.to(like.device) * before
    weights = (operator.mask.to(like.device) * after).to(dtype)
    transform = functools.partial(torch.fft.fftn, dim=axes, norm="ortho")
    inverse = functools.partial(torch.fft.ifftn, dim=axes, norm="ortho")
    operator._cache = (maps, maps.conj().resolve_conj(), weights, weights.conj().resolve_conj(), transform, inverse)
    return operator._cache


class SingleCoil(LinearOperator):
    """Single-coil Cartesian operator ``A x = M F x``.

    Parameters
    ----------
    mask : torch.Tensor
        Bool sampling mask broadcastable to ``(B, 1, H, W)``, normally ``(H, W)``.

    Shapes
    ------
    forward: image ``(B, H, W)`` -> k-space ``(B, 1, H, W)``.
    adjoint: k-space ``(B, 1, H, W)`` -> image ``(B, H, W)``.
    """

    cartesian = True

    def __init__(self, mask: torch.Tensor):
        super().__init__()
        self.register_buffer("mask", _mask_buffer(mask))
        self._cache = None

    @property
    def coil_maps(self) -> None:
        return None

    def with_mask(self, mask: torch.Tensor) -> SingleCoil:
        """A new operator with another mask."""
        return SingleCoil(mask)

    def hybrid(self) -> HybridCartesian | None:
        """This acquisition in hybrid space for a 1-D mask, else None (:class:`HybridCartesian`)."""
        return HybridCartesian.of(self.mask)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        _check_image(image, self.mask, "SingleCoil")
        signs, _, weights, _, transform, _ = _plain_parts(self, image)
        return transform((signs * image).unsqueeze(1)) * weights

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        _check_kspace(kspace, self.mask, 1, "SingleCoil.H")
        _, signs, _, weights, _, inverse = _plain_parts(self, kspace)
        return inverse(kspace * weights)[:, 0] * signs


class MultiCoil(LinearOperator):
    """Multi-coil SENSE operator ``A x = M F S x``.

    Parameters
    ----------
    mask : torch.Tensor
        Bool sampling mask broadcastable to ``(B, C, H, W)``, normally ``(H, W)``.
    coil_maps : torch.Tensor
        Complex coil sensitivities.

    Shapes
    ------
    coil_maps: ``(B, C, H, W)``.
    forward: image ``(B, H, W)`` -> k-space ``(B, C, H, W)``.
    adjoint: k-space ``(B, C, H, W)`` -> image ``(B, H, W)``.
    """

    cartesian = True

    def __init__(self, mask: torch.Tensor, coil_maps: torch.Tensor):
        super().__init__()
        if not torch.is_complex(coil_maps) or coil_maps.ndim != 4:
            raise ValueError(
                f"coil_maps must be complex (B, C, H, W), got {coil_maps.dtype} {tuple(coil_maps.shape)}"
            )
        self.register_buffer("mask", _mask_buffer(mask))
        self.register_buffer("coil_maps", coil_maps)
        self._cache = None

    def with_mask(self, mask: torch.Tensor) -> MultiCoil:
        """A new operator with another mask and the same coil maps."""
        return MultiCoil(mask, self.coil_maps)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        _check_image(image, self.mask, "MultiCoil")
        maps, _, weights, _, transform, _ = _plain_parts(self, image)
        return transform(maps * image.unsqueeze(1)) * weights

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        _check_kspace(kspace, self.mask, self.coil_maps.shape[1], "MultiCoil.H")
        _, conjugate, _, weights, _, inverse = _plain_parts(self, kspace)
        return coil_sum(conjugate, inverse(kspace * weights))

    def hybrid(self) -> HybridCartesian | None:
        """This acquisition in hybrid space when the mask is the same on every readout row
        (every 1-D Cartesian mask), else None: see :class:`HybridCartesian`."""
        return HybridCartesian.of(self.mask, self.coil_maps)


class HybridCartesian(LinearOperator):
    """Cartesian sampling of a 1-D mask in hybrid space, ``x -> M F_W (S x)``: the
    phase-encode axis W in k-space, the readout axis H still in image space (``S`` the
    coil maps, or none for single-coil data).

    The readout FFT ``F_H`` is unitary and commutes with a mask that is the same on every
    row, so ``A = F_H @ HybridCartesian`` for :class:`SingleCoil` and :class:`MultiCoil`
    alike. A least-squares fit ``min ||A x - y||`` or a data-consistency step is
    therefore the same computation with ``A_h`` and ``y_h = F_H^H y`` (:meth:`measurement`),
    with the same iterates and residual norms, and each application costs a 1-D FFT
    instead of a 2-D one (3 times cheaper for 8 coils at 640x368). Build it with the
    operators' ``hybrid()``.

    Parameters
    ----------
    mask : torch.Tensor
        Bool ``(..., 1, W)``: the sampled phase-encode columns.
    coil_maps : torch.Tensor or None
        Complex ``(B, C, H, W)``; None for single-coil data.

    Shapes
    ------
    forward: image ``(B, H, W)`` -> hybrid data ``(B, C, H, W)``; adjoint the reverse.
    """

    cartesian = True

    def __init__(self, mask: torch.Tensor, coil_maps: torch.Tensor | None = None):
        super().__init__()
        mask = _mask_buffer(mask)
        if mask.shape[-2] != 1:
            raise ValueError(f"HybridCartesian: mask must be (..., 1, W), got {tuple(mask.shape)}")
        self.register_buffer("mask", mask)
        self.register_buffer("_coil_maps", coil_maps)
        self._cache = None

    @classmethod
    def of(cls, mask: torch.Tensor, coil_maps: torch.Tensor | None = None) -> HybridCartesian | None:
        """The hybrid operator of ``mask`` (``(..., H, W)``) when every readout row of it is
        the same, else None."""
        rows = mask.reshape(-1, *mask.shape[-2:])
        if not bool((rows == rows[:, :1, :]).all()):
            return None
        return cls(mask[..., :1, :], coil_maps)

    @property
    def coil_maps(self) -> torch.Tensor | None:
        return self._coil_maps

    @staticmethod
    def measurement(kspace: torch.Tensor) -> torch.Tensor:
        """Measured k-space ``(B, C, H, W)`` in hybrid space: ``F_H^H y``."""
        return ifft1c(kspace, dim=-2)

    def _check(self, x: torch.Tensor, ndim: int, name: str) -> None:
        height = None if self._coil_maps is None else self._coil_maps.shape[-2]
        coils = 1 if self._coil_maps is None else self._coil_maps.shape[1]
        wrong = x.ndim != ndim or x.shape[-1] != self.mask.shape[-1] or (height is not None and x.shape[-2] != height)
        if ndim == 4 and not wrong and x.shape[1] != coils:
            raise ValueError(f"{name}: k-space has {x.shape[1]} coils, the operator {coils}")
        if wrong:
            what = "image must be (B, H, W)" if ndim == 3 else "k-space must be (B, C, H, W)"
            raise ValueError(f"{name}: {what} with (H, W) = ({height or 'any'}, {self.mask.shape[-1]}), got {tuple(x.shape)}")

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        self._check(image, 3, "HybridCartesian")
        maps, _, weights, _, transform, _ = _plain_parts(self, image, (-1,))
        return transform(maps * image.unsqueeze(1)) * weights

    def adjoint(self, data: torch.Tensor) -> torch.Tensor:
        self._check(data, 4, "HybridCartesian.H")
        _, conjugate, _, weights, _, inverse = _plain_parts(self, data, (-1,))
        return coil_sum(conjugate, inverse(data * weights))


def sampling_operator(mask, coil_maps: torch.Tensor | None = None) -> LinearOperator:
    """The operator of an acquisition: :class:`SingleCoil` without coil maps,
    :class:`MultiCoil` with them, and :class:`physics.nufft.NUFFT` for a non-Cartesian
    :class:`physics.nufft.Trajectory` in place of the mask.

    Shapes
    ------
    mask ``(H, W)`` bool, or a trajectory; coil_maps ``(B, C, H, W)`` complex or None.
    """
    from physics.nufft import NUFFT, Trajectory

    if isinstance(mask, Trajectory):
        return NUFFT(mask, coil_maps)
    mask = torch.as_tensor(mask)
    if mask.dtype != torch.bool:
        mask = mask.bool()
    return SingleCoil(mask) if coil_maps is None else MultiCoil(mask, coil_maps)


def sampling_ratio(mask) -> float:
    """The fraction of k-space a mask samples, or a trajectory's equivalent fraction of
    Nyquist (:attr:`physics.nufft.Trajectory.ratio`)."""
    ratio = getattr(mask, "ratio", None)
    if ratio is not None:
        return float(ratio)
    return float(torch.as_tensor(mask).float().mean())
