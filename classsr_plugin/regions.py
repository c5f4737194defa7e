"""Region execution: classify per tile (the method's granularity), then run each class's branch
on rectangles of adjacent tiles of that class, so context margins and blending are paid once
per rectangle, not once per tile.

- The image is cut into cells of `tile` px, without overlap; the last cell on each axis may be
  narrower (it is classified on the full-size window aligned to the image border).
- Cells are covered by rectangles of at most `max_cells` cells a side: by default the cover a
  cost model predicts cheapest, each rectangle at the widest class among its cells (`cover`);
  else rectangles of one routed class each (`merge_cells`).
- Each rectangle runs on its window: its pixels plus `margin` px of context on every side (up to
  the image border, where the network pads as on the whole image). Windows of one class and
  shape run as one batch; the batches run on inter-op workers (execution.Workers), largest
  first. (Packing windows of different shapes into one canvas, zero or replicated gutters
  between them, was measured and not kept: no faster on this CPU, and a canvas's gutters are
  not the zero padding a window gets alone: -0.2 dB with zero gutters, -0.01 with replicated.)
- Each rectangle keeps its output plus margin/2 px
  beyond its edge; across that band two neighbours blend with complementary smoothstep
  weights, so neither a cut receptive field nor a change of branch leaves a seam. The weights
  sum to 1, so a rectangle's inside is added as is and only its frame is weighted.
- A fixed skip shared by all branches (an arch's declared skip, wrapper.skip_context) is
  computed once for every row of the image (the caller's `skip` jobs); the rectangles add their
  learned residuals to it.
- The output is blended a block of rows at a time in float and each finished block is stored in
  the output's dtype, so a uint8 output needs 3 bytes a pixel plus a few float blocks.
"""
import itertools
from collections import defaultdict
from typing import Callable, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F

Rect = Tuple[int, int, int, int, int]  # class, first row, first col, rows, cols (in cells)

# `ex` below has its margin set (ClassSR.execution fills in the model's)
from .execution import MARGIN, Execution, Workers  # noqa: F401  (MARGIN: the default, by benchmarks/margins.py)
from .tiling import crops, ramp, stored


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
        return crops(img, itertools.product(ys, xs), t)

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


def _blend_into(out: torch.Tensor, piece: torch.Tensor, wy: torch.Tensor, wx: torch.Tensor,
                oy: int, ox: int, inner: Tuple[int, int, int, int], lock) -> None:
    """out[:, oy:, ox:] (the piece's place) += piece * wy x wx, where the weights are known to
    be 1 inside `inner` (rows a:b, cols c:d of the piece): only the frame around it is weighted.
    The inside is no other rectangle's; the frame overlaps the neighbours' frames: it is added
    under `lock`."""
    a, b, c, d = inner
    n, m = piece.shape[1:]
    dst = out[:, oy:oy + n, ox:ox + m]
    dst[:, a:b, c:d].add_(piece[:, a:b, c:d])
    with lock:
        _add_frame(dst, piece, wy, wx, inner)


def _add_frame(dst, piece, wy, wx, inner) -> None:
    a, b, c, d = inner
    n, m = piece.shape[1:]
    for rows, cols in (((0, a), (0, m)), ((b, n), (0, m)), ((a, b), (0, c)), ((a, b), (d, m))):
        if rows[1] > rows[0] and cols[1] > cols[0]:
            w = wy[rows[0]:rows[1], None] * wx[None, cols[0]:cols[1]]
            dst[:, rows[0]:rows[1], cols[0]:cols[1]].addcmul_(piece[:, rows[0]:rows[1], cols[0]:cols[1]], w)


class Window(NamedTuple):
    """A rectangle of one class, in LR px, and its window: the rectangle plus `margin` px of
    context on every side, as far as the image goes."""
    k: int
    box: Tuple[int, int, int, int]  # y0, y1, x0, x1
    win: Tuple[int, int, int, int]  # wy0, wy1, wx0, wx1

    @property
    def size(self) -> Tuple[int, int]:
        return self.win[1] - self.win[0], self.win[3] - self.win[2]

    @property
    def area(self) -> int:
        """The rectangle's own pixels (its window's less the margins)."""
        return (self.box[1] - self.box[0]) * (self.box[3] - self.box[2])


class Call(NamedTuple):
    """One call of one class's branch: windows of one shape, stacked into a batch."""
    k: int
    height: int
    width: int
    windows: List[Window]

    @property
    def pixels(self) -> int:
        return len(self.windows) * self.height * self.width


def windows_of(grid: CellGrid, rects: Sequence[Rect], margin: int) -> List[Window]:
    H, W, m = grid.height, grid.width, margin
    out = []
    for k, r0, c0, rows, cols in rects:
        y0, y1, x0, x1 = grid.box(r0, c0, rows, cols)
        out.append(Window(k, (y0, y1, x0, x1), (max(y0 - m, 0), min(y1 + m, H), max(x0 - m, 0), min(x1 + m, W))))
    return out


