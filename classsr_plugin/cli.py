"""`classsr` command line: demo, photos, prepare, label, train, mmtrain, infer, eval, widths, export."""
import argparse
import os
import sys

import torch

from .checks import (check_device, describe, factors, fraction, fractions, non_negative,
                     positive, tile_size, tolerances)
from .cost import BUDGET_MODES
from .execution import MODES, Execution, flops_basis
from .imageio import FORMATS


def _basicsr():
    # registers the plugin in BasicSR and aliases torchvision for basicsr 1.4.2
    import classsr_plugin.registry.basicsr  # noqa: F401


def cmd_demo(args) -> int:
    _basicsr()
    from .demo import run
    run(args.input, args.out, args.execution, args.model)
    return 0


def _adapters():
    # checkpoint.load then knows BasicSR's archs and mmengine's .py configs
    _basicsr()
    import classsr_plugin.registry.mmengine  # noqa: F401


def _scorer(path: str):
    """A trained plain network to score tiles with: BasicSR options with weights, or an exported file."""
    _adapters()
    from .checkpoint import load
    net = load(path, need_weights=True)

    def score(lq):
        out = net(lq)
        return out[0] if isinstance(out, tuple) else out
    return score


def cmd_photos(args) -> int:
    from .data.photos import collect
    rep = collect(args.out)
    print(f"photos: {rep['counts']['train']} for training, {rep['counts']['heldout']} held out, in {args.out}; "
          f"list in {os.path.join(args.out, 'photos.json')}")
    if rep["reserved_skipped"]:
        print(f"reserved for independent evaluation, skipped: {len(rep['reserved_skipped'])}")
    if rep["missing_packages"]:
        print("not installed (apt-get install -y " + " ".join(rep["missing_packages"]) + "): their photos are missing",
              file=sys.stderr)
        return 1
    return 0


def cmd_prepare(args) -> int:
    from .data import prepare, prepare_whole
    from .data.degrade import Degradation
    scale = args.scale or (4 if args.task == "sr" else 1)
    degradation = Degradation(args.task, scale, args.sigma, args.blur, args.blur_sigma, args.seed)
    if args.whole:
        done, skipped = prepare_whole(args.hr, args.out, degradation=degradation, crop=args.crop)
        print(f"whole images: {done} written to {args.out}/hr and {args.out}/lr, {len(skipped)} skipped")
        return 0
    scorer, name = None, None
    if args.ref:
        scorer, name = _scorer(args.ref), os.path.basename(args.ref)
    scales = args.scales
    rep = prepare(args.hr, args.out, classes=args.classes, scorer=scorer, scorer_name=name, scales=scales,
                  tile=args.tile, stride=args.stride, lr_dir=args.lr, degradation=degradation,
                  max_per_image=args.max_per_image)
    print(f"images: {len(rep.done)} scored, {len(rep.resumed)} already done, {len(rep.skipped)} skipped"
          + (f" (listed in {os.path.join(args.out, 'skipped.txt')})" if rep.skipped else ""))
    print(f"sub-image pairs: {rep.pairs}; per class (0 = easiest): {rep.counts}; "
          f"PSNR boundaries ({rep.scorer}): {', '.join(f'{t:.2f}' for t in rep.thresholds)} dB")
    print(f"wrote {os.path.join(args.out, 'meta_info.txt')}")
    return 0


