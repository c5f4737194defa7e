"""Measure the weights a recipe run made, pick the router to ship, and regenerate the model card
and README's results section from the measurements (scripts/recipe_fsrcnn_x4.sh; `make weights`).

On the held-out photos, through classsr_plugin.evaluate (the same code as `classsr eval`):
  - every candidate (edge-score (gradient, Laplacian), supervised and paper routers; shared weights): its own routing
    and the budget sweep (an evaluation newer than its checkpoint is reused);
  - the shipped one in full: bicubic, FSRCNN-O (tiled and whole image), ClassSR, budgets, oracle;
  - the per-class branch table; a class-map picture of a held-out 2K photo.
The router ships whose own routing is best within 70% of the base's FLOPs (else the best mean
PSNR over the budget sweep, equal FLOPs), unless a zero-class router (the same branches behind a
class that costs nothing) is as good over the sweep for less, within 0.02 dB, and --zero-class
says its wall-clock was measured to gain (`choose`); all are documented. Writes classsr_plugin/weights/{classsr_fsrcnn_x4.pth,
fsrcnn_o_x4.pth, card.json, MODEL_CARD.md}, docs/ pictures and README's results block.

Usage: python scripts/make_card.py --run RUN_DIR    (checkpoints: scripts/checkpoints)
"""
import argparse
import json
import os
import platform
import re
import shutil
import sys

import torch

import classsr_plugin.registry.basicsr  # noqa: F401  (BasicSR's archs for checkpoint.load)
from classsr_plugin import weights
from classsr_plugin.checkpoint import load
from classsr_plugin.imageio import read_picture, write_picture
from classsr_plugin.weights import demo_photo
from classsr_plugin.compat import alias_torchvision_for_basicsr
from classsr_plugin.data.prepare import read_meta
from classsr_plugin.evaluate import bicubic_pair, evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")
CKPT = os.path.join(REPO, "scripts", "checkpoints")
ROUTERS = {"edge score": "classsr_edge_x4.pth", "Laplacian score": "classsr_lap_x4.pth",
           "supervised": "classsr_supervised_x4.pth", "paper": "classsr_paper_x4.pth"}
# the same branches behind a first class that costs nothing (the recipe's `zero` step)
ZERO_ROUTERS = {"zero, edge score": "classsr_zero_edge_x4.pth", "zero, nested edge score": "classsr_zero_nested_x4.pth",
                "zero, Laplacian score": "classsr_zero_lap_x4.pth",
                "zero, nested Laplacian score": "classsr_zero_nested_lap_x4.pth",
                "zero, supervised": "classsr_zero_supervised_x4.pth", "zero, paper": "classsr_zero_paper_x4.pth"}
CANDIDATES = {**ROUTERS, **ZERO_ROUTERS, "shared": "classsr_shared_x4.pth"}
TOLERANCE = 0.02  # dB the zero class's own routing may lose against the plain router's
MAP_PHOTO = "plasma_Kite"  # a held-out 2K photo with a large smooth sky


def demo_numbers(model, ref):
    """The shipped demo photo as `classsr demo` and tests/test_weights.py run it."""
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    from basicsr.utils.matlab_functions import imresize

    from classsr_plugin import run_tiled
    hr, lr = bicubic_pair(demo_photo(), 4)
    res = model.restore_image(lr)
    with torch.no_grad():
        ref_img = run_tiled(lr, ref, 4, 32, 28)
    psnr = lambda img: calculate_psnr(tensor2img(img), tensor2img(hr), crop_border=4)  # noqa: E731
    return {"name": "By the Water (Maciej Wiklo, KDE Plasma wallpapers, LGPL-3; held out)",
            "size": list(hr.shape[1:]), "coarsen": True, "classsr_psnr": psnr(res.image), "classsr_counts": res.counts,
            "classsr_flops_percent": res.flops_percent, "fsrcnn_o_psnr": psnr(ref_img),
            "bicubic_psnr": psnr(imresize(lr, 4).clamp(0, 1))}


