"""What `coarsen` (the cheapest cover, regions.cover) buys: ClassSR-FSRCNN (shipped) in regions
with and without it, and with other per-window overheads in its cost model, on photos in a folder (LR = photo / 4): time summed over the
photos (medians of --repeats interleaved runs), FLOPs per photo, latency efficiency (each class
run alone over the image, weighted by the share of cells that ran in it, over the run's time)
and mean PSNR against the photo.

Run: .venv/bin/python benchmarks/coarsen_speed.py --photos DIR [--repeats 5] [--overheads 0,512,2048] [--size 2k|4k]
"""
import argparse
import os
import statistics
import sys
import time

import torch

import classsr_plugin.registry.basicsr  # noqa: F401
import classsr_plugin.regions as regions
from classsr_plugin import weights
from classsr_plugin.checkpoint import load
from classsr_plugin.imageio import list_images

sys.path.insert(0, os.path.dirname(__file__))
from inference_speed import photos_at  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", required=True)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--overheads", default="0,512,2048")
    ap.add_argument("--size", default="2k", help="2k: LR = photo / 4; 4k: the photo upscaled x1.5 first "
                                                "(as benchmarks/inference_speed.py)")
    args = ap.parse_args()
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    torch.set_num_threads(2)
    model = load(weights.CLASSSR_FSRCNN_X4)
    photos = photos_at(list_images(args.photos), args.size)
    runs = {f"coarsen, overhead {o}": (int(o), True) for o in args.overheads.split(",")}
    runs["no coarsen"] = (0, False)
    times, outs = {k: [] for k in runs}, {}
    with torch.inference_mode():
        for _ in range(args.repeats):
            for k, (overhead, on) in runs.items():
                regions.cover.__defaults__ = (overhead,)
                start = time.perf_counter()
                outs[k] = [model.restore_image(lr, coarsen=on) for _, lr in photos]
                times[k].append(time.perf_counter() - start)
        alone = [[statistics.median(timed(lambda: model.restore_image(lr, force_class=c, coarsen=False))
                                    for _ in range(3)) for c in range(model.num_classes)] for _, lr in photos]
    print(f"{len(photos)} photos from {args.photos} at {args.size}, medians of {args.repeats}\n")
    print("| run | seconds | FLOPs % per photo | latency efficiency | PSNR |\n|---|---|---|---|---|")
    for k in runs:
        t = statistics.median(times[k])
        ideal = sum(sum(a[c] * r.counts[c] / sum(r.counts) for c in range(model.num_classes))
                    for a, r in zip(alone, outs[k]))
        psnr = [calculate_psnr(tensor2img(r.image), tensor2img(hr), crop_border=4) for r, (hr, _) in zip(outs[k], photos)]
        print(f"| {k} | {t:.3f} | {', '.join(f'{r.flops_percent:.1f}' for r in outs[k])} | {ideal / t:.2f} | "
              f"{sum(psnr) / len(psnr):.4f} |")


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


if __name__ == "__main__":
    main()
