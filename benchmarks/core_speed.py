"""Speed and memory of ClassSR against its base network, on CPU, from one run.

For ClassSR-FSRCNN (d = 16/36/56) and ClassSR-MSRResNet (num_feat = 36/52/64), untrained
(seed 0; routing is arbitrary, timings are not), on a 270x512 LR image (-> 2048x1080 at x4):

- the base network on the whole image (contiguous and channels_last; the faster is marked),
- the base network tiled like ClassSR (32 px tiles every 28 px, 64 tiles a call; same memory
  layout as the ClassSR branches), the reference all ratios are taken against,
- ClassSR forced to each branch, and with its own routing,
- one tile per forward call (the original ClassSR code's way),
- FLOPs per 32x32 tile per branch: predicted speed-up vs the widest next to the measured one,
- peak memory (rise of the process's peak RSS, VmHWM; ru_maxrss shown too) and time of one
  ClassSR call on an 8K output (LR 1080x1920), each model in a fresh process.

Run: .venv/bin/python benchmarks/core_speed.py [--models fsrcnn,msrresnet] [--repeats 3]
     [--threads 2]      (or: make bench)
"""
import argparse
import json
import resource
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from classsr_plugin import ClassSR, run_tiled

CL = torch.channels_last


def build(name):
    torch.manual_seed(0)
    if name == "fsrcnn":
        return ClassSR(base=dict(type="FSRCNN", d=56, s=12, m=4, upscale=4))
    import classsr_plugin.registry.basicsr  # noqa: F401  (BasicSR's archs)
    return ClassSR(base=dict(type="MSRResNet", num_in_ch=3, num_out_ch=3, num_feat=64,
                             num_block=16, upscale=4))


def lr_image(h, w):
    from skimage.data import astronaut
    img = torch.from_numpy(astronaut()).permute(2, 0, 1).float()[None] / 255
    return F.interpolate(img, size=(h, w), mode="bicubic", align_corners=False)[0].clamp(0, 1)


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def bench(name, repeats):
    model = build(name).eval()
    lr = lr_image(270, 512)
    s, M = model.scale, model.num_classes
    net = model.build_base().eval()
    net_cl = model.build_base().eval().to(memory_format=CL)
    layout = (lambda t: t.contiguous(memory_format=CL)) if model.channels_last else (lambda t: t)
    tiled_net = net_cl if model.channels_last else net
    rows, res = [], {}
    with torch.inference_mode():
        t_c, _ = best(lambda: net(lr[None]), repeats)
        t_l, _ = best(lambda: net_cl(lr[None].contiguous(memory_format=CL)), repeats)
        t_tiled, ref = best(lambda: run_tiled(lr, lambda t: tiled_net(layout(t)), s, 32, 28, 64),
                            repeats)
        for k in range(M):
            res[k] = best(lambda: model.restore_image(lr, force_class=k, execution="tiles"), repeats)
        t_route, routed = best(lambda: model.restore_image(lr, execution="tiles"), repeats)
        t_one, _ = best(lambda: run_tiled(lr, lambda t: tiled_net(layout(t)), s, 32, 28, 1), repeats)
    faster = "channels_last" if t_l < t_c else "contiguous"
    rows += [[f"base, whole image, contiguous{' (faster)' * (faster == 'contiguous')}", t_c],
             [f"base, whole image, channels_last{' (faster)' * (faster == 'channels_last')}", t_l],
             ["base, tiled (64 tiles/call)", t_tiled]]
    rows += [[f"ClassSR forced to branch {k} ({model.width_key}={w})", res[k][0]]
             for k, w in enumerate(model.widths)]
    rows += [["ClassSR, own routing", t_route], ["base, one tile per call", t_one]]
    print(f"\n## {model.arch.__name__} x{s}: LR {tuple(lr.shape[1:])} -> "
          f"{tuple(ref.shape[1:])}, {routed.class_map.numel()} tiles, "
          f"{torch.get_num_threads()} threads, best of {repeats}, "
          f"ClassSR channels_last={model.channels_last}\n")
    print(table(["run", "seconds", "vs base tiled"],
                [[r, f"{t:.3f}", f"{t / t_tiled:.2f}x"] for r, t in rows]))
    diff = (res[M - 1][1].image - ref).abs().max().item()
    print(f"\nOwn routing: counts {routed.counts} (narrowest first), "
          f"flops_percent {routed.flops_percent:.1f}%. "
          f"max |forced widest - base tiled| = {diff:.2e}\n")
    cost = model.tile_cost(32)
    t_wide = res[M - 1][0]
    frows = [[f"branch {k}", w, f"{f / 1e6:.1f}", f"{cost.base / f:.2f}x", f"{t_wide / res[k][0]:.2f}x"]
             for k, (w, f) in enumerate(zip(model.widths, cost.branches))]
    frows.append(["classifier", "-", f"{cost.classifier / 1e6:.1f}", "-", "-"])
    print(table(["32x32 tile", model.width_key, "MFLOPs", "predicted speed-up vs widest",
                 "measured speed-up vs widest"], frows))


def vm_kib(key):
    return int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith(key + ":")))


def mem8k(name, execution="tiles"):
    """Child process: peak-memory increase of one ClassSR call on LR 1080x1920 (-> 8K).
    ru_maxrss alone misleads here: after exec a child starts with its parent's peak (Linux
    keeps the max over the old mm), so the 8K peak can hide under it. VmHWM is this process's
    own peak; writing 5 to clear_refs resets it to the current RSS first."""
    model = build(name).eval()
    lr = lr_image(1080, 1920)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass
    ru0, rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, vm_kib("VmRSS")
    with torch.inference_mode():
        out = model.restore_image(lr, execution=execution)
    ru1, hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, vm_kib("VmHWM")
    print(json.dumps(dict(model=f"{model.arch.__name__}, {execution}", out=list(out.image.shape),
                          mib=(hwm - rss0) / 1024, ru_mib=(ru1 - ru0) / 1024, seconds=out.seconds,
                          counts=out.counts, pct=out.flops_percent)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="fsrcnn,msrresnet")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--mem8k", help=argparse.SUPPRESS)
    ap.add_argument("--exec", default="tiles", help=argparse.SUPPRESS)
    ap.add_argument("--only-mem", action="store_true", help="skip the speed tables: the 8K memory rows only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.mem8k:
        return mem8k(args.mem8k, args.exec)
    start = time.perf_counter()
    names = [m.strip().lower() for m in args.models.split(",") if m.strip()]
    for name in names if not args.only_mem else []:
        bench(name, args.repeats)
    mrows = []
    for name, ex in ((n, e) for n in names for e in ("tiles", "regions")):
        cmd = [sys.executable, __file__, "--mem8k", name, "--threads", str(args.threads), "--exec", ex]
        proc = subprocess.run(cmd, check=True, capture_output=True, text=True)
        r = json.loads(proc.stdout.splitlines()[-1])
        mrows.append([r["model"], "x".join(map(str, r["out"][1:][::-1])), f"{r['mib']:.0f}",
                      f"{r['ru_mib']:.0f}", "yes" if r["mib"] <= 2048 else "**NO**",
                      f"{r['seconds']:.1f}",
                      f"{r['counts']}, {r['pct']:.1f}%"])
    print("\n## 8K output (LR 1080x1920), ClassSR own routing, fresh process per model\n")
    print(table(["model", "output WxH", "peak RSS increase MiB (VmHWM)",
                 "ru_maxrss increase MiB", "within 2 GiB", "seconds",
                 "counts, flops_percent"], mrows))
    print(f"\nTotal run time: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
