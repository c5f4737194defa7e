"""Reading image files of any common kind as float RGB. Decoding is OpenCV's, as in BasicSR;
writing goes through basicsr's imwrite."""
import os

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


def read_rgb(path: str) -> np.ndarray:
    """A file -> HWC float32 RGB in [0, 1]. 8/16-bit, gray (replicated to RGB) and RGBA (alpha
    dropped) are accepted; anything unreadable raises ValueError naming the file."""
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: not a readable image (missing, corrupt or unsupported format)")
    if img.dtype == np.uint16:
        img = img.astype(np.float32) / 65535.0
    elif img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    else:
        raise ValueError(f"{path}: unsupported pixel type {img.dtype} (use 8 or 16 bit)")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    elif img.shape[2] != 3:
        raise ValueError(f"{path}: {img.shape[2]} channels; expected gray, RGB or RGBA")
    return np.ascontiguousarray(img[:, :, ::-1])


def to_tensor(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
