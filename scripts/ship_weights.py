"""Ship a trained generator: copy its best weights into ``recon/weights`` with a JSON card
and the training log.

Usage: python scripts/ship_weights.py RUN_DIR NAME   (e.g. runs/gan-drn-10pct gan-drn-10pct)
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

from recon.gans import get_spec
from recon.learned import WEIGHTS_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("name", help="MODEL-Npct, e.g. gan-drn-10pct")
    args = parser.parse_args()
    best = torch.load(args.run / "best.pt", map_location="cpu", weights_only=False)
    config = best["config"]
    generator = get_spec(config["model"]).build_generator(dict(config["generator"]))
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
        "trained_ratios": config["ratios"],
        "mask_type": config["mask_type"],
        "data": command["data"],
        "command": " ".join(["recon", *command["argv"][1:]]),
        "steps_trained": int(rows[-1]["step"]),
        "best_step": best["step"],
        "wall_seconds": float(rows[-1]["seconds"]),
        "validation_at_best": best["val"],
        "validation_conventions": "val split, fixed masks, magnitude, data range = slice max (fastMRI)",
        "loss": "L_G = w_adv*L_adv + a*L_freq + b*L_nmse; see recon/gans.py for the weights",
        "trained_on": f"{os.cpu_count()} CPU cores, torch {torch.__version__}, Python {platform.python_version()}",
        "date": date.today().isoformat(),
        "log": f"logs/{args.name}.csv",
    }
    (WEIGHTS_DIR / f"{args.name}.json").write_text(json.dumps(card, indent=1) + "\n")
    shutil.copy(args.run / "log.csv", WEIGHTS_DIR / "logs" / f"{args.name}.csv")
    shutil.copy(args.run / "val.json", WEIGHTS_DIR / "logs" / f"{args.name}-val.json")
    print(json.dumps(card, indent=1))


if __name__ == "__main__":
    main()
