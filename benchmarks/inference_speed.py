"""Is ClassSR faster than its base network, and is that routing's doing? One process, ratios
from one run, medians of --repeats interleaved runs, on an idle machine and with one competing
CPU-bound process that this script starts itself (and kills by its pid when done).

Models: shipped ones by name (fsrcnn, msrresnet: the shipped weights, each its own classifier),
and `msrresnet-untrained`: ClassSR-MSRResNet (--msrresnet-widths, untrained; cells routed in equal
thirds by standard deviation, smooth -> narrowest: a deterministic stand-in for a trained
classifier). Photos: the shipped demo photo,
or every photo in --photos; each at 2K (LR = HR / 4) and at 4K (the photo upscaled x1.5 by
bicubic first, then / 4). Per model, size and load, times summed over the photos:

- base, whole image: the plain network on the whole LR image (the faster memory layout, medians
  of 2 on the first photo of each size, under the first load);
- ClassSR, regions (the default): own routing; "workers 1": one call at a time on torch's
  threads (the engine before inter-op workers); "1 thread": the same on one thread;
- engine unrouted: ClassSR forced to its widest branch (= the base network) through the same
  region engine: the yardstick that separates routing's gain from the engine's;
- each class alone: every cell to one branch; latency efficiency = sum over classes of (share
  of cells x that run's time) / own routing's time: 1.0 = routing costs no more than its class
  shares run as whole images would (no fragmentation cost);
- ClassSR, tiles: the paper's way (32 px tiles every 28);
- with --budgets: the budget knob at each of them (in regions, as a fraction of the base on the
  whole image), so that with --psnr two models compare along their whole speed-quality curves.
FLOPs-predicted speed-ups count every pixel a branch runs, margins included.

A model may also be another shipped model by name (a scale-1 one runs on --crop px centre crops of
the photos, degraded as its held-out data: `--models dncnn-s25`) or a checkpoint file (`--models fsrcnn,scripts/checkpoints/classsr_zero_edge_x4.pth`):
its own classifier routes, as for the shipped model. With --psnr, each row's output is scored
against the HR photo (basicsr's PSNR, 4 px border): speed at equal quality, e.g. with and without
the zero class.

Run: .venv/bin/python benchmarks/inference_speed.py [--repeats 5] [--models fsrcnn,msrresnet]
     [--sizes 2k,4k] [--load idle,busy] [--photos DIR] [--threads 2] [--psnr] [--crop 768]
"""
import argparse
import os
import statistics
import subprocess
import sys
import time

import torch

import classsr_plugin.registry.basicsr  # noqa: F401
from classsr_plugin import ClassSR, weights
from classsr_plugin import checkpoint
from classsr_plugin.cost import count_flops
from classsr_plugin.evaluate import bicubic_pair
from classsr_plugin.imageio import list_images, read_picture
from classsr_plugin.regions import CellGrid

sys.path.insert(0, os.path.dirname(__file__))
from core_speed import table  # noqa: E402

CL = torch.channels_last
MSRRESNET = dict(type="MSRResNet", num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4)


def std_thirds(windows: torch.Tensor, m: int) -> torch.Tensor:
    rank = windows.std((1, 2, 3)).argsort().argsort()
    return rank * m // len(windows)


def medians(fns: dict, repeats: int) -> tuple:
    """Median seconds of each function, the runs interleaved so drift hits all alike."""
    times = {k: [] for k in fns}
    out = {}
    for _ in range(repeats):
        for k, fn in fns.items():
            start = time.perf_counter()
            out[k] = fn()
            times[k].append(time.perf_counter() - start)
    return {k: statistics.median(v) for k, v in times.items()}, out