def _keep(win: Window, H: int, W: int, half: int):
    """The part of a window's output a rectangle keeps: the rectangle plus half the margin, as
    far as the image goes (y0, y1, x0, x1), and the ramp lengths beyond its edges."""
    y0, y1, x0, x1 = win.box
    ky0, ky1, kx0, kx1 = max(y0 - half, 0), min(y1 + half, H), max(x0 - half, 0), min(x1 + half, W)
    return (ky0, ky1, kx0, kx1), (y0 - ky0, ky1 - y1, x0 - kx0, kx1 - x1)


# What one window costs beyond its pixels (its call's share, blending its frame in HR pixels, a
# small window's poorer use of the CPU), in FLOPs: nearly the same time whatever the network,
# so a fixed amount, not pixels of it. 1e8 = 2048 px of FSRCNN d=56 (50 kFLOPs a pixel), the
# fastest of 512-4096 px for ClassSR-FSRCNN at 2K and 4K; for MSRResNet (5 MFLOPs a pixel) it
# is 20 px: benchmarks/coarsen_speed.py found 0 px the fastest there, 2048 px 15% slower.
OVERHEAD_FLOPS = 1e8


def cover(class_map: torch.Tensor, grid: CellGrid, margin: int, max_cells: int,
          cost_px: Sequence[float], overhead: float = OVERHEAD_FLOPS) -> List[Rect]:
    """The cheapest cover of a class map by rectangles of at most max_cells a side, each run at
    the widest class among its cells (cells only ever move to wider classes, so quality cannot
    drop): cost = cost_px[class] (FLOPs a pixel) x window pixels (margins included, clipped at
    the image) + overhead (FLOPs; nothing for a class with cost 0: it does not run).
    Exact over guillotine cuts (every rectangle split in two by a straight cut, recursively)
    inside bands of max_cells rows; along each band, the cheapest sequence of such blocks.
    A lone cell of a middle class then runs inside its wider neighbour, and a ragged edge
    between two classes becomes a few large windows instead of many small ones. Dynamic
    programming over every block size at once (numpy: a few ms for a 4K image)."""
    cm = class_map.cpu().numpy()
    ny, nx = cm.shape
    hs, ws = range(1, min(max_cells, ny) + 1), range(1, min(max_cells, nx) + 1)
    price = np.asarray(cost_px, dtype=np.float64)

    def extent(n, cells, length):  # window px along one axis of the blocks of `cells` starting at 0..n-cells
        start = np.arange(n - cells + 1)
        end = np.minimum(np.minimum((start + cells) * grid.tile, length) + margin, length)
        return (end - np.maximum(start * grid.tile - margin, 0)).astype(np.float64)
    rows = {h: extent(ny, h, grid.height) for h in hs}
    cols = {w: extent(nx, w, grid.width) for w in ws}
    # for each block size (h, w) and every position: its class, cheapest cost and how (0 = one
    # window, a < h: cut below its first a rows, else: cut after its first a - h + 1 columns)
    widest, best, how = {}, {}, {}
    for h in hs:
        for w in ws:
            k = (cm if (h, w) == (1, 1) else np.maximum(widest[h, w - 1][:, :-1], widest[h, 1][:, w - 1:]) if w > 1
                 else np.maximum(widest[h - 1, 1][:-1], cm[h - 1:]))
            widest[h, w] = k
            options = [price[k] * rows[h][:, None] * cols[w][None, :] + np.where(price[k] > 0, overhead, 0.0)]
            options += [best[a, w][:ny - h + 1] + best[h - a, w][a:a + ny - h + 1] for a in range(1, h)]
            options += [best[h, a][:, :nx - w + 1] + best[h, w - a][:, a:a + nx - w + 1] for a in range(1, w)]
            options = np.stack(options)
            how[h, w] = options.argmin(0)
            best[h, w] = np.take_along_axis(options, how[h, w][None], 0)[0]
    rects = []

    def emit(r, c, h, w):
        a = int(how[h, w][r, c])
        if a == 0:
            rects.append((int(widest[h, w][r, c]), r, c, h, w))
        elif a < h:
            emit(r, c, a, w)
            emit(r + a, c, h - a, w)
        else:
            a -= h - 1
            emit(r, c, h, a)
            emit(r, c + a, h, w - a)
    for r0 in range(0, ny, max_cells):
        h = min(max_cells, ny - r0)
        along = {w: best[h, w][r0].tolist() for w in ws}
        total, last = [0.0] + [float("inf")] * nx, [0] * (nx + 1)  # cheapest first c columns; its last block's width
        for c in range(1, nx + 1):
            for w in range(1, min(max_cells, c) + 1):
                if total[c - w] + along[w][c - w] < total[c]:
                    total[c], last[c] = total[c - w] + along[w][c - w], w
        c = nx
        while c > 0:
            emit(r0, c - last[c], h, last[c])
            c -= last[c]
    return rects


