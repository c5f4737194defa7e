"""`classsr eval`: a table like the paper's for each test folder, for ClassSR, its widest branch
run the same way, and optional FLOPs budgets; Markdown, JSON and a PSNR-vs-FLOPs plot.
PSNR through basicsr's metrics (RGB and Y, crop_border = scale for SR, 0 at scale 1). At scale 1
(denoising, deblurring) pass the degraded inputs as --lr."""
import io
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import List, Optional, Sequence

import torch
from tqdm import tqdm

from .atomic import write_bytes, write_text
from .checks import describe
from .compat import alias_torchvision_for_basicsr
from .imageio import crop_note, list_images, read_picture
from .execution import Execution
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


@dataclass
class TileStats:
    """Per tile of ClassSR's grid on one image, against the HR tile at the same place."""
    mse: torch.Tensor       # [n, M] each branch's output (clipped) vs HR
    bicubic: torch.Tensor   # [n] bicubic upsampling of the whole LR image, the same pixels
    logits: torch.Tensor    # [n, M] the classifier's
    outputs: Optional[torch.Tensor] = None  # [n, M, C, t*s, t*s] each branch's output (unclipped), if kept


@torch.no_grad()
def tile_stats(model, lr: torch.Tensor, hr: torch.Tensor, bicubic: torch.Tensor, tile: int = 32,
               stride: int = 28, batch: int = 256, keep: bool = False) -> TileStats:
    """`keep`: also keep every branch's output of every tile, from which any routing on this grid
    is merged without running a branch again (memory: about 0.6 GB for a 4K photo at x4)."""
    s = model.scale
    grid = _grid(lr, tile, stride, s)
    # the HR tile of every LR tile: the same layout at scale 1 on the HR image
    hr_grid = TileGrid(hr.shape[1], hr.shape[2], tile * s, stride * s, 1)
    # images smaller than a tile are padded alike at both scales
    lr, hr, bicubic = grid.pad(lr), hr_grid.pad(hr), hr_grid.pad(bicubic)
    mse, bic, logits, outs = [], [], [], []
    for ids in torch.arange(len(grid)).split(batch):
        x, y = grid.windows(lr, ids), hr_grid.windows(hr, ids)
        out = torch.stack([model.path(k)(model.to_branch_format(x)).float() for k in range(model.num_classes)], 1)
        mse.append((out.clamp(0, 1) - y[:, None]).pow(2).mean((2, 3, 4)))
        bic.append((hr_grid.windows(bicubic, ids) - y).pow(2).mean((1, 2, 3)))
        logits.append(model.classifier(x))
        if keep:
            outs.append(out.contiguous())
    return TileStats(torch.cat(mse), torch.cat(bic), torch.cat(logits), torch.cat(outs) if keep else None)


@torch.no_grad()
def tile_logits(model, lr: torch.Tensor, tile: int = 32, stride: int = 28, batch: int = 256) -> torch.Tensor:
    """The classifier's logits of every tile of the grid -> [n, M] (as tile_stats computes them)."""
    grid = _grid(lr, tile, stride, model.scale)
    lr = grid.pad(lr)
    return torch.cat([model.classifier(grid.windows(lr, ids)) for ids in torch.arange(len(grid)).split(batch)])


class TileCache:
    """Each image's tile statistics (branch outputs and errors), kept between evaluations of models
    whose classes run the same weights, e.g. the routers over one set of branches that
    scripts/make_card.py compares: the branches run once an image, each classifier on its own.
    Memory: the kept outputs of every image (about 0.2 GB a 2K photo at x4 with three classes)."""

    def __init__(self):
        self._stats = {}

    @staticmethod
    def _digest(head: str, tensors) -> str:
        import hashlib
        h = hashlib.sha1(head.encode())
        for name, t in tensors:
            h.update(name.encode())
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
        return h.hexdigest()

    def stats(self, model, lr, hr, compute, tile: int, stride: int) -> TileStats:
        """`compute()`'s TileStats of this LR/HR pair, or the kept ones with this model's logits."""
        paths = [(f"{k}.{n}", t) for k in range(model.num_classes) for n, t in model.path(k).state_dict().items()]
        key = (tile, stride, self._digest(f"{model.scale} {model.class_names}", paths),
               self._digest("", [("lr", lr), ("hr", hr)]))
        if key not in self._stats:
            self._stats[key] = compute()
            return self._stats[key]
        return replace(self._stats[key], logits=tile_logits(model, lr, tile, stride).cpu())


