"""Pictures: a class map drawn over the output image."""
import torch

# One colour per class, narrowest branch first (green = cheap ... red = full network).
PALETTE = torch.tensor([[0.10, 0.75, 0.25], [0.95, 0.80, 0.10], [0.90, 0.20, 0.15],
                        [0.20, 0.45, 0.95], [0.70, 0.30, 0.90], [0.10, 0.80, 0.85]])


def class_colours(num_classes: int) -> torch.Tensor:
    if num_classes <= len(PALETTE):
        return PALETTE[:num_classes] if num_classes > 2 else PALETTE[[0, 2]]
    return torch.rand(num_classes, 3, generator=torch.Generator().manual_seed(0))


def class_overlay(image: torch.Tensor, class_map: torch.Tensor, num_classes: int, tile: int,
                  stride: int, scale: int, alpha: float = 0.4) -> torch.Tensor:
    """Tint a [3, H, W] output image by the class of the tile that last covers each pixel."""
    _, h, w = image.shape
    ny, nx = class_map.shape
    # tile index per output pixel: the last tile starting at or before it (starts every
    # `stride`, the last aligned to the border)
    def owner(n_out, n_tiles):
        n_in = n_out // scale
        starts = torch.arange(n_tiles) * stride
        starts[-1] = max(n_in - tile, 0)
        return torch.searchsorted(starts * scale, torch.arange(n_out), right=True) - 1
    cls = class_map[owner(h, ny)][:, owner(w, nx)]
    tint = class_colours(num_classes)[cls].permute(2, 0, 1)
    return (1 - alpha) * image.clamp(0, 1) + alpha * tint


def add_legend(image: torch.Tensor, labels) -> torch.Tensor:
    """Append a strip under a [3, H, W] image: one swatch per class with its label."""
    import cv2
    import numpy as np
    colours = class_colours(len(labels))
    w = image.shape[2]
    cell = max(w // len(labels), 1)
    strip = np.ones((22, w, 3), np.float32)
    for k, text in enumerate(labels):
        x0 = k * cell
        strip[4:18, x0 + 4:x0 + 18] = colours[k].numpy()
        cv2.putText(strip, str(text), (x0 + 22, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return torch.cat([image.clamp(0, 1), torch.from_numpy(strip).permute(2, 0, 1)], 1)
