"""``recon batch --scheduler ADDRESS``: the batch's units on a Dask distributed cluster.

A worker runs in its own working folder, on its own machine, so everything sent to it
is absolute (:func:`absolute_config`: the inputs and the output folder; ``recon batch``
takes no mask, config or weights files). Before any work is scheduled,
:func:`check_workers` asks every worker to stat the inputs and the output folder: a
worker that cannot see them stops the batch at once (exit 2) with one line naming the
worker, the path and the requirement, a filesystem every worker shares.

A worker that dies mid-unit: the scheduler gives the unit to another worker (up to
Dask's ``allowed-failures``), and ``submit(retries=1)`` retries one that raised. A unit
that still cannot finish is recorded as failed, with the reason, and the batch goes
on; everything finished is in the manifest, and ``--resume`` completes the rest.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from pipelines.config import BatchConfig

CONNECT_SECONDS = 5.0
"""How long the client waits for the scheduler, and the check for the workers' answers."""

SHARED_FILESYSTEM = ("recon batch --scheduler needs the inputs and the output folder on a filesystem every worker "
                     "shares, at the same path (e.g. an NFS mount)")


class ClusterUnusable(ValueError):
    """The cluster cannot run this batch (exit 2): unreachable, no workers, or a worker
    that cannot see the inputs or the output folder."""


def absolute_config(config: BatchConfig, units: list[Path]) -> tuple[BatchConfig, list[Path]]:
    """The config and units with every path absolute (against this process's folder)."""
    return (replace(config, inputs=tuple(str(Path(p).absolute()) for p in config.inputs), out=str(Path(config.out).absolute())),
            [Path(unit).absolute() for unit in units])


def _probe(paths: list[str], folder: str) -> list[str]:
    """Run on a worker: the problems it has with ``paths`` (read) and ``folder`` (write)."""
    problems = []
    for path in paths:
        if not os.path.exists(path):
            problems.append(f"cannot see {path}")
        elif not os.access(path, os.R_OK):
            problems.append(f"cannot read {path}")
    if not os.path.isdir(folder):
        problems.append(f"cannot see the output folder {folder}")
    elif not os.access(folder, os.W_OK | os.X_OK):
        problems.append(f"cannot write to the output folder {folder}")
    return problems


def check_workers(client, inputs: list[str], out: str, address: str = "") -> int:
    """Ask every worker to stat ``inputs`` and ``out``; raise :class:`ClusterUnusable`
    naming the first worker and path it cannot see. Returns the number of workers."""
    workers = client.scheduler_info().get("workers", {})
    if not workers:
        try:
            client.wait_for_workers(1, timeout=CONNECT_SECONDS)
        except Exception as error:  # noqa: BLE001 - distributed raises TimeoutError or its own
            raise ClusterUnusable(f"the Dask scheduler {address} has no workers (waited "
                                  f"{CONNECT_SECONDS:.0f} s): start one with `dask worker ADDRESS`") from error
        workers = client.scheduler_info().get("workers", {})
    try:
        answers = client.run(_probe, inputs, out, wait=True, on_error="return")
    except Exception as error:  # noqa: BLE001
        raise ClusterUnusable(f"the Dask workers did not answer a check of the input and output folders: {error}") from error
    for worker, problems in sorted(answers.items()):
        if isinstance(problems, BaseException):
            raise ClusterUnusable(f"Dask worker {worker} failed a check of the input and output folders: {problems}")
        if problems:
            raise ClusterUnusable(f"Dask worker {worker} {problems[0]}: {SHARED_FILESYSTEM}")
    return len(workers)


def connect(address: str):
    """A Dask client of the scheduler at ``address``, or :class:`ClusterUnusable`."""
    try:
        from distributed import Client  # optional extra: pip install 'recon-mri[distributed]'
    except ImportError as error:
        raise ClusterUnusable("--scheduler needs Dask distributed: pip install 'recon-mri[distributed]'") from error
    try:
        return Client(address, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError) as error:
        raise ClusterUnusable(f"cannot reach the Dask scheduler at {address} (waited {CONNECT_SECONDS:.0f} s): "
                              f"start one with `dask scheduler`, or check the address") from error


def open_cluster(config: BatchConfig, units: list[Path]):
    """Connect to ``config.scheduler`` and check that every worker sees the units'
    folders and ``config.out`` (:func:`check_workers`); returns the client (close it)."""
    client = connect(config.scheduler)
    try:
        check_workers(client, sorted({str(unit.parent if unit.is_file() else unit) for unit in units}), config.out,
                      config.scheduler)
    except BaseException:
        client.close()
        raise
    return client


def run_on_cluster(client, todo: list[tuple[str, Path]], payload: dict[str, Any],
                   task: Callable[..., dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Submit ``task(unit, payload, 1)`` for each ``(key, unit)`` of ``todo`` and yield
    ``(key, entry)`` as units finish; a unit whose worker died (or that raised twice)
    yields a failed entry. Closing the generator early cancels the rest."""
    from distributed import as_completed

    futures = {client.submit(task, str(unit), payload, 1, pure=False, retries=1): (key, unit) for key, unit in todo}
    try:
        for future in as_completed(list(futures)):
            key, unit = futures[future]
            try:
                entry = future.result()
            except Exception as error:  # noqa: BLE001 - a worker died or the unit raised: recorded, the batch goes on
                entry = {"input": str(unit), "outputs": [], "slices": 0, "notes": [], "status": "failed",
                         "error": f"{unit}: the Dask worker running it failed ({type(error).__name__}: {error}); "
                                  "--resume tries it again"}
            yield key, entry
    finally:
        client.cancel(list(futures))
