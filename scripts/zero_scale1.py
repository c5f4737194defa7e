"""Does a zero class (the identity at scale 1: the degraded input passed through) ever earn tiles
in denoising or deblurring? Measured without a trained network, as bounds:

- "within tol of perfect": tiles whose degraded input is already within the oracle's tolerance of
  the clean tile (MSE <= tol). No restorer can beat the identity there by more than tol, so the
  oracle (`classsr label --by oracle`) would send at least these to the zero class.
- "no worse than a filter": tiles where the identity's MSE is within tol of a fixed classical
  filter's (denoise: Gaussian blur, sigma 1; deblur: unsharp mask). A trained branch that is at
  least as good as that filter leaves the zero class at most these.

On the held-out photos of a recipe run (never the reserved ones: the recipe skips them by name),
32 px tiles every 32 px, degradations as `classsr prepare --task ...` makes them (seeded per photo).

Usage: python scripts/zero_scale1.py --photos RUN/photos/heldout [--tol 3e-6] [--sigma 25]
"""
import argparse
import os

import cv2
import numpy as np
import torch

from classsr_plugin.data.degrade import Degradation
from classsr_plugin.data.prepare import _quantise as quantise  # inputs are 8-bit files in practice
from classsr_plugin.data.prepare import psnr as psnr_of
from classsr_plugin.imageio import list_images, read_picture


def tile_mse(a: np.ndarray, b: np.ndarray, size: int = 32) -> np.ndarray:
    h, w = (a.shape[0] // size) * size, (a.shape[1] // size) * size
    d = (a[:h, :w] - b[:h, :w]) ** 2
    return d.reshape(h // size, size, w // size, size, -1).mean(axis=(1, 3, 4)).ravel()


def restore(task: str, img: np.ndarray) -> np.ndarray:
    if task == "denoise":
        return cv2.GaussianBlur(img, (0, 0), 1.0)
    return np.clip(cv2.addWeighted(img, 2.0, cv2.GaussianBlur(img, (0, 0), 1.5), -1.0, 0), 0, 1)


def psnr(mse: np.ndarray) -> float:
    """PSNR of the pooled tile MSE (the project's one formula)."""
    return float(psnr_of(torch.tensor(mse.mean(), dtype=torch.float64)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", required=True, help="a folder of held-out photos")
    ap.add_argument("--tol", type=float, default=3e-6, help="the oracle's MSE tolerance (the recipes' TOL)")
    ap.add_argument("--sigma", default="25", help="noise sigma for denoising")
    ap.add_argument("--blur-sigma", default="0.5-3", help="Gaussian blur sigma range for deblurring")
    args = ap.parse_args(argv)
    tasks = {"denoise": Degradation("denoise", 1, sigma=args.sigma),
             "deblur": Degradation("deblur", 1, blur_sigma=args.blur_sigma)}
    stats = {t: {"ident": [], "filt": []} for t in tasks}
    paths = list_images(args.photos)
    for path in paths:
        clean = read_picture(path).rgb.permute(1, 2, 0).numpy().astype(np.float32)
        key = os.path.splitext(os.path.basename(path))[0]
        for task, degrade in tasks.items():
            lq = quantise(degrade(clean, key))
            stats[task]["ident"].append(tile_mse(lq, clean))
            stats[task]["filt"].append(tile_mse(restore(task, lq), clean))
    print(f"{len(paths)} photos from {args.photos}, 32 px tiles, tolerance {args.tol:g}\n")
    print("| task | tiles | identity PSNR | filter PSNR | identity within tol of perfect | "
          "identity within tol of the filter | identity PSNR on the flattest tenth |")
    print("|---|---|---|---|---|---|---|")
    for task, s in stats.items():
        ident, filt = np.concatenate(s["ident"]), np.concatenate(s["filt"])
        flat = np.argsort(ident)[: max(1, len(ident) // 10)]
        print(f"| {task} ({tasks[task]}) | {len(ident)} | {psnr(ident):.2f} | {psnr(filt):.2f} | "
              f"{100 * np.mean(ident <= args.tol):.1f}% | {100 * np.mean(ident <= filt + args.tol):.1f}% | "
              f"{psnr(ident[flat]):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
