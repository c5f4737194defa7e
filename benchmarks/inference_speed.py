"""Is ClassSR's saving real in wall-clock time? One run, ratios, CPU (or --device cuda).

For ClassSR-FSRCNN and ClassSR-MSRResNet, with the paper's widths and with latency-aware widths
measured on this machine at start-up, on a 2K output (LR 270x512) and a 4K output (LR 540x1024):

- tiles are routed to classes by their standard deviation in equal thirds (smooth -> narrowest),
  a deterministic stand-in for a trained classifier; ClassSR's time is the branches' time under
  that routing plus the classifier's own pass over all tiles, timed in the same run;
- next to it: the widest branch on the same tiles, the base network on the whole image (no
  tiling, faster layout), the base network one tile per call (the original code's way);
- the FLOPs-predicted speed-up over the widest branch next to the measured one, and their ratio
  (the issue's target is >= 0.9);
- a budget sweep of the real (untrained) classifier under the cost knob: seconds vs FLOPs;
- peak memory of an 8K output: see benchmarks/core_speed.py (`--models` there).

Run: .venv/bin/python benchmarks/inference_speed.py [--models fsrcnn,msrresnet] [--repeats 3]
"""
import argparse
import sys

import torch

import classsr_plugin.registry.basicsr  # noqa: F401
from classsr_plugin import ClassSR, TileGrid, run_tiled

sys.path.insert(0, __import__("os").path.dirname(__file__))
from core_speed import best, lr_image, table  # noqa: E402

BASES = {
    "fsrcnn": dict(type="FSRCNN", d=56, s=12, m=4, upscale=4),
    "msrresnet": dict(type="MSRResNet", num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4),
}
CL = torch.channels_last


def std_routing(model, lr, tile=32, stride=28):
    """Equal thirds by tile standard deviation: smooth tiles to the narrowest branch."""
    grid = TileGrid(lr.shape[1], lr.shape[2], tile, stride, model.scale)
    tiles = grid.extract(grid.pad(lr).reshape(3, -1), torch.arange(len(grid)))
    rank = tiles.std((1, 2, 3)).argsort().argsort()
    return rank * model.num_classes // len(grid)


def classifier_pass(model, lr, tile=32, stride=28, batch=256):
    grid = TileGrid(lr.shape[1], lr.shape[2], tile, stride, model.scale)
    flat = grid.pad(lr).reshape(3, -1)
    return [model.classifier(grid.extract(flat, ids)) for ids in torch.arange(len(grid)).split(batch)]


def bench(name, widths, lr, repeats, budgets):
    torch.manual_seed(0)
    model = ClassSR(base=BASES[name], widths=widths).eval()
    s, m = model.scale, model.num_classes
    assign = std_routing(model, lr)
    cost = model.tile_cost(32)
    counts = torch.bincount(assign, minlength=m).tolist()
    base = model.build_base().eval()
    with torch.inference_mode():
        t_cls, _ = best(lambda: classifier_pass(model, lr), repeats)
        t_cs, _ = best(lambda: model.restore_image(lr, force_class=assign), repeats)
        t_wide, _ = best(lambda: model.restore_image(lr, force_class=m - 1), repeats)
        t_whole = min(best(lambda: base(lr[None]), repeats)[0],
                      best(lambda: base.to(memory_format=CL)(lr[None].contiguous(memory_format=CL)), repeats)[0])
        layout = (lambda t: t.contiguous(memory_format=CL)) if model.channels_last else (lambda t: t)
        t_one, _ = best(lambda: run_tiled(lr, lambda t: base(layout(t)), s, 32, 28, 1), 1)
        sweep = [(b, best(lambda: model.restore_image(lr, budget=b), repeats)) for b in budgets]
    t_classsr = t_cs + t_cls
    predicted = cost.base / cost.per_tile(counts)
    measured = t_wide / t_classsr
    h, w = lr.shape[1:]
    print(f"\n### {model.arch.__name__} {model.width_key}={model.widths}, output {w * s}x{h * s}, "
          f"{sum(counts)} tiles, classes {counts}, FLOPs {cost.percent(counts):.1f}% of base\n")
    print(table(["run", "seconds", "widest tiled / run"], [
        ["ClassSR (branches + classifier)", f"{t_classsr:.3f}", f"{t_wide / t_classsr:.2f}x"],
        ["  of which classifier", f"{t_cls:.3f}", ""],
        ["widest branch, tiled", f"{t_wide:.3f}", "1.00x"],
        ["base, whole image (no tiling)", f"{t_whole:.3f}", f"{t_wide / t_whole:.2f}x"],
        ["base, one tile per call", f"{t_one:.3f}", f"{t_wide / t_one:.2f}x"]]))
    print(f"\nspeed-up over the widest branch: FLOPs-predicted {predicted:.2f}x, measured {measured:.2f}x, "
          f"measured / predicted = {measured / predicted:.2f}; ClassSR vs base on the whole image: "
          f"{t_whole / t_classsr:.2f}x")
    if sweep:
        print("\n" + table(["budget", "classes", "FLOPs %", "seconds"],
                           [[b, r.counts, f"{r.flops_percent:.1f}", f"{t:.3f}"] for b, (t, r) in sweep]))
    return dict(model=name, widths=model.widths, predicted=predicted, measured=measured)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="fsrcnn,msrresnet")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", default="270x512,540x1024", help="LR sizes HxW (x4: 2K and 4K outputs)")
    ap.add_argument("--budgets", default="0.4,0.6,0.8,1.0")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    budgets = [float(b) for b in args.budgets.split(",")] if args.budgets else []
    results = []
    for name in args.models.split(","):
        latency = ClassSR(base=BASES[name], widths="latency").widths
        for hw in args.sizes.split(","):
            h, w = map(int, hw.split("x"))
            lr = lr_image(h, w)
            for widths in (None, latency):
                results.append(bench(name, widths, lr, args.repeats, budgets if widths else []))
    print("\n" + table(["model", "widths", "predicted", "measured", "measured / predicted"],
                       [[r["model"], r["widths"], f"{r['predicted']:.2f}x", f"{r['measured']:.2f}x",
                         f"{r['measured'] / r['predicted']:.2f}"] for r in results]))


if __name__ == "__main__":
    main()