class Busy:
    """One competing CPU-bound process (a Python busy loop, at most `limit` s), for a `with` block.
    It also stops as soon as this script is gone (killed, Ctrl-C): a leftover would make every
    later "idle" measurement on the machine a busy one."""

    def __init__(self, on: bool, limit: float = 3600):
        self.on, self.limit, self.proc = on, limit, None

    def __enter__(self):
        if self.on:
            code = (f"import os, time\nend, parent = time.time() + {self.limit}, {os.getpid()}\n"
                    "while time.time() < end and os.getppid() == parent:\n    for _ in range(100000): pass")
            self.proc = subprocess.Popen([sys.executable, "-c", code])
            time.sleep(0.5)
        return self

    def __exit__(self, *exc):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        return False


def one_thread(fn):
    def run():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn()
        finally:
            torch.set_num_threads(threads)
    return run


def kw_std(model, lr) -> dict:
    """restore_image's arguments for the std-thirds stand-in router."""
    return dict(force_class=std_thirds(CellGrid(lr.shape[1], lr.shape[2], 32).windows(lr), model.num_classes))


def runs_for(model, lr, routing, tiles: bool, variants: bool = True, budgets=(), classes: bool = True,
             layout=None):
    """The runs timed on one LR image: name -> function; and the base network's memory layout on
    the whole image (`layout`: the one chosen on an earlier photo of the same size; None: the faster
    of the two here, medians of 2)."""
    m = model.num_classes
    base = model.build_base().eval()
    whole_cl = (lambda: base.to(memory_format=CL)(lr[None].contiguous(memory_format=CL))[0])
    whole_nc = (lambda: base.to(memory_format=torch.contiguous_format)(lr[None])[0])
    if layout is None:
        t_cl, _ = medians({"cl": whole_cl}, 2)
        t_nc, _ = medians({"nc": whole_nc}, 2)
        layout = "cl" if t_cl["cl"] <= t_nc["nc"] else "nc"
    kw = {}
    if routing == "std":  # forced routing skips the classifier; the FLOPs add it back below
        kw = kw_std(model, lr)
    runs = {"base, whole image": whole_cl if layout == "cl" else whole_nc,
            "ClassSR, regions": lambda: model.restore_image(lr, **kw),
            "engine unrouted (widest everywhere)": lambda: model.restore_image(lr, force_class=m - 1)}
    if variants:
        runs["ClassSR, regions, workers 1"] = lambda: model.restore_image(lr, workers=1, **kw)
        runs["ClassSR, regions, 1 thread"] = one_thread(lambda: model.restore_image(lr, workers=1, **kw))
    if classes:
        runs.update({f"class {k} alone": (lambda k=k: model.restore_image(lr, force_class=k)) for k in range(m - 1)})
    if routing != "std":  # the budget knob's operating points (target: towards the budget either way)
        runs.update({f"ClassSR, regions, budget {b:g}": (lambda b=b: model.restore_image(lr, budget=b, budget_mode="target"))
                     for b in budgets})
    if tiles and routing != "std":
        runs["ClassSR, tiles"] = lambda: model.restore_image(lr, "tiles")
    return runs, layout


def whole_flops(model, lr) -> float:
    """The base network's FLOPs on the whole LR image, from a 64 px crop scaled by area: a conv
    net's cost is per pixel (counting the whole image would cost one more run of it)."""
    crop = lr[None, :, :64, :64]
    f, _ = count_flops(model.build_base().eval(), crop)
    return f * lr.shape[1] * lr.shape[2] / (crop.shape[2] * crop.shape[3])


def score(out, hr, scale=4) -> float:
    """basicsr's PSNR of a run's output (a tensor or a restore result) against the HR photo (no
    border crop at scale 1, as classsr eval)."""
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    img = getattr(out, "image", out).float().clamp(0, 1)
    return calculate_psnr(tensor2img(img), tensor2img(hr), crop_border=scale if scale > 1 else 0)