def class_map_picture(model, path_in, path_out):
    """The class map of a held-out photo, at half size (JPEG), with a legend."""
    from classsr_plugin.visual import add_legend, class_overlay
    _, lr = bicubic_pair(read_picture(path_in).rgb, 4)
    res = model.restore_image(lr)
    pic = add_legend(class_overlay(res.image, res.class_map, model.num_classes, res.layout, 4, zero=model.zero_class),
                     [f"{k}: {name}" for k, name in enumerate(model.class_names)], model.zero_class)
    half = torch.nn.functional.interpolate(pic[None], scale_factor=0.5, mode="area")[0]
    write_picture(path_out, half)
    return res.counts


def walltimes(run):
    """Seconds per recipe step from RUN's log; steps this run did not log keep the times the
    previous card recorded (a later session may run only some steps, e.g. `zero`)."""
    out = {}
    earlier = _earlier_card().get("wall_seconds", {})
    with open(os.path.join(run, "logs", "walltimes.txt")) as f:
        for line in f:
            m = re.match(r"(\S+) ([0-9.]+) s", line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))  # resumed steps add up
    return {**earlier, **out}


def _earlier_card() -> dict:
    """The card this run replaces (facts a partial re-run keeps), or {}."""
    path = os.path.join(weights.HERE, "card.json")
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def compare(run, ckpt, heldout, budgets, low_budgets=()):
    """Every candidate the recipe made, on the held-out photos: their own routing and the budget
    sweep -> {name: {"rows", "sweep" (mean PSNR over `budgets`, which every candidate reaches:
    equal FLOPs), "params"}}. Zero-class candidates also run `low_budgets` (below the cheapest
    branch's floor, where only they go)."""
    out = {}
    for name, file in CANDIDATES.items():
        path = os.path.join(ckpt, file)
        if not os.path.exists(path):
            continue
        model = load(path)
        mine = sorted(set(budgets) | (set(low_budgets) if model.zero_class else set()))
        folder = os.path.join(run, "eval", name.replace(", ", "_").replace(" ", "_"))
        rep = _cached(folder, path, mine)
        if rep is None:  # a PSNR-vs-FLOPs curve over the whole sweep
            rep = evaluate(model, [heldout], [None], folder, budgets=mine, budget_mode="target")
        rows = next(iter(rep["folders"].values()))["rows"]
        out[name] = {"rows": {k: r for k, r in rows.items() if k == "ClassSR" or k.startswith("ClassSR budget")},
                     "sweep": sum(rows[f"ClassSR budget {b:g}"]["psnr"] for b in budgets) / len(budgets),
                     "params": n_params(model), "file": file, "zero_class": model.zero_class}
        print(f"{name}: own routing {rows['ClassSR']['psnr']:.3f} dB at {rows['ClassSR']['flops_percent']:.1f}%, "
              f"mean over budgets {out[name]['sweep']:.3f} dB")
    return out


def _cached(out, ckpt, budgets):
    """A candidate's earlier evaluation, if newer than its checkpoint and over the same budgets
    (a re-run resumes: each candidate takes minutes on 2 cores)."""
    path = os.path.join(out, "eval.json")
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(ckpt):
        return None
    with open(path) as f:
        rep = json.load(f)
    rows = next(iter(rep["folders"].values()))["rows"]
    if any(f"ClassSR budget {b:g}" not in rows for b in budgets):
        return None
    print(f"{out}: evaluated after {os.path.basename(ckpt)} was written, reused")
    return rep


def _best(candidates, names, limit):
    """The router whose own routing gives the best PSNR within `limit`% of FSRCNN-O's FLOPs, or,
    if none is within, the best mean over the budget sweep."""
    names = [n for n in names if n in candidates]
    if not names:
        return None
    within = [n for n in names if candidates[n]["rows"]["ClassSR"]["flops_percent"] <= limit]
    return (max(within, key=lambda n: candidates[n]["rows"]["ClassSR"]["psnr"]) if within
            else max(names, key=lambda n: candidates[n]["sweep"]))


