"""How good could routing be with these branches? Per tile, an oracle picks the branch minimising
its squared error + lam * its cost, with the true HR at hand; each lam gives one PSNR / FLOPs point.
Any classifier is bounded by this curve: a gap between it and the target says the branches, not
the classifier, fall short.

Usage: python benchmarks/oracle_routing.py --hr HELD_OUT_HR [-opt MODEL] [--lams 0,8,16,32,48,64,96]
MODEL: a `classsr export` file (default: the shipped ClassSR-FSRCNN x4).
"""
import argparse
import os
import sys

import torch

from classsr_plugin.compat import alias_torchvision_for_basicsr


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hr", required=True)
    ap.add_argument("-opt", default=None)
    ap.add_argument("--lams", default="0,8,16,32,48,64,96,128")
    ap.add_argument("--tile", type=int, default=32)
    ap.add_argument("--stride", type=int, default=28)
    args = ap.parse_args(argv)
    alias_torchvision_for_basicsr()
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img

    from classsr_plugin import TileGrid, weights
    from classsr_plugin.checkpoint import load
    from classsr_plugin.evaluate import bicubic_pair
    from classsr_plugin.imageio import list_images, read_picture

    model = load(args.opt or weights.CLASSSR_FSRCNN_X4)
    s, t, st = model.scale, args.tile, args.stride
    cost = model.tile_cost(t)
    rel = torch.tensor(cost.branches, dtype=torch.float) / cost.base
    images = []
    with torch.no_grad():
        for path in list_images(args.hr):
            hr, lr = bicubic_pair(read_picture(path).rgb, s)
            grid = TileGrid(lr.shape[1], lr.shape[2], t, st, s)
            ids = torch.arange(len(grid))
            tiles = grid.windows(grid.pad(lr), ids)
            # the HR tile of every LR tile: the same layout at scale 1 on the HR image
            hr_grid = TileGrid(hr.shape[1], hr.shape[2], t * s, st * s, 1)
            hr_tiles = hr_grid.windows(hr_grid.pad(hr), ids)
            sse = torch.stack([((b(tiles).clamp(0, 1) - hr_tiles) ** 2).sum((1, 2, 3)) for b in model.branches], 1)
            images.append((os.path.basename(path), lr, hr, sse))

    def psnr(force):
        vals = [calculate_psnr(tensor2img(model.restore_image(lr, "tiles", tile=t, stride=st, force_class=f).image), tensor2img(hr), s)
                for (_, lr, hr, _), f in zip(images, force)]
        return sum(vals) / len(vals)

    print(f"{len(images)} images, {sum(len(i[3]) for i in images)} tiles; FLOPs % include the classifier "
          f"({100 * cost.classifier / cost.base:.1f}%), as a trained router would pay it")
    for k in range(model.num_classes):
        print(f"branch {k} ({model.width_key}={model.widths[k]}) on every tile: "
              f"{psnr([torch.full((len(i[3]),), k) for i in images]):.2f} dB")
    print("| lam | oracle PSNR | FLOPs % | tiles per class |\n|---|---|---|---|")
    for lam in (float(v) for v in args.lams.split(",")):
        force = [(i[3] + lam * rel).argmin(1) for i in images]
        counts = torch.bincount(torch.cat(force), minlength=model.num_classes)
        print(f"| {lam:g} | {psnr(force):.2f} | {cost.percent(counts.tolist()):.1f} | {counts.tolist()} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
