"""Image files <-> float tensors, for every common kind of file: 8/16-bit, gray, RGB, RGBA.
Decoding and encoding are OpenCV's, as in BasicSR.

Reading checks at the door: the pixel count from the header against MAX_PIXELS before
decoding (`--max-pixels`), truncated PNG / JPEG / WebP / BMP files are errors (OpenCV would
fill the missing part with grey), and the EXIF orientation is applied as image viewers do.
Writing is atomic, and PNGs carry a tEXt mark so a run never takes its own outputs as inputs."""
import io
import os
import re
import struct
import sys
import warnings
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from typing import List, Optional, Tuple

import cv2
import numpy as np
import torch

from .atomic import is_temp, write_bytes
from .checkpoint import finite

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# Decoded pixels allowed per image (50 megapixels: float RGB of that is 600 MB, its x4 output
# 9.6 GB); `--max-pixels` changes it, 0 = no limit.
MAX_PIXELS = 50_000_000
_MARK = b"Software\0classsr-plugin"  # tEXt chunk of every PNG written here


MIN_SIDE = (1, "")  # (px, why): smaller images are refused at the header; see `smallest`


def set_max_pixels(n: int) -> None:
    global MAX_PIXELS
    MAX_PIXELS = int(n)


@contextmanager
def smallest(side: int, why: str):
    """Within: images with a side under `side` px are refused from the header, `why` saying
    what needs it (a command whose later steps cannot take them)."""
    global MIN_SIDE
    saved, MIN_SIDE = MIN_SIDE, (side, why)
    try:
        yield
    finally:
        MIN_SIDE = saved


def list_images(folder: str, quiet: bool = False):
    """Sorted image paths in a folder (not recursive: subfolders are named on stderr unless
    `quiet`); a clear error if there are none. Temporary files of interrupted writes are not
    images."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{folder}: not a folder")
    with os.scandir(folder) as entries:
        entries = sorted(entries, key=lambda e: e.name)
    nested = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    if nested and not quiet:
        print(f"{folder}: subfolders are not searched: {', '.join(nested[:5])}{' ...' if len(nested) > 5 else ''}",
              file=sys.stderr)
    paths = [os.path.join(folder, e.name) for e in entries
             if e.name.lower().endswith(IMAGE_EXTS) and not is_temp(e.name) and not e.is_dir()]
    if not paths:
        raise FileNotFoundError(f"{folder}: no images ({', '.join(IMAGE_EXTS)})")
    return paths


def crop_note(path: str, width: int, height: int, scale: int) -> Optional[str]:
    """What to say when an image is cut to a multiple of the scale (None when it is one)."""
    w, h = width // scale * scale, height // scale * scale
    if (w, h) == (width, height):
        return None
    return f"{path}: {width}x{height} cropped to {w}x{h} (a multiple of the scale {scale})"


@dataclass
class Picture:
    rgb: torch.Tensor              # [3, H, W] float in [0, 1] (gray replicated)
    alpha: Optional[torch.Tensor]  # [1, H, W] float in [0, 1], or None
    bits: int                      # 8 or 16, as stored
    gray: bool                     # stored as one channel

    @property
    def size(self):
        return self.rgb.shape[2], self.rgb.shape[1]


def _png_complete(d: bytes) -> bool:
    i = 8
    while i + 8 <= len(d):
        n, kind = struct.unpack(">I4s", d[i:i + 8])
        i += 12 + n
        if kind == b"IEND":
            return i <= len(d)
    return False


def _jpeg_complete(d: bytes) -> bool:
    """Walks the markers to the end-of-image one; False only when the data runs out first."""
    i = 2
    while i + 1 < len(d):
        if d[i] != 0xFF:
            return True  # lost the marker structure: leave it to the decoder
        m = d[i + 1]
        if m == 0xD9:
            return True
        if m == 0xFF or 0xD0 <= m <= 0xD7 or m == 0x01:
            i += 1 if m == 0xFF else 2
            continue
        if i + 4 > len(d):
            return False
        i += 2 + int.from_bytes(d[i + 2:i + 4], "big")
        if m == 0xDA:  # entropy-coded data up to the next marker that is not a stuffed 0 or a restart
            while True:
                i = d.find(b"\xff", i)
                if i < 0 or i + 1 >= len(d):
                    return False
                n = d[i + 1]
                if n == 0 or 0xD0 <= n <= 0xD7:
                    i += 2
                elif n == 0xFF:
                    i += 1
                else:
                    break
    return False


def truncated(d: bytes) -> bool:
    """Whether PNG, JPEG, WebP or BMP data ends before the file's own structure does."""
    if d[:8] == b"\x89PNG\r\n\x1a\n":
        return not _png_complete(d)
    if d[:2] == b"\xff\xd8":
        return not _jpeg_complete(d)
    if d[:4] == b"RIFF" and d[8:12] == b"WEBP":
        return len(d) < 8 + struct.unpack("<I", d[4:8])[0]
    if d[:2] == b"BM" and len(d) >= 6:
        return len(d) < struct.unpack("<I", d[2:6])[0]
    return False


