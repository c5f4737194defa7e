"""The core on its own: every other test runs with BasicSR imported (conftest), so this one runs
the core in a fresh interpreter and checks that no toolkit was imported."""
import subprocess
import sys

SCRIPT = r"""
import os, sys, tempfile
import torch
from classsr_plugin import ClassSR, checkpoint, weights
from classsr_plugin.imageio import read_picture

torch.manual_seed(0)
model = ClassSR(base={"type": "FSRCNN", "d": 24, "upscale": 2, "residual": True}, classifier={"type": "EdgeScore"})
x = torch.rand(3, 70, 50)
regions, tiles = model.restore_image(x), model.restore_image(x, "tiles")
assert regions.image.shape == tiles.image.shape == (3, 140, 100)
path = os.path.join(tempfile.mkdtemp(), "m.pth")
model.save(path)
assert torch.equal(checkpoint.load(path).restore_image(x).image, regions.image)
shipped = checkpoint.load(weights.MODEL)
out = shipped.restore_image(read_picture(weights.DEMO_PHOTO).rgb[:, :64, :96])
assert out.image.shape == (3, 256, 384)
print("toolkits:", sorted({m.split(".")[0] for m in sys.modules} & {"basicsr", "mmengine", "mmagic", "mmcv"}))
"""


def test_core_runs_without_any_toolkit():
    run = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stdout.splitlines()[-1] == "toolkits: []"
