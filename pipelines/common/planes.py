"""A 3-D acquisition's (ky, kz) planes are independent 2-D problems, so ``recon run`` and
``recon batch`` spread them over the cores they have, and a batch unit that runs on a
Dask worker spreads them over the cluster, as the batch spreads files.

- **Here** (:func:`reconstruct_planes`): one thread per torch thread of this process
  (:func:`pipelines.common.evaluation.in_parallel`), each with one torch thread. On 2
  cores, 16 planes of Colin27 with 8 coils: cs-tv 22.0 s in turn with 2 torch threads,
  16.1 s two planes at a time; gan-drn 3.1 and 2.5 s (docs/results.md, "3-D
  acquisitions"). A batch run with ``--workers N`` gives a lone unit every core
  (:mod:`pipelines.batch.scheduling`).
- **Coil maps** (:func:`plane_maps`): ESPIRiT per plane, two planes at a time too.
- **On a Dask cluster** (:func:`on_cluster`): inside a batch unit that a worker runs
  (``recon batch --scheduler``), the planes go to the cluster in chunks, two per worker
  thread, from ``worker_client`` (the unit's own thread leaves the worker's pool while
  it waits, so a one-thread worker runs chunks too). A method built in this process
  (``--adapt``) stays here.

Every plane's image is the same wherever it ran, to float rounding (the thread count
changes torch's summation order).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from pipelines.common.evaluation import build_method, in_parallel

CHUNKS_PER_THREAD = 2
"""Chunks of planes per cluster thread: fewer moves less data, more balances the load."""


def reconstruct_planes(reconstructor: Any, kspace: torch.Tensor, mask: Any, coil_maps: torch.Tensor | None,
                       on_plane: Callable[[], None] | None = None) -> list[torch.Tensor]:
    """Each plane's complex image, the planes on this process's cores at once;
    ``on_plane()`` is called after each plane (from its thread, one call at a time).

    Shapes
    ------
    kspace ``(X, C, Y, Z)``; mask ``(Y, Z)`` bool tensor; coil_maps ``(X, C, Y, Z)`` or
    None -> X images ``(Y, Z)``.
    """
    done = threading.Lock()

    def one_plane(index: int) -> torch.Tensor:
        maps = None if coil_maps is None else coil_maps[index : index + 1]
        with torch.no_grad():  # grad mode is per thread
            image = reconstructor.reconstruct(kspace[index : index + 1], mask, maps)[0]
        if on_plane is not None:
            with done:
                on_plane()
        return image

    return in_parallel(one_plane, len(kspace))


def weights_notes(methods: list[str] | tuple[str, ...], ratio: float) -> list[str]:
    """Which weights each learned method of ``methods`` takes on a 3-D acquisition's
    planes at this mask ``ratio``: those trained for (ky, kz) planes, or the 2-D slices'."""
    import warnings

    import recon
    from recon.weights import sampling_of

    notes = []
    for name in methods:
        info = recon.registry.info(name)
        if info.family != "learned" or info.superres_only:
            continue
        reconstructor = build_method(name, planes=True)
        with warnings.catch_warnings():  # a ratio outside the trained range is warned of when it runs
            warnings.simplefilter("ignore")
            path = reconstructor.weights_for(ratio)
        if sampling_of(path) == "plane":  # (shipped_weights falls back to the grid weights: the card says which)
            note = f"{name}: weights {path.name}, trained on the (ky, kz) planes of 3-D acquisitions"
        else:
            note = f"{name}: weights {path.name}, trained on 2-D slices (none are trained for 3-D planes)"
        passes = len(getattr(reconstructor, "mirrors", ((),)))
        if passes > 1:
            note += (f"; each plane is the mean of {passes} passes, the scan as measured and mirrored through its "
                     "centre (a self-ensemble)")
        notes.append(note)
    return notes


def plane_maps(kspace: torch.Tensor, mask: np.ndarray) -> torch.Tensor:
    """ESPIRiT maps of every plane (or slice), two planes at a time as
    :func:`reconstruct_planes` runs them: the same maps as one batched call
    (:func:`recon.api.coil_maps_for`), 0.119 -> 0.093 s a Colin27 plane with 8 coils.

    Shapes
    ------
    kspace ``(X, C, Y, Z)``; mask ``(Y, Z)`` -> ``(X, C, Y, Z)`` complex64.
    """
    from recon.api import coil_maps_for

    return torch.cat(in_parallel(lambda index: coil_maps_for(kspace[index : index + 1], mask), len(kspace)))


def _chunk(method: str, kspace: np.ndarray, mask: np.ndarray, coil_maps: np.ndarray | None,
           device: str | None = None) -> np.ndarray:
    """One cluster task: ``method`` (built once, its weights loaded once) on each plane
    of a chunk, as :func:`reconstruct_planes` runs them here, computing on ``device``
    (``--device``, resolved on the worker: ``auto`` takes its GPU when it has one)."""
    images = reconstruct_planes(build_method(method, True, device), torch.from_numpy(kspace), torch.from_numpy(np.asarray(mask, bool)),
                                None if coil_maps is None else torch.from_numpy(coil_maps))
    return torch.stack(images).numpy().astype(np.complex64)


def on_cluster(method: str, kspace: np.ndarray, mask: np.ndarray, coil_maps: np.ndarray | None,
               notes: list[str] | None = None, device: str | None = None) -> np.ndarray | None:
    """``method`` on every plane, in chunks on the Dask cluster this code runs on, saying
    so once in ``notes``; None when it does not run on a Dask worker, or the cluster has
    a single thread.

    Shapes
    ------
    kspace ``(X, C, Y, Z)`` numpy; mask ``(Y, Z)``; coil_maps ``(X, C, Y, Z)`` or None ->
    ``(X, Y, Z)`` complex64.
    """
    try:
        from distributed import get_worker, worker_client
    except ImportError:
        return None
    try:
        get_worker()
    except ValueError:  # not on a Dask worker
        return None
    with worker_client() as client:
        threads = sum(info.get("nthreads", 1) for info in client.scheduler_info()["workers"].values())
        if threads < 2:
            return None
        bounds = np.array_split(np.arange(len(kspace)), min(len(kspace), CHUNKS_PER_THREAD * threads))
        futures = []
        for planes in (b for b in bounds if len(b)):
            part = slice(int(planes[0]), int(planes[-1]) + 1)
            data = client.scatter(np.ascontiguousarray(kspace[part]))
            maps = None if coil_maps is None else client.scatter(np.ascontiguousarray(coil_maps[part]))
            futures.append(client.submit(_chunk, method, data, mask, maps, device, pure=False))
        images = np.concatenate(client.gather(futures))
    note = f"3-D planes on the Dask cluster: {len(futures)} chunks a method over its {threads} worker threads"
    if notes is not None and note not in notes:
        notes.append(note)
    return images
