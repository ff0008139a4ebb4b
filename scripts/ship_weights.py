"""Ship a trained generator: copy its best weights into ``recon/weights`` with a JSON card
and the training log.

Usage: python scripts/ship_weights.py RUN_DIR NAME   (e.g. runs/gan-drn-corpus gan-drn)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
from datetime import date
from pathlib import Path

import torch

from recon.models.spec import get_spec
from recon.weights import WEIGHTS_DIR
from recon.weights.loading import load_state


def wall_seconds(rows: list[dict]) -> float:
    """Wall time of a training log. A run resumed by an older trainer restarted its clock,
    so each segment where ``seconds`` drops is counted in full (re-done steps included)."""
    total, previous = 0.0, 0.0
    for row in rows:
        seconds = float(row["seconds"])
        if seconds < previous:
            total += previous
        previous = seconds
    return round(total + previous, 2)


def phase_threads(command: str) -> int:
    """The CPU threads a phase trained on (its ``--threads``; the trainer's default, 2
    on this project's machines, when absent)."""
    parts = command.split()
    return int(parts[parts.index("--threads") + 1]) if "--threads" in parts else 2


def ship_log(log: Path, name: str) -> str:
    """Copy a training log into ``recon/weights/logs``, unless a shipped log (of an earlier
    phase shared with other weights) already holds the same bytes; returns its file name."""
    folder = WEIGHTS_DIR / "logs"
    content = log.read_bytes()
    for existing in sorted(folder.glob("*.csv")):
        if existing.name != name and existing.read_bytes() == content:
            return existing.name
    shutil.copy(log, folder / name)
    return name


def corpus_manifests(argv: list[str]) -> list[dict]:
    """The manifest of each corpus folder among ``--data``: every source's package,
    version, member, checksum, licence file and split, so the card says what the
    weights saw (and that the test subjects were held out)."""
    if "--data" not in argv:
        return []
    out = []
    for part in argv[argv.index("--data") + 1].split(","):
        path = Path(part.strip()) / "manifest.json"
        if path.is_file():
            manifest = json.loads(path.read_text())
            keep = ("name", "registry", "package", "version", "member", "member_sha256", "licence_file", "subject",
                    "contrast", "anatomy", "split", "slices")
            out.append({"folder": part.strip(), "built_by": "python scripts/make_corpus.py OUT",
                        "sources": [{key: entry.get(key) for key in keep} for entry in manifest["sources"]],
                        "reserved_never_used": manifest.get("reserved_never_used", [])})
    return out


def reselect(run: Path, best: dict, config: dict) -> tuple[dict, dict]:
    """Validate ``best.pt`` and ``checkpoint.pt`` of ``run`` on the validation set the
    trainer used; return the better (by mean log10 NMSE) and a record of the choice."""
    from pipelines.data.training import load_training_data
    from recon.training.augment import AcquisitionDataset
    from recon.training.batches import validate

    argv = json.loads((run / "command.json").read_text())["argv"]
    data = argv[argv.index("--data") + 1] if "--data" in argv else "sample"
    _, val_set, _ = load_training_data(data)
    from recon.training.trainer import subsample, validation_coils

    families = tuple(dict.fromkeys(part for part in config["mask_type"].split(",") if part))
    coils = config.get("coils", 1)
    coils = (coils,) if isinstance(coils, int) else tuple(coils)
    dataset = AcquisitionDataset(subsample(val_set, config.get("val_slices")), tuple(config.get("val_ratios") or config["ratios"]),
                                 families, seed=config["seed"] + 1, train=False, coils=validation_coils(coils),
                                 measured=config.get("measured", 0.0), measured_snr=tuple(config.get("measured_snr", (15.0, 40.0))))
    last = load_state(run / "checkpoint.pt", what="checkpoint")
    candidates = {"best.pt": best, "checkpoint.pt": {"generator": last["generator"], "step": last["step"]}}
    scores = {}
    for name, candidate in candidates.items():
        model = get_spec(config["model"]).build_generator(dict(config["generator"]))
        model.load_state_dict(candidate["generator"])
        scores[name] = {**validate(model, dataset, torch.device("cpu")), "step": candidate["step"]}
    chosen = min(scores, key=lambda name: scores[name]["log_nmse"])
    record = {"criterion": "mean log10 NMSE on the val split", "candidates": scores, "chosen": chosen}
    return {"generator": candidates[chosen]["generator"], "step": scores[chosen]["step"], "val": scores[chosen]}, record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("name", help="the weights file name, e.g. gan-drn or gan-drn-10pct")
    parser.add_argument(
        "--previous", type=Path, action="append", default=[],
        help="earlier run(s) this one was initialised from (--init), oldest first; recorded in the card",
    )
    parser.add_argument(
        "--continues", action="store_true",
        help="the run was initialised (--init) from the shipped NAME weights it replaces: keep their card's training "
        "phases (and shipped logs) before this run's",
    )
    parser.add_argument(
        "--reselect", action="store_true",
        help="validate best.pt and the last checkpoint.pt again on the val split (geometric-mean NMSE, "
        "the trainer's criterion since it changed) and ship the better; recorded in the card",
    )
    parser.add_argument(
        "--continues-from", metavar="SHIPPED",
        help="like --continues, for a run initialised from other shipped weights (e.g. gan-drn for gan-drn-trajectory)",
    )
    parser.add_argument(
        "--sampling", choices=("grid", "trajectory", "plane"),
        help="what the weights serve (default: trajectory when every trained family is a trajectory, else grid); "
        "plane: the (ky, kz) planes of 3-D acquisitions, which recon run and recon batch reconstruct with them",
    )
    args = parser.parse_args()
    shipped_phases = []
    if args.continues or args.continues_from:
        source = args.continues_from or args.name
        shipped_phases = json.loads((WEIGHTS_DIR / f"{source}.json").read_text())["training_phases"]
    best = load_state(args.run / "best.pt", what="checkpoint")
    config = best["config"]
    generator = get_spec(config["model"]).build_generator(dict(config["generator"]))
    generator.load_state_dict(best["generator"])
    selection = None
    if args.reselect:
        best, selection = reselect(args.run, best, config)
        generator.load_state_dict(best["generator"])
    with open(args.run / "log.csv") as handle:
        rows = list(csv.DictReader(handle))
    command = json.loads((args.run / "command.json").read_text())
    WEIGHTS_DIR.mkdir(exist_ok=True)
    (WEIGHTS_DIR / "logs").mkdir(exist_ok=True)
    torch.save(generator.state_dict(), WEIGHTS_DIR / f"{args.name}.pt")
    card = {
        "model": config["model"],
        "generator": generator.config.to_dict(),
        "parameters": sum(p.numel() for p in generator.parameters()),
        # A through-plane model's "ratio" is 1 / slice factor (recon.models.learned picks weights by ratio).
        "trained_ratios": ([1 / f for f in config["slice_factors"]] if get_spec(config["model"]).trained_masks == "slices"
                           else config["ratios"]),
        "mask_type": config["mask_type"],
        "data": command["data"],
        "command": " ".join(["recon", *command["argv"][1:]]),
        "steps_trained": int(rows[-1]["step"]),
        "best_step": best["step"],
        "wall_seconds": wall_seconds(rows),
        "validation_at_best": best["val"],
        **({"selection": selection} if selection else {}),
        "validation_conventions": (
            "val subjects' volume planes containing z (else val slices), thickened by each factor; magnitude, "
            "data range = plane max" if get_spec(config["model"]).trained_masks == "slices"
            else "val split, fixed masks, magnitude, data range = slice max (fastMRI)"),
        "loss": "L_G = adversarial*L_adv + freq*L_freq + nmse*L_nmse + ssim*(1 - SSIM) + l1*L_l1 + feature_matching*L_fm "
                "+ perceptual*L_perc (recon.training.losses; L_perc on our MRI feature network recon.training.features, not VGG)",
        "loss_weights": {
            key: config.get(f"{key}_weight") if config.get(f"{key}_weight") is not None else default
            for key, default in vars(get_spec(config["model"]).loss_weights).items()
        },
        **({"loss_terms": config["losses"]} if config.get("losses") else {}),  # --loss NAME=WEIGHT, e.g. lognmse
        "lipschitz": config.get("lipschitz") or get_spec(config["model"]).lipschitz,
        "trained_on": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, Python {platform.python_version()}",
        "date": date.today().isoformat(),
    }
    phases = list(shipped_phases)
    for index, run in enumerate([*args.previous, args.run], start=len(shipped_phases)):
        with open(run / "log.csv") as handle:
            log = list(csv.DictReader(handle))
        phase_command = json.loads((run / "command.json").read_text())
        phases.append({
            "command": " ".join(["recon", *phase_command["argv"][1:]]),
            "steps": int(log[-1]["step"]),
            "wall_seconds": wall_seconds(log),
            "log": f"logs/{ship_log(run / 'log.csv', f'{args.name}-phase{index + 1}.csv')}",
        })
    card["training_phases"] = phases
    manifests = corpus_manifests(command["argv"])
    if manifests:
        card["corpus"] = manifests
    for key in ("coils", "mix", "val_ratios", "slice_factors", "resample", "measured"):
        if config.get(key):
            card[f"trained_{key}"] = config[key]
    if config.get("measured"):
        card["trained_measured_snr"] = config["measured_snr"]
    if config.get("resample") and config.get("resample_shrink"):
        card["trained_resample_shrink"] = config["resample_shrink"]
    card["total_wall_seconds"] = sum(p["wall_seconds"] for p in phases)
    card["total_cpu_hours"] = round(sum(p["wall_seconds"] * phase_threads(p["command"]) for p in phases) / 3600, 2)
    from masks import TRAJECTORY_KINDS

    if args.sampling in ("trajectory", "plane"):
        card["sampling"] = args.sampling  # recon.models.learned uses these weights for that sampling only
    elif args.sampling is None and all(kind in TRAJECTORY_KINDS for kind in config["mask_type"].split(",") if kind):
        card["sampling"] = "trajectory"  # recon.models.learned uses these weights for non-Cartesian data
    card["total_steps"] = sum(p["steps"] for p in phases)
    (WEIGHTS_DIR / f"{args.name}.json").write_text(json.dumps(card, indent=1) + "\n")
    shutil.copy(args.run / "val.json", WEIGHTS_DIR / "logs" / f"{args.name}-val.json")
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
