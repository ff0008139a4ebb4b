"""The ``recon`` command line. It parses arguments, builds a config and calls one
library function. Exit codes: 0 ok, 1 failed, 2 bad usage or bad input, 3 finished
with some inputs failed, 130 / 143 stopped by SIGINT / SIGTERM.

Heavy modules (torch, SigPy, nibabel, the methods) are imported by the command that
needs them, so ``recon --help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import errno
import math
import os
import signal
import sys
from pathlib import Path

import masks
from pipelines.cli.arguments import UsageError, build_parser
from pipelines.cli.mask_command import command_mask
from pipelines.common.console import printable

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM


def _run_config(args: argparse.Namespace):
    from pipelines.common import volume as three_d_defaults
    from pipelines.config import RunConfig, load_config

    base = load_config(args.config) if args.config else RunConfig()
    if args.guard and (args.estimate_folds if args.estimate_folds is not None else base.estimate_folds) == 0:
        raise UsageError("--guard needs the error estimate: leave --estimate-folds at 2 or more (or use --no-guard)")
    three_d = (args.acquisition or base.acquisition) == "3d"
    if three_d and args.slices is not None:
        raise UsageError("--slices picks 2-D slices; a 3-D acquisition reconstructs every readout position's plane")
    config = base.with_overrides(
        acquisition=args.acquisition,
        mask=args.mask,
        mask_type=args.mask_type,
        mask_file=args.mask_file,
        center_fraction=args.center_fraction,
        methods=args.methods,
        input=args.input,
        slices=args.slices,
        coils=args.coils if args.coils is not None or not three_d or args.config else three_d_defaults.COILS,
        noise_snr=args.noise_snr if args.noise_snr is not None or not three_d or args.config else three_d_defaults.SNR,
        phase=args.phase,
        seed=args.seed,
        out=args.out,
        force=args.force,
        max_memory=args.max_memory,
        estimate_folds=args.estimate_folds,
        estimate_slices=args.estimate_slices if args.estimate_slices is not None or not three_d or args.config
        else three_d_defaults.ESTIMATE_PLANES,
        estimate_methods=args.estimate_methods,
        guard=args.guard,
        adapt=args.adapt,
        device=args.device,
    )
    if args.out is None and (args.config is None or base.out == RunConfig.out):
        config = config.with_overrides(out=default_run_folder(config))
    return config


def default_run_folder(config) -> str:
    """``recon-output/run-MASK-TYPE``, plus what else changes the acquisition (the input,
    coils, noise, phase, a mask file), so a different run never meets the last one's
    folder: e.g. ``run-25pct-cartesian-8coils-snr30``."""
    parts = [config.mask if config.mask_file is None else f"maskfile-{Path(config.mask_file).stem}", config.mask_type]
    if config.input is not None:
        parts.insert(0, Path(config.input).name.split(".")[0] or "input")
    if config.acquisition == "3d":
        parts.insert(0, "3d")
    if config.coils > 1:
        parts.append(f"{config.coils}coils")
    if config.noise_snr is not None:
        parts.append(f"snr{config.noise_snr:g}")
    if config.phase:
        parts.append("phase")
    if config.seed:
        parts.append(f"seed{config.seed}")
    name = "-".join(parts)
    return "recon-output/run-" + "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def _command_run(args: argparse.Namespace) -> int:
    from pipelines.run.summary import format_table
    from pipelines.run.workflow import run

    config = _run_config(args)
    result = run(config)
    ratio = result.mask.ratio
    if isinstance(result.mask, masks.TrajectoryMask):
        sampling = f"{result.mask.summary()}; k-space simulated by NUFFT"
    else:
        sampling = (f"achieved ratio {ratio:.4f} ({ratio * 100:.2f} %), centre {result.mask.center[0]}x"
                    f"{result.mask.center[1]}; k-space simulated")
    unit = "readout plane(s) of a 3-D acquisition" if config.acquisition == "3d" else "slice(s)"
    print(f"mask {config.mask} {result.mask.kind}: {sampling}, {config.coils} coil(s); "
          f"{result.summary[0]['slices']} {unit}")
    print(format_table(result.summary))
    for note in result.notes:
        print(f"note: {printable(note)}")
    print(f"wrote {result.out}/report.html, metrics.json, config.json and images/")
    return EXIT_OK


def _command_methods(args: argparse.Namespace) -> int:
    from recon import registry  # names, descriptions and availability: no torch, no model

    for name in registry.registered():
        reason = registry.unavailable_reason(name)
        status = "available" if reason is None else f"unavailable: {reason}"
        print(f"{name:<12} {registry.info(name).description} [{status}]")
    return EXIT_OK


def parse_ratios(text: str) -> tuple[float, ...]:
    """``10pct`` -> (0.1,); ``10pct,50pct`` -> (0.1, 0.5); ``10pct-50pct`` -> every 5 % from 10 to 50;
    ``lowres-2x,lowres-4x`` -> (0.25, 0.0625)."""
    import numpy as np

    if "-" in text and "," not in text and masks.lowres_factor(text) is None:
        low, high = (masks.parse_preset(part) for part in text.split("-", 1))
        if high < low:
            raise ValueError(f"mask range {text!r} runs backwards")
        count = int(round((high - low) / 0.05)) + 1
        return tuple(float(r) for r in np.linspace(low, high, max(count, 2)))
    return tuple(masks.parse_preset(part) for part in text.split(",") if part.strip())


def _integers(option: str, text: str, low: int, high: int) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise UsageError(f"{option}: expected integers separated by commas, got {text!r}") from None
    if not values or not all(low <= value <= high for value in values):
        raise UsageError(f"{option}: every value must be in [{low}, {high}], got {text!r}")
    return values


def _shrink(text: str, option: str = "--resample-shrink") -> tuple[float, float]:
    """``--resample-shrink`` or ``--measured-snr``: ``LOW-HIGH``, or one value ``F``
    (``F-F``); TrainConfig checks the range."""
    try:
        parts = tuple(float(part) for part in text.split("-"))
    except ValueError:
        parts = ()
    if len(parts) not in (1, 2):
        raise UsageError(f"{option}: expected LOW-HIGH or one value, got {text!r}")
    return parts[0], parts[-1]


def _generator_options(text: str) -> dict:
    options: dict = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        if "=" not in item:
            raise UsageError(f"--generator: expected key=value, got {item!r}")
        key, value = (part.strip() for part in item.split("=", 1))
        if not key.isidentifier():
            raise UsageError(f"--generator: {key!r} is not an option name")
        if key == "kind":
            options[key] = value
        elif value.lower() in ("true", "false"):
            options[key] = value.lower() == "true"
        else:
            try:
                options[key] = int(value)
            except ValueError:
                raise UsageError(f"--generator: {key}={value!r} must be an integer, true or false") from None
            if options[key] < 0:
                raise UsageError(f"--generator: {key}={value} must not be negative")
    return options


def _loss_options(items: list[str]) -> dict[str, float]:
    losses: dict[str, float] = {}
    for item in items:
        name, _, value = item.partition("=")
        try:
            weight = float(value)
        except ValueError:
            raise UsageError(f"--loss: expected NAME=WEIGHT with a number, got {item!r}") from None
        if not math.isfinite(weight) or weight < 0:
            raise UsageError(f"--loss {name}: weight must be a finite number >= 0, got {value!r}")
        losses[name.strip()] = weight
    return losses


def _command_train(args: argparse.Namespace) -> int:
    import json

    from pipelines.data.training import load_training_data
    from recon.training.config import TrainConfig
    from recon.training.trainer import train

    config = TrainConfig(
        model=args.model, ratios=parse_ratios(args.mask), mask_type=args.mask_type, steps=args.steps,
        batch_size=args.batch_size, lr_g=args.lr_g, lr_d=args.lr_d, lr_schedule=args.lr_schedule, lr_warmup=args.lr_warmup,
        time_limit=args.time_limit, n_critic=args.n_critic,
        lipschitz=args.lipschitz, adversarial_weight=args.adversarial_weight, ssim_weight=args.ssim_weight, val_every=args.val_every,
        patience=args.patience, generator=_generator_options(args.generator), losses=_loss_options(args.loss), device=args.device,
        seed=args.seed, out=args.out, resume=args.resume, init=args.init, threads=args.threads,
        coils=_integers("--coils", args.coils, 1, 64), val_ratios=parse_ratios(args.val_mask) if args.val_mask else None,
        mix=tuple(part.strip() for part in args.mix.split(",") if part.strip()), val_slices=args.val_slices,
        slice_factors=_integers("--slice-factors", args.slice_factors, 2, 4), resample=args.resample,
        resample_shrink=_shrink(args.resample_shrink), measured=args.measured,
        measured_snr=_shrink(args.measured_snr, "--measured-snr"),
    )
    try:
        config.check_generator()
    except (TypeError, ValueError) as error:
        raise UsageError(f"--generator {args.generator!r}: {error}") from None
    from recon.models.spec import get_spec

    try:
        through_plane = get_spec(args.model).trained_masks == "slices"
    except ValueError as error:
        raise UsageError(f"--model: {error}") from None
    train_set, val_set, description = load_training_data(args.data, through_plane=through_plane)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.json").write_text(json.dumps({"argv": sys.argv, "data": description}, indent=1))
    summary = train(config, train_set, val_set)
    # the step best.pt holds: the lowest geometric-mean NMSE (log_nmse), as the trainer keeps it
    best = min(summary["history"], key=lambda h: h.get("log_nmse", math.log10(max(h["nmse"], 1e-30)))) if summary["history"] else None
    print(f"trained {config.model} for {summary['steps']} steps in {summary['seconds']:.0f} s; data: {description}")
    if best:
        print(f"best validation (step {best['step']}): PSNR {best['psnr']:.2f} dB, SSIM {best['ssim']:.4f}, NMSE {best['nmse']:.5f}")
    print(f"wrote {out}/best.pt, checkpoint.pt, log.csv, val.json")
    return EXIT_OK


def _command_batch(args: argparse.Namespace) -> int:
    from pipelines.batch.scheduling import BatchConfig, BatchStopped, run_batch

    try:
        index, count = (int(part) for part in args.part.split("/"))
    except ValueError as error:
        raise UsageError(f"--part must be i/N, e.g. 1/4, got {args.part!r}") from error
    if args.guard and args.estimate_folds == 0:
        raise UsageError("--guard needs the error estimate: leave --estimate-folds at 2 or more (or use --no-guard)")
    if args.adapt and args.slice_factor:
        raise UsageError("--adapt fine-tunes k-space reconstructions; it does not apply to --slice-factor")
    if args.guard and args.slice_factor:
        raise UsageError("--guard compares k-space reconstructions; it does not apply to --slice-factor")
    config = BatchConfig(
        inputs=tuple(args.inputs), out=args.out, mask=args.mask, mask_type=args.mask_type,
        methods=args.methods or (("soup-gan",) if args.slice_factor else ("cs-tv",)),
        format=args.format, workers=args.workers, part=(index, count), resume=args.resume, force=args.force,
        seed=args.seed, scheduler=args.scheduler, max_memory=args.max_memory, estimate_folds=args.estimate_folds,
        estimate_methods=args.estimate_methods, guard=args.guard is not False and args.estimate_folds > 0, slice_factor=args.slice_factor,
        virtual_coils=args.virtual_coils, adapt=args.adapt, acquisition=args.acquisition, device=args.device,
    )
    try:
        result = run_batch(config, log=lambda line: print(printable(line), file=sys.stderr))
    except BatchStopped as stopped:
        _batch_summary(stopped.result, args.out)
        print(f"recon: {printable(stopped)}", file=sys.stderr)
        return stopped.exit_code
    _batch_summary(result, args.out)
    return EXIT_PARTIAL if result.failed else EXIT_OK


def _batch_summary(result, out: str) -> None:
    rate = result.slices / result.seconds if result.seconds > 0 else 0.0
    print(f"{len(result.done)} done, {len(result.skipped)} already done (resume), {len(result.failed)} failed; "
          f"{result.slices} slice reconstructions in {result.seconds:.1f} s ({rate:.2f} slices/s); "
          f"outputs in {printable(out)}")
    for entry in result.failed:
        print(f"  failed: {printable(entry['error'])}")
    from pipelines.reports.batch_report import terminal_table

    table = terminal_table(Path(out), result.done)
    if table:
        print(table)
    for entry in result.done:
        for note in entry.get("notes", []):
            print(f"  note: {printable(note)}")


def _command_report(args: argparse.Namespace) -> int:
    from pipelines.reports.run_report import report_folders

    runs, batches = report_folders(args.runs)
    folders = runs or batches
    if args.out is None and len(folders) > 1:
        raise UsageError(f"{len(folders)} folders make one report: give its file with --out FILE")
    target = Path(args.out) if args.out else folders[0] / "report.html"
    if target.is_dir():
        raise UsageError(f"--out {target} is a folder; give a file name such as {target / 'report.html'}")
    target.parent.mkdir(parents=True, exist_ok=True)
    if batches:
        from pipelines.reports.batch_report import write_batch_report

        out = write_batch_report(batches, target)
    else:
        from pipelines.reports.run_report import write_report

        out = write_report(runs, target)
    print(f"wrote {printable(out)} ({len(folders)} {'batch' if batches else 'run'} folder(s))")
    return EXIT_OK


def _command_sr(args: argparse.Namespace) -> int:
    from pipelines.formats.through_plane import SrConfig, super_resolve

    config = SrConfig(input=args.volume, out=args.out, slice_factor=args.slice_factor, method=args.method,
                      weights=args.weights, force=args.force, max_memory=args.max_memory)
    result = super_resolve(config)
    print(f"{printable(result['input'])}: {result['slices_in']} thick slices -> {result['slices_out']} thin slices "
          f"({result['method']}, x{result['slice_factor']}, {result['seconds']:.1f} s); wrote {printable(result['output'])}")
    return EXIT_OK


COMMANDS = {"run": _command_run, "batch": _command_batch, "report": _command_report, "mask": command_mask, "methods": _command_methods, "train": _command_train,
            "sr": _command_sr}


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so that it unwinds like Ctrl-C (temporary
    files and staging folders are removed on the way out)."""