def cmd_label(args) -> int:
    from .data import label
    out = args.out or os.path.join(args.data, f"meta_info_{args.by}.txt")
    if args.widest_psnr and args.by != "oracle":
        raise ValueError("--widest-psnr: for --by oracle (it gives the widest branch's errors)")
    if args.by == "difficulty":
        if not args.ref:
            raise KeyError("--ref: labelling by difficulty needs a trained reference network")
        counts = label.label_by_difficulty(args.data, _scorer(args.ref), args.classes, out,
                                           name=os.path.basename(args.ref), batch=args.batch)
        print(f"classes by {os.path.basename(args.ref)} PSNR (0 = easiest): {counts}")
    else:
        from .classifier import EDGE_SCORES
        kinds = args.score.split(",")
        bad = [k for k in kinds if k not in EDGE_SCORES]
        if bad:
            raise KeyError(f"--score: {', '.join(bad)} not one of {', '.join(EDGE_SCORES)}")
        if args.edge_router and len(kinds) > 1 and "{score}" not in args.edge_router:
            raise ValueError(f"--edge-router: {args.edge_router} needs '{{score}}' in its name for several scores")
        model = load_model(args.opt)
        paths = [model.path(k) for k in range(model.num_classes)]  # the zero class too, where there is one
        # every score from one pass: the branches' errors are the costly part
        feature = (lambda lq: torch.stack([EDGE_SCORES[k](lq) for k in kinds], 1)) if args.edge_router else None
        err, scores = label.label_by_oracle(args.data, paths, args.tol, out, batch=args.batch, feature=feature,
                                            widest_psnr=args.widest_psnr)
        _oracle_table(err, model, args.tol, args.tols)
        groups = label.photo_groups(args.data) if args.edge_router else None
        for i, kind in enumerate(kinds if args.edge_router else []):
            _fit_edge_router(model, err, scores[:, i].contiguous(), args.lam, args.max_loss,
                             args.edge_router.replace("{score}", kind), kind, groups, args.fit)
    print(f"wrote {out}")
    return 0


def _oracle_table(err, model, tol, tols):
    from .data import label
    tols = sorted({tol, *(float(t) for t in tols.split(","))})
    print(f"oracle classes on {len(err)} sub-images (classes {', '.join(model.class_names)}); "
          f"FLOPs % of the widest, branches only; dB = PSNR of the mean MSE against the widest")
    print("| tol (MSE) | classes (narrow..wide) | FLOPs % | dB |\n|---|---|---|---|")
    for t, share, pct, db in label.oracle_table(err, model.tile_cost(32).branches, tols):
        mark = " (written)" if t == tol else ""
        print(f"| {t:g}{mark} | {' / '.join(f'{100 * s:.0f}%' for s in share)} | {pct:.1f} | {db:+.3f} |")


def _fit_edge_router(model, err, scores, lam, max_loss, out, score, groups=None, fit="pooled"):
    from .checkpoint import save
    from .data.label import edge_router
    routed, rows, chosen = edge_router(model, err, scores, lam, max_loss, score, groups, fit)
    print("dB: PSNR change against the widest everywhere, of the pooled MSE and the mean over photos (the "
          "one --max-loss bounds)\n| lam | thresholds | classes (narrow..wide) | FLOPs % | dB pooled | dB per photo |\n"
          "|---|---|---|---|---|---|")
    for lam_k, t, share, pct, db, db_photo in rows:
        print(f"| {lam_k:.2g} | {[round(v, 5) for v in t]} | {' / '.join(f'{100 * v:.0f}%' for v in share)} | "
              f"{pct:.1f} | {db:+.3f} | {db_photo:+.3f} |")
    lam_k, t, _, _, db, db_photo = chosen
    print(f"edge-score router ({score}): lam {lam_k:.2g}, thresholds {[round(v, 5) for v in t]} ({db_photo:+.3f} dB "
          f"per photo here, {db:+.3f} pooled)")
    save(routed, out)
    print(f"wrote {out}")


def load_model(spec: str, device: str = "cpu", weights_file: str = None, shipped: str = None):
    """-opt (any spec checkpoint.load takes: BasicSR options, a `classsr export` / ClassSR.save
    file, an mmengine/MMagic config with -w) or the shipped model named `shipped` (--model;
    default: the default one, weights/MODEL_CARD.md) -> the ClassSR model on `device`. Prints
    which weights it loaded."""
    _adapters()
    from . import ClassSR, weights
    from .checkpoint import load
    if spec is not None and shipped is not None:
        raise ValueError(f"--model {shipped}: give -opt or --model, not both")
    if spec is None and not weights.shipped(shipped):
        raise FileNotFoundError(f"-opt: required (the shipped model {weights.get(shipped).key} is missing from "
                                f"this install)")
    model = load(spec or weights.get(shipped).path, weights_file, device, expect=ClassSR)
    used = model.weights_file
    if used is None:
        print(f"warning: {spec} names no path.pretrain_network_g: the weights are UNTRAINED", file=sys.stderr)
    print(f"weights: {used or 'none (UNTRAINED)'} ({model.arch.__name__}, {model.width_key}={model.widths})")
    return model


