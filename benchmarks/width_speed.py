"""Do narrower branches run as much faster as their FLOPs say? Time per LR pixel of MSRResNet (16
blocks, x4) at several widths, channels_last (ClassSR's branch layout on CPU), on one
region-sized call (132x132 LR: a 4x4-cell rectangle with its margins) and on a whole 400x640 LR
image, medians of --repeats interleaved runs, each width's time and FLOPs as a fraction of
width 64's. The ceilings it prints, from these times: ClassSR-MSRResNet's speed-up over the
base on the whole image with equal thirds of the pixels per branch and no margins at all; then,
on the shipped demo photo's cells routed in std thirds (as benchmarks/inference_speed.py
routes), with the margin paid by the rectangles region execution makes, and by the best any
shapes could do (each class's cells grown by the margin: a lower bound on the context to run).

Run: .venv/bin/python benchmarks/width_speed.py [--widths 32,36,48,52,64] [--repeats 5] [--margin 2]
"""
import argparse
import statistics
import sys
import time

import torch

import classsr_plugin.registry.basicsr  # noqa: F401
from basicsr.archs.srresnet_arch import MSRResNet
from classsr_plugin.regions import MARGIN

sys.path.insert(0, __import__("os").path.dirname(__file__))
from core_speed import table  # noqa: E402

CL = torch.channels_last


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="32,36,48,52,64")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--margin", type=int, default=MARGIN)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    widths = [int(w) for w in args.widths.split(",")]
    if 64 not in widths:
        widths.append(64)
    nets = {w: MSRResNet(num_feat=w, num_block=16, upscale=4).eval().to(memory_format=CL) for w in widths}
    region = torch.rand(1, 3, 132, 132).contiguous(memory_format=CL)
    whole = torch.rand(1, 3, 400, 640).contiguous(memory_format=CL)
    times = {w: [] for w in widths}
    with torch.inference_mode():
        for net in nets.values():
            net(region)  # first call per shape builds the kernels
        for _ in range(args.repeats):
            for w, net in nets.items():
                start = time.perf_counter()
                net(region)
                times[w].append((time.perf_counter() - start) / region[0, 0].numel() * 1e6)
        whole_times = []
        for _ in range(max(1, args.repeats // 2)):
            start = time.perf_counter()
            nets[64](whole)
            whole_times.append((time.perf_counter() - start) / whole[0, 0].numel() * 1e6)
    us = {w: statistics.median(t) for w, t in times.items()}
    rows = [[w, f"{us[w]:.2f}", f"{us[w] / us[64]:.2f}", f"{(w / 64) ** 2:.2f}"] for w in widths]
    print(f"{torch.get_num_threads()} threads, medians of {args.repeats} runs\n")
    print(table(["width", "us per LR px (132x132 call)", "time / width 64's", "FLOPs / width 64's"], rows))
    w_whole = statistics.median(whole_times)
    print(f"\nwidth 64 on the whole 400x640 image: {w_whole:.2f} us per LR px")
    for trio in ((36, 52, 64), (32, 48, 64)):
        if all(w in us for w in trio):
            per_px = sum(us[w] for w in trio) / 3
            print(f"widths {'/'.join(map(str, trio))}, equal thirds, no margins: at most "
                  f"{w_whole / per_px:.2f}x over width 64 on the whole image "
                  f"(FLOPs alone: {3 / sum((w / 64) ** 2 for w in trio):.2f}x)")
            margins(trio, us, w_whole, args.margin)


def margins(trio, us, w_whole, margin):
    """Ceilings with the margins paid, on the demo photo's std-thirds class map (2K output)."""
    import torch.nn.functional as F
    from classsr_plugin.evaluate import bicubic_pair
    from classsr_plugin.regions import CellGrid, merge_cells
    from classsr_plugin.weights import demo_photo
    from inference_speed import std_thirds
    lr = bicubic_pair(demo_photo(), 4)[1]
    grid = CellGrid(lr.shape[1], lr.shape[2], 32)
    cm = std_thirds(grid.windows(lr), 3).view(grid.shape)
    t = [us[w] for w in trio]
    h, w = grid.height, grid.width
    rect_time = 0.0
    for k, r0, c0, rows, cols in merge_cells(cm, 8):
        y0, y1, x0, x1 = grid.box(r0, c0, rows, cols)
        rect_time += t[k] * (min(y1 + margin, h) - max(y0 - margin, 0)) * (min(x1 + margin, w) - max(x0 - margin, 0))
    grown = 0.0
    for k in range(3):
        mask = (cm == k).float().repeat_interleave(32, 0).repeat_interleave(32, 1)[:h, :w]
        grown += t[k] * F.max_pool2d(mask[None, None], 2 * margin + 1, 1, margin).sum().item()
    for name, cost in (("rectangles as merged", rect_time), ("any shapes (cells grown by the margin)", grown)):
        print(f"  margin {margin}, {name}: at most {w_whole * h * w / cost:.2f}x")


if __name__ == "__main__":
    main()
