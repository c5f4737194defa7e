"""Measure the weights a recipe run made, pick the router to ship, and regenerate the model card
and README's results section from the measurements (`make weights`; --model fsrcnn: the run of
scripts/recipe_fsrcnn_x4.sh, --model dncnn-s25: of scripts/recipe_dncnn_x1.sh, TASK=denoise).

On the held-out photos (at scale 1: the recipe's noisy centre crops of them), through
classsr_plugin.evaluate (the same code as `classsr eval`):
  - every candidate the recipe made (edge-score, supervised and paper routers over the same branches;
    zero-class routers and shared weights where the recipe makes them): its own routing and the
    budget sweep (an evaluation newer than its checkpoint is reused);
  - the shipped one in full: bicubic (the noisy input), the base network (tiled and whole image),
    ClassSR, budgets, oracle;
  - the per-class branch table; a class-map picture of a held-out photo.
The router ships whose own routing is best within 70% of the base's FLOPs (else the best mean
PSNR over the budget sweep, equal FLOPs), unless a zero-class router (the same branches behind a
class that costs nothing) is as good over the sweep for less, within 0.02 dB, and --zero-class
says its wall-clock was measured to gain (`choose`); all are documented. Writes the model's files
in classsr_plugin/weights/ (its `weights.MODELS` entry: checkpoints, card json, model card), docs/
pictures and README's results block.

Usage: python scripts/make_card.py --run RUN_DIR [--model dncnn-s25]    (checkpoints: scripts/checkpoints)
"""
import argparse
import glob
import json
import os
import platform
import re
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime

import torch

import classsr_plugin.registry.basicsr  # noqa: F401  (BasicSR's archs for checkpoint.load)
from classsr_plugin import weights
from classsr_plugin.checkpoint import load, save
from classsr_plugin.imageio import read_picture, write_picture
from classsr_plugin.weights import demo_photo
from classsr_plugin.compat import alias_torchvision_for_basicsr
from classsr_plugin.data.prepare import read_meta
from classsr_plugin.evaluate import TileCache, bicubic_pair, evaluate
from classsr_plugin.execution import Execution

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(REPO, "docs")
CKPT = os.path.join(REPO, "scripts", "checkpoints")
TOLERANCE = 0.02  # dB the zero class's own routing may lose against the plain router's
# routers over the same branches (and the shipped copy of one) share their branches' tile outputs
CACHE = TileCache()
HALF_TOLERANCE = 0.005  # dB fp16 storage may change the held-out PSNR (ClassSR, the base on the whole image)


@dataclass(frozen=True)
class Spec:
    """What differs between the shipped models' cards: the recipe's files and the held-out data."""
    key: str                  # classsr_plugin.weights.MODELS key: where the chosen files ship
    base_name: str            # the base network trained alone, as tables call it
    base_file: str            # ... its recipe checkpoint, in CKPT
    routers: dict             # plain routers over the same branches: {name: file in CKPT}
    zero_routers: dict = field(default_factory=dict)  # the same branches behind a class that costs nothing
    extra: dict = field(default_factory=dict)         # other candidates (shared weights)
    data: str = "train_x4"    # RUN/data/<data>: the training sub-images (label counts)
    heldout: str = "photos/heldout"   # RUN/<heldout>: the HR photos (bicubic LR), or a prepared folder's hr/
    heldout_lr: str = None            # RUN/<heldout_lr>: degraded inputs beside it (scale 1)
    budgets: str = "0.5,0.6,0.65,0.7,0.8,0.9,1"
    low_budgets: str = "0.1,0.2,0.3,0.4"
    oracle: str = "0,3e-6,1e-5,3e-5"
    map_photo: str = "plasma_Kite"  # a held-out photo with a large smooth sky
    plot: str = "psnr_vs_flops_fsrcnn_x4.png"
    block: str = "results"    # README's <!-- BLOCK:start --> ... <!-- BLOCK:end -->
    eval_by_file: bool = False  # candidates' evaluations in RUN/eval/<file stem> (as the recipe's eval step writes)
    # its recipe's label files in RUN/data/<data> (globs; files of other recipes share the folder)
    labels: tuple = ("meta_info.txt", "meta_info_difficulty.txt", "meta_info_oracle.txt", "meta_info_oracle_zero.txt",
                     "meta_info_oracle_tol*.txt")
    stride: int = 28          # the tiles' stride (32 px tiles): the paper's 28; scale 1 overlaps more (24, README)
    half: bool = False        # ship fp16 weights if they keep the held-out PSNR within HALF_TOLERANCE (store_half)
    knob: bool = False        # also measure the budget sweep as `--budget` runs it by default (ceiling mode)
    steps: str = r"photos|data|data_heldout|FSRCNN_.*|difficulty|ClassSR_FSRCNN_.*|oracle(_shared|_zero)?(_lap)?(_photo)?"
    # ... the names its recipe's steps log in RUN/logs/walltimes.txt (other recipes log there too)

    @property
    def candidates(self):
        return {**self.routers, **self.zero_routers, **self.extra}

    def folder(self, run, name, file):
        stem = os.path.splitext(file)[0] if self.eval_by_file else name.replace(", ", "_").replace(" ", "_")
        return os.path.join(run, "eval", stem)


