"""The ``recon`` command line's parser: commands, options and the checked argument
types (every number finite and in range, named in its error)."""

from __future__ import annotations

import argparse
import difflib
import math

import masks
from pipelines.config import ESTIMATE_METHODS
from pipelines.formats.table import FORMAT_CHOICES
from recon import __version__


class UsageError(Exception):
    """Bad usage or bad input: reported in one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse without abbreviations (``--coil 8`` must not pass as ``--coils 8``), whose
    errors are one line naming the command, with the nearest option for a misspelt one."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # argparse would print usage and exit
        raise UsageError(f"{self.prog}: {message}")

    def parse_args(self, args=None, namespace=None):
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            command = self._command_parser(getattr(parsed, "command", None))
            unknown = [text for text in extra if text.startswith("-")] or extra
            hint = ""
            options = [option for action in command._actions for option in action.option_strings]
            close = difflib.get_close_matches(unknown[0].split("=")[0], options, n=1)
            if close:
                hint = f" (did you mean {close[0]}?)"
            raise UsageError(f"{command.prog}: unrecognized arguments: {' '.join(extra)}{hint}")
        return parsed

    def _command_parser(self, command: str | None) -> argparse.ArgumentParser:
        """The parser of ``command`` (this one when there is none)."""
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                return action.choices[command]
        return self


def shape(text: str) -> tuple[int, int]:
    try:
        height, width = (int(part) for part in text.split(","))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"shape must be H,W (e.g. 256,256), got {text!r}") from error
    if height < 2 or width < 2:
        raise argparse.ArgumentTypeError(f"shape must be at least 2,2, got {text!r}")
    return height, width


def methods(text: str) -> tuple[str, ...]:
    return tuple(name.strip() for name in text.split(",") if name.strip())


def integer(low: int | None = None, high: int | None = None):
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


def count_or_all(text: str) -> int:
    """argparse type: a positive count, or ``all`` (0: every one)."""
    if text.strip().lower() == "all":
        return 0
    return integer(1)(text)


def number(low: float | None = None, high: float | None = None, low_open: bool = False):
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


def memory(text: str) -> int:
    from pipelines.common.limits import parse_size

    try:
        return parse_size(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--max-memory: ")) from None


MAX_MEMORY_HELP = ("most memory one input may need, e.g. 4G or 512M; larger inputs are refused before they "
                   "are read (default: half of this machine's memory)")


ESTIMATE_METHODS_HELP = ("which methods get the error estimate: default, every method but BART's (bart-l1, bart-tv are "
                         "anchors the guard does not need, and 4 more BART runs a slice cost minutes with 8 coils); "
                         "all, BART's too")
ESTIMATE_HELP = ("k-space hold-out folds of the reference-free error estimate of every method (default 4: "
                 "each method reconstructs K more times); 0 turns the estimate and the guard off")
ADAPT_HELP = ("fine-tune each learned method on this scan's own measured k-space before reconstructing "
              "(self-supervised on measured points the network does not see, early-stopped on a further hold-out; "
              "about 2.5 minutes per learned method, the weights shared by every slice); for scans unlike the training data")
DEVICE_HELP = ("where the methods compute: cpu (default), auto (CUDA when present), cuda or cuda:N; BART and --adapt "
               "stay on the CPU")
GUARD_HELP = ("on by default for learned methods: write the best CS (or zero-filled) output instead of a learned one "
              "on slices where the learned output's estimate does not lead that output's by 1.5 dB less their spread "
              "(cs-tv and zero-filled are added when missing); --no-guard writes the learned output (the verdict is "
              "recorded either way)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="recon",
        description="MRI reconstruction from undersampled k-space, with CS baselines and trustworthy metrics.",
        epilog="example: recon run --mask 10pct --mask-type cartesian --out recon-output/run-10pct",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"recon {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_run(commands)
    _add_mask(commands)
    _add_train(commands)
    _add_batch(commands)
    _add_report(commands)
    _add_sr(commands)
    _add_methods(commands)
    return parser


def _add_run(commands) -> None:
    """The ``recon run`` command and its options."""
    run = commands.add_parser(
        "run",
        help="simulate an acquisition and compare every method",
        description="Simulate undersampled k-space from the built-in sample brain slices (or --input), "
        "reconstruct with every available method, print PSNR/SSIM/NMSE/time and write "
        "metrics.json, config.json and PNGs.",
        epilog="examples:\n  recon run --mask 10pct\n  recon run --mask 50pct --mask-type vd2d --slices all --out runs/vd50\n"
        "  recon run --mask 25pct --coils 8 --noise-snr 30 --methods zero-filled,cs-l1,cg-sense\n"
        "  recon run --mask 50pct --mask-type vd2d --no-guard\n"
        "  recon run --acquisition 3d --mask 10pct --mask-type poisson   (a 3-D scan of the sample volume, 8 coils)\n"
        "  recon run --input head.nii.gz --acquisition 3d --mask 25pct --mask-type caipi",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument("--config", help="TOML/JSON/YAML file with run settings; flags override it")
    run.add_argument("--mask", help="preset Npct: N/100 of the k-space grid sampled, centre included (default 10pct); "
                     "lowres-2x or lowres-4x: the central H/F x W/F block, i.e. in-plane super-resolution")
    run.add_argument("--mask-type", choices=masks.ALL_KINDS,
                     help="mask family (default cartesian); radial, radial-uniform, radial-tiny-golden and spiral are "
                     "non-Cartesian trajectories (NUFFT), their --mask Npct, Nspokes or Ninterleaves")
    run.add_argument("--mask-file", help=".npy bool (H, W) mask to use instead of generating one")
    run.add_argument("--center-fraction", type=number(0, 1), help="override the preset's centre size (0 to 1)")
    run.add_argument("--methods", type=methods, help="comma-separated method names (see `recon methods`; default: all that run here)")
    run.add_argument("--input", help="NIfTI (.nii, .nii.gz), .npy image or DICOM series (file or folder) instead of "
                     "the sample's test slices")
    run.add_argument("--slices", type=count_or_all, metavar="N|all",
                     help="how many slices, evenly spread (default 4; all: every slice)")
    run.add_argument("--coils", type=integer(1, 64), help="1 = single coil (default); N > 1 simulates birdcage coil maps")
    run.add_argument("--noise-snr", type=number(-20, 200), help="add complex Gaussian noise at this SNR in dB (-20 to 200)")
    run.add_argument("--phase", action="store_true", default=None, help="add a smooth synthetic image phase")
    run.add_argument("--seed", type=integer(0, 2**32 - 1), help="seed mixed with the input name for mask, phase and noise (default 0)")
    run.add_argument("--max-memory", type=memory, help=MAX_MEMORY_HELP)
    run.add_argument("--out", help="output folder (default recon-output/run-MASK-TYPE)")
    run.add_argument("--force", action="store_true", default=None, help="replace an existing output folder")
    run.add_argument("--estimate-folds", type=integer(0, 16), help=ESTIMATE_HELP)
    run.add_argument("--estimate-slices", type=count_or_all, metavar="N|all",
                     help="run the error estimate (and the guard) on N of the slices, evenly spread (default all)")
    run.add_argument("--estimate-methods", choices=ESTIMATE_METHODS, help=ESTIMATE_METHODS_HELP)
    run.add_argument("--guard", action=argparse.BooleanOptionalAction, default=None, help=GUARD_HELP)
    run.add_argument("--adapt", action="store_true", default=None, help=ADAPT_HELP)
    run.add_argument("--device", help=DEVICE_HELP)
    run.add_argument("--acquisition", choices=("2d", "3d"),
                     help="2d: slice by slice (default); 3d: one 3-D acquisition of the whole volume (the sample's, or "
                     "--input's), readout along the header's frequency axis (else the slices' rows), the mask over the "
                     "(ky, kz) plane; every readout position's plane is reconstructed (default --coils 8 --noise-snr 30 "
                     "--estimate-slices 8; the guard judges the volume as one)")


def _add_mask(commands) -> None:
    """The ``recon mask`` command and its options."""
    mask = commands.add_parser(
        "mask",
        help="make and save an undersampling mask",
        description="Make a mask, save it as .png or .npy and print its achieved ratio.",
        epilog="examples:\n  recon mask --mask 10pct --mask-type cartesian --shape 256,256 --seed 0 --out mask.png\n"
        "  recon mask --mask 10pct --mask-type poisson --shape 256,176 --out ky-kz.png   (a 3-D scan's phase-encode plane)\n"
        "  recon mask --mask 10pct --mask-type caipi --shape 256,176 --out caipi.npy",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mask.add_argument("--mask", default="10pct", help="preset Npct (default 10pct); Nspokes or Ninterleaves for "
                      "trajectories")
    mask.add_argument("--mask-type", choices=masks.ALL_KINDS,
                      help="mask family (default cartesian; lowres for a lowres-Fx preset)")
    mask.add_argument("--shape", type=shape, default=(256, 256), help="H,W (default 256,256)")
    mask.add_argument("--seed", type=integer(0, 2**32 - 1), default=0)
    mask.add_argument("--center-fraction", type=number(0, 1), default=None)
    mask.add_argument("--max-memory", type=memory, help="most memory the mask may need (default: half of this machine's memory)")
    mask.add_argument("--out", required=True, help="output .png or .npy")
    mask.add_argument("--force", action="store_true", help="overwrite an existing file")


def _add_train(commands) -> None:
    """The ``recon train`` command and its options."""
    train = commands.add_parser(
        "train",
        help="train a learned reconstructor with the shared GAN trainer",
        description="Train a GAN reconstructor on simulated acquisitions (a fresh random mask per sample, "
        "fixed validation masks); keeps the checkpoint with the best validation NMSE.",
        epilog="examples:\n  recon train --model gan-drn --mask 10pct --steps 2000 --out runs/gan-drn-10pct\n"
        "  recon train --model gan-drn --mask 10pct --out runs/gan-drn-10pct --resume\n"
        "  recon train --model csr-gan --mask 10pct-50pct --init recon/weights/gan-drn.pt --out runs/csr-gan\n"
        "  torchrun --nproc-per-node 2 -m pipelines.cli train --model gan-drn --mask 10pct --out runs/ddp",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("--model", default="gan-drn", help="a registered learned model (`recon methods` lists them; default gan-drn)")
    train.add_argument("--mask", default="10pct", help="preset Npct, a list 10pct,50pct, or a range 10pct-50pct")
    train.add_argument("--mask-type", default="cartesian",
                       help=f"mask family, or a comma-separated list drawn per sample ({', '.join(masks.KINDS)}; default cartesian)")
    train.add_argument("--val-slices", type=integer(1), help="validate on this many evenly spread slices (default: all)")
    train.add_argument("--val-mask", help="validation ratios, as --mask (default: the training ratios)")
    train.add_argument("--data", default="sample",
                       help="'sample', a corpus folder (scripts/make_corpus.py), a folder of NIfTI / .npy images, "
                       "or a comma-separated list of these (used together)")
    train.add_argument("--mix", default="", help="add images that are not MRI: shapes, photos or shapes,photos")
    train.add_argument("--resample", type=number(0, 1), default=0.0,
                       help="fraction of training images resampled to a lower native resolution (1.1 to 2.4 times "
                       "coarser) and interpolated back, bilinear, cubic or ZIP (default 0)")
    train.add_argument("--resample-shrink", default="1.1-2.4",
                       help="with --resample: how much coarser a resampled image's native grid is: a range LOW-HIGH drawn uniformly, or "
                       "one factor, e.g. 2 (a scanner's 2x interpolation, or a 128 image on a 256 grid; default 1.1-2.4)")
    train.add_argument("--measured", type=number(0, 1), default=0.0,
                       help="fraction of multi-coil training items simulated as a scanner measures them: correlated "
                       "coil noise at --measured-snr, prewhitened, maps estimated from the data (default 0)")
    train.add_argument("--measured-snr", default="15-40",
                       help="with --measured: the noise level in dB, a range LOW-HIGH drawn uniformly (default 15-40)")
    train.add_argument("--slice-factors", default="2,4",
                       help="through-plane models (soup-gan-z): thick-slice factors drawn per sample (default 2,4)")
    train.add_argument("--steps", type=integer(1), default=2000)
    train.add_argument("--batch-size", type=integer(1, 4096), default=4)
    train.add_argument("--lr-g", type=number(0, 1, low_open=True), help="generator learning rate (default: the model's; gan-drn 1e-3, csr-gan 1e-4)")
    train.add_argument("--lr-d", type=number(0, 1, low_open=True), help="critic learning rate (default: the model's; gan-drn 1e-4, csr-gan 2e-4)")
    train.add_argument("--lr-schedule", choices=("constant", "cosine"), default="constant",
                       help="constant, or cosine decay to 5%% of the learning rates over --steps")
    train.add_argument("--lr-warmup", type=integer(0), default=0,
                       help="ramp the learning rates up linearly over the first N steps (default 0; for fine-tunes)")
    train.add_argument("--n-critic", type=integer(0, 100), default=1, help="critic updates per generator update")
    train.add_argument("--lipschitz", choices=("gp", "clip", "spectral"),
                       help="critic constraint (default: the model's; gan-drn gp, csr-gan spectral)")
    train.add_argument("--adversarial-weight", type=number(0), help="weight of L_adv (default: the model's)")
    train.add_argument("--ssim-weight", type=number(0), help="weight of an extra (1 - SSIM) term (default: the model's)")
    train.add_argument("--val-every", type=integer(1), default=100, help="validate every N steps (default 100)")
    train.add_argument("--patience", type=integer(1), default=10, help="validations without improvement before stopping")
    train.add_argument("--generator", default="", help="generator options, e.g. width=32,blocks=2,stages=8 or kind=paper")
    train.add_argument("--loss", action="append", default=[], metavar="NAME=WEIGHT",
                       help="weight of a named loss term (freq, nmse, lognmse, ssim, l1, adv, fm, perceptual); repeatable, e.g. --loss l1=1 --loss fm=0.01")
    train.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    train.add_argument("--threads", type=integer(1, 1024), help="torch CPU threads")
    train.add_argument("--coils", default="1",
                       help="coils to simulate, or a comma-separated list drawn per sample, e.g. 1,1,2,4,8,16 "
                       "(default 1: single-coil; more than 8 are compressed to 8 virtual coils)")
    train.add_argument("--time-limit", type=number(0, low_open=True), help="stop (validating and checkpointing) after this many wall seconds")
    train.add_argument("--out", default="runs/train", help="output folder for checkpoints and logs")
    train.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt at its exact step")
    train.add_argument("--init", help="start the generator from these weights (a shipped .pt or a best.pt)")
    train.add_argument("--seed", type=integer(0, 2**32 - 1), default=0)


def _add_batch(commands) -> None:
    """The ``recon batch`` command and its options."""
    batch = commands.add_parser(
        "batch",
        help="reconstruct files and folders (DICOM, NIfTI, fastMRI, ISMRMRD, Siemens twix, BART, .npy)",
        description="Reconstruct every input with each method and write the results in the chosen format, "
        "with per-file metrics when a reference exists. Magnitude images (DICOM, NIfTI, .npy) get simulated "
        "k-space; raw data (fastMRI .h5, ISMRMRD .h5, Siemens twix .dat, BART .cfl) is reconstructed as measured (undersampled "
        "with --mask when it is fully sampled). Bad files are logged and skipped (exit code 3); outputs are "
        "written atomically and manifest.json lets --resume skip finished files.",
        epilog="examples:\n  recon batch scans/ --out recon-batch --mask 10pct --methods cs-tv,gan-drn\n"
        "  recon batch brain.nii.gz series_dir/ raw.h5 --out out --format nifti --workers 2\n"
        "  recon batch scans/ --out out --part 1/4 --resume\n"
        "  recon batch raw.h5 --out out --methods cs-tv,csr-gan --no-guard\n"
        "  recon batch thick_volumes/ --out thin --slice-factor 4 --methods soup-gan,cubic",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    batch.add_argument("inputs", nargs="+", help="files or folders (folders are searched recursively)")
    batch.add_argument("--out", required=True, help="output folder")
    batch.add_argument("--mask", default="10pct", help="preset Npct (or lowres-2x, lowres-4x: in-plane super-resolution) for inputs "
                       "that are not already undersampled")
    batch.add_argument("--mask-type", default="cartesian", choices=masks.ALL_KINDS,
                       help="mask family for fully sampled inputs (default cartesian; raw data keeps its own sampling)")
    batch.add_argument("--methods", type=methods, help="comma-separated methods (default cs-tv; soup-gan with --slice-factor)")
    batch.add_argument("--format", default="same", choices=FORMAT_CHOICES,
                       help="output format; 'same' writes DICOM for DICOM, NIfTI for NIfTI, h5 for fastMRI/ISMRMRD, cfl for cfl")
    batch.add_argument("--workers", type=integer(1, 256), default=1, help="worker processes (each gets cores / workers torch threads)")
    batch.add_argument("--part", default="1/1", help="process only part i of N of the inputs, e.g. 2/4")
    batch.add_argument("--resume", action="store_true", help="skip inputs the manifest records as finished")
    batch.add_argument("--force", action="store_true", help="write into a non-empty output folder")
    batch.add_argument("--scheduler", help="address of a Dask distributed scheduler (pip install 'recon-mri[distributed]')")
    batch.add_argument("--seed", type=integer(0, 2**32 - 1), default=0,
                       help="seed mixed with each input's name for its mask and simulated k-space (default 0)")
    batch.add_argument("--max-memory", type=memory, help=MAX_MEMORY_HELP)
    batch.add_argument("--estimate-folds", type=integer(0, 16), default=4, help=ESTIMATE_HELP)
    batch.add_argument("--estimate-methods", choices=ESTIMATE_METHODS, default="default", help=ESTIMATE_METHODS_HELP)
    batch.add_argument("--guard", action=argparse.BooleanOptionalAction, default=None, help=GUARD_HELP)
    batch.add_argument("--adapt", action="store_true", help=ADAPT_HELP)
    batch.add_argument("--device", default="cpu", help=DEVICE_HELP)
    batch.add_argument("--acquisition", choices=("2d", "3d"), default="2d",
                       help="3d: take a BART .cfl's z dimension as kz of one 3-D acquisition (twix and ISMRMRD files say "
                       "so themselves: partitions, kspace_encode_step_2); its (ky, kz) planes are reconstructed in hybrid "
                       "space, the mask drawn over the (ky, kz) plane")
    batch.add_argument("--virtual-coils", type=integer(1, 64), metavar="N",
                       help="compress measured multi-coil k-space to N virtual coils after prewhitening and readout "
                       "oversampling: geometric (as BART cc -G) for 1-D masks, SVD otherwise (default: keep every coil)")
    batch.add_argument("--slice-factor", type=int, choices=(2, 4),
                       help="through-plane super-resolution of thick-slice volumes (NIfTI, DICOM series), as recon sr: "
                       "each volume gets F times as many slices; --methods from soup-gan, cubic, sinc (default soup-gan)")


def _add_report(commands) -> None:
    """The ``recon report`` command and its options."""
    report = commands.add_parser(
        "report",
        help="(re)build the HTML comparison report of recon run (or recon batch) outputs",
        description="Build report.html, a self-contained HTML comparison (summary table, trust check, plots, "
        "image grid, masks, provenance) from recon run output folders. Several runs (e.g. one per mask) make "
        "one report with quality against the sampling ratio. Rebuilding replaces the report file.",
        epilog="examples:\n  recon report recon-output/run-10pct-cartesian\n"
        "  recon report runs/10pct runs/25pct runs/50pct --out comparison.html\n"
        "  recon report recon-output --out all-runs.html     # every run folder inside recon-output\n"
        "  recon report batch-a batch-b --out batches.html   # two recon batch folders in one report",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    report.add_argument("runs", nargs="+", metavar="FOLDER",
                        help="recon run or recon batch output folders, or a folder that holds them")
    report.add_argument("--out", help="report file (default FOLDER/report.html for one folder; required for several)")


def _add_sr(commands) -> None:
    """The ``recon sr`` command and its options."""
    sr = commands.add_parser(
        "sr",
        help="through-plane super-resolution: thin slices from a thick-slice NIfTI volume or DICOM series",
        description="Restore F thin slices per thick slice (a thick slice is taken as the average of F thin ones) "
        "with SOUP-GAN (hard data consistency: the thin slices average back to the measured thick ones), or "
        "with cubic or sinc interpolation along z. Writes NIfTI or DICOM with the new slice spacing in the "
        "geometry, and sr.json (method, factor, seconds). For in-plane SR use recon run or recon batch with "
        "--mask lowres-2x or lowres-4x.",
        epilog="examples:\n  recon sr thick.nii.gz --slice-factor 4 --method soup-gan --out sr-out\n"
        "  recon sr dicom_series/ --slice-factor 2 --method cubic --out sr-cubic",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sr.add_argument("volume", help="a 3-D NIfTI file or a DICOM series (file or folder)")
    sr.add_argument("--out", required=True, help="output folder")
    sr.add_argument("--slice-factor", type=int, choices=(2, 4), default=4, help="thin slices per thick slice (default 4)")
    sr.add_argument("--method", choices=("soup-gan", "cubic", "sinc"), default="soup-gan")
    sr.add_argument("--weights", help="soup-gan-z weights to use instead of the shipped ones (a .pt or a trainer's best.pt)")
    sr.add_argument("--max-memory", type=memory, help="most memory the input may need (default: half of this machine's memory)")
    sr.add_argument("--force", action="store_true", help="replace an existing output folder")


def _add_methods(commands) -> None:
    """The ``recon methods`` command."""
    commands.add_parser(
        "methods",
        help="list the reconstruction methods and whether they can run here",
        description="List every registered reconstruction method and whether it can run on this machine.",
        epilog="example: recon methods",
    )
