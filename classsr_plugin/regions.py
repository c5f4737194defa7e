"""Region execution: classify per tile (the method's granularity), then run each class's branch
on rectangles of adjacent tiles of that class, so context margins and blending are paid once
per rectangle, not once per tile.

- The image is cut into cells of `tile` px, without overlap; the last cell on each axis may be
  narrower (it is classified on the full-size window aligned to the image border).
- Cells of one class are merged into rectangles (runs along rows, stacked while the run below
  matches), at most `max_cells` cells a side, which bounds memory and keeps the number of
  distinct shapes small; rectangles of one shape and class run as one batch.
- Each rectangle runs on its pixels plus `margin` px of context on every side (up to the image
  border, where the network pads as on the whole image) and keeps its output plus margin/2 px
  beyond its edge; across that band two neighbours blend with complementary smoothstep
  weights, so neither a cut receptive field nor a change of branch leaves a seam. The weights
  sum to 1, so a rectangle's inside is added as is and only its frame is weighted.
- A fixed skip shared by all branches (FSRCNN's bicubic) is computed once on the whole image by
  the caller and passed as `out`; the rectangles add their learned residuals to it.
"""
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

Rect = Tuple[int, int, int, int, int]  # class, first row, first col, rows, cols (in cells)

# LR px of context per rectangle: the smallest that loses at most 0.01 dB against the whole image
# in benchmarks/margins.py (FSRCNN-O: -0.003 dB at 2, -0.082 at 0)
MARGIN = 2