def _overrides(items) -> dict:
    """--set KEY=VALUE: dotted keys, values read as YAML."""
    import yaml
    return {key: yaml.safe_load(value) for key, _, value in (item.partition("=") for item in items or [])}


def cmd_export(args) -> int:
    """Options (or an mmengine config) + trained weights -> one self-describing file."""
    _adapters()
    from .checkpoint import load, save
    net = load(args.opt, args.weights, need_weights=True, overrides=_overrides(args.set))  # param_key_g: EMA too
    save(net, args.out, half=args.half)
    print(f"wrote {args.out} ({os.path.getsize(args.out) / 1024:.0f} KiB{', fp16' if args.half else ''}) "
          f"from {net.weights_file}")
    return 0


def _inputs(items):
    from .imageio import IMAGE_EXTS, list_images
    paths = []
    for item in items:
        if os.path.isdir(item):
            paths += list_images(item)
        elif item.lower().endswith(IMAGE_EXTS) or os.path.exists(item):
            paths.append(item)
        else:
            raise FileNotFoundError(f"{item}: no such file or folder")
    return paths


def cmd_infer(args) -> int:
    import torch.nn.functional as F
    from tqdm import tqdm
    from .checks import fit_tile
    from .imageio import complete, read_picture, write_picture
    from .outputs import Writer, plan_outputs
    from .visual import add_legend, class_overlay

    model = load_model(args.opt, args.device, args.weights, args.model)
    ex = args.execution
    s = model.scale
    legend = [f"{k}: {name}" for k, name in enumerate(model.class_names)]
    jobs, earlier = plan_outputs(_inputs(args.inputs), args.out, s, args.format)  # outputs never overwrite inputs
    if earlier:
        print(f"not inputs: {len(earlier)} images in {args.out} written by an earlier run")
    paths = [j[0] for j in jobs]
    failed = []

    def save(out_path, map_path, image, alpha, pic, class_map, layout):
        """In the writer's thread, while the next image computes."""
        write_picture(out_path, image, alpha, pic.bits, pic.gray, quality=args.quality)
        if args.class_map or args.class_map_lr:  # over the output, or over the LR input
            if args.class_map_lr:
                on, scale = pic.rgb, 1
            else:
                on, scale = image.cpu().float() / (255 if image.dtype == torch.uint8 else 1), s
            tinted = class_overlay(on, class_map, model.num_classes, layout, scale, zero=model.zero_class)
            write_picture(map_path, add_legend(tinted, legend, model.zero_class))

    def report(errors):
        for path, err in errors:
            failed.append(path)
            tqdm.write(f"FAILED {describe(err)}" if path in str(err) else f"FAILED {path}: {describe(err)}")

    writer = Writer()
    try:
        for path, out_path, map_path in tqdm(jobs, desc="infer", unit="image", disable=True if len(jobs) < 2 else None):
            if complete(out_path) and not args.overwrite:  # only a complete file counts as done
                tqdm.write(f"{path}: {out_path} exists, skipped (--overwrite to redo)")
                continue
            try:
                pic = read_picture(path)
                tile, stride, note = fit_tile(ex.tile, ex.stride, *pic.size)
                if note:
                    tqdm.write(f"{path}: {note}")
                res = model.restore_image(pic.rgb.to(args.device), Execution.of(ex, tile=tile, stride=stride),
                                          budget=args.budget, budget_mode=args.budget_mode,
                                          dtype=torch.uint8 if pic.bits == 8 else torch.float32,  # 1/4 of the memory
                                          progress=len(jobs) < 2 and pic.rgb[0].numel() > 2 ** 18)  # one bar at a time
                alpha = None
                if pic.alpha is not None:  # alpha is not the network's business: bicubic
                    alpha = F.interpolate(pic.alpha[None], scale_factor=s, mode="bicubic", align_corners=False)[0]
            except Exception as err:  # MemoryError too: report the image and go on
                report([(path, err)])
                continue
            report(writer.submit(path, save, out_path, map_path, res.image, alpha, pic, res.class_map, res.layout))
            w, h = pic.size
            tqdm.write(f"{path}: {w}x{h} -> {w * s}x{h * s}, {'cells' if ex.mode == 'regions' else 'tiles'} per "
                       f"class {res.counts}, FLOPs {res.flops_percent:.1f}% of the base {flops_basis(ex)}, "
                       f"{res.seconds:.2f} s")
    finally:
        report(writer.close())
    if failed:
        print(f"{len(failed)} of {len(paths)} images failed", file=sys.stderr)
    return 1 if failed else 0


