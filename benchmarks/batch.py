"""Throughput of ``recon batch`` with 1 and 2 worker processes, and with 1 and 2 Dask workers.

    python -m benchmarks.batch [--files 4] [--slices 4] [--methods cs-tv,gan-drn] [--workers 1,2] [--dask 1,2]

Writes ``--files`` NIfTI volumes of ``--slices`` 256x256 sample test slices into a
temporary folder, reconstructs them with ``recon batch`` (10pct cartesian, NIfTI out,
no error estimate or guard: the reconstructions alone) once per worker count, and
prints slice reconstructions per second (slices x methods over the batch's wall time,
reading and writing included). ``--dask N`` runs the same batch on a local Dask cluster
of N worker processes with one thread each (``distributed.LocalCluster``, as ``dask
scheduler`` + ``dask worker --nworkers N --nthreads 1`` would start it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from pipelines.batch.scheduling import BatchConfig, run_batch
from pipelines.data.sample import sample


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--methods", default="cs-tv,gan-drn")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--dask", default="", help="Dask worker counts, e.g. 1,2 (empty: none)")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)
    images = np.array(sample("test").images, dtype=np.float32)
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        inputs = Path(folder) / "inputs"
        inputs.mkdir()
        for index in range(args.files):
            chosen = images[(np.arange(args.slices) + index * args.slices) % len(images)]
            nib.save(nib.Nifti1Image(np.moveaxis(chosen, 0, -1) * 1000, np.eye(4)), inputs / f"volume{index}.nii.gz")
        print("| workers | files | slice reconstructions | seconds | slices/s |\n|---|---|---|---|---|", flush=True)
        runs = [(f"--workers {w}", int(w), None) for w in args.workers.split(",") if w]
        runs += [(f"Dask {d}", 1, int(d)) for d in args.dask.split(",") if d]
        for label, workers, dask_workers in runs:
            config = BatchConfig(inputs=(str(inputs),), out=str(Path(folder) / label.replace(" ", "")),
                                 methods=tuple(args.methods.split(",")), format="nifti", workers=workers,
                                 estimate_folds=0, guard=False)
            if dask_workers:
                from dataclasses import replace

                from distributed import LocalCluster

                with LocalCluster(n_workers=dask_workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
                    result = run_batch(replace(config, scheduler=cluster.scheduler_address), progress=False,
                                       log=lambda line: None)
            else:
                result = run_batch(config, progress=False, log=lambda line: None)
            rate = result.slices / result.seconds
            results[label] = {"files": len(result.done), "failed": len(result.failed), "slices": result.slices,
                              "seconds": result.seconds, "slices_per_second": rate}
            print(f"| {label} | {len(result.done)} | {result.slices} | {result.seconds:.1f} | {rate:.2f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