class CellGrid:
    """Non-overlapping `tile`-px cells covering an H x W image."""

    def __init__(self, height: int, width: int, tile: int = 32):
        if tile < 1:
            raise ValueError(f"tile={tile}: need tile >= 1")
        if height < 1 or width < 1:
            raise ValueError(f"image of {height}x{width} pixels: nothing to tile")
        self.height, self.width, self.tile = height, width, tile
        self.shape = (-(-height // tile), -(-width // tile))
        self.ys = torch.arange(self.shape[0]) * tile  # where each cell's pixels start
        self.xs = torch.arange(self.shape[1]) * tile

    def __len__(self):
        return self.shape[0] * self.shape[1]

    def windows(self, img: torch.Tensor) -> torch.Tensor:
        """The classifier's input for every cell, row-major: [n, C, tile, tile]; a border cell's
        window is aligned to the image border (replicate-padded if the image is smaller)."""
        t = self.tile
        ph, pw = max(t - self.height, 0), max(t - self.width, 0)
        if ph or pw:
            img = F.pad(img[None], (0, pw, 0, ph), mode="replicate")[0]
        ys = (self.ys.clamp(max=img.shape[1] - t)).tolist()
        xs = (self.xs.clamp(max=img.shape[2] - t)).tolist()
        # slices, not advanced indexing over an unfold view (that gathers ~10x slower)
        return torch.stack([img[:, y:y + t, x:x + t] for y in ys for x in xs])

    def box(self, r0: int, c0: int, rows: int, cols: int) -> Tuple[int, int, int, int]:
        """Pixel bounds (y0, y1, x0, x1) of a block of cells."""
        t = self.tile
        return r0 * t, min((r0 + rows) * t, self.height), c0 * t, min((c0 + cols) * t, self.width)


def merge_cells(class_map: torch.Tensor, max_cells: int = 8) -> List[Rect]:
    """Cover a [rows, cols] class map with rectangles of one class each: row runs, grown
    downwards while the run below is the same class and free; at most max_cells a side."""
    cm = class_map.tolist()
    ny, nx = len(cm), len(cm[0])
    used = [[False] * nx for _ in range(ny)]
    rects = []
    for r in range(ny):
        for c in range(nx):
            if used[r][c]:
                continue
            k = cm[r][c]
            w = 1
            while c + w < nx and w < max_cells and not used[r][c + w] and cm[r][c + w] == k:
                w += 1
            h = 1
            while (r + h < ny and h < max_cells
                   and all(cm[r + h][c + j] == k and not used[r + h][c + j] for j in range(w))):
                h += 1
            for i in range(h):
                for j in range(w):
                    used[r + i][c + j] = True
            rects.append((k, r, c, h, w))
    return rects


def _ramp(n_out: int, lead: int, trail: int, band: int) -> torch.Tensor:
    """Weights along one axis of a kept output of n_out px whose first `lead` and last `trail`
    px lie beyond the rectangle's edge: a smoothstep from ~0 (band px outside the edge) through
    1/2 (at the edge) to 1 (band px inside). A neighbour's ramp across the same edge is its
    mirror image, so the two sum to exactly 1 (smoothstep(t) + smoothstep(1 - t) = 1)."""
    i = torch.arange(n_out, dtype=torch.float32) + 0.5
    w = torch.ones(n_out)
    if band > 0:
        for d in (i - lead if lead else None, n_out - trail - i if trail else None):
            if d is not None:
                t = ((d + band) / (2 * band)).clamp(0.0, 1.0)
                w = torch.minimum(w, t * t * (3 - 2 * t))
    return w


def _blend_into(out: torch.Tensor, piece: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor,
                oy: int, ox: int, inner: Tuple[int, int, int, int]) -> None:
    """out[:, oy:, ox:] (the piece's place) += piece * wy x wx, where the weights are known to
    be 1 inside `inner` (rows a:b, cols c:d of the piece): only the frame around it is weighted."""
    a, b, c, d = inner
    n, m = piece.shape[1:]
    dst = out[:, oy:oy + n, ox:ox + m]
    dst[:, a:b, c:d].add_(piece[:, a:b, c:d])
    for rows, cols in (((0, a), (0, m)), ((b, n), (0, m)), ((a, b), (0, c)), ((a, b), (d, m))):
        if rows[1] > rows[0] and cols[1] > cols[0]:
            w = wy[rows[0]:rows[1], None] * wx[None, cols[0]:cols[1]]
            dst[:, rows[0]:rows[1], cols[0]:cols[1]].addcmul_(piece[:, rows[0]:rows[1], cols[0]:cols[1]], w)


def run_regions(img: torch.Tensor, grid: CellGrid, rects: Sequence[Rect], branches: Sequence[Callable],
                scale: int, out_channels: int, margin: int = MARGIN, max_pixels: int = 1 << 18,
                progress: Callable = lambda jobs: jobs, out: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, List[int]]:
    """Run every rectangle through its class's branch and blend the outputs into a
    [out_channels, H*scale, W*scale] image, added to `out` if given (e.g. a skip computed once
    on the whole image). Returns (image, input pixels run per class).
    A window stops at the image border, where the network pads as it would on the whole image."""
    m, half, s, H, W = margin, margin // 2, scale, grid.height, grid.width
    boxes_of = [(k, grid.box(r0, c0, rows, cols)) for k, r0, c0, rows, cols in rects]
    # the rectangles tile the image and each one's weights are its indicator smoothed by one
    # separable kernel, so the weights sum to 1 everywhere as long as no rectangle is narrower
    # than the two ramps across it; only then does a weight sum need to be kept and divided by
    exact = all(min(y1 - y0, x1 - x0) >= 2 * half for _, (y0, y1, x0, x1) in boxes_of)
    base = out
    out = img.new_zeros(out_channels, H * s, W * s) if base is None or not exact else base
    wsum = None if exact else img.new_zeros(1, H * s, W * s)
    pixels = [0] * len(branches)
    groups: Dict[tuple, List[Tuple[int, int, int, int]]] = defaultdict(list)
    for k, (y0, y1, x0, x1) in boxes_of:
        wy0, wy1, wx0, wx1 = max(y0 - m, 0), min(y1 + m, H), max(x0 - m, 0), min(x1 + m, W)
        groups[(k, wy1 - wy0, wx1 - wx0)].append((y0, y1, x0, x1, wy0, wx0))
    jobs = []
    for (k, h, w), boxes in groups.items():
        per = max(1, max_pixels // (h * w))
        jobs += [(k, h, w, boxes[i:i + per]) for i in range(0, len(boxes), per)]
    for k, h, w, boxes in progress(jobs):
        x = torch.stack([img[:, wy0:wy0 + h, wx0:wx0 + w] for _, _, _, _, wy0, wx0 in boxes])
        y = branches[k](x)
        pixels[k] += x.shape[0] * h * w
        for (y0, y1, x0, x1, wy0, wx0), o in zip(boxes, y):
            # keep the rectangle plus half the margin, as far as the image goes
            ky0, ky1, kx0, kx1 = max(y0 - half, 0), min(y1 + half, H), max(x0 - half, 0), min(x1 + half, W)
            piece = o[:, (ky0 - wy0) * s:(ky1 - wy0) * s, (kx0 - wx0) * s:(kx1 - wx0) * s]
            lead_y, trail_y, lead_x, trail_x = (y0 - ky0) * s, (ky1 - y1) * s, (x0 - kx0) * s, (kx1 - x1) * s
            wy = _ramp(piece.shape[1], lead_y, trail_y, half * s).to(o)
            wx = _ramp(piece.shape[2], lead_x, trail_x, half * s).to(o)
            if wsum is None:
                band = half * s  # where the ramps reach 1, on the sides that have a neighbour
                inner = (lead_y + band if y0 else 0, piece.shape[1] - (trail_y + band if y1 < H else 0),
                         lead_x + band if x0 else 0, piece.shape[2] - (trail_x + band if x1 < W else 0))
                _blend_into(out, piece, wy, wx, ky0 * s, kx0 * s, inner)
                continue
            wgt = wy[:, None] * wx[None, :]
            out[:, ky0 * s:ky1 * s, kx0 * s:kx1 * s].addcmul_(piece, wgt)
            wsum[:, ky0 * s:ky1 * s, kx0 * s:kx1 * s] += wgt
    if wsum is None:
        return out, pixels
    out.div_(wsum)  # in place: at 8K another output-sized tensor is ~400 MB
    return (out if base is None else base.add_(out)), pixels
