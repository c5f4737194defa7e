"""Which score should an edge router threshold? Each of classifier.EDGE_SCORES fitted to the
trained branches' errors on the training sub-images of most photos (`classsr prepare` output)
and tested on those of the others (whole photos held back, never fitted on): FLOPs % of the
widest branch and the PSNR change of the mean MSE against the widest, at several lam (the MSE
one unit of relative FLOPs is worth), and the oracle (cheapest branch within --tol). Compare
rows at equal dB: fewer FLOPs is the better score.

Run: .venv/bin/python benchmarks/edge_scores.py --data results/weights_run/data/train_x4
     -opt scripts/checkpoints/classsr_zero_branches_x4.pth [--test-share 0.1] [--lams 3e-6,1e-5,2e-5]
"""
import argparse

import numpy as np
import torch

import classsr_plugin.registry.basicsr  # noqa: F401  (BasicSR's archs for load)
from classsr_plugin.checkpoint import load
from classsr_plugin.classifier import EDGE_SCORES, edge_classes, fit_edge
from classsr_plugin.data import label
from classsr_plugin.data.prepare import photo_of


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True)
    ap.add_argument("-opt", required=True, help="ClassSR with trained branches (a zero-class one: also without it)")
    ap.add_argument("--test-share", type=float, default=0.1, help="share of the photos held back (seeded)")
    ap.add_argument("--lams", default="3e-6,1e-5,2e-5")
    ap.add_argument("--tol", type=float, default=3e-6)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    model = load(args.opt)
    paths = [model.path(k) for k in range(model.num_classes)]
    items, err, lq = label.sub_image_errors(args.data, paths, meta="meta_info.txt",
                                            feature=lambda x: (x * 255).round().to(torch.uint8))
    photos = [photo_of(it[0]) for it in items]
    names = sorted(set(photos))
    gen = torch.Generator().manual_seed(args.seed)
    held = {names[i] for i in torch.randperm(len(names), generator=gen)[:max(1, round(args.test_share * len(names)))]}
    test = np.array([p in held for p in photos])
    print(f"{len(items)} sub-images of {len(names)} photos; {test.sum()} of {len(held)} held back: {', '.join(sorted(held))}")
    scores = {k: torch.cat([f(c.float() / 255) for c in lq.split(2048)]).double() for k, f in EDGE_SCORES.items()}
    cost = model.tile_cost(32).branches
    setups = [("with the zero class", err, cost)] if model.zero_class else []
    setups.append(("without it", err[:, 1:] if model.zero_class else err, cost[1:] if model.zero_class else cost))
    for title, e, c in setups:
        rel = np.array([v / c[-1] for v in c])
        print(f"\n{title}: {len(c)} classes\n| score | lam | FLOPs % fitted / held back | dB fitted / held back |\n|---|---|---|---|")
        for name, s in scores.items():
            for lam in (float(v) for v in args.lams.split(",")):
                t = fit_edge(s[~test], torch.from_numpy(e[~test]), rel.tolist(), lam)
                fit = label.routed_stats(e[~test], rel, edge_classes(s[~test], t).numpy())
                out = label.routed_stats(e[test], rel, edge_classes(s[test], t).numpy())
                print(f"| {name} | {lam:.0e} | {fit[1]:.1f} / {out[1]:.1f} | {fit[2]:+.4f} / {out[2]:+.4f} |")
        fit = label.routed_stats(e[~test], rel, label.oracle_classes(e[~test], args.tol))
        out = label.routed_stats(e[test], rel, label.oracle_classes(e[test], args.tol))
        print(f"| oracle, tol {args.tol:g} | - | {fit[1]:.1f} / {out[1]:.1f} | {fit[2]:+.4f} / {out[2]:+.4f} |")


if __name__ == "__main__":
    main()
