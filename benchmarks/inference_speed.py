"""Is ClassSR faster than its base network run on the whole image? One process, ratios from one
run, medians of --repeats interleaved runs (the machine is shared and noisy).

For ClassSR-FSRCNN (the shipped weights, its own classifier) and ClassSR-MSRResNet (paper widths
36/52/64, untrained; cells routed in equal thirds by standard deviation, smooth -> narrowest, a
deterministic stand-in for a trained classifier), on the shipped demo photo (real, 2560x1600) at
two output sizes: 2K (HR as shipped, LR 640x400) and 4K (LR 960x600, the HR upscaled x1.5 by
bicubic first, then x1/4: the same photo, more pixels):

- base on the whole image (the faster memory layout), base tiled (32 px tiles every 28 px,
  feathered), ClassSR per tile (`execution="tiles"`), ClassSR in regions (`execution="regions"`);
- time, speed-up over the base on the whole image, and the FLOPs-predicted speed-up beside it;
- PSNR against the HR (trained weights only), PSNR against the base on the whole image (how
  much tiling / regions change the output), and the seam ratio at tile / cell borders (1.0 = no
  seam; the whole-image row gives the photo's own value at the same places).

Run: .venv/bin/python benchmarks/inference_speed.py [--repeats 5] [--threads 2] [--margin 2]
"""
import argparse
import statistics
import sys
import time

import torch

import classsr_plugin.registry.basicsr  # noqa: F401
from classsr_plugin import ClassSR, TileGrid, run_tiled, weights
from classsr_plugin.checkpoint import load_model as load_checkpoint
from classsr_plugin.weights import demo_photo
from classsr_plugin.cost import count_flops
from classsr_plugin.evaluate import bicubic_pair
from classsr_plugin.regions import MARGIN, CellGrid
from classsr_plugin.tiling import seam_ratio

sys.path.insert(0, __import__("os").path.dirname(__file__))
from core_speed import table  # noqa: E402

CL = torch.channels_last
MSRRESNET = dict(type="MSRResNet", num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4)


def std_thirds(windows: torch.Tensor, m: int) -> torch.Tensor:
    rank = windows.std((1, 2, 3)).argsort().argsort()
    return rank * m // len(windows)


def medians(fns: dict, repeats: int) -> dict:
    """Median seconds of each function, the runs interleaved so drift hits all alike."""
    times = {k: [] for k in fns}
    out = {}
    for _ in range(repeats):
        for k, fn in fns.items():
            start = time.perf_counter()
            out[k] = fn()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}, out


def psnr(img, hr, s):
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    return calculate_psnr(tensor2img(img.clamp(0, 1)), tensor2img(hr), crop_border=s)


