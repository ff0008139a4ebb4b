"""Train the MRI feature network (``recon.training.features.FeatureNet``) as a denoising and
inpainting autoencoder on the training subjects of a corpus, and ship it as
``recon/weights/mri-features.pt`` with a card.

Each training image (augmented as for the reconstructors: flips, rotations, contrast
synthesis, bias fields) is corrupted by one of: a low-resolution acquisition (a central
k-space block, 1/2 to 1/4 of each axis), 1-D undersampling (10 to 50 %), Gaussian noise,
or blanked rectangles. The network restores the clean image (L1 loss). Validation
subjects measure the restoration; test subjects are never read.

Usage: python scripts/train_features.py CORPUS [--steps N] [--time-limit S] [--out recon/weights]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import torch
from ship_weights import corpus_manifests  # scripts/ is on the path of a script run from it

from masks import make_mask
from physics.fft import fft2c, ifft2c
from pipelines.data.training import load_training_data
from recon.training.augment import augment, mix_images
from recon.training.features import FeatureNet
from recon.weights.loading import save_state


def corrupt(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One random corruption of a ``(H, W)`` image (see the module docstring)."""
    choice = rng.integers(4)
    tensor = torch.from_numpy(image.astype(np.complex64))
    if choice == 0:
        factor = float(rng.uniform(2.0, 4.0))
        mask = make_mask(1.0 / factor**2, image.shape, "lowres", seed=rng).array
    elif choice == 1:
        mask = make_mask(float(rng.uniform(0.1, 0.5)), image.shape, "cartesian", seed=rng).array
    else:
        mask = None
    if mask is not None:
        return ifft2c(fft2c(tensor) * torch.from_numpy(mask)).abs().numpy()
    if choice == 2:
        return np.abs(image + rng.normal(0, rng.uniform(0.01, 0.1), image.shape)).astype(np.float32)
    out = image.copy()
    for _ in range(int(rng.integers(1, 6))):
        h, w = (int(rng.integers(8, 48)) for _ in range(2))
        y, x = int(rng.integers(0, image.shape[0] - h)), int(rng.integers(0, image.shape[1] - w))
        out[y:y + h, x:x + w] = 0
    return out


def batch(images, step: int, size: int, crop: int, seed: int, training: bool = True):
    rng = np.random.default_rng([seed, step])
    clean, noisy = [], []
    for _ in range(size):
        index = int(rng.integers(len(images)))
        image = augment(images, index, rng) if training else np.asarray(images.images[index], dtype=np.float32)
        y, x = (int(rng.integers(0, s - crop + 1)) for s in image.shape)
        patch = image[y:y + crop, x:x + crop]
        clean.append(patch)
        noisy.append(corrupt(patch, rng))
    return torch.from_numpy(np.stack(noisy))[:, None].float(), torch.from_numpy(np.stack(clean))[:, None].float()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--time-limit", type=float, default=900.0)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="recon/weights")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_set, val_set, description = load_training_data(args.corpus)
    train_set = mix_images(train_set, ("shapes", "photos"), seed=args.seed)
    net = FeatureNet()
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-3)
    val_inputs, val_targets = batch(val_set, 0, 32, args.crop, args.seed + 1, training=False)
    started, log, step = time.time(), [], 0
    while step < args.steps and time.time() - started < args.time_limit:
        inputs, targets = batch(train_set, step, args.batch_size, args.crop, args.seed)
        for group in optimiser.param_groups:
            group["lr"] = 1e-3 * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * step / args.steps)))
        loss = (net(inputs) - targets).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        if step % 100 == 0:
            with torch.no_grad():
                val = float((net(val_inputs) - val_targets).abs().mean())
                identity = float((val_inputs - val_targets).abs().mean())
            log.append({"step": step, "train_l1": float(loss), "val_l1": val, "val_l1_of_input": identity,
                        "seconds": round(time.time() - started, 1)})
            print(json.dumps(log[-1]), flush=True)
    out = Path(args.out)
    save_state(out / "mri-features.pt", net.state_dict())
    card = {
        "model": "mri-features",
        "description": "our MRI feature network (NOT VGG): a denoising/inpainting autoencoder whose encoder features "
                       "give the perceptual loss of the SR GANs and the FID-like score; its scores are not comparable "
                       "with published VGG, LPIPS or FID values",
        "architecture": "3-stage CNN encoder 16-32-64 channels at 1, 1/2, 1/4 resolution; decoder for training only",
        "objective": "L1 restoration of clean magnitude crops from lowres / undersampled / noisy / blanked ones",
        "data": description, "mixed_in": ["shapes", "photos"], "corpus": corpus_manifests(["--data", args.corpus]),
        "command": "python scripts/train_features.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "steps": step, "seconds": round(time.time() - started, 1), "validation": log[-1] if log else None,
        "trained_on": f"{platform.machine()} CPU, {args.threads} threads", "date": date.today().isoformat(),
    }
    (out / "mri-features.json").write_text(json.dumps(card, indent=1) + "\n")
    print(f"saved {out / 'mri-features.pt'} after {step} steps")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
