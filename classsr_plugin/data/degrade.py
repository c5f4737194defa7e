"""How training and test inputs are made from clean images, per task: bicubic downscaling (SR),
Gaussian noise (denoising) or blur (deblurring). Restoration tasks are scale 1.

Noise and kernels are drawn from a generator seeded by the image's name and the seed, so the
same image always gets the same degradation, whatever order or process makes it."""
import zlib
from typing import Optional, Tuple

import cv2
import numpy as np

from ..compat import alias_torchvision_for_basicsr

TASKS = ("sr", "denoise", "deblur")
BLURS = ("gaussian", "motion")


def _range(text, name) -> Tuple[float, float]:
    """'25' -> (25, 25); '15-50' -> (15, 50)."""
    try:
        parts = [float(p) for p in str(text).split("-")]
    except ValueError:
        raise ValueError(f"--{name}: expected a number or a range like 15-50, got {text!r}")
    lo, hi = (parts[0], parts[0]) if len(parts) == 1 else parts[:2]
    if len(parts) > 2 or lo < 0 or hi < lo:
        raise ValueError(f"--{name}: expected a number or a range like 15-50, got {text!r}")
    return lo, hi


def motion_kernel(length: int, angle: float, size: int) -> np.ndarray:
    """A normalised line of `length` pixels at `angle` degrees (basicsr has no motion kernel)."""
    k = np.zeros((size, size), np.float32)
    c = size // 2
    dx, dy = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
    for t in np.linspace(-(length - 1) / 2, (length - 1) / 2, 4 * length):
        k[int(round(c + t * dy)), int(round(c + t * dx))] = 1
    return k / k.sum()


class Degradation:
    def __init__(self, task: str = "sr", scale: int = 4, sigma: Optional[str] = None,
                 blur: str = "gaussian", blur_sigma: str = "0.5-3", seed: int = 0):
        if task not in TASKS:
            raise ValueError(f"--task: {task!r} is not one of {TASKS}")
        if task != "sr" and scale != 1:
            raise ValueError(f"--scale: {task} is a scale-1 task, got {scale}")
        if task == "denoise" and sigma is None:
            raise ValueError("--sigma: required for --task denoise (e.g. 25, or 15-50 for blind denoising)")
        if task == "deblur" and blur not in BLURS:
            raise ValueError(f"--blur: {blur!r} is not one of {BLURS}")
        self.task, self.scale, self.blur, self.seed = task, scale, blur, seed
        self.sigma = _range(sigma, "sigma") if task == "denoise" else None
        self.blur_sigma = _range(blur_sigma, "blur-sigma") if task == "deblur" else None

    def __str__(self):
        if self.task == "sr":
            return f"sr x{self.scale} bicubic"
        if self.task == "denoise":
            lo, hi = self.sigma
            return f"denoise sigma {lo:g}" + (f"-{hi:g}" if hi > lo else "")
        lo, hi = self.blur_sigma
        return f"deblur {self.blur} {lo:g}-{hi:g}"

    def rng(self, key: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(key.encode())])

    def __call__(self, hr: np.ndarray, key: str) -> np.ndarray:
        """Clean HWC float RGB in [0, 1] (already cropped to a multiple of the scale) -> input."""
        alias_torchvision_for_basicsr()
        if self.task == "sr":
            from basicsr.utils.matlab_functions import imresize
            return np.clip(imresize(hr, 1 / self.scale), 0, 1)
        rng = self.rng(key)
        if self.task == "denoise":
            sigma = rng.uniform(*self.sigma)
            noise = rng.standard_normal(hr.shape).astype(np.float32) * sigma / 255.0
            return np.clip(hr + noise, 0, 1).astype(np.float32)
        from basicsr.data.degradations import bivariate_Gaussian
        lo, hi = self.blur_sigma
        if self.blur == "gaussian":
            s = rng.uniform(lo, hi)
            kernel = bivariate_Gaussian(21, s, s, 0, isotropic=True)
        else:  # motion: length grows with the strength range
            kernel = motion_kernel(int(round(rng.uniform(3 * lo, 3 * hi))) | 1, rng.uniform(0, 180), 21)
        return np.clip(cv2.filter2D(hr, -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT), 0, 1)

    def of_picture(self, img, key: str):
        """A clean [C, H, W] float tensor in [0, 1] -> its degraded input as a [C, H, W] tensor,
        rounded to 8 bits as `classsr prepare` saves its inputs."""
        import torch
        out = self(img.permute(1, 2, 0).numpy(), key)
        return (torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1) * 255).round() / 255