SPECS = {s.key: s for s in [
    Spec("fsrcnn", "FSRCNN-O", "fsrcnn_o_x4.pth",
         routers={"edge score": "classsr_edge_x4.pth", "Laplacian score": "classsr_lap_x4.pth",
                  "Laplacian score, per-photo fit": "classsr_lap_photo_x4.pth",
                  "supervised": "classsr_supervised_x4.pth", "paper": "classsr_paper_x4.pth"},
         zero_routers={"zero, edge score": "classsr_zero_edge_x4.pth",
                       "zero, nested edge score": "classsr_zero_nested_x4.pth",
                       "zero, Laplacian score": "classsr_zero_lap_x4.pth",
                       "zero, nested Laplacian score": "classsr_zero_nested_lap_x4.pth",
                       "zero, Laplacian score, per-photo fit": "classsr_zero_lap_photo_x4.pth",
                       "zero, supervised": "classsr_zero_supervised_x4.pth", "zero, paper": "classsr_zero_paper_x4.pth"},
         extra={"shared": "classsr_shared_x4.pth"}, knob=True),
    # scripts/recipe_msrresnet_x4.sh: both width sets' routers compete under the same rule. A shorter sweep
    # than FSRCNN's: MSRResNet-O takes about 15 s a 2K photo here, so each budget costs minutes per candidate
    Spec("msrresnet", "MSRResNet-O", "msrresnet_o_x4.pth", budgets="0.5,0.7,1", low_budgets="0.2,0.3,0.4",
         oracle="0,3e-6",
         routers={f"{w}, {name}": f"classsr_msrresnet_{w.replace('/', '_')}_{file}_x4.pth"
                  for w in ("36/52/64", "32/48/64")
                  for name, file in (("gradient score", "gradient"), ("Laplacian score", "laplacian"),
                                     ("supervised", "supervised"), ("paper", "paper"))},
         zero_routers={f"{w}, zero, {name}": f"classsr_msrresnet_{w.replace('/', '_')}_zero_{file}_x4.pth"
                       for w in ("36/52/64", "32/48/64")
                       for name, file in (("gradient score", "gradient"), ("Laplacian score", "laplacian"))},
         plot="psnr_vs_flops_msrresnet_x4.png", block="results-msrresnet", eval_by_file=True, knob=True, half=True,
         labels=("meta_info.txt", "meta_info_difficulty_msrresnet.txt", "meta_info_oracle_msrresnet_*.txt"),
         steps=r"photos|data|data_heldout|MSRResNet_x4_O|difficulty_msrresnet|ClassSR_MSRResNet_.*|oracle_msrresnet_.*"),
    # scripts/recipe_dncnn_x1.sh (TASK=denoise): held-out = centre crops of the same held-out photos, noise seeded
    Spec("dncnn-s25", "DnCNN-O", "dncnn_denoise_o.pth",
         routers={f"{s} score": f"classsr_dncnn_denoise_{s.lower()}.pth" for s in ("gradient", "Laplacian", "coarse")}
         | {"supervised": "classsr_dncnn_denoise_supervised.pth",
            "supervised, oracle tol 1e-5": "classsr_dncnn_denoise_supervised_tol1e-5.pth",
            "paper": "classsr_dncnn_denoise_paper.pth"},
         data="train_denoise", heldout="data/heldout_denoise/hr", heldout_lr="data/heldout_denoise/lr",
         budgets="0.4,0.6,0.8,1", low_budgets="", oracle="0,3e-6", plot="psnr_vs_flops_dncnn_s25.png",
         block="results-dncnn", eval_by_file=True, knob=True, stride=24,
         steps=r"data_denoise|data_heldout_denoise|DnCNN_denoise_.*|difficulty_denoise|ClassSR_DnCNN_denoise_.*|"
               r"oracle_denoise(_tol.*)?"),
]}


