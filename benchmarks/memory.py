"""Peak memory of `classsr infer` (shipped ClassSR-FSRCNN x4, regions, PNG out) by input size:
each run is its own process, its peak resident memory (the kernel's, os.wait4) less that of the
same command on a 64x64 image (imports and the loaded model), per output megapixel.

Inputs are a scikit-image photo (coffee) resized to each size (the content changes the routing,
not the memory much). To measure another version of the plugin, put its checkout first on
PYTHONPATH.

Run: .venv/bin/python benchmarks/memory.py [--sizes 1000x750,2000x1500,4000x3000]
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import cv2
import skimage.data

CLASSSR = os.path.join(os.path.dirname(sys.executable), "classsr")


def peak(image: str, out: str):
    """(peak resident bytes, seconds) of `classsr infer image -o out`."""
    start = time.perf_counter()
    proc = subprocess.Popen([CLASSSR, "infer", image, "-o", out, "--overwrite", "--max-pixels", "0"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    err = proc.stderr.read().decode()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"classsr infer {image} failed:\n{err[-2000:]}")
    return usage.ru_maxrss * 1024, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000x750,2000x1500,4000x3000", help="LR sizes, WxH")
    args = ap.parse_args()
    photo = cv2.cvtColor(skimage.data.coffee(), cv2.COLOR_RGB2BGR)
    with tempfile.TemporaryDirectory() as tmp:
        def run(w, h):
            path = os.path.join(tmp, f"in_{w}x{h}.png")
            if not os.path.exists(path):
                cv2.imwrite(path, cv2.resize(photo, (w, h), interpolation=cv2.INTER_CUBIC))
            return peak(path, os.path.join(tmp, "out"))
        base, _ = run(64, 64)
        print(f"classsr infer on 64x64 (imports, loaded model): {base / 2 ** 30:.2f} GiB peak\n")
        print("| input | output | peak above the loaded model | per output MP | seconds |")
        print("|---|---|---|---|---|")
        for size in args.sizes.split(","):
            w, h = map(int, size.split("x"))
            rss, seconds = run(w, h)
            above = rss - base
            print(f"| {w}x{h} | {w * 4}x{h * 4} | {above / 2 ** 30:.2f} GiB | "
                  f"{above / 2 ** 20 / (w * h * 16 / 1e6):.1f} MiB | {seconds:.0f} |", flush=True)


if __name__ == "__main__":
    main()