def choose(candidates, base_psnr, zero_class=False):
    """The router to ship: the best plain router (within 70% of FSRCNN-O's FLOPs, the Results
    issue's target), unless the best zero-class router (within 60%, the zero class's target) is
    at least as good over the budget sweep (equal FLOPs), costs less at its own routing, and
    loses at most TOLERANCE dB there against the plain router (a user trades no more than that
    for the lower cost). `base_psnr` (FSRCNN-O on the same tiles) is printed beside it.
    FLOPs are not time: the zero class ships only with `zero_class` (--zero-class), once
    benchmarks/inference_speed.py --psnr has shown it faster in regions at equal PSNR."""
    plain = _best(candidates, ROUTERS, 70)
    zero = _best(candidates, ZERO_ROUTERS, 60)
    if zero is None:
        return plain
    z, p = candidates[zero], candidates[plain]
    zr, pr = z["rows"]["ClassSR"], p["rows"]["ClassSR"]
    ok = (z["sweep"] >= p["sweep"] and zr["flops_percent"] < pr["flops_percent"]
          and zr["psnr"] >= pr["psnr"] - TOLERANCE)
    print(f"plain: {plain} {pr['psnr']:.3f} dB at {pr['flops_percent']:.1f}% (sweep {p['sweep']:.3f}); zero class: "
          f"{zero} {zr['psnr']:.3f} dB at {zr['flops_percent']:.1f}% (sweep {z['sweep']:.3f}); FSRCNN-O "
          f"{base_psnr:.3f} dB -> {'zero class' if ok else 'plain'}" + ("" if zero_class or not ok else
                                                                        " by FLOPs; plain without --zero-class"))
    return zero if ok and zero_class else plain


def ship(candidates, base_psnr, zero_class=False):
    """Copy the chosen router's checkpoint (its widest branch is FSRCNN-O) and FSRCNN-O into the
    package. Shared weights ship beside it only if their sweep is at least as good."""
    best = choose(candidates, base_psnr, zero_class)
    shutil.copyfile(os.path.join(CKPT, candidates[best]["file"]), weights.CLASSSR_FSRCNN_X4)
    shutil.copyfile(os.path.join(CKPT, "fsrcnn_o_x4.pth"), weights.FSRCNN_O_X4)
    shared = candidates.get("shared")
    shared_path = os.path.join(weights.HERE, "classsr_fsrcnn_x4_shared.pth")
    shipped_shared = bool(shared and shared["sweep"] >= candidates[best]["sweep"])
    if shipped_shared:
        shutil.copyfile(os.path.join(CKPT, shared["file"]), shared_path)
    elif os.path.exists(shared_path):
        os.remove(shared_path)
    return best, shipped_shared