def cmd_eval(args) -> int:
    from .atomic import Discard, staged
    from .checkpoint import load
    from .evaluate import coverage, evaluate
    from .imageio import smallest
    model = load_model(args.opt, args.device, args.weights, args.model)
    if args.scale != model.scale:
        raise ValueError(f"--scale {args.scale}: the model is x{model.scale}")
    if model.scale == 1 and not args.lr:
        raise ValueError("--lr: required at scale 1: the degraded inputs (classsr prepare --whole --task ...)")
    lrs = args.lr or [None] * len(args.hr)
    if len(lrs) != len(args.hr):
        raise ValueError(f"--lr: {len(lrs)} folders for {len(args.hr)} --hr folders")
    budgets = args.budgets or []
    from . import weights
    ref_path = args.reference or (weights.get(args.model).reference if args.opt is None else None)
    reference = load(ref_path, need_weights=True) if ref_path else None
    ref_name = weights.label(ref_path)
    tols = args.oracle or []
    # files land whole (staged, then renamed); HR images smaller than the scale are skipped at the header
    with staged(args.out) as stage, smallest(1 if args.lr else model.scale, f"the scale x{model.scale}"):
        report = evaluate(model, args.hr, lrs, stage, budgets=budgets, ex=args.execution, device=args.device,
                          reference=reference, reference_name=ref_name, oracle_tols=tols,
                          budget_mode=args.budget_mode)
        done, total, notes = coverage(report)
        for note in notes:
            print(f"classsr eval: {note}", file=sys.stderr)
        if not done:
            raise Discard
    if not done:
        print(f"classsr eval: error: no image was evaluated (0 of {total}); {args.out} was left as it was",
              file=sys.stderr)
        return 1
    return 0


def cmd_widths(args) -> int:
    _basicsr()
    from .cost import count_flops
    from .derive import BaseSpec, measure_widths
    from .options import check_network, read_options
    check_device(args.device)
    opt = read_options(args.opt)
    net = dict(opt.get("network_g") or {})
    if not net:
        raise KeyError(f"{args.opt}: network_g: missing")
    check_network(net)
    is_classsr = net.get("type") == "ClassSR"
    spec = BaseSpec(net.get("base") if is_classsr else net, net.get("width_key") if is_classsr else None,
                    "network_g.base" if is_classsr else "network_g")
    widths, table = measure_widths(spec, args.classes, tile=args.tile, device=args.device, progress=True)
    arch, key, t_base = spec.arch, spec.width_key, table[spec.width][0]
    print(f"{arch.__name__}: per-tile latency on {args.device} ({args.tile}x{args.tile} tiles, batch 16, faster "
          f"layout; median of 7 timings, spread = (max - min) / median)")
    print(f"| {key} | ms / tile | spread | vs base | GFLOPs / tile | layout | chosen |\n|---|---|---|---|---|---|---|")
    for w, (t, cl, spread) in table.items():
        flops, _ = count_flops(spec.build(w).eval(), torch.zeros(1, spec.in_ch, args.tile, args.tile))
        print(f"| {w} | {1e3 * t:.2f} | {100 * spread:.0f}% | {t / t_base:.2f} | {flops / 1e9:.4f} | "
              f"{'channels_last' if cl else 'NCHW'} | {'yes' if w in widths else ''} |")
    print(f"proposed widths: {widths}  (network_g: widths: {widths}, or widths: latency to measure at build)")
    return 0