def demo_numbers(spec, model, ref):
    """The shipped demo photo as `classsr demo` and the weights tests run it: x4 from its bicubic LR,
    or at scale 1 its centre crop, degraded as the model's held-out data."""
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    from basicsr.utils.matlab_functions import imresize

    from classsr_plugin import run_tiled
    from classsr_plugin.demo import RESTORE_CROP, _centre_crop
    s = model.scale
    name = "By the Water (Maciej Wiklo, KDE Plasma wallpapers, LGPL-3; held out)"
    if s == 1:
        hr = _centre_crop(demo_photo(), RESTORE_CROP)
        lr = weights.CATALOGUE[spec.key].degrade().of_picture(hr, "BytheWater")
        name += f", centre {RESTORE_CROP} px"
    else:
        hr, lr = bicubic_pair(demo_photo(), s)
    res = model.restore_image(lr)
    with torch.no_grad():
        ref_img = ref(lr[None])[0] if s == 1 else run_tiled(lr, ref, s, 32, 28)
    psnr = lambda img: calculate_psnr(tensor2img(img), tensor2img(hr), crop_border=s if s > 1 else 0)  # noqa: E731
    out = {"name": name, "size": list(hr.shape[1:]), "coarsen": True, "classsr_psnr": psnr(res.image),
           "classsr_counts": res.counts, "classsr_flops_percent": res.flops_percent}
    if s == 1:  # the base network on the whole crop, as the demo runs it; the degraded input itself
        return {**out, "base_psnr": psnr(ref_img), "input_psnr": psnr(lr),
                "degradation": str(weights.CATALOGUE[spec.key].degrade())}
    return {**out, "fsrcnn_o_psnr": psnr(ref_img), "bicubic_psnr": psnr(imresize(lr, s).clamp(0, 1))}


def class_map_picture(model, lr, path_out, half=True):
    """The class map of a held-out LR picture (at half size for a 2K photo), with a legend."""
    from classsr_plugin.visual import add_legend, class_overlay
    res = model.restore_image(lr)
    pic = add_legend(class_overlay(res.image, res.class_map, model.num_classes, res.layout, model.scale,
                                   zero=model.zero_class),
                     [f"{k}: {name}" for k, name in enumerate(model.class_names)], model.zero_class)
    if half:
        pic = torch.nn.functional.interpolate(pic[None], scale_factor=0.5, mode="area")[0]
    write_picture(path_out, pic)
    return res.counts


def map_input(spec, run):
    """The held-out picture the class map shows, as ClassSR's input."""
    hr_dir = os.path.join(run, spec.heldout)
    file = next(f for f in sorted(os.listdir(hr_dir)) if f.startswith(spec.map_photo))
    if spec.heldout_lr:
        return read_picture(os.path.join(run, spec.heldout_lr, file)).rgb
    return bicubic_pair(read_picture(os.path.join(hr_dir, file)).rgb, 4)[1]


