"""What `coarsen` (the cheapest cover, regions.cover) buys: ClassSR in regions with and without
it, and with other per-window overheads in its cost model (--model: the shipped ClassSR-FSRCNN,
or an untrained ClassSR-MSRResNet routed in std thirds), on the demo photo or photos in a folder
(--size 2k: LR = photo / 4; 4k: upscaled x1.5 first): time summed over the photos (medians of
--repeats interleaved runs), FLOPs per photo, latency efficiency (each class run alone over the
image, weighted by the share of cells that ran in it, over the run's time) and mean PSNR
against the photo.

Run: .venv/bin/python benchmarks/coarsen_speed.py [--photos DIR] [--repeats 5] [--overheads 0,2.5e7,1e8,4e8]
     [--size 2k|4k] [--model fsrcnn|msrresnet]
"""
import argparse
import os
import statistics
import sys
import time

import torch

import classsr_plugin.registry.basicsr  # noqa: F401
import classsr_plugin.regions as regions
from classsr_plugin import ClassSR, weights
from classsr_plugin.checkpoint import load
from classsr_plugin.imageio import list_images

sys.path.insert(0, os.path.dirname(__file__))
from inference_speed import MSRRESNET, kw_std, photos_at  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", help="a folder of photos (default: the shipped demo photo)")
    ap.add_argument("--model", default="fsrcnn", choices=("fsrcnn", "msrresnet"),
                    help="fsrcnn: the shipped ClassSR-FSRCNN, its own classifier; msrresnet: an untrained "
                         "ClassSR-MSRResNet 36/52/64 routed in std thirds (as benchmarks/inference_speed.py)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--overheads", default="0,2.5e7,1e8,4e8",
                    help="per-window overheads of the cost model, FLOPs (regions.OVERHEAD_FLOPS is the default)")
    ap.add_argument("--size", default="2k", help="2k: LR = photo / 4; 4k: the photo upscaled x1.5 first "
                                                "(as benchmarks/inference_speed.py)")
    args = ap.parse_args()
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    torch.set_num_threads(2)
    if args.model == "fsrcnn":
        model, routed = load(weights.CLASSSR_FSRCNN_X4), lambda lr: {}
    else:
        torch.manual_seed(0)
        model, routed = ClassSR(base=MSRRESNET, widths=[36, 52, 64]).eval(), lambda lr: kw_std(model, lr)
    photos = photos_at(list_images(args.photos) if args.photos else [weights.demo_photo()], args.size)
    kws = [routed(lr) for _, lr in photos]
    runs = {f"coarsen, overhead {float(o):.3g} FLOPs": (float(o), True) for o in args.overheads.split(",")}
    runs["no coarsen"] = (0, False)
    times, outs = {k: [] for k in runs}, {}
    alone_runs = [(i, c) for i in range(len(photos)) for c in range(model.num_classes)]
    alone_times = {r: [] for r in alone_runs}
    with torch.inference_mode():
        for _ in range(args.repeats):  # every run in every repeat: drift hits all alike
            for k, (overhead, on) in runs.items():
                regions.cover.__defaults__ = (overhead,)
                start = time.perf_counter()
                outs[k] = [model.restore_image(lr, coarsen=on, **kw) for (_, lr), kw in zip(photos, kws)]
                times[k].append(time.perf_counter() - start)
            for i, c in alone_runs:
                alone_times[i, c].append(timed(lambda: model.restore_image(photos[i][1], force_class=c, coarsen=False)))
    regions.cover.__defaults__ = (regions.OVERHEAD_FLOPS,)
    alone = [[statistics.median(alone_times[i, c]) for c in range(model.num_classes)] for i in range(len(photos))]
    print(f"{args.model}: {len(photos)} photo(s) from {args.photos or 'the demo photo'} at {args.size}, "
          f"medians of {args.repeats}\n")
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