def card_facts(run, model, ref, folder, candidates, best, shipped_shared, map_counts, map_path):
    photos = json.load(open(os.path.join(run, "photos", "photos.json")))
    return {
        "weights": {"classsr": os.path.basename(weights.CLASSSR_FSRCNN_X4), "reference": os.path.basename(weights.FSRCNN_O_X4)},
        "classsr": {"arch": "FSRCNN", "widths": model.widths, "classifier": model.config["classifier"], "router": best,
                    "zero_class": model.zero_class,
                    "base": model.config["base"]},
        "photos": photos,
        "sub_images": _sub_images(run),
        "wall_seconds": walltimes(run),
        "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
                    f"{torch.get_num_threads()} threads, no GPU",
        "heldout": folder["rows"], "per_class": folder["per_class"],
        "candidates": candidates, "shipped_shared": shipped_shared, "base_params": n_params(ref),
        "class_map": {"photo": MAP_PHOTO, "path": os.path.relpath(map_path, REPO), "counts": map_counts},
        "demo_photo": demo_numbers(model, ref),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="RUN folder of scripts/recipe_fsrcnn_x4.sh")
    ap.add_argument("--budgets", default="0.5,0.6,0.65,0.7,0.8,0.9,1",
                    help="the sweep every candidate reaches (its mean compares them at equal FLOPs)")
    ap.add_argument("--low-budgets", default="0.1,0.2,0.3,0.4",
                    help="budgets below the cheapest branch's floor: zero-class candidates only")
    ap.add_argument("--zero-class", action="store_true",
                    help="let a zero-class router ship when it wins by FLOPs (measure its wall-clock first)")
    ap.add_argument("--compare-only", action="store_true",
                    help="evaluate the candidates and print the choice; ship and write nothing")
    ap.add_argument("--oracle", default="0,3e-6,1e-5,3e-5")
    args = ap.parse_args(argv)
    alias_torchvision_for_basicsr()
    run, heldout = args.run, os.path.join(args.run, "photos", "heldout")
    budgets = [float(b) for b in args.budgets.split(",")]
    low = [float(b) for b in args.low_budgets.split(",") if b]
    if 1.0 not in budgets:
        ap.error("--budgets must include 1 (widest everywhere: FSRCNN-O on the same tiles, the tolerance's yardstick)")
    candidates = compare(run, CKPT, heldout, budgets, low)
    base_psnr = next(iter(candidates.values()))["rows"]["ClassSR budget 1"]["psnr"]
    if args.compare_only:
        print(f"FSRCNN-O on the same tiles: {base_psnr:.3f} dB; would ship: "
              f"{choose(candidates, base_psnr, args.zero_class)}")
        return 0
    best, shipped_shared = ship(candidates, base_psnr, args.zero_class)
    model, ref = load(weights.CLASSSR_FSRCNN_X4), load(weights.FSRCNN_O_X4)
    out = os.path.join(run, "eval", "shipped")
    rep = evaluate(model, [heldout], [None], out, budgets=sorted(set(budgets) | set(low if model.zero_class else ())),
                   budget_mode="target", reference=ref,
                   reference_name="FSRCNN-O",
                   oracle_tols=[float(t) for t in args.oracle.split(",")])
    os.makedirs(DOCS, exist_ok=True)
    shutil.copyfile(os.path.join(out, "psnr_vs_flops.png"), os.path.join(DOCS, "psnr_vs_flops_fsrcnn_x4.png"))
    map_path = os.path.join(DOCS, f"classmap_{MAP_PHOTO}.jpg")
    photo = next(os.path.join(heldout, f) for f in os.listdir(heldout) if f.startswith(MAP_PHOTO))
    card = card_facts(run, model, ref, next(iter(rep["folders"].values())), candidates, best, shipped_shared,
                      class_map_picture(model, photo, map_path), map_path)
    zeros = [n for n, c in candidates.items() if c["zero_class"]]
    if zeros and not model.zero_class:  # the best zero-class router's map beside the shipped one's
        zero = max(zeros, key=lambda n: candidates[n]["sweep"])
        zero_path = os.path.join(DOCS, f"classmap_zero_{MAP_PHOTO}.jpg")
        counts = class_map_picture(load(os.path.join(CKPT, candidates[zero]["file"])), photo, zero_path)
        card["class_map_zero"] = {"router": zero, "path": os.path.relpath(zero_path, REPO), "counts": counts}
    with open(os.path.join(weights.HERE, "card.json"), "w") as f:
        json.dump(card, f, indent=1)
    from card_text import model_card, readme_block
    with open(os.path.join(out, "eval.md")) as f:
        table = f.read()
    with open(os.path.join(weights.HERE, "MODEL_CARD.md"), "w") as f:
        f.write(model_card(card, table))
    _replace_block(os.path.join(REPO, "README.md"), readme_block(card, table))
    print(f"shipped router: {best}; shared weights shipped too: {shipped_shared}")
    return 0


def _sub_images(run):
    """Sub-images per class of each label file; files this run lacks (a later session may prepare
    the data again without every step's labels) keep the counts the previous card recorded."""
    earlier = _earlier_card().get("sub_images", {})
    out = {}
    for name in ("meta_info.txt", "meta_info_difficulty.txt", "meta_info_oracle.txt", "meta_info_oracle_zero.txt"):
        out[name] = _meta_counts(os.path.join(run, "data", "train_x4", name)) or earlier.get(name)
    return out


def _meta_counts(path):
    if not os.path.exists(path):
        return None
    classes = [c for _, _, c in read_meta(path)]
    return [classes.count(k) for k in range(max(classes) + 1)]


def _replace_block(path, text, start="<!-- results:start -->", end="<!-- results:end -->"):
    doc = open(path).read()
    a, b = doc.index(start) + len(start), doc.index(end)
    with open(path, "w") as f:
        f.write(doc[:a] + "\n" + text.strip() + "\n" + doc[b:])


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