def complete(path: str) -> bool:
    """An existing image file whose data is all there (a crashed write leaves a part)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return bool(data) and not truncated(data)


def written_here(path: str) -> bool:
    """A PNG this plugin wrote (its tEXt mark right after the header)."""
    try:
        with open(path, "rb") as f:
            head = f.read(33 + 12 + len(_MARK))
    except OSError:
        return False
    return head[:8] == b"\x89PNG\r\n\x1a\n" and head[41:].startswith(_MARK)


def _header(data: bytes):
    """(width, height, EXIF orientation) from the header, nothing decoded; None if unknown."""
    from PIL import Image
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None  # the limit here is ours
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                if im.format == "PNG":
                    exif = Image.Exif()
                    if "exif" in im.info:  # an eXIf chunk before the pixels
                        exif.load(im.info["exif"])
                else:
                    exif = im.getexif()
                return im.size[0], im.size[1], int(exif.get(0x0112, 1) or 1)
    except Exception:
        return None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def image_size(path: str) -> Optional[Tuple[int, int]]:
    """(width, height) as read_picture will return it (EXIF rotation applied), from the header
    alone; None if the file cannot be read or its header is not understood."""
    try:
        with open(path, "rb") as f:
            head = _header(f.read())
    except OSError:
        return None
    if head is None:
        return None
    w, h, o = head
    return (h, w) if o in (5, 6, 7, 8) else (w, h)


def _orient(img: np.ndarray, o: int) -> np.ndarray:
    """EXIF orientation 2..8 -> the image as viewers show it (PIL's exif_transpose)."""
    if o in (5, 6, 7, 8):
        img = np.swapaxes(img, 0, 1)  # transpose
        img = {5: img, 6: img[:, ::-1], 7: img[::-1, ::-1], 8: img[::-1]}[o]
    elif o in (2, 3, 4):
        img = {2: img[:, ::-1], 3: img[::-1, ::-1], 4: img[::-1]}[o]
    return np.ascontiguousarray(img)


def read_picture(path: str) -> Picture:
    """Anything unreadable, too large (MAX_PIXELS) or truncated raises ValueError naming the file."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise ValueError(f"{path}: cannot read ({err.strerror or err})")
    head = _header(data)
    if head and MAX_PIXELS and head[0] * head[1] > MAX_PIXELS:
        raise ValueError(f"{path}: {head[0]}x{head[1]} is {head[0] * head[1] / 1e6:.0f} megapixels, over the "
                         f"limit of {MAX_PIXELS / 1e6:g} (--max-pixels)")
    if head and min(head[:2]) < MIN_SIDE[0]:
        raise ValueError(f"{path}: {head[0]}x{head[1]} is smaller than {MIN_SIDE[1]}")
    if truncated(data):
        raise ValueError(f"{path}: truncated file (the image data ends early)")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED) if data else None
    except cv2.error:
        img = None
    if img is None:
        raise ValueError(f"{path}: not a readable image (missing, corrupt or unsupported format)")
    if MAX_PIXELS and img.shape[0] * img.shape[1] > MAX_PIXELS:  # no header we could read
        raise ValueError(f"{path}: {img.shape[1]}x{img.shape[0]} is over the limit of "
                         f"{MAX_PIXELS / 1e6:g} megapixels (--max-pixels)")
    if img.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: unsupported pixel type {img.dtype} (use 8 or 16 bit)")
    if head and head[2] != 1:
        img = _orient(img, head[2])
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


# --format: OpenCV's encoder flag for --quality, its default, and what the number means
FORMATS = {"png": (cv2.IMWRITE_PNG_COMPRESSION, None, "PNG compression level 0-9 (default: OpenCV's, fast)"),
           "jpg": (cv2.IMWRITE_JPEG_QUALITY, 95, "JPEG quality 1-100 (default 95)"),
           "webp": (cv2.IMWRITE_WEBP_QUALITY, 90, "WebP quality 1-100, 101 lossless (default 90; lossless is slow)")}


def to_uint(rgb: torch.Tensor, bits: int = 8) -> np.ndarray:
    """[C, H, W] float in [0, 1] (or uint8) -> HWC uint8/uint16 array, channels reversed (OpenCV's BGR),
    converted by torch (at 8K a float64 numpy round trip took seconds)."""
    top = 65535.0 if bits == 16 else 255.0
    if rgb.dtype == torch.uint8 and bits == 8:  # already stored (restore_image(dtype=torch.uint8))
        q = rgb.detach().cpu()
    else:
        q = rgb.detach().float().clamp(0, 1).mul(top).round_()
        q = q.to(torch.int32 if bits == 16 else torch.uint8).cpu()
    arr = q.flip(0).permute(1, 2, 0).contiguous().numpy()
    return arr.astype(np.uint16) if bits == 16 else arr


def _hwc(rgb: torch.Tensor) -> bool:
    """A [3, H, W] uint8 CPU tensor over HWC memory (what restore_image(dtype=uint8) returns)."""
    return (rgb.dtype == torch.uint8 and rgb.device.type == "cpu" and rgb.dim() == 3 and rgb.shape[0] == 3
            and rgb.permute(1, 2, 0).is_contiguous())


@contextmanager
def _bgr(rgb: torch.Tensor):
    """The OpenCV array of an HWC-backed uint8 tensor (_hwc) without a copy: its own memory,
    channels swapped to BGR in place for the while and back after (a copy of a 16000x12000
    output is 576 MB more at the peak)."""
    arr = rgb.permute(1, 2, 0).numpy()
    cv2.cvtColor(arr, cv2.COLOR_RGB2BGR, dst=arr)
    try:
        yield arr
    finally:
        cv2.cvtColor(arr, cv2.COLOR_BGR2RGB, dst=arr)


def check_finite(path: str, *images: Optional[torch.Tensor]) -> None:
    """Before writing: NaN would be written black and Inf white, as if they were pixels."""
    if not all(img is None or finite(img) for img in images):
        raise ValueError(f"{path}: the output holds NaN or Inf values: not written")


def write_picture(path: str, rgb: torch.Tensor, alpha: Optional[torch.Tensor] = None,
                  bits: int = 8, gray: bool = False, quality: Optional[int] = None) -> None:
    """[3, H, W] float RGB (+ [1, H, W] alpha) -> PNG/JPEG/WebP/any OpenCV format, 8 or 16 bit.
    quality: see FORMATS (None: the format's default)."""
    check_finite(path, rgb, alpha)
    if alpha is None and not gray and bits == 8 and _hwc(rgb):
        with _bgr(rgb) as img:
            return write_array(path, img, quality)
    img = to_uint(rgb, bits)
    if gray:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    elif alpha is not None:
        img = np.concatenate([img, to_uint(alpha, bits)], axis=2)
    write_array(path, img, quality)


def write_array(path: str, img: np.ndarray, quality: Optional[int] = None) -> None:
    """An OpenCV (BGR) array -> an image file, atomically; PNGs get the plugin's mark."""
    ext = os.path.splitext(str(path))[1] or ".png"
    flag, default, _ = FORMATS.get(ext[1:].lower().replace("jpeg", "jpg"), (None, None, ""))
    value = default if quality is None else quality
    params = [flag, int(value)] if flag is not None and value is not None else []
    try:
        ok, buf = cv2.imencode(ext, img, params)
    except cv2.error as err:
        raise ValueError(f"{path}: could not encode the image ({str(err).strip().splitlines()[-1]})")
    if not ok:
        raise ValueError(f"{path}: could not encode the image")
    data = memoryview(buf).cast("B")  # no copy: a PNG of a 16000x12000 output is hundreds of MB
    if data[:8] == b"\x89PNG\r\n\x1a\n":  # the tEXt chunk right after IHDR (8 + 25 bytes)
        chunk = struct.pack(">I", len(_MARK)) + b"tEXt" + _MARK
        write_bytes(str(path), [data[:33], chunk + struct.pack(">I", zlib.crc32(b"tEXt" + _MARK)), data[33:]])
    else:
        write_bytes(str(path), data)


def safe_name(text: str) -> str:
    """Letters, digits and . _ + - only (others become _): an id that a list split on
    whitespace keeps whole, and that no '#' turns into a comment."""
    return re.sub(r"[^\w.+-]", "_", text)


def unique_stems(paths, safe: bool = False) -> List[str]:
    """A distinct name per path: the file's stem (through `safe_name` if `safe`), with its
    extension added where stems clash (photo.png, photo.jpg -> photo_png, photo_jpg) and a
    number where that still clashes."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in paths]
    stems = [safe_name(s) for s in stems] if safe else stems
    clash = {s.lower() for s in stems if sum(t.lower() == s.lower() for t in stems) > 1}
    names, seen = [], set()
    for p, s in zip(paths, stems):
        name = f"{s}_{os.path.splitext(p)[1][1:].lower()}" if s.lower() in clash else s
        base, k = name, 2
        while name.lower() in seen:
            name, k = f"{base}_{k}", k + 1
        seen.add(name.lower())
        names.append(name)
    return names
