"""Write the model card of the shipped weights from a finished training run (scripts/cpu_run_fsrcnn.sh).

Measures, on this machine: the held-out table (bicubic, FSRCNN-O, ClassSR at its own routing and
at --budgets) through `classsr_plugin.evaluate`, and the built-in demo photo as the tests check
it. Reads the run's photos, meta_info.txt and wall times. Writes card.json and MODEL_CARD.md
beside the weights, and the eval table / plot to --eval-out.

Usage: python scripts/make_card.py --run RUN_DIR [--budgets 0.5,0.6,0.7] [--eval-out DIR]
"""
import argparse
import json
import os
import platform
import re
import sys
from collections import Counter

import torch

from classsr_plugin import weights
from classsr_plugin.cli import demo_photo, load_checkpoint
from classsr_plugin.compat import alias_torchvision_for_basicsr
from classsr_plugin.data.prepare import read_meta
from classsr_plugin.evaluate import bicubic_pair, evaluate
from classsr_plugin.imageio import list_images


def demo_numbers(model, ref):
    """The built-in photo as `classsr demo` and tests/test_weights.py run it."""
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    from basicsr.utils.matlab_functions import imresize

    from classsr_plugin import run_tiled
    hr, lr = bicubic_pair(demo_photo(), 4)
    res = model.restore_image(lr)
    with torch.no_grad():
        ref_img = run_tiled(lr, ref, 4, 32, 28)
    psnr = lambda img: calculate_psnr(tensor2img(img), tensor2img(hr), crop_border=4)  # noqa: E731
    return {"name": "scikit-image coffee (held out)", "classsr_psnr": psnr(res.image),
            "classsr_counts": res.counts, "classsr_flops_percent": res.flops_percent,
            "fsrcnn_o_psnr": psnr(ref_img), "bicubic_psnr": psnr(imresize(lr, 4).clamp(0, 1))}


def _iterations(path):
    """logs/iterations.txt of the run: 'FSRCNN=7000,phase1=9000,...' -> dict."""
    with open(path) as f:
        return {k: int(v) for k, v in (kv.split("=") for kv in f.read().strip().split(","))}