def bench(model, photos, routing, repeats, tiles, psnr=False, variants=True, budgets=(), classes=True, layout=None):
    """Summed medians over the photos, FLOPs, the latency efficiency's ideal time (None without
    `classes`) and (psnr) the mean PSNR of each run over the photos; and the base's memory layout
    (`layout`: chosen already, at this size; None: the faster on the first photo)."""
    secs, flops, ideal, counts, quality = {}, {}, [0.0, 0.0] if classes else None, [0] * model.num_classes, {}
    cls = model.tile_cost(32).classifier
    for hr, lr in photos:
        with torch.inference_mode():
            runs, layout = runs_for(model, lr, routing, tiles, variants, budgets, classes, layout)
            t, out = medians(runs, repeats)
            f_whole = whole_flops(model, lr)
        n_cells = len(CellGrid(lr.shape[1], lr.shape[2], 32))
        own = out["ClassSR, regions"]
        if classes:
            alone = ([t[f"class {k} alone"] for k in range(model.num_classes - 1)]
                     + [t["engine unrouted (widest everywhere)"]])
            # shares of cells as they ran (the cover may move cells to wider classes) and as routed
            routed = model.restore_image(lr, coarsen=False, **({} if routing != "std" else kw_std(model, lr))).counts
            for i, shares in enumerate((own.counts, routed)):
                ideal[i] += sum(a * c / n_cells for a, c in zip(alone, shares))
        counts = [a + b for a, b in zip(counts, own.counts)]
        for k, v in t.items():
            secs[k] = secs.get(k, 0.0) + v
            res = out.get(k)
            if k == "base, whole image":
                f = f_whole
            elif hasattr(res, "flops_percent"):
                f = f_whole * res.flops_percent / 100 + (cls * n_cells if routing == "std" and "class" not in k
                                                         and "unrouted" not in k else 0)
            else:
                f = None
            flops[k] = None if f is None else flops.get(k, 0.0) + f
            if psnr:
                quality[k] = quality.get(k, 0.0) + score(out[k], hr, model.scale) / len(photos)
    return (secs, flops, ideal, counts, quality), layout


def report(name, size, load, secs, flops, ideal, counts, quality):
    base, unrouted, own = secs["base, whole image"], secs["engine unrouted (widest everywhere)"], secs["ClassSR, regions"]
    rows = []
    for k, t in secs.items():
        f = flops.get(k)
        rows.append([k, f"{t:.2f}", f"{base / t:.2f}x", f"{unrouted / t:.2f}x",
                     "-" if f is None else f"{100 * f / flops['base, whole image']:.1f}%",
                     "-" if f is None else f"{flops['base, whole image'] / f:.2f}x"]
                    + ([f"{quality[k]:.3f}"] if quality else []))
    print(f"\n### {name}, {size}, {load}\n")
    print(table(["run", "seconds (sum of medians)", "vs base, whole image", "vs engine unrouted",
                 "FLOPs, % of base on the whole image", "FLOPs-predicted vs base"]
                + (["PSNR (dB, mean over photos)"] if quality else []), rows))
    predicted = flops["engine unrouted (widest everywhere)"] / flops["ClassSR, regions"]
    line = (f"\ncells per class {counts}; own routing vs the engine unrouted: measured {unrouted / own:.2f}x, "
            f"FLOPs-predicted {predicted:.2f}x")
    if ideal is not None:
        line += (f"; latency efficiency {ideal[0] / own:.2f} (each class alone, weighted by its share of cells as "
                 f"they ran: {ideal[0]:.2f} s, against {own:.2f} s; by the shares as routed, before the cover moved "
                 f"cells to wider classes: {ideal[1] / own:.2f})")
    print(line)


def crops_degraded(paths, crop, degradation):
    """Scale 1: centre crops of the photos (a denoiser on a whole 2K photo takes tens of seconds
    here) and their inputs, degraded as the model's held-out data (noise seeded by the name)."""
    from classsr_plugin.demo import _centre_crop
    out = []
    for path in paths:
        img = read_picture(path).rgb if isinstance(path, str) else path
        hr = _centre_crop(img, crop)
        name = os.path.splitext(os.path.basename(path))[0] if isinstance(path, str) else "BytheWater"
        out.append((hr, degradation.of_picture(hr, name)))
    return out