def _psnr(mse: torch.Tensor) -> float:
    from .data.prepare import psnr
    return float(psnr(mse.mean()))  # nan for no tiles


def branch_table(stats: Sequence[TileStats], model) -> List[dict]:
    """For the tiles the classifier routes to each class: their share, and the PSNR (of the
    pooled MSE over those tiles) of bicubic and of every branch. A narrow branch earns its tiles
    when it beats bicubic on them and stays close to the widest (the base network)."""
    mse = torch.cat([st.mse for st in stats])
    bic = torch.cat([st.bicubic for st in stats])
    routed = torch.cat([st.logits.argmax(1) for st in stats])
    rows = []
    for k in range(model.num_classes):
        sel = routed == k
        rows.append({"class": k, "name": model.class_names[k], "tiles": int(sel.sum()),
                     "share": float(sel.float().mean()), "bicubic": _psnr(bic[sel]),
                     "branches": [_psnr(mse[sel, j]) for j in range(model.num_classes)]})
    return rows


def _classsr_run(model, ex: Execution, device, oracle_tol=None, **kw):
    def run(lr, stats):
        force = kw.get("force_class")
        if oracle_tol is not None:  # the cheapest branch within tol of the widest, knowing the HR
            from .data.label import oracle_classes
            force = torch.from_numpy(oracle_classes(stats.mse.double().numpy(), oracle_tol))
        # on the grid the statistics come from, every tile's outputs are there already: merged, not re-run
        reuse = stats.outputs if ex.mode == "tiles" else None
        res = model.restore_image(lr.to(device), ex, **{**kw, "force_class": force}, tile_outputs=reuse)
        # an oracle stands in for a router, which would pay the classifier
        per_tile = model.tile_cost(ex.tile).per_tile(res.counts, True) if oracle_tol is not None else res.flops_per_tile
        return res.image.cpu(), res.counts, per_tile * sum(res.counts), None if reuse is not None else res.seconds
    return run


def _plain_run(net, scale, channels, ex: Execution, device, whole=False):
    """A plain network (e.g. the base network trained alone) on the same tiles, merged the same way, or on the whole
    image (FLOPs counted on the whole image)."""
    from .cost import count_flops
    from .tiling import run_tiled
    tile, stride = ex.tile, ex.stride
    flops, _ = count_flops(net, torch.zeros(1, channels, tile, tile, device=device))

    def run(lr, stats):
        start = time.perf_counter()
        with torch.no_grad():
            if whole:
                f, img = count_flops(net, lr[None].to(device))
                img = img[0]
            else:
                img, f = run_tiled(lr.to(device), net, scale, tile, stride), flops * len(_grid(lr, tile, stride, scale))
        return img.cpu(), None, f, time.perf_counter() - start
    return run


def _bicubic_run(scale):
    from basicsr.utils.matlab_functions import imresize

    def run(lr, stats):
        start = time.perf_counter()
        img = imresize(lr, scale).clamp(0, 1)
        return img, None, 0.0, time.perf_counter() - start
    return run


def _runs(model, ex: Execution, device, reference, reference_name, budgets, budget_mode, oracle_tols):
    m, s = model.num_classes, model.scale
    runs = [("bicubic" if s > 1 else "input", _bicubic_run(s))]
    if reference is not None:
        reference = reference.to(device).eval()
        runs += [(reference_name, _plain_run(reference, s, model.in_ch, ex, device)),
                 (f"{reference_name}, whole image", _plain_run(reference, s, model.in_ch, ex, device, whole=True))]
    runs += [("ClassSR", _classsr_run(model, ex, device)),
             (f"widest branch ({model.width_key}={model.widths[-1]})", _classsr_run(model, ex, device, force_class=m - 1))]
    if reference is not None and ex.mode == "tiles":  # beside the reference on the whole image
        runs.append((f"ClassSR, regions (margin {model.execution(ex).margin})", _classsr_run(model, replace(ex, mode="regions"), device)))
    runs += [(budget_label(b, budget_mode), _classsr_run(model, ex, device, budget=b, budget_mode=budget_mode))
             for b in budgets]
    # the oracle's classes are per tile (its statistics come from the tile grid)
    runs += [(f"oracle, tol {t:g}", _classsr_run(model, replace(ex, mode="tiles"), device, oracle_tol=t))
             for t in oracle_tols]
    return runs


