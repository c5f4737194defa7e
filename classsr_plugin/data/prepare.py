"""Difficulty-ranked training sub-images, as the ClassSR paper made them.

For every HR image: copies downscaled by each factor in `scales`, the input made from each by
the task's degradation (SR: bicubic, basicsr's MATLAB-style imresize; denoise / deblur: see
degrade.py), dense input/target sub-image pairs (tile / tile x scale), and a difficulty score
per pair: the PSNR of a reference network's output (or, without one, of bicubic upsampling for
SR and of the degraded input itself for restoration: weaker proxies). Pairs are split into M
equal-count classes by PSNR quantile; the lowest PSNR goes to class M-1, the widest branch.

Output folder:  lq/ and gt/ (PNG pairs, same names), scores/<image>.json (one per finished
image: re-running skips it), meta_info.txt (`name psnr class` per line), skipped.txt,
settings.json (a re-run with other settings is refused, naming the difference). Every file
is written atomically; images with the same stem (photo.png, photo.jpg) get distinct ids, and
ids hold letters, digits and . _ + - only (`my photo.png` is listed as `my_photo`).
"""
import json
import os
import sys
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..compat import alias_torchvision_for_basicsr
from ..atomic import DISK, write_text
from ..checks import describe
from ..imageio import IMAGE_EXTS, complete, crop_note, list_images, read_rgb, unique_stems, write_array
from ..tiling import tile_starts
from .degrade import Degradation

META = "meta_info.txt"
SETTINGS = "settings.json"


@dataclass
class Prepared:
    done: List[str] = field(default_factory=list)          # images scored in this run
    resumed: List[str] = field(default_factory=list)       # images already scored earlier
    skipped: List[Tuple[str, str]] = field(default_factory=list)  # (path, reason)
    pairs: int = 0
    counts: List[int] = field(default_factory=list)        # pairs per class
    thresholds: List[float] = field(default_factory=list)  # PSNR class boundaries, descending
    scorer: str = ""                                       # what the PSNR was measured on
    estimate: Tuple[int, int] = (0, 0)                     # (pairs, bytes uncompressed) before cutting


def sub_image_name(stem: str, factor: float, y: int, x: int) -> str:
    """A sub-image's name: its photo, the photo's scale and the LR position."""
    return f"{stem}_s{factor:.2f}_{y:04d}_{x:04d}"


def photo_of(name: str) -> str:
    """The photo a sub-image came from (sub_image_name's inverse, for splits by photo)."""
    import re
    return re.sub(r"_s[0-9.]+_\d+_\d+$", "", name)


def _imresize(img: np.ndarray, factor: float) -> np.ndarray:
    alias_torchvision_for_basicsr()
    from basicsr.utils.matlab_functions import imresize
    return np.clip(imresize(img, factor), 0, 1)


def _quantise(img):
    return (img * 255).round() / 255  # as it will be stored (8-bit PNG)


def _crops(img: np.ndarray, ys, xs, size: int) -> np.ndarray:
    """[n, size, size, C] crops at the points (ys[i], xs[i])."""
    ar = np.arange(size)
    rows = ys[:, None, None] + ar[None, :, None]
    cols = xs[:, None, None] + ar[None, None, :]
    return img[rows, cols]


def default_stride(scale: int) -> int:
    """The paper's 16 LR px at x4; at other scales the stride that cuts the same number of
    sub-images from a photo (an input at scale 1 has 16x the pixels of its x4 LR, so 64 px)."""
    return max(1, round(64 / scale))


def _quota(max_per_image: Optional[int], scales: Sequence[float], factor: float) -> Optional[int]:
    """A photo's cap shared among its copies by area (each copy at least one sub-image)."""
    if not max_per_image:
        return None
    return max(1, int(max_per_image * factor ** 2 / sum(f ** 2 for f in scales)))


def _positions(lr_h: int, lr_w: int, tile: int, stride: int, quota: Optional[int]):
    """(ys, xs) of the sub-images cut from an input of lr_h x lr_w; with a quota, that many of
    the grid's positions, evenly spaced in raster order (deterministic: a re-run cuts the same)."""
    ys, xs = tile_starts(lr_h, tile, stride).numpy(), tile_starts(lr_w, tile, stride).numpy()
    ys, xs = np.repeat(ys, len(xs)), np.tile(xs, len(ys))
    if quota is not None and quota < len(ys):
        keep = np.unique(np.linspace(0, len(ys) - 1, quota).round().astype(int))
        ys, xs = ys[keep], xs[keep]
    return ys, xs


