"""README's "your own network" example end to end, as a newcomer runs it: an arch in a module
outside the package (examples/own_arch/sixconv.py) -> prepare -> the base network -> the ClassSR
phases -> export -> infer, every step through the `classsr` command."""
import os
import shutil
import subprocess
import sys

import cv2

from test_readme import BLOCKS
from test_training import photos

README_TRAIN_PY = next(b for b in BLOCKS if "train_pipeline" in b)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "own_arch")
SHORT = ["--force_yml", "train:total_iter=30", "train:scheduler:periods=[30]", "logger:save_checkpoint_freq=30"]


def classsr(cwd, *args, env=None, ok=True):
    out = subprocess.run([sys.executable, "-m", "classsr_plugin.cli", *args], cwd=cwd, env=env,
                         capture_output=True, text=True, timeout=600)
    if ok:
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    return out


def test_own_arch_from_options_to_infer(tmp_path):
    work = tmp_path / "work"
    shutil.copytree(EXAMPLE, work)
    env = {**os.environ, "PYTHONPATH": str(work)}  # the user's module, outside the package
    hr = photos(str(tmp_path / "hr"), names=("astronaut", "coffee"), size=128)
    classsr(work, "prepare", "--hr", hr, "--out", "datasets/sub_x2", "--scale", "2", "--scales", "1", env=env)
    classsr(work, "train", "-opt", "base_x2.yml", *SHORT, env=env)
    classsr(work, "export", "-opt", "base_x2.yml", "-w", "experiments/SixConvSR_x2/models/net_g_latest.pth",
            "-o", "base.pth", env=env)
    classsr(work, "train", "-opt", "classsr_x2_1_branches.yml", *SHORT, env=env)
    classsr(work, "train", "-opt", "classsr_x2_2_classifier.yml", *SHORT, env=env)
    classsr(work, "export", "-opt", "classsr_x2_2_classifier.yml", "-w",
            "experiments/ClassSR_SixConvSR_x2_2_classifier/models/net_g_latest.pth", "-o", "classsr.pth", env=env)
    out = classsr(work, "--import", "sixconv", "infer", "-opt", "classsr.pth", hr, "-o", "out", env=env)
    assert "classsr.pth" in out.stdout  # which weights were loaded
    assert cv2.imread(str(work / "out" / "astronaut_x2.png")).shape == (256, 256, 3)
    # without the import, the checkpoint names the module instead of importing anything itself
    bare = classsr(work, "infer", "-opt", "classsr.pth", hr, "-o", "out2", env=env, ok=False)
    assert bare.returncode == 2 and "--import sixconv" in bare.stderr, bare.stderr
    missing = classsr(work, "--import", "no_such_module", "infer", "-opt", "classsr.pth", hr, "-o", "o3", env=env,
                      ok=False)
    assert missing.returncode == 2 and "cannot import 'no_such_module'" in missing.stderr


def test_missing_weights_name_their_key(tmp_path):
    work = tmp_path / "work"
    shutil.copytree(EXAMPLE, work)
    env = {**os.environ, "PYTHONPATH": str(work)}
    hr = photos(str(tmp_path / "hr"), names=("astronaut",), size=96)
    classsr(work, "prepare", "--hr", hr, "--out", "datasets/sub_x2", "--scale", "2", "--scales", "1", env=env)
    # phase 2 points at phase 1's weights, which do not exist yet
    run = classsr(work, "train", "-opt", "classsr_x2_2_classifier.yml", env=env, ok=False)
    assert run.returncode == 2 and "path.pretrain_network_g" in run.stderr and "Traceback" not in run.stderr
    run = classsr(work, "infer", "-opt", "classsr_x2_2_classifier.yml", hr, "-o", "o", env=env, ok=False)
    assert run.returncode == 2 and "path.pretrain_network_g" in run.stderr, run.stderr


def test_own_train_script_resumes_on_cpu(tmp_path):
    """A user's own train.py calling the adapter's train_pipeline: --auto_resume works on CPU."""
    work = tmp_path / "work"
    shutil.copytree(EXAMPLE, work)
    (work / "train.py").write_text(README_TRAIN_PY)  # README's own train.py, as written
    env = {**os.environ, "PYTHONPATH": str(work)}
    hr = photos(str(tmp_path / "hr"), names=("astronaut", "coffee"), size=128)  # enough for a batch of 8
    classsr(work, "prepare", "--hr", hr, "--out", "datasets/sub_x2", "--scale", "2", "--scales", "1", env=env)

    def run(iters):
        out = subprocess.run([sys.executable, "train.py", "-opt", "base_x2.yml", "--auto_resume", "--force_yml",
                              f"train:total_iter={iters}", "train:scheduler:periods=[8]",
                              "logger:save_checkpoint_freq=4", "logger:print_freq=2"],
                             cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
        return out.stdout + out.stderr
    run(4)
    log = run(8)
    assert "Resuming training from epoch" in log and "iter:       8" in log