def cmd_train(args) -> int:
    from classsr_plugin.registry.basicsr_train import main as train_main
    return train_main(args.rest)


def cmd_mmtrain(args) -> int:
    """mmengine's Runner on a config, like MMagic's tools/train.py (registry/mm_train.py)."""
    from classsr_plugin.registry.mm_train import train
    train(args.config, args.cfg_options, args.launcher, args.work_dir, args.resume)
    return 0


# -- the parser: arguments several commands share, then one small function per command ------
def _shipped_arg(p):
    from . import weights
    p.add_argument("--model", help=f"a shipped model by name: {weights.describe()} (default {weights.DEFAULT})")


def _model_args(p, what="ClassSR"):
    p.add_argument("-opt", help=f"BasicSR options ({what} network_g + weights), a `classsr export` file, or an "
                               "mmengine/MMagic config .py with -w (default: the shipped model, --model)")
    _shipped_arg(p)
    p.add_argument("-w", "--weights", help="weights for -opt: instead of path.pretrain_network_g, or an "
                                           "mmengine/MMagic Runner checkpoint for a config .py")


def _tiling_args(p, tile_help="tile size", execution="regions"):
    p.add_argument("--tile", type=tile_size, default=Execution.tile, help=tile_help)
    p.add_argument("--stride", type=positive, default=None,
                   help=f"tile stride (--exec tiles; at most --tile; default {Execution.stride})")
    p.add_argument("--exec", default=execution, choices=list(MODES),
                   help=f"regions: adjacent cells of a class run together with --margin px of context; tiles: each "
                        f"tile through its branch (the paper's way) (default: {execution})")
    p.add_argument("--margin", type=non_negative, default=None,
                   help="context px around each region (--exec regions; at most --tile; default: the model's, "
                        "2 unless its config sets margin)")
    p.add_argument("--workers", type=positive, default=None,
                   help="inter-op workers, one thread each (default: torch's thread count; 1: one call at a "
                        "time on all threads)")


def _budget_args(p):
    p.add_argument("--budget-mode", choices=list(BUDGET_MODES), default="ceiling",
                   help="ceiling: the FLOPs printed never pass the budget nor the model's own routing; "
                        "target: the routing moves towards the budget, up as well as down")


def _execution(parser, args) -> Execution:
    """The settings the tiling flags give, or a usage error naming the flag. --stride is checked
    against --tile in regions only when given (the default would not fit a small --tile there)."""
    stride = args.stride if args.stride is not None or args.exec == "tiles" else None
    if stride is not None and not 0 < stride <= args.tile:
        parser.error(f"--stride {stride}: needs 1 <= stride <= --tile ({args.tile})")
    if args.margin is not None and args.margin > args.tile:
        parser.error(f"--margin {args.margin}: at most --tile ({args.tile}): more context than a cell costs "
                     f"more than the cell itself")
    return Execution.of(args.exec, tile=args.tile, stride=stride, margin=args.margin, workers=args.workers,
                        batch=getattr(args, "batch", None))


def _max_pixels(p):
    p.add_argument("--max-pixels", type=non_negative, default=None,
                   help="refuse images over this many pixels, read from the header before decoding "
                        "(default 50000000; 0: no limit)")


def _add_demo(sub):
    p = sub.add_parser("demo", help="upscale the shipped 2K photo (or --input) with the shipped model")
    p.add_argument("--input", help="your own LR image instead of the shipped photo")
    p.add_argument("--out", default="results/demo", help="output folder")
    _shipped_arg(p)
    _tiling_args(p)
    p.set_defaults(func=cmd_demo)


