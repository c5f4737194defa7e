"""`classsr eval`: a table like the paper's for each test folder, for ClassSR, its widest branch
run the same way, and optional FLOPs budgets; Markdown, JSON and a PSNR-vs-FLOPs plot.
PSNR through basicsr's metrics (RGB and Y, crop_border = scale for SR, 0 at scale 1). At scale 1
(denoising, deblurring) pass the degraded inputs as --lr."""
import json
import os
import time
from typing import List, Optional, Sequence

import torch
from tqdm import tqdm

from .compat import alias_torchvision_for_basicsr
from .imageio import list_images, read_picture
from .tiling import TileGrid


def _grid(lr, tile, stride, scale):
    return TileGrid(lr.shape[1], lr.shape[2], tile, stride, scale)


def bicubic_pair(hr: torch.Tensor, scale: int):
    """[C, H, W] HR in [0, 1] -> (HR cropped to a multiple of scale, its LR by basicsr's
    MATLAB-style bicubic): how test LR images are made when none are given."""
    alias_torchvision_for_basicsr()
    from basicsr.utils.matlab_functions import imresize
    hr = hr[:, :hr.shape[1] // scale * scale, :hr.shape[2] // scale * scale]
    return hr, imresize(hr, 1 / scale).clamp(0, 1)


def _lr_for(hr_path, lr_dir, hr, scale):
    if lr_dir:
        from .data.prepare import find_lr
        stem = os.path.splitext(os.path.basename(hr_path))[0]
        lr = read_picture(find_lr(lr_dir, stem)).rgb
        if hr.shape[1:] != (lr.shape[1] * scale, lr.shape[2] * scale):
            raise ValueError(f"{hr_path}: HR {hr.shape[2]}x{hr.shape[1]} is not {scale} x its LR "
                             f"{lr.shape[2]}x{lr.shape[1]}")
        return lr
    if scale == 1:
        raise ValueError(f"{hr_path}: at scale 1 the degraded inputs must be given (--lr; "
                         f"classsr prepare --whole --task ... makes them)")
    return bicubic_pair(hr, scale)[1]


def _classsr_run(model, tile, stride, device, **kw):
    def run(lr):
        res = model.restore_image(lr.to(device), tile=tile, stride=stride, **kw)
        return res.image.cpu(), res.counts, res.flops_per_tile * sum(res.counts), res.seconds
    return run


def _plain_run(net, scale, tile, stride, device):
    """A plain network (e.g. FSRCNN-O) on the same tiles, merged the same way."""
    from .cost import count_flops
    from .tiling import run_tiled
    flops, _ = count_flops(net, torch.zeros(1, 3, tile, tile, device=device))

    def run(lr):
        start = time.perf_counter()
        with torch.no_grad():
            img = run_tiled(lr.to(device), net, scale, tile, stride)
        return img.cpu(), None, flops * len(_grid(lr, tile, stride, scale)), time.perf_counter() - start
    return run


def _bicubic_run(scale):
    from basicsr.utils.matlab_functions import imresize

    def run(lr):
        start = time.perf_counter()
        img = imresize(lr, scale).clamp(0, 1)
        return img, None, 0.0, time.perf_counter() - start
    return run


def evaluate(model, hr_dirs: Sequence[str], lr_dirs: Sequence[Optional[str]], out: str,
             budgets: Sequence[float] = (), tile: int = 32, stride: int = 28, device: str = "cpu",
             reference=None, reference_name: str = "reference"):
    """`reference`: an optional plain network (same scale) run on the same tiles, e.g. the base
    network trained alone."""
    alias_torchvision_for_basicsr()
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img

    s, m = model.scale, model.num_classes
    crop = s if s > 1 else 0  # SR convention: crop_border = scale; restoration: none
    runs = [("bicubic" if s > 1 else "input", _bicubic_run(s))]
    if reference is not None:
        runs.append((reference_name, _plain_run(reference.to(device).eval(), s, tile, stride, device)))
    runs += [("ClassSR", _classsr_run(model, tile, stride, device)),
             (f"widest branch ({model.width_key}={model.widths[-1]})",
              _classsr_run(model, tile, stride, device, force_class=m - 1))]
    runs += [(f"ClassSR budget {b:g}", _classsr_run(model, tile, stride, device, budget=b)) for b in budgets]
    report = {"model": {"arch": model.arch.__name__, "widths": model.widths, "scale": s,
                        "tile": tile, "stride": stride}, "folders": {}}
    os.makedirs(out, exist_ok=True)
    md = []
    for hr_dir, lr_dir in zip(hr_dirs, lr_dirs):
        name = os.path.basename(os.path.normpath(hr_dir))
        acc = {label: {"psnr": [], "psnr_y": [], "counts": None, "seconds": 0.0, "flops": 0.0, "tiles": 0}
               for label, _ in runs}
        skipped = []
        for path in tqdm(list_images(hr_dir), desc=f"eval {name}", unit="image"):
            try:
                hr = read_picture(path).rgb
                hr = hr[:, :hr.shape[1] // s * s, :hr.shape[2] // s * s]
                lr = _lr_for(path, lr_dir, hr, s)
            except ValueError as err:
                skipped.append(str(err))
                tqdm.write(f"skipped {err}")
                continue
            gt = tensor2img(hr)
            tiles = len(_grid(lr, tile, stride, s))
            for label, run in runs:
                img, counts, flops, seconds = run(lr)
                sr = tensor2img(img)
                a = acc[label]
                a["psnr"].append(calculate_psnr(sr, gt, crop_border=crop))
                a["psnr_y"].append(calculate_psnr(sr, gt, crop_border=crop, test_y_channel=True))
                if counts is not None:
                    a["counts"] = counts if a["counts"] is None else [x + y for x, y in zip(a["counts"], counts)]
                a["seconds"] += seconds
                a["flops"] += flops
                a["tiles"] += tiles
        base = model.tile_cost(tile).base
        rows = {}
        for label, _ in runs:
            a = acc[label]
            if not a["psnr"]:
                continue
            rows[label] = {"psnr": sum(a["psnr"]) / len(a["psnr"]), "psnr_y": sum(a["psnr_y"]) / len(a["psnr_y"]),
                           "flops_per_tile": a["flops"] / a["tiles"], "flops_percent": 100 * a["flops"] / a["tiles"] / base,
                           "seconds": a["seconds"], "images": len(a["psnr"]),
                           "class_share": None if a["counts"] is None else [c / a["tiles"] for c in a["counts"]]}
        report["folders"][name] = {"rows": rows, "skipped": skipped}
        md.append(_table(name, rows))
        md += _monotone_note(rows, budgets)
    with open(os.path.join(out, "eval.json"), "w") as f:
        json.dump(report, f, indent=2)
    with open(os.path.join(out, "eval.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print("\n".join(md))
    if budgets:
        _plot(report, budgets, os.path.join(out, "psnr_vs_flops.png"))
    print(f"wrote {out}/eval.md, eval.json" + (", psnr_vs_flops.png" if budgets else ""))
    return report


def _table(name, rows) -> str:
    lines = [f"### {name}", "", "| method | PSNR | PSNR-Y | GFLOPs / tile | % of base | time (s) | classes (narrow..wide) |",
             "|---|---|---|---|---|---|---|"]
    for label, r in rows.items():
        share = "-" if r["class_share"] is None else " / ".join(f"{100 * c:.0f}%" for c in r["class_share"])
        lines.append(f"| {label} | {r['psnr']:.2f} | {r['psnr_y']:.2f} | {r['flops_per_tile'] / 1e9:.4f} | "
                     f"{r['flops_percent']:.1f}% | {r['seconds']:.2f} | {share} |")
    return "\n".join(lines) + "\n"


def _monotone_note(rows, budgets) -> List[str]:
    points = [(b, rows.get(f"ClassSR budget {b:g}")) for b in sorted(budgets)]
    points = [(b, r) for b, r in points if r]
    drops = [(b0, b1, r0["psnr"] - r1["psnr"]) for (b0, r0), (b1, r1) in zip(points, points[1:])
             if r1["psnr"] < r0["psnr"]]
    if not points:
        return []
    if not drops:
        return ["PSNR never falls as the budget grows.", ""]
    worst = max(drops, key=lambda d: d[2])
    return [f"PSNR falls as the budget grows in {len(drops)} step(s); largest: {worst[2]:.3f} dB "
            f"from budget {worst[0]:g} to {worst[1]:g}.", ""]


def _plot(report, budgets, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, folder in report["folders"].items():
        rows = folder["rows"]
        pts = [rows[f"ClassSR budget {b:g}"] for b in sorted(budgets) if f"ClassSR budget {b:g}" in rows]
        line, = ax.plot([r["flops_percent"] for r in pts], [r["psnr"] for r in pts], "o-", label=f"{name}: budget")
        if "ClassSR" in rows:
            ax.plot(rows["ClassSR"]["flops_percent"], rows["ClassSR"]["psnr"], "*", ms=12,
                    color=line.get_color(), label=f"{name}: ClassSR")
    ax.set_xlabel("FLOPs, % of the base network (classifier included)")
    ax.set_ylabel("PSNR (RGB, dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
