"""How much context does region execution need? The base network of each config run in regions
(every cell forced to the widest branch, so only the execution differs) at margins 0/2/4/8 LR
px, against the same network on the whole image: PSNR lost against the HR where the weights are
trained (the shipped FSRCNN-O), and the PSNR of the regions output against the whole-image
output for the untrained configs (their receptive fields, not their weights, set what a margin
must cover). The smallest margin that loses at most 0.01 dB is the one to use. Rectangles are
at most --max-cells cells a side (default 1: every cell its own rectangle, the most borders
and so the worst case; restore_image's default is 8).

`--trained FILE` (repeatable) adds a trained base network (e.g. the MSRResNet recipe's
scripts/checkpoints/msrresnet_o_x4.pth) as ClassSR's widest branch, measured against the HR on a
crop of the demo photo; a scale-1 network's input is that crop degraded by --task/--sigma (as the
DnCNN recipe's held-out data: denoise sigma 25, or deblur Gaussian 0.5-3).

Run: .venv/bin/python benchmarks/margins.py [--margins 0,2,4,8] [--max-cells 1] [--threads 2]
     [--trained FILE --crop 256 --task denoise --sigma 25]
"""
import argparse
import sys

import torch

import classsr_plugin.registry.basicsr  # noqa: F401
from classsr_plugin import ClassSR, weights
from classsr_plugin.checkpoint import load
from classsr_plugin.weights import demo_photo
from classsr_plugin.evaluate import bicubic_pair

sys.path.insert(0, __import__("os").path.dirname(__file__))
from core_speed import table  # noqa: E402
from inference_speed import MSRRESNET  # noqa: E402


def psnr(img, ref, s):
    """basicsr's PSNR of two [C, H, W] images in [0, 1], `s` px cropped at each border."""
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    return calculate_psnr(tensor2img(img.clamp(0, 1)), tensor2img(ref), crop_border=s)


CONFIGS = {  # name: (base config, LR crop size); untrained configs run on a crop to keep it short
    "MSRResNet x4 (16 blocks)": (MSRRESNET, 96),
    "DnCNN denoise (17 layers)": (dict(type="DnCNN", num_feat=64, num_layers=17), 192),
}


def rows_for(model, lr, hr, margins, max_cells):
    """[margin, PSNR vs HR or '-', dB vs whole (loss against HR, or agreement)] per margin."""
    s = model.scale if model.scale > 1 else 0  # the border cropped for PSNR: none at scale 1, as classsr eval
    with torch.inference_mode():
        whole = model.branches[-1](lr[None])[0].clamp(0, 1)
        out = []
        for m in margins:
            img = model.restore_image(lr, execution="regions", margin=m, max_cells=max_cells,
                                      force_class=model.num_classes - 1).image
            if hr is not None:
                p, p0 = psnr(img, hr, s), psnr(whole, hr, s)
                out.append([m, f"{p:.3f}", f"{p - p0:+.3f}"])
            else:
                out.append([m, "-", f"{psnr(img, whole, s):.1f}"])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--margins", default="0,2,4,8")
    ap.add_argument("--max-cells", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--trained", action="append", default=[], help="a trained base network checkpoint")
    ap.add_argument("--crop", type=int, default=256, help="input px a side for --trained networks")
    ap.add_argument("--task", default="denoise", choices=["denoise", "deblur"], help="scale-1 --trained inputs")
    ap.add_argument("--sigma", default="25")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    margins = [int(m) for m in args.margins.split(",")]
    hr, lr = bicubic_pair(demo_photo(), 4)
    print(f"## ClassSR-FSRCNN x4, shipped (widest branch = FSRCNN-O), demo photo, LR 640x400, "
          f"rectangles of at most {args.max_cells} cells a side\n")
    model = load(weights.CLASSSR_FSRCNN_X4)
    print(table(["margin (LR px)", "PSNR vs HR", "dB vs the whole image"], rows_for(model, lr, hr, margins, args.max_cells)))
    for path in args.trained:
        base = load(path, need_weights=True)
        model = ClassSR(base=base.network_g).eval()
        model.load_base(path)
        s, c = model.scale, args.crop
        y, x = (lr.shape[1] - c) // 2, (lr.shape[2] - c) // 2  # the centre: detail, not sky
        if s > 1:
            hr_c, lr_c = hr[:, y * s:(y + c) * s, x * s:(x + c) * s], lr[:, y:y + c, x:x + c]
        else:
            from classsr_plugin.data.degrade import Degradation
            deg = Degradation(args.task, 1, sigma=args.sigma if args.task == "denoise" else None)
            y, x = (hr.shape[1] - c) // 2, (hr.shape[2] - c) // 2
            hr_c = hr[:, y:y + c, x:x + c]
            lr_c = deg.of_picture(hr_c, "margins")
        print(f"\n## {path} (trained, {base.network_g['type']} x{s}), demo photo, input {c}x{c} centre crop"
              f"{'' if s > 1 else f' ({deg})'}\n")
        print(table(["margin (LR px)", "PSNR vs HR", "dB vs the whole image"], rows_for(model, lr_c, hr_c, margins, args.max_cells)))
    for name, (base, size) in CONFIGS.items():
        torch.manual_seed(0)
        model = ClassSR(base=base).eval()
        crop = lr[:, :size, :size] if model.scale > 1 else hr[:, :size, :size]
        print(f"\n## {name}, untrained, {size}x{size} crop: PSNR of the regions output against the whole image\n")
        print(table(["margin (LR px)", "PSNR vs HR", "PSNR vs whole image"], rows_for(model, crop, None, margins, args.max_cells)))


if __name__ == "__main__":
    main()