def _add_data(sub):
    p = sub.add_parser("photos", help="gather the training and held-out photographs from installed packages")
    p.add_argument("--out", required=True, help="output folder: train/, heldout/, photos.json")
    p.set_defaults(func=cmd_photos)

    p = sub.add_parser("prepare", help="make difficulty-ranked LR/HR sub-images for training",
                       description="Sub-images per photo: a 2560x1600 photo gives about 3,100 pairs at x4 and 3,500 at "
                                   "scale 1 at the defaults (the stride follows the scale: 16 LR px "
                                   "at x4, 64 at scale 1, where the input has 16x the pixels). The number of "
                                   "pairs and their size are printed before anything is written.")
    p.add_argument("--hr", required=True, help="folder of HR images")
    p.add_argument("--out", required=True, help="output folder (re-running resumes)")
    p.add_argument("--task", default="sr", choices=["sr", "denoise", "deblur"],
                   help="sr (bicubic LR), denoise (Gaussian noise) or deblur (blur kernels)")
    p.add_argument("--scale", type=positive, default=None, help="SR scale (default 4; restoration: 1)")
    p.add_argument("--sigma", help="denoise: noise sigma on 0-255, e.g. 25, or a range 15-50 (blind)")
    p.add_argument("--blur", default="gaussian", help="deblur: gaussian or motion")
    p.add_argument("--blur-sigma", default="0.5-3", help="deblur: kernel sigma range (motion: length / 3)")
    p.add_argument("--seed", type=int, default=0, help="noise / kernel seed (per image, reproducible)")
    p.add_argument("--classes", type=positive, default=3)
    p.add_argument("--ref", help="BasicSR options of a trained reference network "
                                 "(network_g + path.pretrain_network_g); default: bicubic PSNR")
    p.add_argument("--scales", type=factors, default="1,0.9,0.8,0.7,0.6", help="HR downscaling factors")
    p.add_argument("--tile", type=tile_size, default=32, help="LR sub-image size")
    p.add_argument("--stride", type=positive, default=None,
                   help="input sub-image stride (default: 64 / scale, i.e. 16 at x4 and 64 at scale 1)")
    p.add_argument("--max-per-image", type=positive, default=None,
                   help="at most this many pairs from one photo (shared among --scales by area, evenly spaced)")
    p.add_argument("--lr", help="folder of ready LR images (same names) instead of bicubic")
    _max_pixels(p)
    p.add_argument("--whole", action="store_true",
                   help="only write whole HR/LR pairs (mod-cropped HR, bicubic LR): a validation set")
    p.add_argument("--crop", type=positive, default=None,
                   help="--whole: only the centre crop of this many HR px square of each image (a held-out set "
                        "a heavy scale-1 network evaluates in minutes on a CPU)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("label", help="relabel prepared sub-images: by a trained network's difficulty, "
                                     "or by oracle routing for a supervised classifier")
    p.add_argument("--data", required=True, help="a `classsr prepare` output folder")
    p.add_argument("--by", required=True, choices=["difficulty", "oracle"])
    p.add_argument("--ref", help="difficulty: the reference network (`classsr export` file or BasicSR options)")
    p.add_argument("--classes", type=int, default=3, help="difficulty: number of classes")
    p.add_argument("-opt", help="oracle: the ClassSR model with trained branches (options or checkpoint)")
    p.add_argument("--tol", type=float, default=1e-5, help="oracle: MSE (on [0, 1]) a narrower branch may add")
    p.add_argument("--tols", default="0,3e-6,1e-5,3e-5,1e-4", help="oracle: tolerances to tabulate")
    p.add_argument("--edge-router", metavar="OUT.pth",
                   help="oracle: also fit an edge-score router to the branches and write the model with it")
    p.add_argument("--score", default="laplacian",
                   help="edge router's score: laplacian, the RMS of the Laplacian (default; on the shipped FSRCNN "
                        "branches' training sub-images about 10 points of FLOPs fewer at the same loss), gradient, the "
                        "mean absolute gradient, or coarse, the gradient of 4x4 block means, for noisy inputs "
                        "(denoising). Several, comma-separated, fit one router each from one pass over the "
                        "sub-images: --edge-router then names its files with {score}")
    p.add_argument("--lam", type=float, default=None,
                   help="edge router: MSE one unit of relative FLOPs is worth (larger: cheaper routing); "
                        "default: chosen by --max-loss")
    p.add_argument("--max-loss", type=float, default=0.01,
                   help="edge router without --lam: the dB the router may lose on these sub-images, the mean over "
                        "photos of each photo's PSNR change (held-out tables average PSNR per image)")
    p.add_argument("--fit", choices=("pooled", "photo"), default="pooled",
                   help="edge router: what its thresholds minimise at each lam: the added MSE of all sub-images "
                        "pooled (default), or per photo, each photo's added MSE relative to its own (the loss "
                        "--max-loss bounds; a flat photo's sub-images then weigh more)")
    p.add_argument("--widest-psnr", metavar="META",
                   help="oracle: the widest branch's PSNR per sub-image from this meta file (`--by difficulty "
                        "--ref BASE` output: the widest branch is the base network), so only the narrower "
                        "branches run (checked on the first batch)")
    p.add_argument("--batch", type=positive, default=128)
    p.add_argument("-o", "--out", help="meta file to write (default: DATA/meta_info_<by>.txt)")
    p.set_defaults(func=cmd_label)


