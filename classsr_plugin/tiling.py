"""Cut an image into overlapping tiles that cover every pixel, and fold tile outputs back.

Tiles start every `stride` pixels and the last one on each axis is aligned to the border, so
nothing is dropped (the original ClassSR code lost up to stride-1 border pixels). Overlaps are
averaged per pixel. Tiles are gathered and scattered with flat index tensors, a batch at a time,
so memory is bounded by the batch, not the image.
"""
from typing import Callable, Optional

import torch
import torch.nn.functional as F


def tile_starts(n: int, tile: int, stride: int) -> torch.Tensor:
    if n <= tile:
        return torch.zeros(1, dtype=torch.long)
    starts = torch.arange(0, n - tile + 1, stride)
    if starts[-1] != n - tile:
        starts = torch.cat([starts, torch.tensor([n - tile])])
    return starts


class TileGrid:
    """Tile layout of a [C, H, W] image. Inputs smaller than a tile are padded (replicate)
    up to the tile and the padding is cropped from the output."""

    def __init__(self, height: int, width: int, tile: int = 32, stride: int = 28, scale: int = 1):
        if tile < 1 or not 1 <= stride <= tile:
            raise ValueError(f"tile={tile}, stride={stride}: need tile >= 1 and 1 <= stride <= tile")
        if height < 1 or width < 1:
            raise ValueError(f"image of {height}x{width} pixels: nothing to tile")
        self.height, self.width, self.tile, self.stride, self.scale = height, width, tile, stride, scale
        self.padded = (max(height, tile), max(width, tile))
        self.ys = tile_starts(self.padded[0], tile, stride)
        self.xs = tile_starts(self.padded[1], tile, stride)
        self.shape = (len(self.ys), len(self.xs))

    def __len__(self):
        return self.shape[0] * self.shape[1]

    def pad(self, img: torch.Tensor) -> torch.Tensor:
        ph, pw = self.padded[0] - self.height, self.padded[1] - self.width
        if ph or pw:
            img = F.pad(img[None], (0, pw, 0, ph), mode="replicate")[0]
        return img

    def _flat_index(self, ids: torch.Tensor, size: int, row_len: int, scale: int) -> torch.Tensor:
        """[n, size, size] indices into a flattened plane for the tiles `ids`."""
        ar = torch.arange(size)
        ys = self.ys[ids // self.shape[1]] * scale
        xs = self.xs[ids % self.shape[1]] * scale
        rows = (ys[:, None] + ar)[:, :, None] * row_len
        return rows + (xs[:, None] + ar)[:, None, :]

    def extract(self, img_flat: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """Tiles `ids` of a padded image flattened to [C, Hp*Wp] -> [n, C, tile, tile]."""
        idx = self._flat_index(ids, self.tile, self.padded[1], 1)
        return img_flat[:, idx.to(img_flat.device)].transpose(0, 1)

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
        vals = tiles.transpose(0, 1).reshape(tiles.shape[1], -1)
        out_flat.index_add_(1, idx.reshape(-1).to(out_flat.device), vals.to(out_flat.dtype))

    def coverage(self, n: int, starts: torch.Tensor) -> torch.Tensor:
        size = self.tile * self.scale
        cover = torch.zeros(n * self.scale)
        idx = (starts[:, None] * self.scale + torch.arange(size)).reshape(-1)
        return cover.index_add_(0, idx, torch.ones(idx.numel()))

    def finish(self, out_flat: torch.Tensor) -> torch.Tensor:
        """Average the overlaps and crop the padding: -> [C, H*s, W*s]. The coverage count is
        separable (rows x columns), so no full-size weight map is materialised."""
        s = self.scale
        out = out_flat.view(out_flat.shape[0], self.padded[0] * s, self.padded[1] * s)
        out.div_(self.coverage(self.padded[0], self.ys).to(out)[:, None])
        out.div_(self.coverage(self.padded[1], self.xs).to(out)[None, :])
        return out[:, :self.height * s, :self.width * s]


def run_tiled(img: torch.Tensor, fn: Callable[[torch.Tensor], torch.Tensor], scale: int,
              tile: int = 32, stride: int = 28, batch: int = 64,
              out_channels: Optional[int] = None) -> torch.Tensor:
    """Apply `fn` (a batch of tiles -> a batch of tiles x scale) over a [C, H, W] image and
    merge the results the way ClassSR does. For a plain network, or as a reference."""
    grid = TileGrid(img.shape[-2], img.shape[-1], tile, stride, scale)
    flat = grid.pad(img).reshape(img.shape[0], -1)
    out = grid.new_output(out_channels or img.shape[0], device=img.device)
    for ids in torch.arange(len(grid)).split(batch):
        grid.add(out, fn(grid.extract(flat, ids)), ids)
    return grid.finish(out)
