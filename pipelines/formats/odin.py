"""ODIN's virtual samples (``.smp``) and coil files (``.coi``): JCAMP-DX text with
base64 arrays.

An array parameter is written as ``##$NAME=( d1, d2, ... )`` followed by a line
``Encoding:base64,littleEndian,float`` (or ``complex``) and base64 text up to the next
``##``. The Debian package ``odin`` ships ``samples/brain_128x128.smp`` (quantitative
T1 and T2 maps in ms, and spin density, of a real brain slice) and
``coils/Array8Channel.coi`` (8-channel complex sensitivities).
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path

import numpy as np

from pipelines.formats.study import InputError

_ARRAY = re.compile(r"##\$(\w+)=\(\s*([\d,\s]+)\)\s*\nEncoding:base64,littleEndian,(float|complex)\s*\n(.*)", re.S)
MAX_BYTES = 64 << 20


def read_jcamp_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every base64 array parameter of an ODIN JCAMP-DX file, shaped as declared.

    Raises :class:`InputError` naming the file when an array's data does not match its
    declared shape or the file is larger than 64 MiB.
    """
    path = Path(path)
    if path.stat().st_size > MAX_BYTES:
        raise InputError(f"{path}: {path.stat().st_size} bytes is too large for an ODIN parameter file")
    text = path.read_bytes().decode("latin-1")
    arrays = {}
    for block in re.split(r"\n(?=##)", text):
        match = _ARRAY.match(block.strip("\n"))
        if not match:
            continue
        name, dims, kind, payload = match.groups()
        shape = tuple(int(d) for d in dims.replace(" ", "").split(",") if d)
        dtype = np.dtype("<f4") if kind == "float" else np.dtype("<c8")
        try:
            data = base64.b64decode("".join(payload.split()), validate=True)
        except (binascii.Error, ValueError) as error:
            raise InputError(f"{path}: {name}: invalid base64 data ({error})") from None
        if len(data) != int(np.prod(shape)) * dtype.itemsize:
            raise InputError(f"{path}: {name} declares {shape} but holds {len(data)} bytes")
        arrays[name] = np.frombuffer(data, dtype).reshape(shape).copy()
    return arrays


def weighted_images(sample: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """T1-, T2-, proton-density- and FLAIR-weighted images from an ODIN sample's maps,
    with the spin-echo and inversion-recovery signal equations
    ``S = PD (1 - 2 e^{-TI/T1} + e^{-TR/T1}) e^{-TE/T2}`` (no inversion: drop the
    ``2 e^{-TI/T1}`` and the ``1 -`` becomes ``1 - e^{-TR/T1}``). Times in ms; the
    magnitude of the inversion-recovery signal is taken, as a magnitude image shows it.

    Shapes
    ------
    each map ``(..., H, W)`` -> each image ``(H, W)`` float32.
    """
    t1 = np.maximum(sample["T1map"].reshape(sample["T1map"].shape[-2:]), 1e-3)
    t2 = np.maximum(sample["T2map"].reshape(sample["T2map"].shape[-2:]), 1e-3)
    density = sample["spinDensity"].reshape(sample["spinDensity"].shape[-2:])
    protocols = {  # (TR, TE, TI or None), ms
        "T1w": (500.0, 15.0, None),
        "T2w": (4000.0, 100.0, None),
        "PD": (4000.0, 15.0, None),
        "FLAIR": (9000.0, 100.0, 2500.0),
    }
    images = {}
    for name, (tr, te, ti) in protocols.items():
        recovery = 1 - np.exp(-tr / t1) if ti is None else 1 - 2 * np.exp(-ti / t1) + np.exp(-tr / t1)
        images[name] = np.abs(density * recovery * np.exp(-te / t2)).astype(np.float32)
    return images
