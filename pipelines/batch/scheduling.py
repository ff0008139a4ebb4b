"""Batch reconstruction of files and folders (``recon batch``).

Each input unit (a file, or a folder holding a DICOM series) is read, its k-space is
simulated (magnitude images) or taken as measured (fastMRI, ISMRMRD, ``.cfl``), every
method reconstructs every slice, and the outputs are written next to per-file
metrics (when a reference exists). A unit that fails is logged with its reason and
skipped; the others go on.

Nothing finished is lost: every output is written to a temporary name and renamed, and
``manifest.json`` (keyed by the input's content hash and the run's config) records
each finished unit as soon as it is done, so ``--resume`` skips it after an
interruption.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipelines.batch.interruption import (
    Signalled,
    install_signal_handlers,
    raise_pending,
    restore_signal_handlers,
    stop_pool,
    worker_init,
)
from pipelines.batch.lock import FolderLock
from pipelines.batch.manifest import MANIFEST, check_writable, load_manifest, unit_key
from pipelines.batch.unit import DISK_FULL, process_unit
from pipelines.common.console import printable
from pipelines.common.output import remove_temporaries, write_json
from pipelines.common.progress import DEFAULT_INTERVAL, Progress
from pipelines.config import BatchConfig
from pipelines.formats import discover

EXIT_PARTIAL = 3
"""A batch that stopped for a full disk kept what finished, as one with failed inputs
does: the same exit code, and ``--resume`` completes it."""

__all__ = ["BatchConfig", "BatchResult", "BatchStopped", "process_unit", "run_batch"]


class BatchStopped(Exception):
    """The batch stopped early: interrupted by a signal, or a write failed for lack of
    space (exit 3, like a batch with failed inputs). The manifest records what finished;
    ``--resume`` continues."""

    def __init__(self, message: str, exit_code: int, result: BatchResult):
        super().__init__(message)
        self.exit_code = exit_code
        self.result = result


@dataclass
class BatchResult:
    done: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    failed: list[dict[str, Any]]
    seconds: float
    slices: int


def run_batch(config: BatchConfig, progress: bool | str | None = None, log: Callable[[str], None] = print,
              progress_interval: float = DEFAULT_INTERVAL) -> BatchResult:
    """Reconstruct every unit of ``config.inputs`` into ``config.out``; see the module doc.

    One batch writes to a folder at a time (a lock; a second run is refused). SIGTERM
    and SIGINT stop the workers, keep the manifest, remove temporary files and raise
    :class:`BatchStopped` (exit 143 / 130); so does a write that fails for lack of
    space (exit 1). Progress goes to stderr: a bar on a terminal, a line every
    ``progress_interval`` seconds otherwise.
    """
    out = Path(config.out)
    if out.is_dir() and any(p.name != FolderLock.NAME for p in out.iterdir()) and not (config.resume or config.force):
        raise FileExistsError(f"output folder {out} is not empty; use --resume to continue it or --force to add to it")
    units = discover(list(config.inputs))
    index, count = config.part
    units = [unit for position, unit in enumerate(units) if position % count == index - 1]
    if config.scheduler:  # workers run in their own folders: send them absolute paths
        from pipelines.batch.cluster import absolute_config, open_cluster

        config, units = absolute_config(config, units)
        out = Path(config.out)
    check_writable(out)
    client = open_cluster(config, units) if config.scheduler else None  # every worker must see the files
    if config.guard_added:
        log(f"guard: added {', '.join(config.guard_added)}, what a learned slice falls back to (--no-guard leaves them out)")
    try:
        with FolderLock(out, "recon batch"):
            remove_temporaries(out)  # left by an interrupted run
            return _run_locked(config, out, units, progress, log, progress_interval, client)
    finally:
        if client is not None:
            client.close()


def _plan(config: BatchConfig, out: Path, units: list[Path], manifest: dict) -> tuple[list, list]:
    """``(todo, skipped)``: with ``--resume``, units whose outputs the manifest records
    as done (and which still exist) are skipped; the rest are ``(key, unit)`` to do."""
    todo, skipped = [], []
    for unit in units:
        key = unit_key(unit, config.key_fields())
        previous = manifest["units"].get(key)
        if config.resume and previous and previous.get("status") == "done" and all((out / o).exists() for o in previous["outputs"]):
            skipped.append(previous)
        else:
            todo.append((key, unit))
    return todo, skipped


@dataclass
class _Recorder:
    """Keeps the manifest as units finish (written atomically after each) and what the
    batch has done; a unit that failed for lack of space is kept out of the manifest, so
    ``--resume`` does it again."""

    out: Path
    manifest: dict
    skipped: list
    log: Callable[[str], None]
    started: float = field(default_factory=time.perf_counter)
    done: list = field(default_factory=list)
    failed: list = field(default_factory=list)
    disk_full: list = field(default_factory=list)

    def record(self, key: str, entry: dict[str, Any]) -> None:
        if entry.get("disk_full"):
            self.disk_full.append(entry)
            self.failed.append(entry)
            self.log(f"failed: {printable(entry['error'])}")
            return
        self.manifest["units"][key] = entry
        write_json(self.out / MANIFEST, self.manifest)  # atomic: a crash keeps the last good manifest
        (self.done if entry["status"] == "done" else self.failed).append(entry)
        if entry["status"] != "done":
            self.log(f"failed: {printable(entry['error'])}")
        for note in entry.get("notes", []):
            self.log(f"note: {printable(note)}")

    def slices(self) -> int:
        return sum(entry["slices"] for entry in self.done)

    def result(self) -> BatchResult:
        return BatchResult(self.done, self.skipped, self.failed, time.perf_counter() - self.started, self.slices())


def _run_locked(config: BatchConfig, out: Path, units: list[Path], progress: bool | str | None,
                log: Callable[[str], None], progress_interval: float, client=None) -> BatchResult:
    manifest = load_manifest(out) if config.resume else {"units": {}}
    manifest["config"] = {key: value for key, value in asdict(config).items() if key not in ("resume", "force")}
    todo, skipped = _plan(config, out, units, manifest)
    bar = Progress(len(todo), "recon batch", "files", mode=progress, interval=progress_interval)
    recorder = _Recorder(out, manifest, skipped, lambda line: bar.write(line, log))  # never glued to the bar
    previous = install_signal_handlers()
    pool: list[ProcessPoolExecutor] = []  # the worker pool, when there is one, to stop on the way out
    try:
        write_json(out / MANIFEST, manifest)  # from the start: a batch stopped before any file finished still has one
        _execute(config, todo, recorder, bar, pool, client)
    except (Signalled, KeyboardInterrupt) as error:
        signum = error.signum if isinstance(error, Signalled) else signal.SIGINT
        _stop(pool, out)
        finished = (f"{len(recorder.done)} file(s) finished and recorded in {out / MANIFEST}" if recorder.done
                    else f"no file had finished ({out / MANIFEST} records the batch's settings)")
        raise BatchStopped(f"stopped by {signal.Signals(signum).name}: {finished}; continue with --resume", 128 + signum,
                           recorder.result()) from None
    except OSError as error:
        _stop(pool, out)
        if error.errno in DISK_FULL:
            raise BatchStopped(f"no space left on device while writing {error.filename or out}; "
                               f"{len(recorder.done)} file(s) finished and recorded; free space and continue with "
                               "--resume", EXIT_PARTIAL, recorder.result()) from None
        raise
    finally:
        restore_signal_handlers(previous)
        bar.close()
    if recorder.disk_full:
        remove_temporaries(out)
        raise BatchStopped(f"{printable(recorder.disk_full[0]['error'])}; stopped: {len(recorder.done)} file(s) "
                           f"finished and recorded in {out / MANIFEST}; free space and continue with --resume",
                           EXIT_PARTIAL, recorder.result())
    if manifest["units"]:
        from pipelines.reports.batch_report import write_batch_report

        write_batch_report(out)
    return recorder.result()


def _execute(config: BatchConfig, todo: list, recorder: _Recorder, bar: Progress, pool: list, client=None) -> None:
    """Run the units on a Dask cluster (``client``, ``--scheduler``), a process pool
    (``--workers N``) or here, recording each as it finishes; stop at a full disk."""
    payload = asdict(config)

    def finished(key: str, entry: dict[str, Any]) -> bool:
        recorder.record(key, entry)
        bar.update(1, f"{recorder.slices()} slices")
        raise_pending()  # a SIGTERM / SIGINT whose raise was lost (during a fork) stops the batch here
        return bool(recorder.disk_full)

    if client is not None:
        from pipelines.batch.cluster import run_on_cluster

        results = run_on_cluster(client, todo, payload, process_unit)
        try:
            for key, entry in results:
                if finished(key, entry):
                    break
        finally:
            results.close()
    elif config.workers > 1:
        workers = min(config.workers, len(todo))  # fewer units than workers: each unit gets more cores
        threads = max(1, (os.cpu_count() or 1) // workers)
        pool.append(ProcessPoolExecutor(max_workers=workers, initializer=worker_init))
        futures = {pool[0].submit(process_unit, str(unit), payload, threads): key for key, unit in todo}
        for future in as_completed(futures):
            if finished(futures[future], future.result()):
                break
        stop_pool(pool.pop())
    else:
        for key, unit in todo:
            bar.begin(printable(unit.name))
            if finished(key, process_unit(str(unit), payload, None)):
                break


def _stop(pool: list, out: Path) -> None:
    """Stop the worker pool (if any) and remove temporary files."""
    if pool:
        stop_pool(pool.pop())
    remove_temporaries(out)
