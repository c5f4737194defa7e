"""Derived widths and measured FLOPs per 32x32 LR tile, per branch, for the archs the plugin
wraps, at their usual (paper / BasicSR) sizes. Run: .venv/bin/python benchmarks/flops_table.py
"""
import torch

import classsr_plugin.registry.basicsr  # noqa: F401  (BasicSR's archs)
from classsr_plugin import ClassSR

CONFIGS = {
    "FSRCNN": dict(type="FSRCNN", d=56, s=12, m=4, upscale=4),
    "CARN-M": dict(type="CARNM", nf=64, group=4, upscale=4),
    "MSRResNet": dict(type="MSRResNet", num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4),
    "RCAN": dict(type="RCAN", num_in_ch=3, num_out_ch=3, num_feat=64, num_group=10, num_block=20, upscale=4),
    "EDSR (baseline)": dict(type="EDSR", num_in_ch=3, num_out_ch=3, num_feat=64, num_block=16, upscale=4),
    "RRDBNet (ESRGAN)": dict(type="RRDBNet", num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, scale=4),
    "SRVGGNetCompact": dict(type="SRVGGNetCompact", num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4),
    "SwinIR (light)": dict(type="SwinIR", upscale=4, in_chans=3, img_size=64, window_size=8, embed_dim=60,
                           depths=[6, 6, 6, 6], num_heads=[6, 6, 6, 6], mlp_ratio=2,
                           upsampler="pixelshuffledirect"),
}


def gflops(f):
    return f"{f / 1e9:.3f}" if f >= 1e8 else f"{f / 1e9:.4f}"


def main():
    torch.set_num_threads(2)
    print("| arch | width key | derived widths | GFLOPs per tile per branch | % of base per branch |")
    print("|---|---|---|---|---|")
    cls_flops = None
    for name, cfg in CONFIGS.items():
        model = ClassSR(base=cfg)
        cost = model.tile_cost(32)
        cls_flops = cost.classifier
        per = " / ".join(gflops(f) for f in cost.branches)
        pct = " / ".join(f"{100 * f / cost.base:.0f}%" for f in cost.branches)
        print(f"| {name} | {model.width_key} | {'/'.join(map(str, model.widths))} | {per} | {pct} |")
    print(f"\nClassifier (paper's Class-Module): {cls_flops / 1e6:.2f} MFLOPs per tile, "
          f"added to every tile.")


if __name__ == "__main__":
    main()
