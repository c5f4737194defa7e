"""What writing costs in `classsr infer`: the photos in a folder upscaled x4 as they are (a 2K
photo gives an 8K output), the shipped model, one `classsr infer` process per format, its wall
time against the time of the same restores alone (this process, same settings), and the sizes
of the files written; then OpenCV's encoding time and size of each format on the first output.

To measure another version of the plugin (e.g. before background writes), put its checkout
first on PYTHONPATH; the restore-only row then runs that version too.

Run: .venv/bin/python benchmarks/write_speed.py --photos DIR [--formats png,jpg,webp]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import cv2
import torch

import classsr_plugin.registry.basicsr  # noqa: F401
from classsr_plugin import ClassSR, weights
from classsr_plugin.imageio import list_images, read_picture

CLASSSR = os.path.join(os.path.dirname(sys.executable), "classsr")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--photos", required=True)
    ap.add_argument("--formats", default="png,jpg,webp")
    args = ap.parse_args()
    photos = list_images(args.photos)
    model = ClassSR.from_checkpoint(weights.CLASSSR_FSRCNN_X4)  # also in versions before checkpoint.load
    start = time.perf_counter()
    with torch.inference_mode():
        first = None
        for p in photos:
            out = model.restore_image(read_picture(p).rgb).image
            first = first if first is not None else out
    alone = time.perf_counter() - start
    print(f"{len(photos)} photos from {args.photos}, one run each; restore_image alone: {alone:.1f} s\n")
    print("| format | classsr infer, wall | of which beyond the restores | MB written |\n|---|---|---|---|")
    for fmt in args.formats.split(","):
        with tempfile.TemporaryDirectory() as out:
            start = time.perf_counter()
            cmd = [CLASSSR, "infer", args.photos, "-o", out]
            if fmt != "png":
                cmd += ["--format", fmt]
            subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall = time.perf_counter() - start
            mb = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out)) / 1e6
        print(f"| {fmt} | {wall:.1f} s | {wall - alone:.1f} s | {mb:.0f} |", flush=True)
    img = first.clamp(0, 1).mul(255).round().byte().flip(0).permute(1, 2, 0).contiguous().numpy()  # BGR
    print(f"\nOpenCV encoding of one {img.shape[1]}x{img.shape[0]} output (this thread):\n")
    print("| format | seconds | MB |\n|---|---|---|")
    for name, ext, params in [("png, OpenCV's default", ".png", []),
                              *[(f"png, level {n}", ".png", [cv2.IMWRITE_PNG_COMPRESSION, n]) for n in (1, 3, 6)],
                              ("jpg 95", ".jpg", [cv2.IMWRITE_JPEG_QUALITY, 95]),
                              ("webp 90", ".webp", [cv2.IMWRITE_WEBP_QUALITY, 90])]:
        start = time.perf_counter()
        ok, buf = cv2.imencode(ext, img, params)
        print(f"| {name} | {time.perf_counter() - start:.2f} | {len(buf) / 1e6:.1f} |", flush=True)


if __name__ == "__main__":
    main()
