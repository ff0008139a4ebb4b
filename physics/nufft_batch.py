"""A batch of non-Cartesian acquisitions, one trajectory per item (training batches).

Items may hold trajectories of different lengths (radial spokes, spiral interleaves):
each is padded to the batch's longest with samples marked invalid, which the operator
zeroes (``A x = V N x``, ``A^H y = N^H V y`` with ``V`` the valid samples), so padding
changes neither the forward model nor its adjoint, as all-zero coils do for coils.
"""

from __future__ import annotations

import torch

from physics.linear import LinearOperator
from physics.nufft import NUFFT, Trajectory


def pack_trajectory(trajectory: Trajectory, length: int) -> torch.Tensor:
    """``(length, 3)`` float32: the coordinates flattened and padded, then a column that is
    1 for real samples and 0 for padding."""
    coords = trajectory.coords.reshape(-1, 2).float()
    if coords.shape[0] > length:
        raise ValueError(f"a trajectory of {coords.shape[0]} samples does not fit {length}")
    packed = torch.zeros((length, 3))
    packed[: coords.shape[0], :2] = coords
    packed[: coords.shape[0], 2] = 1
    return packed


def unpack_trajectory(packed: torch.Tensor, image_shape: tuple[int, int]) -> Trajectory:
    """The trajectory of :func:`pack_trajectory` (its valid samples, ``(M, 2)``)."""
    valid = packed[:, 2] > 0.5
    return Trajectory(packed[valid, :2].float().contiguous(), tuple(image_shape))


class BatchedNUFFT(LinearOperator):
    """Per item ``b``, ``A_b x_b`` with its own trajectory and coil maps.

    Shapes
    ------
    packed ``(B, M, 3)`` (:func:`pack_trajectory`); coil_maps ``(B, C, H, W)``.
    forward: image ``(B, H, W)`` -> k-space ``(B, C, M)``; adjoint the reverse.
    """

    cartesian = False
    mask = None

    def __init__(self, packed: torch.Tensor, coil_maps: torch.Tensor, single_coil: bool = False):
        super().__init__()
        image_shape = tuple(coil_maps.shape[-2:])
        self.valid = packed[..., 2] > 0.5
        self.length = packed.shape[1]
        self.register_buffer("coil_maps", None if single_coil else coil_maps)
        self.items = [NUFFT(unpack_trajectory(item.cpu(), image_shape), None if single_coil else coil_maps[b:b + 1])
                      for b, item in enumerate(packed)]

    def _pad(self, data: torch.Tensor, b: int) -> torch.Tensor:
        out = data.new_zeros((*data.shape[:-1], self.length))
        out[..., self.valid[b].to(data.device)] = data
        return out

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._pad(op(image[b:b + 1]), b) for b, op in enumerate(self.items)])

    def adjoint(self, kspace: torch.Tensor) -> torch.Tensor:
        return torch.cat([op.adjoint(kspace[b:b + 1, ..., self.valid[b].to(kspace.device)])
                          for b, op in enumerate(self.items)])

    def gridding(self, kspace: torch.Tensor) -> torch.Tensor:
        return torch.cat([op.gridding(kspace[b:b + 1, ..., self.valid[b].to(kspace.device)])
                          for b, op in enumerate(self.items)])

    def normal(self, x: torch.Tensor | None = None):
        operator = _BatchedNormal([op.normal() for op in self.items])
        return operator if x is None else operator(x)

    def condition_mask(self) -> torch.Tensor:
        """Bool ``(B, 1, H, W)``: each item's grid cells (see :meth:`NUFFT.condition_mask`)."""
        return torch.stack([op.condition_mask() for op in self.items])[:, None]


class _BatchedNormal(LinearOperator):
    def __init__(self, normals: list[LinearOperator]):
        super().__init__()
        self.normals = normals

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.cat([normal(image[b:b + 1]) for b, normal in enumerate(self.normals)])

    def adjoint(self, image: torch.Tensor) -> torch.Tensor:
        return self.forward(image)
