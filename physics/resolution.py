"""The operators of super-resolution: a low-resolution acquisition keeps the central
block of k-space (:class:`KSpaceCrop`, in-plane), and a thick slice is the average of
thin ones (:class:`SliceAverage`, through-plane). Both are :class:`LinearOperator` values
and pass the shared adjointness test."""

from __future__ import annotations

import torch

from physics.operators import LinearOperator


class KSpaceCrop(LinearOperator):
    """Keep the central ``(h, w)`` block of k-space: a low-resolution acquisition.

    ``KSpaceCrop((h, w)) @ SingleCoil(ones)`` maps a high-resolution image to the
    k-space a low-resolution scan measures; its adjoint zero-pads (sinc interpolation).

    Shapes
    ------
    forward: k-space ``(B, C, H, W)`` -> ``(B, C, h, w)``; adjoint the reverse, with
    ``(H, W)`` the size of the last forward call or ``full_shape``.
    """

    def __init__(self, shape: tuple[int, int], full_shape: tuple[int, int]):
        super().__init__()
        if any(small > big for small, big in zip(shape, full_shape)):
            raise ValueError(f"crop {tuple(shape)} is larger than the full k-space {tuple(full_shape)}")
        self.shape, self.full_shape = tuple(shape), tuple(full_shape)

    def _window(self) -> tuple[slice, slice]:
        (h, w), (height, width) = self.shape, self.full_shape
        top, left = height // 2 - h // 2, width // 2 - w // 2
        return slice(top, top + h), slice(left, left + w)

    def forward(self, kspace: torch.Tensor) -> torch.Tensor:
        if tuple(kspace.shape[-2:]) != self.full_shape:
            raise ValueError(f"KSpaceCrop: k-space of {tuple(kspace.shape[-2:])}, expected {self.full_shape}")
        rows, columns = self._window()
        return kspace[..., rows, columns]

    def adjoint(self, block: torch.Tensor) -> torch.Tensor:
        if tuple(block.shape[-2:]) != self.shape:
            raise ValueError(f"KSpaceCrop.H: block of {tuple(block.shape[-2:])}, expected {self.shape}")
        full = block.new_zeros(*block.shape[:-2], *self.full_shape)
        rows, columns = self._window()
        full[..., rows, columns] = block
        return full


class SliceAverage(LinearOperator):
    """Thick slices from thin ones: along the first image axis (H, here the slice
    axis z), every group of ``factor`` rows is replaced by its mean.

    The measurement keeps the thin grid (each thick slice repeated ``factor`` times),
    so the operator is the orthogonal projector ``P`` onto images constant within
    each group: ``P^H = P`` and ``P P = P``, and :meth:`project` (``x + y - P x``) is
    the hard data consistency of through-plane super-resolution. ``factors`` may
    differ per batch item; H must be a multiple of each.

    Shapes
    ------
    forward: ``(B, H, W)`` -> ``(B, 1, H, W)``; adjoint the reverse.
    """

    def __init__(self, factors: torch.Tensor | int | list[int]):
        super().__init__()
        self.factors = [int(f) for f in torch.as_tensor(factors).reshape(-1).tolist()]
        if not self.factors or min(self.factors) < 1:
            raise ValueError(f"slice factors must be >= 1, got {self.factors}")

    mask = None
    coil_maps = None

    @staticmethod
    def starts(factor: int, shape: tuple[int, int]) -> torch.Tensor:
        """A ``(1, H, W)`` bool marker of the rows where each thick slice starts: how a
        training batch carries each item's factor in its mask slot."""
        marker = torch.zeros((1, *shape), dtype=torch.bool)
        marker[0, ::factor] = True
        return marker

    @classmethod
    def from_starts(cls, starts: torch.Tensor) -> SliceAverage:
        """The operator of a batch of :meth:`starts` markers ``(B, 1, H, W)``."""
        counts = starts[:, 0, :, 0].sum(dim=1)
        return cls([starts.shape[-2] // max(int(c), 1) for c in counts])

    def _average(self, image: torch.Tensor) -> torch.Tensor:
        if image.ndim != 3:
            raise ValueError(f"SliceAverage: image must be (B, H, W), got shape {tuple(image.shape)}")
        factors = self.factors if len(self.factors) == image.shape[0] else self.factors[:1] * image.shape[0]
        out = []
        for item, factor in zip(image, factors):
            if item.shape[0] % factor:
                raise ValueError(f"SliceAverage: {item.shape[0]} slices are not a multiple of the factor {factor}")
            groups = item.reshape(item.shape[0] // factor, factor, item.shape[1]).mean(dim=1, keepdim=True)
            out.append(groups.expand(-1, factor, -1).reshape(item.shape))
        return torch.stack(out)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self._average(image).unsqueeze(1)

    def adjoint(self, measured: torch.Tensor) -> torch.Tensor:
        if measured.ndim != 4 or measured.shape[1] != 1:
            raise ValueError(f"SliceAverage.H: measurement must be (B, 1, H, W), got shape {tuple(measured.shape)}")
        return self._average(measured[:, 0])

    def project(self, image: torch.Tensor, measured: torch.Tensor) -> torch.Tensor:
        """``x + y - P x``: the nearest image whose thick slices equal the measured ones."""
        return image + measured[:, 0] - self._average(image)
