"""The ``recon`` command line. It parses arguments, builds a config and calls one
library function. Exit codes: 0 ok, 1 failed, 2 bad usage or bad input, 3 finished
with some inputs failed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import masks
import recon
from pipelines.config import RunConfig, load_config
from pipelines.images import save_png
from recon.registry import MethodUnavailable

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3


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
    return height, width


def _methods(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recon",
        description="MRI reconstruction from undersampled k-space, with CS baselines and trustworthy metrics.",
        epilog="example: recon run --mask 10pct --mask-type cartesian --out recon-output/run-10pct",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recon {recon.__version__}")
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
    run.add_argument("--center-fraction", type=float, help="override the preset's centre size")
    run.add_argument("--methods", type=_methods, help=f"comma-separated, from: {', '.join(recon.registered())}")
    run.add_argument("--input", help="NIfTI or .npy image instead of the sample's test slices")
    run.add_argument("--slices", type=int, help="number of slices, evenly spread (default all)")
    run.add_argument("--coils", type=int, help="1 = single coil (default); N > 1 simulates birdcage coil maps")
    run.add_argument("--noise-snr", type=float, help="add complex Gaussian noise at this SNR in dB")
    run.add_argument("--phase", action="store_true", default=None, help="add a smooth synthetic image phase")
    run.add_argument("--seed", type=int, help="seed mixed with the input name for mask, phase and noise (default 0)")
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
    mask.add_argument("--seed", type=int, default=0)
    mask.add_argument("--center-fraction", type=float, default=None)
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
    train.add_argument("--model", default="gan-drn", help="model to train: gan-drn (default) or csr-gan")
    train.add_argument("--mask", default="10pct", help="preset Npct, a list 10pct,50pct, or a range 10pct-50pct")
    train.add_argument("--mask-type", default="cartesian", choices=masks.KINDS)
    train.add_argument("--data", default="sample", help="'sample' or a folder of NIfTI / .npy images")
    train.add_argument("--steps", type=int, default=2000)
    train.add_argument("--batch-size", type=int, default=4)
    train.add_argument("--lr-g", type=float, help="generator learning rate (default: the model's; gan-drn 1e-3, csr-gan 1e-4)")
    train.add_argument("--lr-d", type=float, help="critic learning rate (default: the model's; gan-drn 1e-4, csr-gan 2e-4)")
    train.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                       help="constant, or cosine decay to 5%% of the learning rates over --steps")
    train.add_argument("--n-critic", type=int, default=1, help="critic updates per generator update")
    train.add_argument("--lipschitz", choices=("gp", "clip", "spectral"),
                       help="critic constraint (default: the model's; gan-drn gp, csr-gan spectral)")
    train.add_argument("--adversarial-weight", type=float, help="weight of L_adv (default: the model's)")
    train.add_argument("--ssim-weight", type=float, help="weight of an extra (1 - SSIM) term (default: the model's)")
    train.add_argument("--val-every", type=int, default=100)
    train.add_argument("--patience", type=int, default=10, help="validations without improvement before stopping")
    train.add_argument("--generator", default="", help="generator options, e.g. width=32,blocks=2,stages=8 or kind=paper")
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    train.add_argument("--threads", type=int, help="torch CPU threads")
    train.add_argument("--time-limit", type=float, help="stop (validating and checkpointing) after this many wall seconds")
    train.add_argument("--out", default="runs/train", help="output folder for checkpoints and logs")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt at its exact step")
    train.add_argument("--init", help="start the generator from these weights (a shipped .pt or a best.pt)")
    train.add_argument("--seed", type=int, default=0)

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
    batch.add_argument("--workers", type=int, default=1, help="worker processes (each gets cores / workers torch threads)")
    batch.add_argument("--part", default="1/1", help="process only part i of N of the inputs, e.g. 2/4")
    batch.add_argument("--resume", action="store_true", help="skip inputs the manifest records as finished")
    batch.add_argument("--force", action="store_true", help="write into a non-empty output folder")
    batch.add_argument("--scheduler", help="address of a Dask distributed scheduler (pip install 'recon-mri[distributed]')")
    batch.add_argument("--seed", type=int, default=0)

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


def _run_config(args: argparse.Namespace) -> RunConfig:
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
        print(f"note: {note}")
    print(f"wrote {result.out}/report.html, metrics.json, config.json and images/")
    return EXIT_OK


def _command_mask(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".png", ".npy"):
        raise UsageError(f"--out {out}: use a .png or .npy file name")
    if out.exists() and not args.force:
        raise FileExistsError(f"{out} already exists; use --force to overwrite it")
    made = masks.make_mask(args.mask, args.shape, args.mask_type, seed=args.seed, center_fraction=args.center_fraction)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp{out.suffix}")
    if out.suffix.lower() == ".npy":
        np.save(tmp, made.array)
    else:
        save_png(tmp, (made.array * 255).astype(np.uint8))
    tmp.replace(out)
    print(
        f"{made.kind} {args.mask} {made.shape[0]}x{made.shape[1]}: achieved ratio {made.ratio:.4f} "
        f"({int(made.array.sum())} of {made.array.size} points), centre {made.center[0]}x{made.center[1]} -> {out}"
    )
    return EXIT_OK


def _command_methods(args: argparse.Namespace) -> int:
    for name in recon.registered():
        cls = recon.registry.method_class(name)
        reason = cls.unavailable_reason()
        status = "available" if reason is None else f"unavailable: {reason}"
        print(f"{name:<12} {cls.description} [{status}]")
    return EXIT_OK


def parse_ratios(text: str) -> tuple[float, ...]:
    """``10pct`` -> (0.1,); ``10pct,50pct`` -> (0.1, 0.5); ``10pct-50pct`` -> every 5 % from 10 to 50."""
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
        key, value = item.split("=", 1)
        options[key] = value if key == "kind" else (value.lower() == "true" if value.lower() in ("true", "false") else int(value))
    return options


def _command_train(args: argparse.Namespace) -> int:
    import json

    from pipelines.training_data import load_training_data
    from recon.training import TrainConfig, train

    config = TrainConfig(
        model=args.model, ratios=parse_ratios(args.mask), mask_type=args.mask_type, steps=args.steps,
        batch_size=args.batch_size, lr_g=args.lr_g, lr_d=args.lr_d, lr_schedule=args.lr_schedule, time_limit=args.time_limit, n_critic=args.n_critic,
        lipschitz=args.lipschitz, adversarial_weight=args.adversarial_weight, ssim_weight=args.ssim_weight, val_every=args.val_every,
        patience=args.patience, generator=_generator_options(args.generator), device=args.device,
        seed=args.seed, out=args.out, resume=args.resume, init=args.init, threads=args.threads,
    )
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
    from pipelines.batch import BatchConfig, run_batch

    try:
        index, count = (int(part) for part in args.part.split("/"))
    except ValueError as error:
        raise UsageError(f"--part must be i/N, e.g. 1/4, got {args.part!r}") from error
    config = BatchConfig(
        inputs=tuple(args.inputs), out=args.out, mask=args.mask, mask_type=args.mask_type, methods=args.methods,
        format=args.format, workers=args.workers, part=(index, count), resume=args.resume, force=args.force,
        seed=args.seed, scheduler=args.scheduler,
    )
    result = run_batch(config, log=lambda line: print(line, file=sys.stderr))
    rate = result.slices / result.seconds if result.seconds > 0 else 0.0
    print(f"{len(result.done)} done, {len(result.skipped)} already done (resume), {len(result.failed)} failed; "
          f"{result.slices} slice reconstructions in {result.seconds:.1f} s ({rate:.2f} slices/s); outputs in {args.out}")
    for entry in result.failed:
        print(f"  failed: {entry['error']}")
    return EXIT_PARTIAL if result.failed else EXIT_OK


def _command_report(args: argparse.Namespace) -> int:
    from pipelines.report import write_report

    if args.out is None and len(args.runs) > 1:
        raise UsageError("several runs need --out FILE")
    if len(args.runs) == 1 and (Path(args.runs[0]) / "manifest.json").is_file():  # a recon batch folder
        from pipelines.batch_report import write_batch_report

        out = write_batch_report(args.runs[0])
    else:
        out = write_report(args.runs, args.out or Path(args.runs[0]) / "report.html")
    print(f"wrote {out}")
    return EXIT_OK


COMMANDS = {"run": _command_run, "batch": _command_batch, "report": _command_report, "mask": _command_mask, "methods": _command_methods, "train": _command_train}


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            parser.print_help()
            return EXIT_USAGE
        return COMMANDS[args.command](args)
    except SystemExit as exit_:  # --help / --version
        return int(exit_.code or 0)
    except (UsageError, ValueError, FileNotFoundError, FileExistsError, PermissionError, MethodUnavailable) as error:
        print(f"recon: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("recon: interrupted", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - one readable line, not a traceback
        print(f"recon: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":  # python -m pipelines.cli (torchrun uses this)
    entry()
