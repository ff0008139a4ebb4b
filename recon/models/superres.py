"""Super-resolution as k-space completion: what the four SR GAN generators share.

A low-resolution acquisition is the central ``h x w`` block of k-space (the ``lowres``
mask); zero-filling the rest is sinc interpolation (``zero-filled``), and an SR model
fills the rest. Every SR generator here is a :class:`SuperResolution` module:

1. ``x0 = A^H y`` (the zero-padded, sinc-interpolated image), normalised to a peak of 1;
2. the network works on a grid ``scale`` times coarser, ``pixel_unshuffle(x0)`` (no
   information is lost: for 4x SR on a 4x-coarser grid it is exactly the acquired
   low-resolution image's content), and returns a full-resolution residual through its
   own upsampling (sub-pixel convolution, deconvolution or interpolation + convolution);
3. hard data consistency puts the measured block back exactly (single-coil), or the
   exact least-squares step fits it (multi-coil), as for every learned method here.

The networks' last layers start at zero, so an untrained model is zero-padding.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from physics.consistency import DataConsistency
from physics.operators import LinearOperator
from recon.models.blocks import pad_to_multiple, run_cascade


def unshuffled_residual(body: nn.Module, channels: torch.Tensor, scale: int, multiple: int) -> torch.Tensor:
    """``body`` on ``channels`` padded to a ``multiple`` and pixel-unshuffled by ``scale``,
    cropped back: the full-resolution residual of an SR network.

    Shapes
    ------
    channels ``(B, 2, H, W)`` -> ``(B, 2, H, W)``.
    """
    padded, (height, width) = pad_to_multiple(channels, multiple)
    return body(F.pixel_unshuffle(padded, scale))[..., :height, :width]


class SuperResolution(nn.Module):
    """An SR generator: ``body`` maps the zero-padded image, pixel-unshuffled by
    ``scale`` (``(B, 2 scale^2, H/scale, W/scale)``), to a full-resolution residual
    ``(B, 2, H, W)``; then data consistency (see the module docstring). Images are
    padded to a ``multiple`` of the size (default ``scale``) the body needs.

    Shapes
    ------
    forward(kspace ``(B, C, H, W)``, operator with a lowres mask) -> ``(B, H, W)`` complex.
    """

    def __init__(self, body: nn.Module, scale: int, multiple: int | None = None):
        super().__init__()
        self.body, self.scale, self.multiple = body, int(scale), int(multiple or scale)
        self.consistency = nn.ModuleList([DataConsistency(weight=1.0)])

    def refine(self, channels: torch.Tensor) -> torch.Tensor:
        return unshuffled_residual(self.body, channels, self.scale, self.multiple)

    def forward(self, kspace: torch.Tensor, operator: LinearOperator) -> torch.Tensor:
        return run_cascade(kspace, operator, [self.refine], list(self.consistency))


def zero_last(layer: nn.Module) -> nn.Module:
    """Zero a layer's weights and bias: the network starts as the identity residual."""
    nn.init.zeros_(layer.weight)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


class SubPixelUp(nn.Module):
    """Sub-pixel convolution: a 3x3 convolution to ``out * 4`` channels, then
    ``pixel_shuffle(2)`` (ESPCN)."""

    def __init__(self, channels: int, out: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, out * 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), 2)


class DenseBlock(nn.Module):
    """ESRGAN's residual dense block: 5 convolutions, each seeing all earlier outputs,
    LeakyReLU, no batch normalisation, the output scaled by 0.2 and added."""

    def __init__(self, channels: int, growth: int):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(channels + index * growth, growth if index < 4 else channels, 3, padding=1)
                                    for index in range(5)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = [x]
        for index, conv in enumerate(self.convs):
            out = conv(torch.cat(features, dim=1))
            if index < 4:
                features.append(F.leaky_relu(out, 0.2))
        return x + 0.2 * out


class RRDB(nn.Module):
    """Residual-in-residual dense block: 3 dense blocks and a scaled outer skip."""

    def __init__(self, channels: int, growth: int):
        super().__init__()
        self.blocks = nn.Sequential(*[DenseBlock(channels, growth) for _ in range(3)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.2 * self.blocks(x)


class SpectralCritic(nn.Module):
    """A spectrally normalised convolutional discriminator (strided 4x4 convolutions,
    LeakyReLU, global average pooling, dense). ``paired=True`` judges (input, image)
    pairs: the condition ``(B, 2, H, W)``, the zero-padded input, is concatenated to
    the image.

    Shapes
    ------
    forward(``(B, 2, H, W)``, condition) -> ``(B,)``; with ``features=True`` also the
    feature map of every stage.
    """

    def __init__(self, width: int = 32, stages: int = 4, paired: bool = False):
        super().__init__()
        self.paired = paired
        layers, channels = [], 4 if paired else 2
        for index in range(stages):
            out = width * 2 ** min(index, 3)
            layers.append(nn.Sequential(spectral_norm(nn.Conv2d(channels, out, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
                                        spectral_norm(nn.Conv2d(out, out, 3, padding=1)), nn.LeakyReLU(0.2)))
            channels = out
        self.stages = nn.ModuleList(layers)
        self.dense = spectral_norm(nn.Linear(channels, 1))

    def forward(self, x: torch.Tensor, condition: torch.Tensor | None = None, features: bool = False):
        out = torch.cat([x, condition.to(x.dtype)], dim=1) if self.paired else x
        maps = []
        for stage in self.stages:
            out = stage(out)
            maps.append(out)
        score = self.dense(out.mean(dim=(-2, -1))).squeeze(-1)
        return (score, maps) if features else score