def walltimes(spec, run):
    """Seconds per step of this model's recipe: a training step's from its BasicSR logs (every launch
    of the run on this machine, parked and resumed ones included, first line to last), other steps'
    from RUN's log, the last entry of each (a step done again replaces its earlier time, not adds to
    it); steps this run did not log keep the times the previous card recorded (a later session may
    run only some steps, e.g. `zero`)."""
    out = {}
    earlier = _earlier_card(spec).get("wall_seconds", {})
    with open(os.path.join(run, "logs", "walltimes.txt")) as f:
        for line in f:
            m = re.match(r"(\S+) ([0-9.]+) s", line)
            if m:
                out[m.group(1)] = float(m.group(2))
    for name in out:
        out[name] = max(out[name], training_seconds(os.path.join(run, "experiments", name)))
    return {k: v for k, v in {**earlier, **out}.items() if re.fullmatch(spec.steps, k)}


def training_seconds(folder) -> float:
    """The wall time of a BasicSR run from its logs: one train_*.log per launch, each timed from its
    first timestamped line to its last (0 without logs: a run made on another machine), less the
    time it stood paused (SIGSTOP while another job had the CPU): a gap between two lines longer
    than 3x the median gap between its progress lines counts as 3x that median."""
    total = 0.0
    for log in sorted(glob.glob(os.path.join(folder, "train_*.log"))):
        lines = [(datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S"), " iter:" in line)
                 for line in open(log, errors="replace")
                 if (m := re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ ", line))]
        progress = [t for t, is_progress in lines if is_progress]
        steps = sorted((b - a).total_seconds() for a, b in zip(progress, progress[1:]))
        cap = 3 * steps[len(steps) // 2] if len(steps) >= 3 else float("inf")
        total += sum(min((b[0] - a[0]).total_seconds(), cap) for a, b in zip(lines, lines[1:]))
    return total


def _earlier_card(spec) -> dict:
    """The card this run replaces (facts a partial re-run keeps), or {}."""
    path = weights.CATALOGUE[spec.key].facts_path
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        return json.load(f)


def n_params(model) -> int:
    return sum(p.numel() for p in model.parameters())


def _eval(spec, run, model, out, mode="target", **kw):
    hr = os.path.join(run, spec.heldout)
    lr = os.path.join(run, spec.heldout_lr) if spec.heldout_lr else None
    return evaluate(model, [hr], [lr], out, budget_mode=mode, ex=Execution(mode="tiles", stride=spec.stride),
                    cache=CACHE, **kw)


def compare(spec, run, budgets, low_budgets=()):
    """Every candidate the recipe made, on the held-out photos: their own routing and the budget
    sweep -> {name: {"rows", "sweep" (mean PSNR over `budgets`, which every candidate reaches:
    equal FLOPs), "params"}}. Zero-class candidates also run `low_budgets` (below the cheapest
    branch's floor, where only they go)."""
    out = {}
    for name, file in spec.candidates.items():
        path = os.path.join(CKPT, file)
        if not os.path.exists(path):
            continue
        model = load(path)
        mine = sorted(set(budgets) | (set(low_budgets) if model.zero_class else set()))
        folder = spec.folder(run, name, file)
        rep = _cached(folder, path, mine, spec.stride)
        if rep is None:  # a PSNR-vs-FLOPs curve over the whole sweep
            rep = _eval(spec, run, model, folder, budgets=mine)
        rows = next(iter(rep["folders"].values()))["rows"]
        out[name] = {"rows": {k: r for k, r in rows.items() if k == "ClassSR" or k.startswith("ClassSR budget")},
                     "sweep": sum(rows[f"ClassSR budget {b:g}"]["psnr"] for b in budgets) / len(budgets),
                     "params": n_params(model), "file": file, "zero_class": model.zero_class}
        print(f"{name}: own routing {rows['ClassSR']['psnr']:.3f} dB at {rows['ClassSR']['flops_percent']:.1f}%, "
              f"mean over budgets {out[name]['sweep']:.3f} dB")
    return out


def _cached(out, ckpt, budgets, stride):
    """A candidate's earlier evaluation, if newer than its checkpoint and over the same budgets and
    tile grid (a re-run resumes: each candidate takes minutes on 2 cores)."""
    path = os.path.join(out, "eval.json")
    if not os.path.exists(path) or os.path.getmtime(path) < os.path.getmtime(ckpt):
        return None
    with open(path) as f:
        rep = json.load(f)
    rows = next(iter(rep["folders"].values()))["rows"]
    if any(f"ClassSR budget {b:g}" not in rows for b in budgets) or rep["model"].get("stride") != stride:
        return None
    print(f"{out}: evaluated after {os.path.basename(ckpt)} was written, reused")
    return rep


def _best(candidates, names, limit):
    """The router whose own routing gives the best PSNR within `limit`% of the base's FLOPs, or,
    if none is within, the best mean over the budget sweep."""
    names = [n for n in names if n in candidates]
    if not names:
        return None
    within = [n for n in names if candidates[n]["rows"]["ClassSR"]["flops_percent"] <= limit]
    return (max(within, key=lambda n: candidates[n]["rows"]["ClassSR"]["psnr"]) if within
            else max(names, key=lambda n: candidates[n]["sweep"]))


def choose(spec, candidates, base_psnr, zero_class=False):
    """The router to ship: the best plain router (within 70% of the base's FLOPs, the Results
    issue's target), unless the best zero-class router (within 60%, the zero class's target) is
    at least as good over the budget sweep (equal FLOPs), costs less at its own routing, and
    loses at most TOLERANCE dB there against the plain router (a user trades no more than that
    for the lower cost). `base_psnr` (the base network on the same tiles) is printed beside it.
    FLOPs are not time: the zero class ships only with `zero_class` (--zero-class), once
    benchmarks/inference_speed.py --psnr has shown it faster in regions at equal PSNR."""
    plain = _best(candidates, spec.routers, 70)
    zero = _best(candidates, spec.zero_routers, 60)
    if zero is None:
        pr = candidates[plain]["rows"]["ClassSR"]
        print(f"plain: {plain} {pr['psnr']:.3f} dB at {pr['flops_percent']:.1f}%; {spec.base_name} {base_psnr:.3f} dB")
        return plain
    z, p = candidates[zero], candidates[plain]
    zr, pr = z["rows"]["ClassSR"], p["rows"]["ClassSR"]
    ok = (z["sweep"] >= p["sweep"] and zr["flops_percent"] < pr["flops_percent"]
          and zr["psnr"] >= pr["psnr"] - TOLERANCE)
    print(f"plain: {plain} {pr['psnr']:.3f} dB at {pr['flops_percent']:.1f}% (sweep {p['sweep']:.3f}); zero class: "
          f"{zero} {zr['psnr']:.3f} dB at {zr['flops_percent']:.1f}% (sweep {z['sweep']:.3f}); {spec.base_name} "
          f"{base_psnr:.3f} dB -> {'zero class' if ok else 'plain'}" + ("" if zero_class or not ok else
                                                                        " by FLOPs; plain without --zero-class"))
    return zero if ok and zero_class else plain


def ship(spec, candidates, base_psnr, zero_class=False):
    """Copy the chosen router's checkpoint (its widest branch is the base network) and the base
    network into the package. Shared weights ship beside it only if their sweep is at least as good."""
    best = choose(spec, candidates, base_psnr, zero_class)
    shipped = weights.CATALOGUE[spec.key]
    shutil.copyfile(os.path.join(CKPT, candidates[best]["file"]), shipped.path)
    shutil.copyfile(os.path.join(CKPT, spec.base_file), shipped.reference)
    shared = candidates.get("shared")
    shared_path = shipped.path.replace(".pth", "_shared.pth")
    shipped_shared = bool(shared and shared["sweep"] >= candidates[best]["sweep"])
    if shipped_shared:
        shutil.copyfile(os.path.join(CKPT, shared["file"]), shared_path)
    elif os.path.exists(shared_path):
        os.remove(shared_path)
    return best, shipped_shared


def card_facts(spec, run, model, ref, folder, candidates, best, shipped_shared, map_counts, map_path):
    photos = json.load(open(os.path.join(run, "photos", "photos.json")))
    shipped = weights.CATALOGUE[spec.key]
    return {
        "weights": {"classsr": shipped.file, "reference": shipped.reference_file},
        "classsr": {"arch": model.arch.__name__, "widths": model.widths, "classifier": model.config["classifier"],
                    "router": best, "zero_class": model.zero_class, "base": model.config["base"]},
        "photos": photos,
        "sub_images": _sub_images(spec, run),
        "wall_seconds": walltimes(spec, run),
        "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
                    f"{torch.get_num_threads()} threads, no GPU",
        "heldout": folder["rows"], "per_class": folder["per_class"],
        "candidates": candidates, "shipped_shared": shipped_shared, "base_params": n_params(ref),
        "class_map": {"photo": spec.map_photo, "path": os.path.relpath(map_path, REPO), "counts": map_counts},
        "demo_photo": demo_numbers(spec, model, ref),
        "base_name": spec.base_name, "plot": spec.plot,
        **(_restoration_facts(spec, run) if model.scale == 1 else {}),
    }


def _restoration_facts(spec, run):
    """The degradation and the held-out crops' size (the recipe's CROP)."""
    hr_dir = os.path.join(run, spec.heldout)
    first = read_picture(os.path.join(hr_dir, sorted(os.listdir(hr_dir))[0])).rgb
    return {"degradation": str(weights.CATALOGUE[spec.key].degrade()), "crop": max(first.shape[1:])}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="RUN folder of the model's recipe")
    ap.add_argument("--model", default="fsrcnn", choices=sorted(SPECS),
                    help="which shipped model: fsrcnn (scripts/recipe_fsrcnn_x4.sh), msrresnet "
                         "(scripts/recipe_msrresnet_x4.sh), dncnn-s25 (scripts/recipe_dncnn_x1.sh, TASK=denoise)")
    ap.add_argument("--budgets", help="the sweep every candidate reaches (its mean compares them at equal FLOPs; "
                                      "default per model)")
    ap.add_argument("--low-budgets", help="budgets below the cheapest branch's floor: zero-class candidates only")
    ap.add_argument("--zero-class", action="store_true",
                    help="let a zero-class router ship when it wins by FLOPs (measure its wall-clock first)")
    ap.add_argument("--compare-only", action="store_true",
                    help="evaluate the candidates and print the choice; ship and write nothing")
    ap.add_argument("--oracle", help="MSE tolerances of the oracle rows (default per model)")
    ap.add_argument("--render", action="store_true",
                    help="measure nothing: rewrite the model card and README block from the card's json and the "
                         "shipped model's last evaluation (after a change to the text, or to the wall times' log)")
    args = ap.parse_args(argv)
    alias_torchvision_for_basicsr()
    spec, run = SPECS[args.model], args.run
    budgets = [float(b) for b in (args.budgets or spec.budgets).split(",")]
    low = [float(b) for b in (args.low_budgets if args.low_budgets is not None else spec.low_budgets).split(",") if b]
    if 1.0 not in budgets:
        ap.error(f"--budgets must include 1 (widest everywhere: {spec.base_name} on the same tiles, the tolerance's "
                 "yardstick)")
    readme = open(os.path.join(REPO, "README.md")).read()
    if not args.compare_only and not all(f"<!-- {spec.block}:{e} -->" in readme for e in ("start", "end")):
        ap.error(f"README.md has no <!-- {spec.block}:start --> ... <!-- {spec.block}:end --> block for "
                 f"{args.model}'s results: add one where they belong first")
    if args.render:
        card = _earlier_card(spec)
        if not card:
            ap.error(f"--render: no card of {args.model} yet ({weights.CATALOGUE[args.model].facts_path})")
        card["wall_seconds"] = walltimes(spec, run)
        card["sub_images"] = _sub_images(spec, run)  # counted, not measured
        write_card(spec, card, _shipped_eval(spec, run))
        return 0
    candidates = compare(spec, run, budgets, low)
    if not candidates:
        ap.error(f"no candidate checkpoint of {args.model} in {CKPT}: run its recipe first")
    base_psnr = next(iter(candidates.values()))["rows"]["ClassSR budget 1"]["psnr"]
    if args.compare_only:
        print(f"{spec.base_name} on the same tiles: {base_psnr:.3f} dB; would ship: "
              f"{choose(spec, candidates, base_psnr, args.zero_class)}")
        return 0
    best, shipped_shared = ship(spec, candidates, base_psnr, args.zero_class)
    shipped = weights.CATALOGUE[spec.key]
    model, ref = load(shipped.path), load(shipped.reference)
    out = _shipped_eval(spec, run)
    source = os.path.join(CKPT, candidates[best]["file"])
    kw = dict(budgets=sorted(set(budgets) | set(low if model.zero_class else ())), reference_name=spec.base_name,
              oracle_tols=[float(t) for t in (args.oracle or spec.oracle).split(",")])
    made = {**kw, "stride": spec.stride}
    rep = _same_run(out, source, made) or _remember(out, source, made, _eval(spec, run, model, out, reference=ref, **kw))
    storage = None
    if spec.half:  # the held-out table stays the fp32 weights'; the demo numbers and class map are the shipped files'
        storage = store_half(spec, run, model, ref, next(iter(rep["folders"].values()))["rows"])
        model, ref = load(shipped.path), load(shipped.reference)
    os.makedirs(DOCS, exist_ok=True)
    shutil.copyfile(os.path.join(out, "psnr_vs_flops.png"), os.path.join(DOCS, spec.plot))
    stem = f"classmap_{spec.map_photo}" + ("" if spec.key == "fsrcnn" else f"_{spec.key}")
    map_path = os.path.join(DOCS, f"{stem}.jpg")
    lr = map_input(spec, run)
    half = model.scale > 1  # a held-out crop at scale 1 is small already
    card = card_facts(spec, run, model, ref, next(iter(rep["folders"].values())), candidates, best, shipped_shared,
                      class_map_picture(model, lr, map_path, half), map_path)
    if storage:
        card["storage"] = storage
    if spec.knob:  # the target sweep forces tiles onto wider branches; users' default never passes the router
        made = {"budgets": budgets, "stride": spec.stride}
        knob = (_same_run(out + "_knob", source, made)
                or _remember(out + "_knob", source, made, _eval(spec, run, model, out + "_knob", mode="ceiling",
                                                                budgets=budgets)))
        card["knob"] = {k: r for k, r in next(iter(knob["folders"].values()))["rows"].items()
                        if k.startswith("ClassSR budget")}
    zeros = [n for n, c in candidates.items() if c["zero_class"]]
    if zeros and not model.zero_class:  # the best zero-class router's map beside the shipped one's
        zero = max(zeros, key=lambda n: candidates[n]["sweep"])
        zero_path = os.path.join(DOCS, f"classmap_zero_{spec.map_photo}.jpg")
        counts = class_map_picture(load(os.path.join(CKPT, candidates[zero]["file"])), lr, zero_path, half)
        card["class_map_zero"] = {"router": zero, "path": os.path.relpath(zero_path, REPO), "counts": counts}
    write_card(spec, card, out)
    print(f"shipped router: {best}; shared weights shipped too: {shipped_shared}")
    return 0


def store_half(spec, run, model, ref, rows):
    """Store the shipped files' networks as fp16 (half the download) if that keeps the held-out PSNR
    of ClassSR at its own routing and of the base network on the whole image within HALF_TOLERANCE dB
    of `rows` (the fp32 evaluation); else leave them fp32. -> the measured facts, for the card."""
    shipped = weights.CATALOGUE[spec.key]
    paths = (shipped.path, shipped.reference)
    for net, path in zip((model, ref), paths):
        save(net, path + ".fp16", half=True)
    half = held_out_psnr(spec, run, load(paths[0] + ".fp16"), load(paths[1] + ".fp16"))
    change = {k: v - rows[k]["psnr"] for k, v in half.items()}
    ok = all(abs(d) <= HALF_TOLERANCE for d in change.values())
    sizes = {os.path.basename(p): [os.path.getsize(p), os.path.getsize(p + ".fp16")] for p in paths}
    for path in paths:
        if ok:
            os.replace(path + ".fp16", path)
        else:
            os.remove(path + ".fp16")
    print(f"fp16 storage: PSNR change {', '.join(f'{k} {d:+.4f} dB' for k, d in change.items())} -> "
          f"{'fp16' if ok else 'fp32'} (tolerance {HALF_TOLERANCE} dB)")
    return {"fp16": ok, "psnr_change": change, "bytes_fp32_fp16": sizes, "tolerance_db": HALF_TOLERANCE}


def held_out_psnr(spec, run, model, ref) -> dict:
    """The two held-out rows fp16 storage must keep, measured alone (the full evaluation would run
    every branch on every tile again): ClassSR's own routing on the evaluation's tiles, and the base
    network on the whole image -> {row label: mean PSNR}."""
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    from classsr_plugin.evaluate import _lr_for
    from classsr_plugin.imageio import list_images
    s = model.scale
    lr_dir = os.path.join(run, spec.heldout_lr) if spec.heldout_lr else None
    ex = Execution(mode="tiles", stride=spec.stride)
    psnr = {"ClassSR": [], f"{spec.base_name}, whole image": []}
    for path in list_images(os.path.join(run, spec.heldout)):
        hr = read_picture(path).rgb
        hr = hr[:, :hr.shape[1] // s * s, :hr.shape[2] // s * s]
        lr = _lr_for(path, lr_dir, hr, s)
        with torch.no_grad():
            outs = (model.restore_image(lr, ex).image, ref(lr[None])[0])
        for k, img in zip(psnr, outs):
            psnr[k].append(calculate_psnr(tensor2img(img), tensor2img(hr), crop_border=s if s > 1 else 0))
    return {k: sum(v) / len(v) for k, v in psnr.items()}


def _same_run(out, source, kw):
    """The shipped model's evaluation in `out` if it was made from this checkpoint (unchanged since)
    with these settings: a re-run after a new candidate that does not win measures nothing twice."""
    try:
        with open(os.path.join(out, "made_from.json")) as f:
            made = json.load(f)
        with open(os.path.join(out, "eval.json")) as f:
            rep = json.load(f)
    except (OSError, ValueError):
        return None
    if made != {"file": os.path.basename(source), "mtime": os.path.getmtime(source), **kw}:
        return None
    print(f"{out}: evaluated from {os.path.basename(source)} with the same settings, reused")
    return rep


def _remember(out, source, kw, rep):
    with open(os.path.join(out, "made_from.json"), "w") as f:
        json.dump({"file": os.path.basename(source), "mtime": os.path.getmtime(source), **kw}, f)
    return rep


def _shipped_eval(spec, run):
    return os.path.join(run, "eval", "shipped" if spec.key == "fsrcnn" else f"shipped_{spec.key}")


def write_card(spec, card, evaluation):
    """The card's json, the model card and README's block, from the facts and the shipped
    model's evaluation folder (its eval.md is the card's table)."""
    shipped = weights.CATALOGUE[spec.key]
    with open(shipped.facts_path, "w") as f:
        json.dump(card, f, indent=1)
    import card_text
    with open(os.path.join(evaluation, "eval.md")) as f:
        table = f.read()
    card_md, block = card_text.CARDS[spec.key]
    with open(os.path.join(weights.HERE, shipped.card), "w") as f:
        f.write(card_md(card, table))
    _replace_block(os.path.join(REPO, "README.md"), block(card, table), spec.block)


def _sub_images(spec, run):
    """Sub-images per class of each label file; files this run lacks (a later session may prepare
    the data again without every step's labels) keep the counts the previous card recorded."""
    earlier = _earlier_card(spec).get("sub_images", {})
    data = os.path.join(run, "data", spec.data)
    names = [n for pattern in spec.labels for n in
             (sorted(os.path.basename(p) for p in glob.glob(os.path.join(data, pattern))) if "*" in pattern else [pattern])]
    out = {name: _meta_counts(os.path.join(data, name)) or earlier.get(name) for name in names}
    return {name: counts for name, counts in out.items() if counts}  # a label file no step made: not listed


def _meta_counts(path):
    if not os.path.exists(path):
        return None
    classes = [c for _, _, c in read_meta(path)]
    return [classes.count(k) for k in range(max(classes) + 1)]


def _replace_block(path, text, block="results"):
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    doc = open(path).read()
    a, b = doc.index(start) + len(start), doc.index(end)
    with open(path, "w") as f:
        f.write(doc[:a] + "\n" + text.strip() + "\n" + doc[b:])


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