def _validations(run):
    """The last validation of every training in the run, from BasicSR's logs (whole held-out
    photos; ClassSR tiled, plain networks on the whole image)."""
    import glob
    rows = {}
    for log in sorted(glob.glob(os.path.join(run, "experiments", "*", "train_*.log"))):
        text = open(log).read()
        found = {k: re.findall(rf"# {k}: ([0-9.]+)", text) for k in ("psnr", "psnr_y")}
        if not found["psnr"]:
            continue
        flops = re.findall(r"classes \(narrow..wide\) (\[[0-9, ]+\]).*FLOPs ([0-9.]+)%", text)
        rows[os.path.basename(os.path.dirname(log))] = {
            "psnr": float(found["psnr"][-1]), "psnr_y": float(found["psnr_y"][-1]),
            "counts": json.loads(flops[-1][0]) if flops else None,
            "flops_percent": float(flops[-1][1]) if flops else 100.0}
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the run folder of scripts/cpu_run_fsrcnn.sh")
    ap.add_argument("--budgets", default="0.5,0.6,0.65,0.7,0.8")
    ap.add_argument("--eval-out", default="results/weights_eval")
    args = ap.parse_args(argv)
    alias_torchvision_for_basicsr()
    run = args.run
    model, ref = load_checkpoint(weights.CLASSSR_FSRCNN_X4).eval(), load_checkpoint(weights.FSRCNN_O_X4).eval()

    budgets = [float(b) for b in args.budgets.split(",") if b]
    report = evaluate(model, [os.path.join(run, "hr_val")], [None], args.eval_out, budgets=budgets,
                      reference=ref, reference_name="FSRCNN-O")
    meta = read_meta(os.path.join(run, "datasets", "classsr_x4", "meta_info.txt"))
    per_class = Counter(c for _, _, c in meta)
    walltimes = {}
    with open(os.path.join(run, "logs", "walltimes.txt")) as f:
        for line in f:
            m = re.match(r"(\S+) ([0-9.]+) s", line)
            if m:
                walltimes[m.group(1)] = float(m.group(2))
    card = {
        "weights": {"classsr": os.path.basename(weights.CLASSSR_FSRCNN_X4),
                    "reference": os.path.basename(weights.FSRCNN_O_X4)},
        "classsr": {"arch": "FSRCNN", "widths": model.widths, "classifier_nf": 32},
        "train_photos": sorted(os.path.basename(p) for p in list_images(os.path.join(run, "hr_train"))),
        "heldout_photos": sorted(os.path.basename(p) for p in list_images(os.path.join(run, "hr_val"))),
        "sub_images": {"total": len(meta), "per_class": [per_class[k] for k in sorted(per_class)]},
        "iterations": _iterations(os.path.join(run, "logs", "iterations.txt")),
        "wall_seconds": walltimes,
        "hardware": f"{platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}, "
                    f"{torch.get_num_threads()} threads, no GPU",
        "heldout": report["folders"]["hr_val"]["rows"],
        "training_validations": _validations(run),
        "demo_photo": demo_numbers(model, ref),
    }
    here = weights.HERE
    with open(os.path.join(here, "card.json"), "w") as f:
        json.dump(card, f, indent=2)
    with open(os.path.join(args.eval_out, "eval.md")) as f:
        table = f.read()
    d = card["demo_photo"]
    md = f"""# Model card: ClassSR-FSRCNN x4 and FSRCNN-O (shipped weights)

Made by `make weights` (scripts/cpu_run_fsrcnn.sh, then scripts/make_card.py); every number below
was measured by that run on this machine. card.json holds the same facts for the tests.

- ClassSR: FSRCNN (d=56, s=12, m=4) wrapped with 3 branches, d = {model.widths}, classifier
  ClassModule nf 32. FSRCNN-O: the plain d=56 FSRCNN trained on all sub-images for as many
  iterations as ClassSR had in total (its pretrained base plus the three phases).
- Training photos ({len(card['train_photos'])}, from Debian's opencv-doc and scikit-image):
  {', '.join(card['train_photos'])}.
- Held out (never trained on): {', '.join(card['heldout_photos'])}.
- Sub-images: {len(meta)} LR 32x32 / HR 128x128 pairs (scales 1, 0.8, 0.6; stride 16), per class
  (easy..hard, by bicubic PSNR): {card['sub_images']['per_class']}.
- Iterations (batch 16 for FSRCNN, FSRCNN-O and phase 1; 32 for phases 2 and 3): {card['iterations']}.
- Wall time (s): {', '.join(f'{k} {v:.0f}' for k, v in walltimes.items())}.
- Hardware: {card['hardware']}.

## Held-out photos (tile 32, stride 28; FLOPs % of FSRCNN d=56 on the same tiles, classifier included)

{table}
## Every training's last validation (BasicSR's, same held-out photos)

| run | PSNR | PSNR-Y | tiles per class | FLOPs % |
|---|---|---|---|---|
{chr(10).join(f"| {k} | {v['psnr']:.2f} | {v['psnr_y']:.2f} | {v['counts'] or '-'} | {v['flops_percent']:.1f} |" for k, v in card['training_validations'].items())}

ClassSR runs are tiled (32/28), plain FSRCNN runs whole-image. The shipped ClassSR is phase 2's.

## Built-in demo photo (coffee, held out)

bicubic {d['bicubic_psnr']:.2f} dB, FSRCNN-O {d['fsrcnn_o_psnr']:.2f} dB, ClassSR {d['classsr_psnr']:.2f} dB at
{d['classsr_flops_percent']:.1f}% FLOPs (tiles per class {d['classsr_counts']}).
"""
    with open(os.path.join(here, "MODEL_CARD.md"), "w") as f:
        f.write(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