def _on_sigterm(signum, frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM while unwinding would be a traceback
    raise _Terminated()


def _usage_errors() -> tuple[type[BaseException], ...]:
    """Errors reported as bad usage or bad input (exit 2), imported only when the
    modules that define them are already loaded (so --help stays light)."""
    errors: list[type[BaseException]] = [UsageError, ValueError, FileNotFoundError, FileExistsError, PermissionError]
    registry = sys.modules.get("recon.registry")
    if registry is not None:
        errors.append(registry.MethodUnavailable)
    return tuple(errors)


def _is_locked(error: BaseException) -> bool:
    lock = sys.modules.get("pipelines.batch.lock")
    return lock is not None and isinstance(error, lock.FolderLocked)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    previous = None
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        import threading

        if threading.current_thread() is threading.main_thread():
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
        return COMMANDS[args.command](args)
    except SystemExit as exit_:  # --help / --version
        return int(exit_.code or 0)
    except KeyboardInterrupt:
        print("recon: interrupted (SIGINT)", file=sys.stderr)
        return EXIT_SIGINT
    except BrokenPipeError:  # e.g. `recon methods | head -2`: the reader left, nothing went wrong here
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except _Terminated:
        print("recon: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_SIGTERM
    except Exception as error:  # noqa: BLE001 - one readable line, not a traceback
        if _is_locked(error):
            print(f"recon: error: {printable(error)}", file=sys.stderr)
            return EXIT_FAILED
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            where = f" while writing {printable(error.filename)}" if error.filename else ""
            print(f"recon: error: no space left on device{where}; nothing was left half-written: free space and run "
                  "again", file=sys.stderr)
            return EXIT_FAILED
        if isinstance(error, _usage_errors()):
            print(f"recon: error: {printable(error)}", file=sys.stderr)
            return EXIT_USAGE
        print(f"recon: failed: {type(error).__name__}: {printable(error)}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # python -m pipelines.cli.main (torchrun uses this)
    entry()