def _add_infer(sub):
    p = sub.add_parser("infer", help="super-resolve images or folders (no ground truth needed)")
    _model_args(p)
    p.add_argument("inputs", nargs="+", help="image files or folders")
    p.add_argument("-o", "--out", required=True, help="output folder")
    _tiling_args(p, "tile size (at least 8; cut to the image's size)")
    p.add_argument("--batch", type=positive, default=None, help="tiles per branch call")
    p.add_argument("--budget", type=fraction, default=None,
                   help="FLOPs budget, a fraction of the base network in the terms each line prints "
                        "(regions: the base on the whole image; tiles: on the same tiles)")
    _budget_args(p)
    p.add_argument("--format", choices=list(FORMATS), default="png", help="output file format (default png)")
    p.add_argument("--quality", type=non_negative, default=None,
                   help="; ".join(f"{k}: {v[2]}" for k, v in FORMATS.items()))
    p.add_argument("--class-map", action="store_true", help="also write the class map PNG over the output")
    p.add_argument("--class-map-lr", action="store_true", help="... drawn at LR size, over the input")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--overwrite", action="store_true", help="redo existing outputs")
    _max_pixels(p)
    p.set_defaults(func=cmd_infer)


def _add_eval(sub):
    p = sub.add_parser("eval", help="PSNR / FLOPs / time table against HR images")
    _model_args(p)
    p.add_argument("--hr", nargs="+", required=True, help="test folders of HR images")
    p.add_argument("--lr", nargs="+", help="matching LR folders (default: basicsr bicubic of HR)")
    p.add_argument("--scale", type=positive, default=4)
    p.add_argument("--reference", help="a plain network to compare with, from `classsr export` "
                                       "(default with the shipped model: its base network trained alone)")
    p.add_argument("--budgets", type=fractions, help="comma-separated FLOPs budgets, e.g. 0.4,0.5,0.6,0.8,1.0")
    _budget_args(p)
    p.add_argument("--oracle", type=tolerances,
                   help="comma-separated MSE tolerances: rows routed by the oracle (each tile to the cheapest "
                        "branch within that MSE of the widest, knowing the HR)")
    _tiling_args(p, execution="tiles")  # the paper's protocol; a regions row is added beside it
    p.add_argument("--device", default="cpu")
    p.add_argument("-o", "--out", default="results/eval", help="folder for the .md, .json and .png")
    _max_pixels(p)
    p.set_defaults(func=cmd_eval)