def estimate(paths, scale: int, scales: Sequence[float], tile: int, stride: int,
             max_per_image: Optional[int] = None) -> Tuple[int, int]:
    """(sub-image pairs, bytes of their pixels uncompressed) that `prepare` would cut from these
    images, from their headers (nothing decoded); unreadable images count as none."""
    from ..imageio import image_size
    pairs = 0
    for path in paths:
        size = image_size(path)
        if size is None:
            continue
        w, h = size
        for f in scales:
            fh, fw = (h, w) if f == 1 else (int(np.ceil(h * f)), int(np.ceil(w * f)))
            lr_h, lr_w = fh // scale, fw // scale
            if min(lr_h, lr_w) < tile:
                continue
            pairs += len(_positions(lr_h, lr_w, tile, stride, _quota(max_per_image, scales, f))[0])
    return pairs, pairs * tile * tile * 3 * (1 + scale * scale)


def psnr(mse: torch.Tensor) -> torch.Tensor:
    """PSNR (dB) of mean squared errors on [0, 1] pixels, a sub-image's or pooled over tiles: the
    plugin's one formula (basicsr's calculate_psnr, used for every whole image, takes images)."""
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


def bicubic_scorer(scale: int) -> Callable[[torch.Tensor], torch.Tensor]:
    def up(lq):
        return F.interpolate(lq, scale_factor=scale, mode="bicubic", align_corners=False)
    return up


def find_lr(lr_dir: str, stem: str) -> str:
    for ext in IMAGE_EXTS:
        path = os.path.join(lr_dir, stem + ext)
        if os.path.exists(path):
            return path
    raise ValueError(f"no LR image named {stem}.* in {lr_dir}")


def identity_scorer(lq):
    return lq