def budget_label(budget: float, mode: str) -> str:
    return f"ClassSR budget {'<= ' if mode == 'ceiling' else ''}{budget:g}"


def _folder_names(hr_dirs) -> List[str]:
    """Short unique labels: the folder's name, with parents added where two would clash."""
    parts = [os.path.normpath(os.path.abspath(d)).split(os.sep) for d in hr_dirs]
    depth = 1
    while depth < max(len(p) for p in parts):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(names):
            return names
        depth += 1
    return ["/".join(p) for p in parts]


def evaluate(model, hr_dirs: Sequence[str], lr_dirs: Sequence[Optional[str]], out: str,
             budgets: Sequence[float] = (), ex: Execution = Execution(mode="tiles"), device: str = "cpu",
             reference=None, reference_name: str = "reference", oracle_tols: Sequence[float] = (),
             budget_mode: str = "ceiling", reuse: bool = True, cache: Optional[TileCache] = None):
    """`ex`: how ClassSR runs (default: the paper's tiles 32/28; a regions row is added beside
    the reference). `reference`: an optional plain network (same scale), run on the same tiles
    and on the whole image, e.g. the base network trained alone. `oracle_tols`: rows routed by
    the oracle (each tile to the cheapest branch within that MSE of the widest, the HR known).
    `budget_mode`: "ceiling" or "target" (ClassSR.restore_image). `reuse`: every branch runs once on
    every tile of the grid (for the statistics) and the ClassSR rows on that grid are merged from
    those outputs, not run again (the same numbers, a fraction of the time; their time column is
    then empty: time is measured by benchmarks/inference_speed.py). `cache`: a TileCache shared by
    evaluations of models with the same branches."""
    alias_torchvision_for_basicsr()
    s = model.scale
    runs = _runs(model, ex, device, reference, reference_name, budgets, budget_mode, oracle_tols)
    report = {"model": {"arch": model.arch.__name__, "widths": model.widths, "scale": s, **asdict(ex),
                        "budget_mode": budget_mode}, "folders": {}}
    os.makedirs(out, exist_ok=True)
    md = []
    for name, hr_dir, lr_dir in zip(_folder_names(hr_dirs), hr_dirs, lr_dirs):
        rows, classes, skipped, listed = _eval_folder(model, name, hr_dir, lr_dir, runs, ex, device, reuse, cache)
        done = max((r["images"] for r in rows.values()), default=0)
        report["folders"][name] = {"rows": rows, "per_class": classes, "skipped": skipped, "images": listed,
                                   "evaluated": done}
        md += [_table(name, rows, ex, done, listed), _class_table(classes, model, "bicubic" if s > 1 else "input")]
        md += _monotone_note(rows, budgets, budget_mode)
    print("\n".join(md))  # first: a full disk must not take the results with it
    write_text(os.path.join(out, "eval.json"), json.dumps(report, indent=2))
    write_text(os.path.join(out, "eval.md"), "\n".join(md) + "\n")
    if budgets:
        _plot(report, budgets, budget_mode, os.path.join(out, "psnr_vs_flops.png"), reference_name)
    print(f"wrote {out}/eval.md, eval.json" + (", psnr_vs_flops.png" if budgets else ""))
    return report