def _add_tools(sub):
    p = sub.add_parser("widths", help="propose branch widths from measured per-tile latency")
    p.add_argument("-opt", required=True, help="options with network_g (ClassSR or the plain base network)")
    p.add_argument("--classes", type=positive, default=3)
    p.add_argument("--device", default="cpu")
    p.add_argument("--tile", type=tile_size, default=32)
    p.set_defaults(func=cmd_widths)

    p = sub.add_parser("export", help="options + trained weights -> one self-describing file")
    p.add_argument("-opt", required=True, help="options with network_g (and path.pretrain_network_g), or an "
                                               "mmengine/MMagic config .py (with -w: its Runner's checkpoint)")
    p.add_argument("-w", "--weights", help="weights file (default: path.pretrain_network_g)")
    p.add_argument("-o", "--out", required=True)
    p.add_argument("--set", nargs="+", metavar="KEY=VALUE", help="override options, e.g. network_g.share_weights=true")
    p.add_argument("--half", action="store_true", help="store the networks' weights as fp16 (half the file; they load "
                                                       "as fp32; the router's stay fp32): check PSNR with classsr eval")
    p.set_defaults(func=cmd_export)


def _add_training(sub):
    from mmengine.config import DictAction
    p = sub.add_parser("mmtrain", help="mmengine / MMagic training: a config, mmengine's Runner")
    p.add_argument("config")
    p.add_argument("--work-dir")
    p.add_argument("--resume", action="store_true", help="continue from the work dir's last checkpoint")
    p.add_argument("--launcher", default="none", choices=["none", "pytorch", "slurm", "mpi"])
    p.add_argument("--cfg-options", nargs="+", default=None, action=DictAction,
                   help="key=value overrides, e.g. train_cfg.max_iters=1000")
    p.set_defaults(func=cmd_mmtrain)
    p = sub.add_parser("train", help="BasicSR training (-opt options.yml, BasicSR's flags)", add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_train)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="classsr", description=__doc__,
        epilog="Every command takes --import MODULE (repeatable): your own archs' module, imported after the "
               "plugin (BasicSR options files may list them under custom_imports instead).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    for add in (_add_demo, _add_data, _add_infer, _add_eval, _add_tools, _add_training):
        add(sub)
    return parser


def _pop_imports(argv):
    """`--import MODULE` / `--import=MODULE`, anywhere on the line -> (modules, the rest)."""
    mods, rest, i = [], [], 0
    while i < len(argv):
        if argv[i] == "--import" and i + 1 < len(argv):
            mods.append(argv[i + 1])
            i += 2
            continue
        if argv[i].startswith("--import="):
            mods.append(argv[i].split("=", 1)[1])
        else:
            rest.append(argv[i])
        i += 1
    return mods, rest


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    mods, argv = _pop_imports(argv)
    if mods:  # the user's archs, after the plugin's registrations and torchvision alias
        _basicsr()
        from .imports import import_modules
        try:
            import_modules(mods, "--import")
        except ValueError as err:
            print(f"classsr: error: {err}", file=sys.stderr)
            return 2
    if argv[:1] == ["train"]:  # BasicSR parses its own flags (-opt, --launcher, --auto_resume, ...)
        return cmd_train(argparse.Namespace(rest=argv[1:]))
    parser = build_parser()
    args = parser.parse_args(argv)
    if hasattr(args, "exec"):
        args.execution = _execution(parser, args)
    if getattr(args, "quality", None) is not None:
        low, high = {"png": (0, 9), "jpg": (1, 100), "webp": (1, 101)}[args.format]
        if not low <= args.quality <= high:
            parser.error(f"--quality {args.quality}: {args.format} takes {low}-{high}")
    if getattr(args, "max_pixels", None) is not None:
        from .imageio import set_max_pixels
        set_max_pixels(args.max_pixels)
    from .atomic import Terminated, explain, stoppable
    try:
        with stoppable():  # SIGTERM cleans up as Ctrl-C does
            return args.func(args)
    except (ValueError, KeyError, OSError) as err:  # OSError: a full or read-only disk, a file in the way
        print(f"classsr {args.cmd}: error: {explain(err) if isinstance(err, OSError) else err}", file=sys.stderr)
        return 2 if isinstance(err, (ValueError, KeyError, FileNotFoundError)) else 1
    except KeyboardInterrupt as err:
        print(f"classsr {args.cmd}: interrupted; re-run to resume", file=sys.stderr)
        return 143 if isinstance(err, Terminated) else 130


if __name__ == "__main__":
    sys.exit(main())
