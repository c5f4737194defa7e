"""Image files <-> float tensors, for every common kind of file: 8/16-bit, gray, RGB, RGBA.
Decoding and encoding are OpenCV's, as in BasicSR."""
import os
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
import torch

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def list_images(folder: str):
    """Sorted image paths in a folder (not recursive); a clear error if there are none."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: not a folder")
    paths = sorted(os.path.join(folder, f) for f in os.listdir(folder)
                   if f.lower().endswith(IMAGE_EXTS))
    if not paths:
        raise FileNotFoundError(f"{folder}: no images ({', '.join(IMAGE_EXTS)})")
    return paths


@dataclass
class Picture:
    rgb: torch.Tensor              # [3, H, W] float in [0, 1] (gray replicated)
    alpha: Optional[torch.Tensor]  # [1, H, W] float in [0, 1], or None
    bits: int                      # 8 or 16, as stored
    gray: bool                     # stored as one channel

    @property
    def size(self):
        return self.rgb.shape[2], self.rgb.shape[1]


def read_picture(path: str) -> Picture:
    """Anything unreadable raises ValueError naming the file."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: not a readable image (missing, corrupt or unsupported format)")
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: unsupported pixel type {img.dtype} (use 8 or 16 bit)")
    bits = 16 if img.dtype == np.uint16 else 8
    img = img.astype(np.float32) / (65535.0 if bits == 16 else 255.0)
    gray = img.ndim == 2 or img.shape[2] == 1
    alpha = None
    if gray:
        img = np.repeat(img.reshape(img.shape[0], img.shape[1], 1), 3, axis=2)
    elif img.shape[2] == 4:
        alpha = torch.from_numpy(np.ascontiguousarray(img[:, :, 3]))[None]
        img = img[:, :, :3]
    elif img.shape[2] != 3:
        raise ValueError(f"{path}: {img.shape[2]} channels; expected gray, RGB or RGBA")
    rgb = torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)))
    return Picture(rgb, alpha, bits, gray)


def read_rgb(path: str) -> np.ndarray:
    """A file -> HWC float32 RGB in [0, 1] (alpha dropped, gray replicated)."""
    return np.ascontiguousarray(read_picture(path).rgb.permute(1, 2, 0).numpy())


def write_picture(path: str, rgb: torch.Tensor, alpha: Optional[torch.Tensor] = None,
                  bits: int = 8, gray: bool = False) -> None:
    """[3, H, W] float RGB (+ [1, H, W] alpha) -> PNG/any OpenCV format, 8 or 16 bit."""
    top = 65535.0 if bits == 16 else 255.0
    img = rgb.detach().float().clamp(0, 1).cpu().permute(1, 2, 0).numpy()[:, :, ::-1]
    if gray:
        img = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_BGR2GRAY)
    elif alpha is not None:
        a = alpha.detach().float().clamp(0, 1).cpu()[0].numpy()
        img = np.concatenate([img, a[:, :, None]], axis=2)
    out = np.round(img * top).astype(np.uint16 if bits == 16 else np.uint8)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    if not cv2.imwrite(str(path), out):
        raise ValueError(f"{path}: could not write the image")
