"""Cut an image into overlapping tiles that cover every pixel, and fold tile outputs back.

Tiles start every `stride` pixels and the last one on each axis is aligned to the border, so
nothing is dropped (the original ClassSR code lost up to stride-1 border pixels). Overlaps are
blended with feathered weights: a tile's weight ramps up across the overlap from its edge, where
its output is least reliable (zero padding stands in for the neighbours' pixels), so tile borders
leave no seam; `blend="average"` is plain averaging. Tiles are cut as slices (`crops`, as
regions cuts its windows) and added back with flat index tensors, a batch at a time, so memory
is bounded by the batch, not the image. `ramp` gives the blending weights of both tiles and
regions.
"""
from typing import Callable, Iterable, Optional, Tuple

import torch
import torch.nn.functional as F

from .checkpoint import finite


def tile_starts(n: int, tile: int, stride: int) -> torch.Tensor:
    if n <= tile:
        return torch.zeros(1, dtype=torch.long)
    starts = torch.arange(0, n - tile + 1, stride)
    if starts[-1] != n - tile:
        starts = torch.cat([starts, torch.tensor([n - tile])])
    return starts


def ramp(n: int, lead: Optional[int], trail: Optional[int], start: float, width: float,
         floor: float = 0.0) -> torch.Tensor:
    """Blending weights along one axis of n px: 1, except past an edge, where a pixel centre d px
    inside it weighs smoothstep(t), t = (d - start) / width clamped to [floor, 1]. The edges lie
    `lead` px after the first pixel and `trail` px before the last (None: that side has none)."""
    w = torch.ones(n)
    if width <= 0:
        return w
    i = torch.arange(n, dtype=torch.float32) + 0.5
    for d in (i - lead if lead is not None else None, n - trail - i if trail is not None else None):
        if d is not None:
            t = ((d - start) / width).clamp(floor, 1.0)
            w = torch.minimum(w, t * t * (3 - 2 * t))
    return w


OUTPUT_DTYPES = (torch.float32, torch.uint8)


def stored(img: torch.Tensor, dtype: torch.dtype, where: str = "") -> torch.Tensor:
    """A float image in an output dtype: itself, or uint8 ([0, 1] -> 0..255, rounded; in place:
    img is spent). NaN or Inf, which uint8 would hide, are an error."""
    if dtype == torch.float32:
        return img
    if not finite(img):
        raise ValueError(f"the output holds NaN or Inf values{where}")
    return img.clamp_(0, 1).mul_(255).round_().to(dtype)


def crops(img: torch.Tensor, corners: Iterable[Tuple[int, int]], size: int) -> torch.Tensor:
    """[n, C, size, size] windows of a [C, H, W] image at the given (y, x) corners: slices,
    stacked (advanced indexing gathers ~10x slower)."""
    return torch.stack([img[:, y:y + size, x:x + size] for y, x in corners])


