"""Pictures: a class map drawn over the output image."""
import torch

# One colour per class, narrowest branch first (green = cheap ... red = full network).
PALETTE = torch.tensor([[0.10, 0.75, 0.25], [0.95, 0.80, 0.10], [0.90, 0.20, 0.15],
                        [0.20, 0.45, 0.95], [0.70, 0.30, 0.90], [0.10, 0.80, 0.85]])
ZERO = torch.tensor([[0.25, 0.55, 1.00]])  # the zero class (no network call): blue


def class_colours(num_classes: int, zero: bool = False) -> torch.Tensor:
    if zero:
        return torch.cat([ZERO, class_colours(num_classes - 1)])
    if num_classes <= len(PALETTE):
        return PALETTE[:num_classes] if num_classes > 2 else PALETTE[[0, 2]]
    return torch.rand(num_classes, 3, generator=torch.Generator().manual_seed(0))


def class_overlay(image: torch.Tensor, class_map: torch.Tensor, num_classes: int, layout, scale: int,
                  alpha: float = 0.25, zero: bool = False) -> torch.Tensor:
    """Tint a [3, H, W] image by the class of the tile (or cell) that last covers each pixel,
    lightly, and outline where the class changes, so the photo stays readable under the map.
    layout: (row starts, col starts) of the class map's tiles in LR px (Restored.layout);
    scale: output px per LR px (1 draws the map on the LR input); zero: class 0 is the zero class
    (its own colour, blue)."""
    ys, xs = (torch.as_tensor(v) for v in layout)

    def owner(n_out, starts):  # the last tile starting at or before each output pixel
        return torch.searchsorted(starts * scale, torch.arange(n_out), right=True) - 1
    cls = class_map[owner(image.shape[1], ys)][:, owner(image.shape[2], xs)]
    colours = class_colours(num_classes, zero)
    out = (1 - alpha) * image.clamp(0, 1) + alpha * colours[cls].permute(2, 0, 1)
    edge = torch.zeros(cls.shape)
    edge[:, 1:] += (cls[:, 1:] != cls[:, :-1]).float()
    edge[1:, :] += (cls[1:, :] != cls[:-1, :]).float()
    r = max(1, image.shape[2] // 1200)  # lines about 1/600 of the width, drawn in the class's colour
    edge = torch.nn.functional.max_pool2d(edge[None, None], 2 * r + 1, stride=1, padding=r)[0, 0] > 0
    return torch.where(edge, colours[cls].permute(2, 0, 1), out)


def add_legend(image: torch.Tensor, labels, zero: bool = False) -> torch.Tensor:
    """Append a strip under a [3, H, W] image: one swatch per class with its label, sized to
    the image (about 1/40 of its width high); zero: class 0 is the zero class (as class_overlay)."""
    import cv2
    import numpy as np
    colours = class_colours(len(labels), zero)
    w = image.shape[2]
    cell = max(w // len(labels), 1)
    h = max(22, w // 40)
    font = h / 55
    strip = np.ones((h, w, 3), np.float32)
    for k, text in enumerate(labels):
        x0 = k * cell
        pad = h // 6
        strip[pad:h - pad, x0 + pad:x0 + h - pad] = colours[k].numpy()
        cv2.putText(strip, str(text), (x0 + h + pad, h - 2 * pad), cv2.FONT_HERSHEY_SIMPLEX, font, (0, 0, 0),
                    max(1, h // 30), cv2.LINE_AA)
    return torch.cat([image.clamp(0, 1), torch.from_numpy(strip).permute(2, 0, 1)], 1)


def side_by_side(crops, labels) -> torch.Tensor:
    """Crops [3, h, w] side by side with a label above each, as one image."""
    import cv2
    import numpy as np
    tiles = []
    for crop, label in zip(crops, labels):
        img = np.ascontiguousarray(crop.clamp(0, 1).permute(1, 2, 0).numpy())
        bar = np.ones((20, img.shape[1], 3), np.float32)
        cv2.putText(bar, label, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        tiles += [np.concatenate([bar, img], 0), np.ones((img.shape[0] + 20, 4, 3), np.float32)]
    return torch.from_numpy(np.concatenate(tiles[:-1], 1)).permute(2, 0, 1)
