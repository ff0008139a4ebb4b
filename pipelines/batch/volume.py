"""``recon batch --acquisition 3d`` of image volumes (NIfTI, DICOM series, ``.npy``): a
3-D multi-coil acquisition simulated from each volume, as ``recon run --acquisition 3d``
simulates it (:mod:`pipelines.common.volume`), and the reconstructions written back on the
input's own voxel grid and geometry."""

from __future__ import annotations

import numpy as np

import masks
from pipelines.common.volume import COILS, SNR, centre_fraction, readout_planes, simulate
from pipelines.config import BatchConfig
from pipelines.formats import Study


def simulated_acquisition(study: Study, config: BatchConfig, notes: list[str]
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hybrid k-space ``(X, C, Y, Z)``, the (ky, kz) mask, the magnitude reference
    ``(X, Y, Z)`` and ESPIRiT maps of a 3-D acquisition of ``study``'s volume, with
    :data:`pipelines.common.volume.COILS` coils and noise at
    :data:`pipelines.common.volume.SNR` dB.
    Where the readout planes sit in the input is kept in ``study.meta["readout"]`` for
    :func:`restack`."""
    volume, ids, axis = readout_planes(study.images, study.meta.get("frequency_axis"), notes)
    first = int(ids[0][1:])
    study.meta["readout"] = {"axis": axis, "first": first, "size": study.images.shape[axis]}
    seed = masks.seed_from_name(study.name, config.seed)
    ratio = masks.parse_preset(config.mask)
    mask = masks.make_mask(ratio, volume.shape[1:], config.mask_type, seed=seed,
                           center_fraction=centre_fraction(None, volume.shape[1:], config.mask_type, ratio))
    notes.append(f"simulated 3-D acquisition: {COILS} birdcage coils, noise at "
                 f"{SNR:g} dB, mask over the (ky, kz) plane")
    kspace, truth, maps = simulate(np.abs(volume) if not np.iscomplexobj(volume) else volume, mask,
                                   COILS, SNR, False, seed, notes)
    return kspace.numpy(), mask.array, truth.abs().numpy(), maps.numpy()


def restack(study: Study, volume: np.ndarray) -> np.ndarray:
    """A reconstruction ``(X, Y, Z)`` of :func:`simulated_acquisition` back on the
    input's slice stack ``(N, H, W)``: the readout margin left out of the simulation is
    zero, the readout axis returns to its place. Identity for other studies."""
    readout = study.meta.get("readout")
    if readout is None:
        return volume
    full = np.zeros((readout["size"], *volume.shape[1:]), volume.dtype)
    full[readout["first"] : readout["first"] + len(volume)] = volume
    return np.moveaxis(full, 0, readout["axis"])