def _score_image(path, stem, out, scale, scales, tile, stride, scorer, batch, lr_dir, degrade, max_per_image):
    hr_full = read_rgb(path)
    if min(hr_full.shape[:2]) < tile * scale:
        raise ValueError(f"{hr_full.shape[1]}x{hr_full.shape[0]} is smaller than one sub-image ({tile} px input, "
                         f"{tile * scale} px here at scale {scale})")
    _note_crop(path, hr_full, scale)
    if lr_dir:
        lr_img = read_rgb(find_lr(lr_dir, os.path.splitext(os.path.basename(path))[0]))
        if hr_full.shape[:2] != (lr_img.shape[0] * scale, lr_img.shape[1] * scale):
            raise ValueError(f"HR {hr_full.shape[1]}x{hr_full.shape[0]} is not {scale} x its LR "
                             f"{lr_img.shape[1]}x{lr_img.shape[0]}")
    pairs = []
    for factor in scales:
        if min(hr_full.shape[:2]) * factor < tile * scale:
            continue  # this copy would be smaller than one sub-image (and tiny resizes fail in imresize)
        hr = hr_full if factor == 1 else _imresize(hr_full, factor)
        hr = hr[:hr.shape[0] // scale * scale, :hr.shape[1] // scale * scale]
        lr = lr_img if lr_dir else degrade(hr, f"{stem}_s{factor:.2f}")
        if min(lr.shape[:2]) < tile:
            continue  # this copy is smaller than one sub-image
        hr, lr = _quantise(hr), _quantise(lr)
        ys, xs = _positions(lr.shape[0], lr.shape[1], tile, stride, _quota(max_per_image, scales, factor))
        lq_tiles = _crops(lr, ys, xs, tile)
        gt_tiles = _crops(hr, ys * scale, xs * scale, tile * scale)
        names = [sub_image_name(stem, factor, y, x) for y, x in zip(ys, xs)]
        psnrs = []
        lq_t = torch.from_numpy(lq_tiles).permute(0, 3, 1, 2).float()
        gt_t = torch.from_numpy(gt_tiles).permute(0, 3, 1, 2).float()
        with torch.no_grad():
            for i in range(0, len(names), batch):
                sr = _quantise(scorer(lq_t[i:i + batch]).float().clamp(0, 1))
                psnrs += psnr((sr - gt_t[i:i + batch]).pow(2).mean((1, 2, 3))).tolist()
        for name, lq_tile, gt_tile in zip(names, lq_tiles, gt_tiles):
            for sub, img in (("lq", lq_tile), ("gt", gt_tile)):
                write_array(os.path.join(out, sub, name + ".png"), (img[:, :, ::-1] * 255).round().astype(np.uint8))
        pairs += [[n, round(p, 4)] for n, p in zip(names, psnrs)]
    if not pairs:
        raise ValueError(f"smaller than one {tile}x{tile} LR sub-image at every scale")
    return pairs


_write_atomic = write_text


def check_settings(out: str, now: dict) -> None:
    """Record the settings on the first run; refuse to resume with different ones, which
    would mix sub-images of two kinds in one set."""
    path = os.path.join(out, SETTINGS)
    if not os.path.exists(path):
        _write_atomic(path, json.dumps(now, indent=1))
        return
    with open(path) as f:
        then = json.load(f)
    diff = [f"{k}: {now.get(k)!r} now, {then.get(k)!r} before" for k in sorted(set(now) | set(then))
            if now.get(k) != then.get(k)]
    if diff:
        raise ValueError(f"{out}: prepared with other settings ({'; '.join(diff)}); re-run with the same "
                         f"ones or use a fresh --out")


def assign_classes(psnrs: Sequence[float], classes: int) -> np.ndarray:
    """Equal-count classes by PSNR rank: the lowest PSNRs get class M-1 (hardest)."""
    order = np.argsort(np.asarray(psnrs), kind="stable")
    labels = np.empty(len(order), dtype=np.int64)
    labels[order] = classes - 1 - (np.arange(len(order)) * classes // len(order))
    return labels


def _note_crop(path, hr: np.ndarray, scale: int) -> None:
    note = crop_note(path, hr.shape[1], hr.shape[0], scale)
    if note:
        tqdm.write(note)


def _stops(err: Exception) -> bool:
    """An error of the disk written to (full, read-only), not of one image: the batch stops."""
    return isinstance(err, OSError) and err.errno in DISK


def read_meta(path: str):
    """meta_info.txt -> [(name, psnr, class)]; a name may hold spaces (the last two fields are
    the numbers); a malformed line is an error naming it."""
    items = []
    with open(path, encoding="utf-8", errors="surrogateescape") as f:
        for n, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.strip().rsplit(None, 2)
            try:
                items.append((parts[0], float(parts[1]), int(parts[2])))
            except (IndexError, ValueError):
                raise ValueError(f"{path}:{n}: expected 'name psnr class', got {line.strip()!r}")
    return items


def prepare(hr_dir: str, out: str, scale: int = 4, classes: int = 3,
            scorer: Optional[Callable[[torch.Tensor], torch.Tensor]] = None, scorer_name: Optional[str] = None,
            scales: Sequence[float] = (1.0, 0.9, 0.8, 0.7, 0.6), tile: int = 32, stride: Optional[int] = None,
            lr_dir: Optional[str] = None, batch: int = 64, progress: bool = True,
            degradation: Optional[Degradation] = None, max_per_image: Optional[int] = None) -> Prepared:
    """Make (or resume) a difficulty-ranked sub-image set; see the module docstring.
    `degradation` sets the task (default: SR at `scale`, bicubic); `stride` defaults to
    default_stride(scale); `max_per_image` caps the pairs cut from one photo (evenly spaced)."""
    degradation = degradation or Degradation("sr", scale)
    scale = degradation.scale
    stride = default_stride(scale) if stride is None else stride
    if classes < 2:
        raise ValueError(f"classes: need at least 2, got {classes}")
    if tile < 1 or stride < 1:
        raise ValueError(f"stride: {stride} and tile: {tile} must be at least 1")
    if max_per_image is not None and max_per_image < 1:
        raise ValueError(f"max_per_image: {max_per_image} must be at least 1")
    if lr_dir and list(scales) != [1.0]:
        raise ValueError("scales: with given LR images only the original scale (1) is possible")
    paths = list_images(hr_dir)
    for sub in ("lq", "gt", "scores"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    if scorer is None:
        scorer = bicubic_scorer(scale) if degradation.task == "sr" else identity_scorer
        scorer_name = "bicubic" if degradation.task == "sr" else "input"
    scorer_name = scorer_name or "reference"
    check_settings(out, {"scale": scale, "tile": tile, "stride": stride, "scales": [float(f) for f in scales],
                         "classes": classes, "task": str(degradation), "scorer": scorer_name, "lr": bool(lr_dir),
                         "max_per_image": max_per_image})
    report = Prepared(scorer=scorer_name)
    report.estimate = estimate(paths, scale, scales, tile, stride, max_per_image)
    ids = unique_stems(paths, safe=True)  # meta_info.txt splits lines on whitespace
    for path, stem in zip(paths, ids):
        if stem != os.path.splitext(os.path.basename(path))[0]:
            print(f"{path}: listed as {stem}", file=sys.stderr)
    run = dict(scale=scale, scales=scales, tile=tile, stride=stride, scorer=scorer, batch=batch, lr_dir=lr_dir,
               degradation=degradation, max_per_image=max_per_image)
    if progress:
        pairs, raw = report.estimate
        print(f"{out}: about {pairs} sub-image pairs from {len(paths)} images, at most {raw / 2 ** 20:.0f} MiB "
              f"of PNGs (the pixels uncompressed; stride {stride}"
              + (f", at most {max_per_image} per image)" if max_per_image else ")"))
    for path, stem in tqdm(list(zip(paths, ids)), desc="prepare", unit="image", disable=None if progress else True):
        _score_one(path, stem, out, scorer_name, report, **run)
    _write_atomic(os.path.join(out, "skipped.txt"), "".join(f"{p}\t{r}\n" for p, r in report.skipped))
    _write_classes(hr_dir, out, ids, classes, f"{scorer_name} PSNR, {degradation}", report)
    return report


def _score_one(path, stem, out, scorer_name, report, scale, scales, tile, stride, scorer, batch, lr_dir, degradation,
               max_per_image):
    """Score one image's sub-image pairs into out/scores/<stem>.json, unless done earlier."""
    done_file = os.path.join(out, "scores", stem + ".json")
    if os.path.exists(done_file):
        with open(done_file) as f:
            earlier = json.load(f)
        then = (earlier.get("scorer"), earlier.get("scale"), earlier.get("degradation", str(degradation)))
        if then != (scorer_name, scale, str(degradation)):
            raise ValueError(f"{out}: scored earlier with {then[0]} ({then[2]}), now {scorer_name} "
                             f"({degradation}); use a fresh --out")
        report.resumed.append(path)
        return
    try:
        pairs = _score_image(path, stem, out, scale, scales, tile, stride, scorer, batch, lr_dir, degradation,
                             max_per_image)
    except Exception as err:  # MemoryError too: one bad image never stops the set; a full disk does
        if _stops(err):
            raise
        reason = describe(err).replace(f"{path}: ", "")
        report.skipped.append((path, reason))
        tqdm.write(f"skipped {path}: {reason}")
        return
    _write_atomic(done_file, json.dumps({"source": os.path.abspath(path), "scale": scale,
                                         "degradation": str(degradation), "scorer": scorer_name, "pairs": pairs}))
    report.done.append(path)


def _write_classes(hr_dir, out, ids, classes, scored_by, report):
    """Equal-count classes over every scored pair -> meta_info.txt; fills the report's totals."""
    names, psnrs = [], []
    for stem in sorted(ids):
        score_file = os.path.join(out, "scores", stem + ".json")
        if os.path.exists(score_file):
            with open(score_file) as f:
                for name, psnr in json.load(f)["pairs"]:
                    names.append(name)
                    psnrs.append(psnr)
    if not names:
        raise ValueError(f"{hr_dir}: no usable image (skipped: {len(report.skipped)}, see {out}/skipped.txt)")
    if len(names) < classes:
        raise ValueError(f"classes: {len(names)} sub-images cannot fill {classes} classes")
    labels = assign_classes(psnrs, classes)
    lines = [f"# name psnr class ({scored_by}; class {classes - 1} = lowest PSNR)\n"]
    lines += [f"{n} {p:.4f} {c}\n" for n, p, c in zip(names, psnrs, labels)]
    _write_atomic(os.path.join(out, META), "".join(lines))
    report.pairs = len(names)
    report.counts = np.bincount(labels, minlength=classes).tolist()
    arr = np.asarray(psnrs)
    report.thresholds = [float(arr[labels == k].min()) for k in range(classes - 1)]


def prepare_whole(hr_dir: str, out: str, scale: int = 4, degradation: Optional[Degradation] = None,
                  crop: Optional[int] = None):
    """Whole-image pairs for validation: out/hr (HR cropped to a multiple of the scale) and
    out/lr (the degraded input: bicubic LR for SR), same names. crop: only the centre crop x crop
    of each HR image (a held-out set a heavy scale-1 network can evaluate in minutes on a CPU).
    Returns (images written, [(path, reason) skipped])."""
    degradation = degradation or Degradation("sr", scale)
    scale = degradation.scale
    paths = list_images(hr_dir)
    for sub in ("hr", "lr"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    done, skipped = 0, []
    for path, stem in tqdm(list(zip(paths, unique_stems(paths))), desc="whole", unit="image", disable=None):
        name = stem + ".png"
        if all(complete(os.path.join(out, s, name)) for s in ("hr", "lr")):
            done += 1
            continue
        try:
            hr = read_rgb(path)
            _note_crop(path, hr, scale)
            if crop:
                top, left = max(0, (hr.shape[0] - crop) // 2), max(0, (hr.shape[1] - crop) // 2)
                hr = hr[top:top + crop, left:left + crop]
            hr = hr[:hr.shape[0] // scale * scale, :hr.shape[1] // scale * scale]
            if min(hr.shape[:2]) == 0:
                raise ValueError(f"smaller than the scale {scale}")
            lr = degradation(hr, os.path.splitext(name)[0])
            for sub, img in (("hr", hr), ("lr", lr)):
                write_array(os.path.join(out, sub, name), (img[:, :, ::-1] * 255).round().astype(np.uint8))
        except Exception as err:  # MemoryError too: report it and go on; a full disk stops
            if _stops(err):
                raise
            skipped.append((path, describe(err).replace(f"{path}: ", "")))
            tqdm.write(f"skipped {path}: {skipped[-1][1]}")
            continue
        done += 1
    return done, skipped