def _eval_image(model, path, lr_dir, runs, ex: Execution, device, reuse=True, cache=None):
    """One HR image through every run -> (its tile statistics, tiles, the base network's FLOPs
    run as ClassSR runs, {label: (PSNR, PSNR-Y, class counts, FLOPs, seconds)})."""
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    from basicsr.utils.matlab_functions import imresize
    s = model.scale
    crop = s if s > 1 else 0  # SR convention: crop_border = scale; restoration: none
    hr = read_picture(path).rgb
    w, h = hr.shape[2], hr.shape[1]
    hr = hr[:, :h // s * s, :w // s * s]
    if min(hr.shape[1:]) <= 2 * crop:
        raise ValueError(f"{path}: {w}x{h} is too small for PSNR, which crops {crop} px at each border "
                         f"(at least {3 * s} px a side)")
    note = crop_note(path, w, h, s)
    if note:
        tqdm.write(note)
    lr = _lr_for(path, lr_dir, hr, s)
    gt = tensor2img(hr)

    def compute():
        st = tile_stats(model.to(device), lr.to(device), hr.to(device),
                        (imresize(lr, s).clamp(0, 1) if s > 1 else lr).to(device), ex.tile, ex.stride, keep=reuse)
        return TileStats(*(None if t is None else t.cpu() for t in (st.mse, st.bicubic, st.logits, st.outputs)))
    st = compute() if cache is None or not reuse else cache.stats(model.to(device), lr.to(device), hr, compute,
                                                                  ex.tile, ex.stride)
    tiles = len(_grid(lr, ex.tile, ex.stride, s))
    # the base network run as this table runs ClassSR: on the same tiles, or on the whole image
    base = model.tile_cost(ex.tile).base * (tiles if ex.mode == "tiles" else lr.shape[1] * lr.shape[2] / ex.tile ** 2)
    results = {}
    for label, run in runs:
        img, counts, flops, seconds = run(lr, st)
        sr = tensor2img(img)
        results[label] = (calculate_psnr(sr, gt, crop_border=crop),
                          calculate_psnr(sr, gt, crop_border=crop, test_y_channel=True), counts, flops, seconds)
    return st, tiles, base, results


def _eval_folder(model, name, hr_dir, lr_dir, runs, ex: Execution, device, reuse=True, cache=None):
    acc = {label: {"psnr": [], "psnr_y": [], "counts": None, "seconds": 0.0, "flops": 0.0, "tiles": 0}
           for label, _ in runs}
    skipped, stats, base_flops = [], [], 0.0
    paths = list_images(hr_dir)
    for path in tqdm(paths, desc=f"eval {name}", unit="image", disable=None):
        try:  # an image counts in no row or in every row
            st, tiles, base, results = _eval_image(model, path, lr_dir, runs, ex, device, reuse, cache)
        except Exception as err:  # MemoryError too: report the image and go on
            skipped.append(describe(err) if path in str(err) else f"{path}: {describe(err)}")
            tqdm.write(f"skipped {skipped[-1]}")
            continue
        stats.append(replace(st, outputs=None))  # the per-class table needs only the MSEs
        base_flops += base
        for label, (psnr, psnr_y, counts, flops, seconds) in results.items():
            a = acc[label]
            a["psnr"].append(psnr)
            a["psnr_y"].append(psnr_y)
            if counts is not None:
                a["counts"] = counts if a["counts"] is None else [x + y for x, y in zip(a["counts"], counts)]
            # rows merged from kept tile outputs have no time of their own
            a["seconds"] = None if seconds is None or a["seconds"] is None else a["seconds"] + seconds
            a["flops"] += flops
            a["tiles"] += tiles
    rows = {}
    for label, a in acc.items():
        if a["psnr"]:
            rows[label] = {"psnr": sum(a["psnr"]) / len(a["psnr"]), "psnr_y": sum(a["psnr_y"]) / len(a["psnr_y"]),
                           "flops_per_tile": a["flops"] / a["tiles"], "flops_percent": 100 * a["flops"] / base_flops,
                           "seconds": a["seconds"], "images": len(a["psnr"]),
                           "class_share": None if a["counts"] is None else [c / sum(a["counts"]) for c in a["counts"]]}
    return rows, branch_table(stats, model) if stats else [], skipped, len(paths)


def coverage(report: dict):
    """How many images the tables stand on -> (evaluated, listed, a note per folder that lost some)."""
    folders = report["folders"]
    notes = []
    for name, f in folders.items():
        if f["evaluated"] < f["images"]:
            why = "; ".join(f["skipped"][:3]) + (" ..." if len(f["skipped"]) > 3 else "")
            notes.append(f"{name}: {f['evaluated']} of {f['images']} images evaluated" + (f"; skipped: {why}" if why else ""))
    return sum(f["evaluated"] for f in folders.values()), sum(f["images"] for f in folders.values()), notes


def _table(name, rows, ex: Execution, done: int, listed: int) -> str:
    lines = [f"### {name}", ""]
    if done < listed:
        lines += [f"**{done} of {listed} images** (skipped ones and why: eval.json)", ""]
    lines += [f"FLOPs: per {ex.tile}x{ex.tile} LR tile of the {ex.tile}/{ex.stride} grid on average, "
             "classifier included where a "
             "classifier routes; % of the base network (the widest branch) run as ClassSR runs here: on the same "
             "tiles (execution tiles) or on the whole image (execution regions).", "",
             "| method | PSNR | PSNR-Y | GFLOPs / tile | % of base | time (s) | classes (narrow..wide) |",
             "|---|---|---|---|---|---|---|"]
    for label, r in rows.items():
        secs = "-" if r["seconds"] is None else f"{r['seconds']:.2f}"
        share = "-" if r["class_share"] is None else " / ".join(f"{100 * c:.0f}%" for c in r["class_share"])
        lines.append(f"| {label} | {r['psnr']:.2f} | {r['psnr_y']:.2f} | {r['flops_per_tile'] / 1e9:.4f} | "
                     f"{r['flops_percent']:.1f}% | {secs} | {share} |")
    return "\n".join(lines) + "\n"


def _class_table(classes, model, first: str) -> str:
    if not classes:
        return ""
    head = " | ".join(model.class_names)
    lines = ["Per class, on the tiles the classifier routes there (PSNR of the pooled tile MSE, no border crop; "
             "- where no tile went):", "",
             f"| routed to | tiles | {first} | {head} |", "|---|---|---|" + "---|" * model.num_classes]

    def db(p, bold=False):
        return "-" if p != p else (f"**{p:.2f}**" if bold else f"{p:.2f}")  # p != p: nan, an empty class
    for r in classes:
        cells = " | ".join(db(p, j == r["class"]) for j, p in enumerate(r["branches"]))
        lines.append(f"| {r['name']} | {r['tiles']} ({100 * r['share']:.0f}%) | {db(r['bicubic'])} | {cells} |")
    return "\n".join(lines) + "\n"


def _monotone_note(rows, budgets, mode) -> List[str]:
    points = [rows[budget_label(b, mode)] for b in sorted(budgets) if budget_label(b, mode) in rows]
    if not points:
        return []
    notes = []
    for key, label in (("psnr", "PSNR"), ("psnr_y", "PSNR-Y")):
        drops = [(a[key] - b[key], a, b) for a, b in zip(points, points[1:]) if b[key] < a[key]]
        if not drops:
            notes.append(f"{label} never falls as the budget grows.")
        else:
            worst = max(drops, key=lambda d: d[0])
            notes.append(f"{label} falls as the budget grows in {len(drops)} step(s); largest: {worst[0]:.3f} dB "
                         f"(from {worst[1]['flops_percent']:.1f}% to {worst[2]['flops_percent']:.1f}% FLOPs).")
    return [" ".join(notes), ""]


def _plot(report, budgets, mode, path, reference_name):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    for name, folder in report["folders"].items():
        rows = folder["rows"]
        pts = [rows[budget_label(b, mode)] for b in sorted(budgets) if budget_label(b, mode) in rows]
        line, = ax.plot([r["flops_percent"] for r in pts], [r["psnr"] for r in pts], "o-", label=f"{name}: budget")
        c = line.get_color()
        if "ClassSR" in rows:
            ax.plot(rows["ClassSR"]["flops_percent"], rows["ClassSR"]["psnr"], "*", ms=13, color=c,
                    label=f"{name}: ClassSR (own routing)")
        oracle = sorted((r for k, r in rows.items() if k.startswith("oracle")), key=lambda r: r["flops_percent"])
        if oracle:
            ax.plot([r["flops_percent"] for r in oracle], [r["psnr"] for r in oracle], "^:", color=c, alpha=0.7,
                    label=f"{name}: oracle routing")
        for key, style in (("bicubic", ":"), (reference_name, "--")):
            if key in rows:
                ax.axhline(rows[key]["psnr"], ls=style, color=c, lw=1, label=f"{name}: {key}")
    ax.set_xlabel("FLOPs, % of the base network (classifier included)")
    ax.set_ylabel("PSNR (RGB, dB)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    write_bytes(path, buf.getvalue())
