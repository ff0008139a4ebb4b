"""The ``recon`` command line. It parses arguments, builds a config and calls one
library function. Exit codes: 0 ok, 1 failed, 2 bad usage or bad input, 3 finished
with some inputs failed, 130 / 143 stopped by SIGINT / SIGTERM.

Heavy modules (torch, SigPy, nibabel, the methods) are imported by the command that
needs them, so ``recon --help`` and ``--version`` answer at once.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
from pathlib import Path

import masks
from pipelines.console import printable
from recon import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
EXIT_SIGINT, EXIT_SIGTERM = 128 + signal.SIGINT, 128 + signal.SIGTERM


class UsageError(Exception):
    """Bad usage or bad input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage and exit
        raise UsageError(f"{self.prog}: {message}")


def _shape(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"shape must be H,W (e.g. 256,256), got {text!r}") from error
    if height < 2 or width < 2:
        raise argparse.ArgumentTypeError(f"shape must be at least 2,2, got {text!r}")
    return height, width


def _methods(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _integer(low: int | None = None, high: int | None = None):
    """argparse type: an integer in ``[low, high]`` (argparse names the option)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {_range_text(low, high)}, got {value}")
        return value

    return parse


def _number(low: float | None = None, high: float | None = None, low_open: bool = False):
    """argparse type: a finite number in ``[low, high]`` (``(low, high]`` with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        if (low is not None and (value < low or (low_open and value == low))) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {_range_text(low, high, low_open)}, got {text}")
        return value

    return parse


def _range_text(low, high, low_open: bool = False) -> str:
    if low is not None and high is not None:
        return f"in {'(' if low_open else '['}{low:g}, {high:g}]"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    return f"<= {high:g}"


def _memory(text: str) -> int:
    from pipelines.limits import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--max-memory: ")) from None


MAX_MEMORY_HELP = ("most memory one input may need, e.g. 4G or 512M; larger inputs are refused before they "
                   "are read (default: half of this machine's memory)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recon",
        description="MRI reconstruction from undersampled k-space, with CS baselines and trustworthy metrics.",
        epilog="example: recon run --mask 10pct --mask-type cartesian --out recon-output/run-10pct",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recon {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="simulate an acquisition and compare every method",
        description="Simulate undersampled k-space from the built-in sample brain slices (or --input), "
        "reconstruct with every available method, print PSNR/SSIM/NMSE/time and write "
        "metrics.json, config.json and PNGs.",
        epilog="examples:\n  recon run --mask 10pct\n  recon run --mask 50pct --mask-type vd2d --slices 4 --out runs/vd50\n"
        "  recon run --mask 25pct --coils 8 --noise-snr 30 --methods zero-filled,cs-l1,cg-sense",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", help="TOML/JSON/YAML file with run settings; flags override it")
    run.add_argument("--mask", help="preset Npct: N/100 of the k-space grid sampled, centre included (default 10pct)")
    run.add_argument("--mask-type", choices=masks.KINDS, help="mask family (default cartesian)")
    run.add_argument("--mask-file", help=".npy bool (H, W) mask to use instead of generating one")
    run.add_argument("--center-fraction", type=_number(0, 1), help="override the preset's centre size (0 to 1)")
    run.add_argument("--methods", type=_methods, help="comma-separated method names (see `recon methods`; default: all that run here)")
    run.add_argument("--input", help="NIfTI or .npy image instead of the sample's test slices")
    run.add_argument("--slices", type=_integer(1), help="number of slices, evenly spread (default all)")
    run.add_argument("--coils", type=_integer(1, 64), help="1 = single coil (default); N > 1 simulates birdcage coil maps")
    run.add_argument("--noise-snr", type=_number(-20, 200), help="add complex Gaussian noise at this SNR in dB (-20 to 200)")
    run.add_argument("--phase", action="store_true", default=None, help="add a smooth synthetic image phase")
    run.add_argument("--seed", type=_integer(0, 2**32 - 1), help="seed mixed with the input name for mask, phase and noise (default 0)")
    run.add_argument("--max-memory", type=_memory, help=MAX_MEMORY_HELP)
    run.add_argument("--out", help="output folder (default recon-output/run-MASK-TYPE)")
    run.add_argument("--force", action="store_true", default=None, help="replace an existing output folder")

    mask = commands.add_parser(
        "mask",
        help="make and save an undersampling mask",
        description="Make a mask, save it as .png or .npy and print its achieved ratio.",
        epilog="example: recon mask --mask 10pct --mask-type cartesian --shape 256,256 --seed 0 --out mask.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mask.add_argument("--mask", default="10pct", help="preset Npct (default 10pct)")
    mask.add_argument("--mask-type", default="cartesian", choices=masks.KINDS)
    mask.add_argument("--shape", type=_shape, default=(256, 256), help="H,W (default 256,256)")
    mask.add_argument("--seed", type=_integer(0, 2**32 - 1), default=0)
    mask.add_argument("--center-fraction", type=_number(0, 1), default=None)
    mask.add_argument("--max-memory", type=_memory, help="most memory the mask may need (default: half of this machine's memory)")
    mask.add_argument("--out", required=True, help="output .png or .npy")
    mask.add_argument("--force", action="store_true", help="overwrite an existing file")

    train = commands.add_parser(
        "train",
        help="train a learned reconstructor with the shared GAN trainer",
        description="Train a GAN reconstructor on simulated acquisitions (a fresh random mask per sample, "
        "fixed validation masks); keeps the checkpoint with the best validation NMSE.",
        epilog="examples:\n  recon train --model gan-drn --mask 10pct --steps 2000 --out runs/gan-drn-10pct\n"
        "  recon train --model gan-drn --mask 10pct --out runs/gan-drn-10pct --resume\n"
        "  recon train --model csr-gan --mask 10pct-50pct --init recon/weights/gan-drn-10pct.pt --out runs/csr-gan\n"
        "  torchrun --nproc-per-node 2 -m pipelines.cli train --model gan-drn --mask 10pct --out runs/ddp",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--model", default="gan-drn", help="a registered learned model (`recon methods` lists them; default gan-drn)")
    train.add_argument("--mask", default="10pct", help="preset Npct, a list 10pct,50pct, or a range 10pct-50pct")
    train.add_argument("--mask-type", default="cartesian", choices=masks.KINDS)
    train.add_argument("--data", default="sample", help="'sample' or a folder of NIfTI / .npy images")
    train.add_argument("--steps", type=_integer(1), default=2000)
    train.add_argument("--batch-size", type=_integer(1, 4096), default=4)
    train.add_argument("--lr-g", type=_number(0, 1, low_open=True), help="generator learning rate (default: the model's; gan-drn 1e-3, csr-gan 1e-4)")
    train.add_argument("--lr-d", type=_number(0, 1, low_open=True), help="critic learning rate (default: the model's; gan-drn 1e-4, csr-gan 2e-4)")
    train.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                       help="constant, or cosine decay to 5%% of the learning rates over --steps")
    train.add_argument("--n-critic", type=_integer(0, 100), default=1, help="critic updates per generator update")
    train.add_argument("--lipschitz", choices=("gp", "clip", "spectral"),
                       help="critic constraint (default: the model's; gan-drn gp, csr-gan spectral)")
    train.add_argument("--adversarial-weight", type=_number(0), help="weight of L_adv (default: the model's)")
    train.add_argument("--ssim-weight", type=_number(0), help="weight of an extra (1 - SSIM) term (default: the model's)")
    train.add_argument("--val-every", type=_integer(1), default=100, help="validate every N steps (default 100)")
    train.add_argument("--patience", type=_integer(1), default=10, help="validations without improvement before stopping")
    train.add_argument("--generator", default="", help="generator options, e.g. width=32,blocks=2,stages=8 or kind=paper")
    train.add_argument("--loss", action="append", default=[], metavar="NAME=WEIGHT",
                       help="weight of a named loss term (freq, nmse, ssim, l1, adv, fm); repeatable, e.g. --loss l1=1 --loss fm=0.01")
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    train.add_argument("--threads", type=_integer(1, 1024), help="torch CPU threads")
    train.add_argument("--time-limit", type=_number(0, low_open=True), help="stop (validating and checkpointing) after this many wall seconds")
    train.add_argument("--out", default="runs/train", help="output folder for checkpoints and logs")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt at its exact step")
    train.add_argument("--init", help="start the generator from these weights (a shipped .pt or a best.pt)")
    train.add_argument("--seed", type=_integer(0, 2**32 - 1), default=0)

    batch = commands.add_parser(
        "batch",
        help="reconstruct files and folders (DICOM, NIfTI, fastMRI, ISMRMRD, BART, .npy)",
        description="Reconstruct every input with each method and write the results in the chosen format, "
        "with per-file metrics when a reference exists. Magnitude images (DICOM, NIfTI, .npy) get simulated "
        "k-space; raw data (fastMRI .h5, ISMRMRD .h5, BART .cfl) is reconstructed as measured (undersampled "
        "with --mask when it is fully sampled). Bad files are logged and skipped (exit code 3); outputs are "
        "written atomically and manifest.json lets --resume skip finished files.",
        epilog="examples:\n  recon batch scans/ --out recon-batch --mask 10pct --methods cs-tv,gan-drn\n"
        "  recon batch brain.nii.gz series_dir/ raw.h5 --out out --format nifti --workers 2\n"
        "  recon batch scans/ --out out --part 1/4 --resume",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("inputs", nargs="+", help="files or folders (folders are searched recursively)")
    batch.add_argument("--out", required=True, help="output folder")
    batch.add_argument("--mask", default="10pct", help="preset Npct for inputs that are not already undersampled")
    batch.add_argument("--mask-type", default="cartesian", choices=masks.KINDS)
    batch.add_argument("--methods", type=_methods, default=("cs-tv",), help="comma-separated methods (default cs-tv)")
    batch.add_argument("--format", default="same", choices=("same", "nifti", "dicom", "h5", "cfl", "npy"),
                       help="output format; 'same' writes DICOM for DICOM, NIfTI for NIfTI, h5 for fastMRI/ISMRMRD, cfl for cfl")
    batch.add_argument("--workers", type=_integer(1, 256), default=1, help="worker processes (each gets cores / workers torch threads)")
    batch.add_argument("--part", default="1/1", help="process only part i of N of the inputs, e.g. 2/4")
    batch.add_argument("--resume", action="store_true", help="skip inputs the manifest records as finished")
    batch.add_argument("--force", action="store_true", help="write into a non-empty output folder")
    batch.add_argument("--scheduler", help="address of a Dask distributed scheduler (pip install 'recon-mri[distributed]')")
    batch.add_argument("--seed", type=_integer(0, 2**32 - 1), default=0)
    batch.add_argument("--max-memory", type=_memory, help=MAX_MEMORY_HELP)

    report = commands.add_parser(
        "report",
        help="(re)build the HTML comparison report of recon run (or recon batch) outputs",
        description="Build report.html, a self-contained HTML comparison (summary table, trust check, plots, "
        "image grid, masks, provenance) from recon run output folders. Several runs (e.g. one per mask) make "
        "one report with quality against the sampling ratio. Rebuilding replaces the report file.",
        epilog="examples:\n  recon report recon-output\n  recon report runs/10pct runs/25pct runs/50pct --out comparison.html",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("runs", nargs="+", help="recon run output folders")
    report.add_argument("--out", help="report file (default RUN/report.html for one run; required for several)")

    commands.add_parser(
        "methods",
        help="list the reconstruction methods and whether they can run here",
        description="List every registered reconstruction method and whether it can run on this machine.",
        epilog="example: recon methods",
    )
    return parser


def _run_config(args: argparse.Namespace):
    from pipelines.config import RunConfig, load_config

    base = load_config(args.config) if args.config else RunConfig()
    config = base.with_overrides(
        mask=args.mask,
        mask_type=args.mask_type,
        mask_file=args.mask_file,
        center_fraction=args.center_fraction,
        methods=args.methods,
        input=args.input,
        slices=args.slices,
        coils=args.coils,
        noise_snr=args.noise_snr,
        phase=args.phase,
        seed=args.seed,
        out=args.out,
        force=args.force,
        max_memory=args.max_memory,
    )
    if args.out is None and (args.config is None or base.out == RunConfig.out):
        config = config.with_overrides(out=f"recon-output/run-{config.mask}-{config.mask_type}")
    return config


def _command_run(args: argparse.Namespace) -> int:
    from pipelines.run import format_table, run

    config = _run_config(args)
    result = run(config)
    ratio = result.mask.ratio
    print(f"mask {config.mask} {result.mask.kind}: achieved ratio {ratio:.4f} ({ratio * 100:.2f} %), "
          f"centre {result.mask.center[0]}x{result.mask.center[1]}; k-space simulated, "
          f"{config.coils} coil(s); {result.summary[0]['slices']} slice(s)")
    print(format_table(result.summary))
    for note in result.notes:
        print(f"note: {printable(note)}")
    print(f"wrote {result.out}/report.html, metrics.json, config.json and images/")
    return EXIT_OK


def _command_mask(args: argparse.Namespace) -> int:
    import numpy as np

    from pipelines.images import save_png
    from pipelines.limits import MemoryBudget
    from pipelines.output import atomic_file

    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npy"):
        raise UsageError(f"--out {out}: use a .png or .npy file name")
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} already exists; use --force to overwrite it")
    # Generators keep float weights and index arrays of the grid's size: about 16 bytes a point.
    budget = MemoryBudget.default() if args.max_memory is None else MemoryBudget(args.max_memory)
    budget.check("--shape", args.shape, itemsize=16, what="the mask", copies=1)
    made = masks.make_mask(args.mask, args.shape, args.mask_type, seed=args.seed, center_fraction=args.center_fraction)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(out) as tmp:
        if out.suffix.lower() == ".npy":
            with open(tmp, "wb") as handle:
                np.save(handle, made.array)
        else:
            save_png(tmp, (made.array * 255).astype(np.uint8))
    print(
        f"{made.kind} {args.mask} {made.shape[0]}x{made.shape[1]}: achieved ratio {made.ratio:.4f} "
        f"({int(made.array.sum())} of {made.array.size} points), centre {made.center[0]}x{made.center[1]} -> {out}"
    )
    return EXIT_OK


def _command_methods(args: argparse.Namespace) -> int:
    import recon

    for name in recon.registered():
        cls = recon.registry.method_class(name)
        reason = cls.unavailable_reason()
        status = "available" if reason is None else f"unavailable: {reason}"
        print(f"{name:<12} {cls.description} [{status}]")
    return EXIT_OK


def parse_ratios(text: str) -> tuple[float, ...]:
    """``10pct`` -> (0.1,); ``10pct,50pct`` -> (0.1, 0.5); ``10pct-50pct`` -> every 5 % from 10 to 50."""
    import numpy as np

    if "-" in text and "," not in text:
        low, high = (masks.parse_preset(part) for part in text.split("-", 1))
        if high < low:
            raise ValueError(f"mask range {text!r} runs backwards")
        count = int(round((high - low) / 0.05)) + 1
        return tuple(float(r) for r in np.linspace(low, high, max(count, 2)))
    return tuple(masks.parse_preset(part) for part in text.split(",") if part.strip())


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

    from pipelines.training_data import load_training_data
    from recon.training import TrainConfig, train

    config = TrainConfig(
        model=args.model, ratios=parse_ratios(args.mask), mask_type=args.mask_type, steps=args.steps,
        batch_size=args.batch_size, lr_g=args.lr_g, lr_d=args.lr_d, lr_schedule=args.lr_schedule, time_limit=args.time_limit, n_critic=args.n_critic,
        lipschitz=args.lipschitz, adversarial_weight=args.adversarial_weight, ssim_weight=args.ssim_weight, val_every=args.val_every,
        patience=args.patience, generator=_generator_options(args.generator), losses=_loss_options(args.loss), device=args.device,
        seed=args.seed, out=args.out, resume=args.resume, init=args.init, threads=args.threads,
    )
    try:
        config.check_generator()
    except (TypeError, ValueError) as error:
        raise UsageError(f"--generator {args.generator!r}: {error}") from None
    train_set, val_set, description = load_training_data(args.data)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "command.json").write_text(json.dumps({"argv": sys.argv, "data": description}, indent=1))
    summary = train(config, train_set, val_set)
    best = min(summary["history"], key=lambda h: h["nmse"]) if summary["history"] else None
    print(f"trained {config.model} for {summary['steps']} steps in {summary['seconds']:.0f} s; data: {description}")
    if best:
        print(f"best validation (step {best['step']}): PSNR {best['psnr']:.2f} dB, SSIM {best['ssim']:.4f}, NMSE {best['nmse']:.5f}")
    print(f"wrote {out}/best.pt, checkpoint.pt, log.csv, val.json")
    return EXIT_OK


def _command_batch(args: argparse.Namespace) -> int:
    from pipelines.batch import BatchConfig, BatchStopped, run_batch

    try:
        index, count = (int(part) for part in args.part.split("/"))
    except ValueError as error:
        raise UsageError(f"--part must be i/N, e.g. 1/4, got {args.part!r}") from error
    config = BatchConfig(
        inputs=tuple(args.inputs), out=args.out, mask=args.mask, mask_type=args.mask_type, methods=args.methods,
        format=args.format, workers=args.workers, part=(index, count), resume=args.resume, force=args.force,
        seed=args.seed, scheduler=args.scheduler, max_memory=args.max_memory,
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
    for entry in result.done:
        for note in entry.get("notes", []):
            print(f"  note: {printable(note)}")


def _command_report(args: argparse.Namespace) -> int:
    from pipelines.report import write_report

    if args.out is None and len(args.runs) > 1:
        raise UsageError("several runs need --out FILE")
    if len(args.runs) == 1 and (Path(args.runs[0]) / "manifest.json").is_file():  # a recon batch folder
        from pipelines.batch_report import write_batch_report

        out = write_batch_report(args.runs[0])
    else:
        target = Path(args.out) if args.out else Path(args.runs[0]) / "report.html"
        if target.exists() and target.is_dir():
            raise UsageError(f"--out {target} is a folder; give a file name such as {target / 'report.html'}")
        target.parent.mkdir(parents=True, exist_ok=True)
        out = write_report(args.runs, target)
    print(f"wrote {printable(out)}")
    return EXIT_OK


COMMANDS = {"run": _command_run, "batch": _command_batch, "report": _command_report, "mask": _command_mask, "methods": _command_methods, "train": _command_train}


class _Terminated(BaseException):
    """SIGTERM, turned into an exception so that it unwinds like Ctrl-C (temporary
    files and staging folders are removed on the way out)."""


def _on_sigterm(signum, frame) -> None:
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
    lock = sys.modules.get("pipelines.lock")
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
    except _Terminated:
        print("recon: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_SIGTERM
    except Exception as error:  # noqa: BLE001 - one readable line, not a traceback
        if _is_locked(error):
            print(f"recon: error: {printable(error)}", file=sys.stderr)
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


if __name__ == "__main__":  # python -m pipelines.cli (torchrun uses this)
    entry()