class TileGrid:
    """Tile layout of a [C, H, W] image. Inputs smaller than a tile are padded (replicate)
    up to the tile and the padding is cropped from the output."""

    def __init__(self, height: int, width: int, tile: int = 32, stride: int = 28, scale: int = 1,
                 blend: str = "feather"):
        if tile < 1 or not 1 <= stride <= tile:
            raise ValueError(f"tile={tile}, stride={stride}: need tile >= 1 and 1 <= stride <= tile")
        if blend not in ("feather", "average"):
            raise ValueError(f"blend: {blend!r} is not 'feather' or 'average'")
        if height < 1 or width < 1:
            raise ValueError(f"image of {height}x{width} pixels: nothing to tile")
        self.height, self.width, self.tile, self.stride, self.scale = height, width, tile, stride, scale
        self.padded = (max(height, tile), max(width, tile))
        self.ys = tile_starts(self.padded[0], tile, stride)
        self.xs = tile_starts(self.padded[1], tile, stride)
        self.shape = (len(self.ys), len(self.xs))
        # along each axis of a tile output: 1 inside; over the overlap from each edge a smoothstep
        # down to almost 0, whose outer quarter (where the tile cuts the receptive field most)
        # counts least; never 0, so a pixel only one tile covers keeps its value
        r = (tile - stride) * scale if blend == "feather" else 0
        self.weight = ramp(tile * scale, 0, 0, r / 4, r * 3 / 4, floor=1e-3)

    def __len__(self):
        return self.shape[0] * self.shape[1]

    def pad(self, img: torch.Tensor) -> torch.Tensor:
        ph, pw = self.padded[0] - self.height, self.padded[1] - self.width
        if ph or pw:
            img = F.pad(img[None], (0, pw, 0, ph), mode="replicate")[0]
        return img

    def borders(self):
        """Output rows and columns where a tile's output begins or ends inside the image: where
        seams would show."""
        def axis(starts, n):
            edges = {int(x) * self.scale for x in starts[1:]} | {(int(x) + self.tile) * self.scale for x in starts[:-1]}
            return sorted(e for e in edges if 0 < e < n * self.scale)
        return axis(self.ys, self.height), axis(self.xs, self.width)

    def _flat_index(self, ids: torch.Tensor, size: int, row_len: int, scale: int) -> torch.Tensor:
        """[n, size, size] indices into a flattened plane for the tiles `ids`."""
        ar = torch.arange(size)
        ys = self.ys[ids // self.shape[1]] * scale
        xs = self.xs[ids % self.shape[1]] * scale
        rows = (ys[:, None] + ar)[:, :, None] * row_len
        return rows + (xs[:, None] + ar)[:, None, :]

    def windows(self, padded: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Tiles `ids` of the padded image (`pad`) -> [n, C, tile, tile]."""
        n = self.shape[1]
        return crops(padded, zip(self.ys[ids // n].tolist(), self.xs[ids % n].tolist()), self.tile)

    def new_output(self, channels: int, dtype=torch.float32, device=None) -> torch.Tensor:
        s = self.scale
        return torch.zeros(channels, self.padded[0] * s * self.padded[1] * s, dtype=dtype, device=device)

    def add(self, out_flat: torch.Tensor, tiles: torch.Tensor, ids: torch.Tensor) -> None:
        """Accumulate output tiles [n, C, t*s, t*s] into the flat output [C, Hp*s*Wp*s]."""
        size = self.tile * self.scale
        if tiles.shape[-2:] != (size, size):
            raise ValueError(f"tile outputs are {tuple(tiles.shape[-2:])}, expected {(size, size)} "
                             f"for tile {self.tile} at scale {self.scale}")
        idx = self._flat_index(ids.to(self.ys.device), size, self.padded[1] * self.scale, self.scale)
        w = self.weight.to(tiles)
        vals = (tiles * (w[:, None] * w[None, :])).transpose(0, 1).reshape(tiles.shape[1], -1)
        out_flat.index_add_(1, idx.reshape(-1).to(out_flat.device), vals.to(out_flat.dtype))

    def coverage(self, n: int, starts: torch.Tensor) -> torch.Tensor:
        """Sum of the tiles' weights along one axis (the weights are separable)."""
        size = self.tile * self.scale
        cover = torch.zeros(n * self.scale)
        idx = (starts[:, None] * self.scale + torch.arange(size)).reshape(-1)
        return cover.index_add_(0, idx, self.weight.repeat(len(starts)))

    def finish(self, out_flat: torch.Tensor) -> torch.Tensor:
        """Normalise by the summed weights and crop the padding: -> [C, H*s, W*s]. Weights are
        separable (rows x columns) and so is their sum over a grid of tiles, so no full-size
        weight map is materialised."""
        s = self.scale
        out = out_flat.view(out_flat.shape[0], self.padded[0] * s, self.padded[1] * s)
        out.div_(self.coverage(self.padded[0], self.ys).to(out)[:, None])
        out.div_(self.coverage(self.padded[1], self.xs).to(out)[None, :])
        return out[:, :self.height * s, :self.width * s]


def run_tiled(img: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], scale: int,
              tile: int = 32, stride: int = 28, batch: int = 64,
              out_channels: Optional[int] = None, blend: str = "feather") -> torch.Tensor:
    """Apply `fn` (a batch of tiles -> a batch of tiles x scale) over a [C, H, W] image and
    merge the results the way ClassSR does. For a plain network, or as a reference."""
    grid = TileGrid(img.shape[-2], img.shape[-1], tile, stride, scale, blend)
    padded = grid.pad(img)
    out = grid.new_output(out_channels or img.shape[0], device=img.device)
    for ids in torch.arange(len(grid)).split(batch):
        grid.add(out, fn(grid.windows(padded, ids)), ids)
    return grid.finish(out)


def seam_ratio(img: torch.Tensor, rows, cols, scale: int) -> float:
    """How much tile borders show in a [C, H, W] output: the mean |gradient| across the border
    rows and columns over that across the other rows and columns at the same position mod
    `scale` (upsampling layers leave a periodic pattern). 1.0 = no seam; the larger of the two
    axes is returned."""
    def axis(grad, borders):
        n = grad.shape[0] + 1
        border = sorted(set(b for b in borders if 0 < b < n))
        if not border:
            return 1.0
        phases = {b % scale for b in border}
        others = [j for j in range(1, n) if j % scale in phases and j not in set(border)]
        at = grad[[b - 1 for b in border]].mean()
        return float(at / grad[[j - 1 for j in others]].mean().clamp_min(1e-12))
    gy = (img[:, 1:] - img[:, :-1]).abs().mean((0, 2))
    gx = (img[:, :, 1:] - img[:, :, :-1]).abs().mean((0, 1))
    return max(axis(gy, rows), axis(gx, cols))
