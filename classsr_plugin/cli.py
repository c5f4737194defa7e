"""`classsr` command line. Subcommands: demo."""
import argparse
import os
import sys

import torch


def _basicsr():
    # registers the plugin in BasicSR and aliases torchvision for basicsr 1.4.2
    import classsr_plugin.registry.basicsr  # noqa: F401


def read_image(path: str) -> torch.Tensor:
    """A file -> RGB float tensor [3, H, W] in [0, 1] (8/16-bit, gray or RGBA accepted)."""
    _basicsr()
    import cv2
    import numpy as np
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if img is None:
        raise ValueError(f"{path}: not a readable image")
    scale = 65535.0 if img.dtype == np.uint16 else 255.0
    img = img.astype(np.float32) / scale
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.shape[2] == 4:
        img = img[:, :, :3]
    return torch.from_numpy(np.ascontiguousarray(img[:, :, ::-1].transpose(2, 0, 1)))


def write_image(path: str, img: torch.Tensor) -> None:
    _basicsr()
    from basicsr.utils import imwrite, tensor2img
    imwrite(tensor2img(img.clamp(0, 1), rgb2bgr=True), str(path))


def demo_photo() -> torch.Tensor:
    """A photo that ships with a dependency (scikit-image's astronaut, 512x512)."""
    from skimage import data
    return torch.from_numpy(data.astronaut()).permute(2, 0, 1).float() / 255.0


def cmd_demo(args) -> int:
    _basicsr()
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    from basicsr.utils.matlab_functions import imresize

    from . import ClassSR
    from .visual import class_overlay

    torch.manual_seed(0)
    scale = 4
    model = ClassSR(base={"type": "FSRCNN", "d": 56, "s": 12, "m": 4, "upscale": scale}).eval()
    print("NOTE: the weights are UNTRAINED (random init); this demo shows the pipeline "
          "(tiling, routing, FLOPs), not image quality.")
    if args.input:
        hr, lr = None, read_image(args.input)
        name = os.path.splitext(os.path.basename(args.input))[0]
    else:
        hr = demo_photo()
        hr = hr[:, :hr.shape[1] // scale * scale, :hr.shape[2] // scale * scale]
        lr = imresize(hr, 1 / scale).clamp(0, 1)
        name = "astronaut"
    os.makedirs(args.out, exist_ok=True)
    res = model.restore_image(lr, tile=args.tile, stride=args.stride, progress=True)
    sr_path = os.path.join(args.out, f"{name}_classsr_x{scale}.png")
    map_path = os.path.join(args.out, f"{name}_classmap.png")
    write_image(sr_path, res.image)
    write_image(map_path, class_overlay(res.image, res.class_map, model.num_classes,
                                        args.tile, args.stride, scale))
    print(f"input {lr.shape[2]}x{lr.shape[1]} -> output {res.image.shape[2]}x{res.image.shape[1]}")
    print(f"tiles per class (narrow..wide, widths {model.widths}): {res.counts}")
    print(f"FLOPs per tile {res.flops_per_tile / 1e6:.1f} M = {res.flops_percent:.1f}% of FSRCNN "
          f"(classifier included); {res.seconds:.2f} s")
    if hr is not None:
        bic = imresize(lr, scale).clamp(0, 1)
        write_image(os.path.join(args.out, f"{name}_bicubic_x{scale}.png"), bic)
        for label, img in (("bicubic", bic), ("ClassSR (untrained)", res.image)):
            psnr = calculate_psnr(tensor2img(img), tensor2img(hr), crop_border=scale)
            print(f"PSNR {label}: {psnr:.2f} dB")
    print(f"wrote {sr_path}, {map_path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="classsr", description=__doc__)
    sub = parser.add_subparsers(dest="cmd", required=True)
    demo = sub.add_parser("demo", help="upscale a built-in photo (or --input) with ClassSR-FSRCNN x4")
    demo.add_argument("--input", help="your own LR image instead of the built-in photo")
    demo.add_argument("--out", default="results/demo", help="output folder")
    demo.add_argument("--tile", type=int, default=32)
    demo.add_argument("--stride", type=int, default=28)
    demo.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, KeyError, FileNotFoundError) as err:
        print(f"classsr {args.cmd}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