def photos_at(paths, size):
    from basicsr.utils.matlab_functions import imresize
    out = []
    for path in paths:
        img = read_picture(path).rgb if isinstance(path, str) else path
        if size == "4k":
            img = imresize(img, 1.5).clamp(0, 1)
        out.append(bicubic_pair(img, 4))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default="fsrcnn,msrresnet")
    ap.add_argument("--msrresnet-widths", default="36,52,64", help="ClassSR-MSRResNet's branch widths")
    ap.add_argument("--sizes", default="2k,4k", help="2k, 4k or both")
    ap.add_argument("--load", default="idle,busy", help="idle, busy (one competing CPU-bound process) or both")
    ap.add_argument("--photos", help="a folder of photos (default: the shipped demo photo)")
    ap.add_argument("--no-tiles", action="store_true", help="leave out the tiles row")
    ap.add_argument("--psnr", action="store_true", help="score every run's output against the HR photo")
    ap.add_argument("--crop", type=int, default=768, help="scale 1: the centre crop of each photo (px)")
    ap.add_argument("--task", default="denoise", help="scale-1 checkpoint files: the degradation (shipped models "
                                                     "use their own)")
    ap.add_argument("--sigma", default="25", help="... its noise level")
    ap.add_argument("--no-variants", action="store_true", help="leave out the workers-1 and 1-thread rows")
    ap.add_argument("--no-classes", action="store_true",
                    help="leave out each class alone (and the latency efficiency): MSRResNet's shorter run")
    ap.add_argument("--budgets", default="", help="also time the budget knob at these fractions of the base's "
                                                  "FLOPs (target mode; with --psnr: speed against quality along it)")
    args = ap.parse_args()
    for name in args.models.split(","):  # before minutes of timing
        if name not in weights.MODELS and not os.path.isfile(name) and name != "msrresnet-untrained":
            ap.error(f"--models: {name!r} is not a shipped model ({', '.join(weights.MODELS)}), a checkpoint file "
                     "or msrresnet-untrained")
    torch.set_num_threads(args.threads)
    sources = list_images(args.photos) if args.photos else [weights.demo_photo()]
    start = time.perf_counter()
    print(f"{torch.get_num_threads()} threads, medians of {args.repeats} interleaved runs, {len(sources)} photo(s)"
          + (f" from {args.photos}" if args.photos else " (the shipped demo photo)"))
    for name in args.models.split(","):
        degradation = None
        if name in weights.MODELS:
            shipped = weights.get(name)
            model, routing, label = checkpoint.load(shipped.path), "classifier", f"{shipped.name} (shipped)"
            degradation = shipped.degrade()
        elif os.path.isfile(name):
            model, routing = checkpoint.load(name), "classifier"
            label = f"ClassSR {os.path.basename(name)}" + (" (zero class)" if model.zero_class else "")
        elif name == "msrresnet-untrained":
            torch.manual_seed(0)
            widths = [int(w) for w in args.msrresnet_widths.split(",")]
            model = ClassSR(base=MSRRESNET, widths=widths).eval()
            routing, label = "std", f"ClassSR-MSRResNet {'/'.join(map(str, widths))} (untrained, std thirds)"
        if model.scale == 1:
            from classsr_plugin.data.degrade import Degradation
            degradation = degradation or Degradation(args.task, 1, sigma=args.sigma)
        sizes = args.sizes.split(",") if model.scale > 1 else [f"{args.crop} px centre crops, {degradation}"]
        for size in sizes:
            photos = photos_at(sources, size) if model.scale > 1 else crops_degraded(sources, args.crop, degradation)
            layout = None  # the base's memory layout, chosen once a size (idle first: on a quiet machine)
            for load in args.load.split(","):
                with Busy(load == "busy"):
                    res, layout = bench(model, photos, routing, args.repeats, not args.no_tiles, args.psnr,
                                        not args.no_variants, [float(b) for b in args.budgets.split(",") if b],
                                        not args.no_classes, layout)
                report(label, size, load, *res)
    print(f"\nTotal run time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