def bench(name, model, lr, hr, routing, repeats, margin):
    s, m = model.scale, model.num_classes
    base = model.build_base().eval()
    base_cl = model.build_base().eval().to(memory_format=CL)
    with torch.inference_mode():
        t_c, _ = medians({"c": lambda: base(lr[None])}, 2)
        t_l, _ = medians({"l": lambda: base_cl(lr[None].contiguous(memory_format=CL))}, 2)
    whole_net = (lambda x: base_cl(x.contiguous(memory_format=CL))) if t_l["l"] < t_c["c"] else base
    tiled_net = (lambda x: base_cl(x.contiguous(memory_format=CL))) if model.channels_last else base
    kw = {}
    if routing == "std":
        tiles = TileGrid(lr.shape[1], lr.shape[2], 32, 28, s)
        kw["tiles"] = dict(force_class=std_thirds(tiles.extract(tiles.pad(lr).reshape(3, -1),
                                                                torch.arange(len(tiles))), m))
        kw["regions"] = dict(force_class=std_thirds(CellGrid(lr.shape[1], lr.shape[2], 32).windows(lr), m))
    runs = {
        "base, whole image": lambda: whole_net(lr[None])[0],
        "base, tiled 32/28": lambda: run_tiled(lr, tiled_net, s, 32, 28),
        "ClassSR, tiles": lambda: model.restore_image(lr, execution="tiles", **kw.get("tiles", {})),
        "ClassSR, regions": lambda: model.restore_image(lr, execution="regions", margin=margin,
                                                        **kw.get("regions", {})),
    }
    with torch.inference_mode():
        secs, outs = medians(runs, repeats)
        f_whole, _ = count_flops(base, lr[None])
    cost = model.tile_cost(32)
    n_tiles = len(TileGrid(lr.shape[1], lr.shape[2], 32, 28, s))
    flops = {"base, whole image": f_whole, "base, tiled 32/28": cost.base * n_tiles,
             "ClassSR, tiles": outs["ClassSR, tiles"].flops_per_tile * n_tiles,
             "ClassSR, regions": f_whole * outs["ClassSR, regions"].flops_percent / 100}
    if routing == "std":  # forced routing skips the classifier; a trained router would pay it
        flops["ClassSR, tiles"] += cost.classifier * n_tiles
        flops["ClassSR, regions"] += cost.classifier * len(CellGrid(lr.shape[1], lr.shape[2], 32))
    grids = {"ClassSR, tiles": TileGrid(lr.shape[1], lr.shape[2], 32, 28, s).borders(),
             "base, tiled 32/28": TileGrid(lr.shape[1], lr.shape[2], 32, 28, s).borders()}
    cells = CellGrid(lr.shape[1], lr.shape[2], 32)
    grids["ClassSR, regions"] = ([int(y) * s for y in cells.ys[1:]], [int(x) * s for x in cells.xs[1:]])
    grids["base, whole image"] = grids["ClassSR, regions"]
    rows = []
    for k, t in secs.items():
        img = outs[k].image if hasattr(outs[k], "image") else outs[k]
        counts = getattr(outs[k], "counts", None)
        agree = "-" if k == "base, whole image" else f"{psnr(img, outs['base, whole image'].clamp(0, 1), s):.1f}"
        rows.append([k, f"{t:.3f}", f"{secs['base, whole image'] / t:.2f}x", f"{f_whole / flops[k]:.2f}x",
                     f"{psnr(img, hr, s):.2f}" if hr is not None else "-", agree,
                     f"{seam_ratio(img.clamp(0, 1), *grids[k], s):.3f}", counts or "-"])
    h, w = lr.shape[1:]
    print(f"\n### {name}, output {w * s}x{h * s}, routing: {routing}\n")
    print(table(["run", "seconds (median)", "speed-up vs base whole", "FLOPs-predicted", "PSNR vs HR",
                 "PSNR vs base whole", "seam ratio", "classes"], rows))
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--margin", type=int, default=MARGIN)
    ap.add_argument("--models", default="fsrcnn,msrresnet")
    ap.add_argument("--msrresnet-widths", default="36,52,64", help="ClassSR-MSRResNet's branch widths")
    ap.add_argument("--sizes", default="2k,4k", help="output sizes to run: 2k, 4k or both")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from basicsr.utils.matlab_functions import imresize
    photo = demo_photo()
    hr2k, lr2k = bicubic_pair(photo, 4)
    hr4k, lr4k = bicubic_pair(imresize(photo, 1.5).clamp(0, 1), 4)
    start = time.perf_counter()
    print(f"{torch.get_num_threads()} threads, medians of {args.repeats} interleaved runs, region margin {args.margin}")
    for name in args.models.split(","):
        if name == "fsrcnn":
            model, routing, label = load_checkpoint(weights.CLASSSR_FSRCNN_X4).eval(), "classifier", "ClassSR-FSRCNN (shipped)"
        else:
            torch.manual_seed(0)
            widths = [int(w) for w in args.msrresnet_widths.split(",")]
            model = ClassSR(base=MSRRESNET, widths=widths).eval()
            routing, label = "std", f"ClassSR-MSRResNet {'/'.join(map(str, widths))} (untrained)"
        pairs = {"2k": (lr2k, hr2k), "4k": (lr4k, hr4k)}
        for lr, hr in (pairs[k] for k in args.sizes.split(",")):  # an untrained net's PSNR against HR means nothing
            bench(label, model, lr, hr if routing == "classifier" else None, routing, args.repeats, args.margin)
    print(f"\nTotal run time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