def rectangles(class_map: torch.Tensor, grid: CellGrid, ex: Execution,
               cost_px: Optional[Sequence[float]] = None) -> List[Rect]:
    """The rectangles a class map runs as: the cheapest cover where cost_px is given, else
    merge_cells (each rectangle one class as routed)."""
    if cost_px is None:
        return merge_cells(class_map, ex.max_cells)
    return cover(class_map, grid, ex.margin, ex.max_cells, cost_px)


def paint(rects: Sequence[Rect], shape) -> torch.Tensor:
    """The class map rectangles cover."""
    out = torch.empty(shape, dtype=torch.long)
    for k, r0, c0, rows, cols in rects:
        out[r0:r0 + rows, c0:c0 + cols] = k
    return out


# The output is blended in blocks of rows held in float (about this many bytes, at least a cell
# high); a finished block goes to the output in its final dtype (uint8: 1/4 of float's memory).
BLOCK_BYTES = 64 * 2 ** 20


def block_rows(grid: CellGrid, scale: int, out_channels: int) -> int:
    """LR rows of one float block of the output (a whole number of cells)."""
    row = grid.width * scale * scale * out_channels * 4 * grid.tile  # one cell row, in bytes
    return max(1, BLOCK_BYTES // row) * grid.tile


def plan(grid: CellGrid, rects: Sequence[Rect], ex: Execution, block: Optional[int] = None) -> List[Call]:
    """The calls rectangles make: their windows (margin px of context), windows of one class and
    shape batched up to `4 x ex.batch` tiles' worth of pixels a call; the largest calls first,
    so the last ones leave no worker idle long. block: LR rows of run_regions' blocks; windows
    starting in different blocks then go to different calls (so that only a few blocks of the
    output are in float at once), the top block's calls first."""
    groups = defaultdict(list)
    for win in windows_of(grid, rects, ex.margin):
        groups[(win.box[0] // block if block else 0, win.k, *win.size)].append(win)
    calls = []
    for (band, k, h, w), wins in groups.items():
        per = max(1, 4 * ex.tile_batch * ex.tile * ex.tile // (h * w))
        calls += [(band, Call(k, h, w, wins[i:i + per])) for i in range(0, len(wins), per)]
    return [c for _, c in sorted(calls, key=lambda bc: (bc[0], -bc[1].pixels))]


def run_regions(img: torch.Tensor, grid: CellGrid, calls: Sequence[Call], branches: Sequence[Callable],
                scale: int, out_channels: int, ex: Execution, workers: Optional[Workers] = None,
                skip: Optional[Callable] = None, dtype: torch.dtype = torch.float32,
                progress: Callable = lambda n: None) -> torch.Tensor:
    """Run every call (plan) through its class's branch and blend each window's output into a
    [out_channels, H*scale, W*scale] image of `dtype` (float, or uint8: [0, 1] -> 0..255).
    skip(dst, y0, y1): jobs that write a fixed skip of LR rows y0:y1 into dst, to which the
    windows add their outputs; a class whose branch is None adds nothing. ex: the Execution the
    plan was made with (its margin); workers: an entered execution.Workers (default: this
    thread); a worker blends its call's outputs as soon as they are computed.
    The output is blended block by block (block_rows): the calls of the windows that start in
    a block run, then every block no later window reaches is finished (divided by its weight
    sum where needed, converted to dtype) and freed; with a plan made for these blocks, peak
    memory is the output in dtype plus about three float blocks."""
    workers = workers or Workers(1)
    half, s, H, W = ex.margin // 2, scale, grid.height, grid.width
    block = block_rows(grid, s, out_channels)
    # the rectangles tile the image and each one's weights are its indicator smoothed by one
    # separable kernel, so the weights sum to 1 everywhere as long as no rectangle is narrower
    # than the two ramps across it; only then does a weight sum need to be kept and divided by
    exact = all(min(y1 - y0, x1 - x0) >= 2 * half for c in calls for y0, y1, x0, x1 in (w.box for w in c.windows))
    if dtype == torch.float32:
        out = torch.empty(out_channels, H * s, W * s, device=img.device)
    else:  # HWC memory, as an image file's pixels are (imageio writes it as it is)
        out = torch.empty(H * s, W * s, out_channels, dtype=dtype, device=img.device).permute(2, 0, 1)
    blocks, done = {}, set()  # j -> (float rows of block j, their weight sum or None); finished js

    def rows_of(j):
        return j * block, min((j + 1) * block, H)

    def open_blocks(js) -> None:
        """New float blocks, holding the skip (where weights sum to 1) or zeros."""
        jobs = []
        for j in sorted(set(js) - set(blocks) - done):
            y0, y1 = rows_of(j)
            dst = (out[:, y0 * s:y1 * s] if dtype == torch.float32 else
                   img.new_empty(out_channels, (y1 - y0) * s, W * s))
            blocks[j] = (dst, None if exact else img.new_zeros(1, (y1 - y0) * s, W * s))
            if skip is not None and exact:
                jobs += skip(dst, y0, y1)
            else:
                dst.zero_()
        workers.map(lambda job: job(), jobs)

    def finish(j) -> None:
        rows, wsum = blocks.pop(j)
        done.add(j)
        y0, y1 = rows_of(j)
        if wsum is not None:
            rows.div_(wsum)
            if skip is not None:
                base = torch.empty_like(rows)
                workers.map(lambda job: job(), skip(base, y0, y1))
                rows.add_(base)
        if dtype != torch.float32:
            out[:, y0 * s:y1 * s] = stored(rows, dtype, f" (output rows {y0 * s}-{y1 * s})")

    def blend(win: Window, o: Optional[torch.Tensor]) -> None:
        """Add a window's output (None: zero, a class that adds nothing) with its weights."""
        (ky0, ky1, kx0, kx1), (ly, ty, lx, tx) = _keep(win, H, W, half)
        band = half * s
        # past an edge with a neighbour (ly ... px kept beyond it): a smoothstep from ~0 (band px
        # outside) through 1/2 (at the edge) to 1 (band px inside); the neighbour's is its mirror
        # image, so the two sum to exactly 1 (smoothstep(t) + smoothstep(1 - t) = 1)
        wy = ramp((ky1 - ky0) * s, ly * s or None, ty * s or None, -band, 2 * band).to(img)
        wx = ramp((kx1 - kx0) * s, lx * s or None, tx * s or None, -band, 2 * band).to(img)
        piece = None
        if o is not None:
            wy0, _, wx0, _ = win.win
            piece = o[:, (ky0 - wy0) * s:(ky1 - wy0) * s, (kx0 - wx0) * s:(kx1 - wx0) * s]
        y0, y1, x0, x1 = win.box
        # where the ramps reach 1, on the sides that have a neighbour
        a, b = ly * s + band if y0 else 0, (ky1 - ky0) * s - (ty * s + band if y1 < H else 0)
        c, d = lx * s + band if x0 else 0, (kx1 - kx0) * s - (tx * s + band if x1 < W else 0)
        for j in range(ky0 // block, (ky1 - 1) // block + 1):  # the blocks the window's rows reach
            rows, wsum = blocks[j]
            p0, p1 = max(ky0, j * block) * s - ky0 * s, min(ky1, (j + 1) * block) * s - ky0 * s
            oy = ky0 * s + p0 - j * block * s
            if wsum is not None:
                wgt = wy[p0:p1, None] * wx[None, :]
                with workers.lock:
                    if piece is not None:
                        rows[:, oy:oy + p1 - p0, kx0 * s:kx1 * s].addcmul_(piece[:, p0:p1], wgt)
                    wsum[:, oy:oy + p1 - p0, kx0 * s:kx1 * s] += wgt
            elif piece is not None:
                inner = (min(max(a - p0, 0), p1 - p0), min(max(b - p0, 0), p1 - p0), c, d)
                _blend_into(rows, piece[:, p0:p1], wy[p0:p1], wx, oy, kx0 * s, inner, workers.lock)

    def job(c: Call) -> None:
        if branches[c.k] is None:
            outs = [None] * len(c.windows)
        else:
            outs = branches[c.k](torch.stack([img[:, wy0:wy1, wx0:wx1] for wy0, wy1, wx0, wx1 in
                                              (w.win for w in c.windows)]))
        for win, o in zip(c.windows, outs):
            blend(win, o)
        progress(1)

    def reach(c: Call):  # the blocks a call's windows keep rows of
        return {j for w in c.windows for ky0, ky1, _, _ in [_keep(w, H, W, half)[0]]
                for j in range(ky0 // block, (ky1 - 1) // block + 1)}

    bands = defaultdict(list)
    for c in calls:
        bands[min(w.box[0] for w in c.windows) // block].append(c)
    order = sorted(bands)
    for i, band in enumerate(order):
        open_blocks(set.union(*(reach(c) for c in bands[band])))
        workers.map(job, bands[band])
        # a later window keeps rows from (its block's first row - half) on
        later = order[i + 1] * block - half if i + 1 < len(order) else H
        for j in sorted(blocks):
            if rows_of(j)[1] <= later:
                finish(j)
    open_blocks(range(-(-H // block)))  # rows no window reached (none, for a plan of the whole grid)
    for j in sorted(blocks):
        finish(j)
    return out
