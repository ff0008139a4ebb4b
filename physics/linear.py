"""The operator algebra every physics operator shares: ``A(x)``, ``A.H``, ``A.normal()``
and ``A @ B`` (:class:`LinearOperator`, its adjoint and compositions)."""

from __future__ import annotations

import torch
from torch import nn


class LinearOperator(nn.Module):
    """Base of every linear operator: subclasses implement :meth:`forward` and
    :meth:`adjoint`; composition, ``.H`` and ``.normal()`` come from here."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def H(self) -> LinearOperator:  # noqa: N802 - the usual name of the adjoint
        return Adjoint(self)

    def normal(self, x: torch.Tensor | None = None):
        """``A^H A`` as an operator, or applied to ``x`` when it is given."""
        if x is None:
            return Composed(self.H, self)
        return self.adjoint(self.forward(x))

    def __matmul__(self, other: LinearOperator) -> LinearOperator:
        if not isinstance(other, LinearOperator):
            return NotImplemented
        return Composed(self, other)


class Adjoint(LinearOperator):
    """The adjoint of an operator, as an operator."""

    def __init__(self, operator: LinearOperator):
        super().__init__()
        self.operator = operator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.operator.adjoint(x)

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.operator.forward(y)

    @property
    def H(self) -> LinearOperator:  # noqa: N802
        return self.operator


class Composed(LinearOperator):
    """``outer @ inner``: ``x -> outer(inner(x))``."""

    def __init__(self, outer: LinearOperator, inner: LinearOperator):
        super().__init__()
        self.outer, self.inner = outer, inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.outer(self.inner(x))

    def adjoint(self, y: torch.Tensor) -> torch.Tensor:
        return self.inner.adjoint(self.outer.adjoint(y))
