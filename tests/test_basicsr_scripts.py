"""BasicSR's own scripts run ClassSR options as written: `python -m basicsr.train` / `basicsr.test`
in a fresh interpreter, nothing imported by hand. The plugin's start-up hook
(_classsr_autoload.py, loaded by classsr_plugin_autoload.pth) registers it when basicsr is first
imported; CLASSSR_DISABLE_AUTOLOAD turns it off."""
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import textwrap

import pytest
import yaml

from classsr_plugin.data import prepare, prepare_whole
from test_training import photos

OFF = "CLASSSR_DISABLE_AUTOLOAD"
# basicsr 1.4.2 writes experiments/ and results/ beside its package (its scripts' root_path)
BSR_ROOT = os.path.dirname(os.path.dirname(importlib.util.find_spec("basicsr").origin))
NAME = f"hook_{os.getpid()}"
USER_ARCH = '''
import torch.nn as nn
from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class TwoConvSR(nn.Module):
    def __init__(self, num_feat=16, upscale=2):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, num_feat, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(num_feat, 3 * upscale ** 2, 3, padding=1), nn.PixelShuffle(upscale))

    def forward(self, x):
        return self.body(x)
'''
NETS = {"FSRCNN": {"type": "FSRCNN", "d": 16, "s": 8, "m": 1, "upscale": 2},
        "user": {"type": "TwoConvSR", "num_feat": 16, "upscale": 2}}


def run(cwd, *args, env=None):
    env = {**os.environ, "PYTHONPATH": str(cwd), **(env or {})}
    out = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    return out.returncode, out.stdout + out.stderr


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    root = tmp_path_factory.mktemp("bsr")
    hr = photos(str(root / "hr"), names=("astronaut", "coffee"), size=96)
    prepare(hr, str(root / "sub"), scale=2, scales=(1.0,), progress=False)
    prepare_whole(photos(str(root / "val_hr"), names=("rocket",), size=64), str(root / "val"), scale=2)
    (root / "user_arch.py").write_text(USER_ARCH)
    yield root
    for sub in ("experiments", "results"):
        folder = os.path.join(BSR_ROOT, sub)
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            if name.startswith(NAME):
                shutil.rmtree(os.path.join(folder, name))
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)


def options(work, name, base, train):
    opt = {"name": name, "model_type": "ClassSRModel", "scale": 2, "num_gpu": 0, "manual_seed": 0,
           "classsr": {"phase": "branches", "freeze_widest": False},
           "network_g": {"type": "ClassSR", "base": base, "classifier": {"type": "ClassModule", "nf": 8}},
           "path": {"pretrain_network_g": None, "strict_load_g": True, "resume_state": None}}
    if base["type"] == "TwoConvSR":
        opt["custom_imports"] = ["user_arch"]  # the user's arch, on PYTHONPATH
    if train:
        opt["datasets"] = {"train": {"name": "sub", "type": "ClassSRDataset", "dataroot": str(work / "sub"),
                                     "use_hflip": True, "use_rot": True, "num_worker_per_gpu": 0,
                                     "batch_size_per_gpu": 4, "dataset_enlarge_ratio": 1, "prefetch_mode": None}}
        opt["train"] = {"optim_g": {"type": "Adam", "lr": 1e-3}, "total_iter": 2, "warmup_iter": -1,
                        "scheduler": {"type": "MultiStepLR", "milestones": [10], "gamma": 0.5},
                        "pixel_opt": {"type": "L1Loss", "loss_weight": 1.0}}
        opt["logger"] = {"print_freq": 1, "save_checkpoint_freq": 2, "use_tb_logger": False}
    else:
        opt["datasets"] = {"test_1": {"name": "val", "type": "PairedImageDataset", "io_backend": {"type": "disk"},
                                      "dataroot_gt": str(work / "val" / "hr"), "dataroot_lq": str(work / "val" / "lr")}}
        opt["val"] = {"save_img": False, "metrics": {"psnr": {"type": "calculate_psnr", "crop_border": 2}}}
        opt["path"]["pretrain_network_g"] = os.path.join(BSR_ROOT, "experiments", name, "models", "net_g_latest.pth")
    path = work / f"{name}_{'train' if train else 'test'}.yml"
    path.write_text(yaml.safe_dump(opt))
    return str(path)


@pytest.mark.parametrize("arch", list(NETS))
def test_basicsr_train_and_test_run_classsr_options(work, arch):
    name = f"{NAME}_{arch}"
    code, log = run(work, "-m", "basicsr.train", "-opt", options(work, name, NETS[arch], train=True))
    assert code == 0, log[-3000:]
    assert "phase 'branches'" in log and re.search(r"iter:\s+2,", log), log[-3000:]
    assert os.path.exists(os.path.join(BSR_ROOT, "experiments", name, "models", "net_g_latest.pth"))
    code, log = run(work, "-m", "basicsr.test", "-opt", options(work, name, NETS[arch], train=False))
    assert code == 0, log[-3000:]
    assert re.search(r"# psnr: \d+\.\d+", log), log[-3000:]
    assert re.search(r"Validation val: classes \(narrow\.\.wide\) \[\d+, \d+, \d+\]", log), log[-3000:]


def test_opt_out_restores_basicsrs_own_behaviour(work):
    yml = options(work, f"{NAME}_off", NETS["FSRCNN"], train=True)
    code, log = run(work, "-m", "basicsr.train", "-opt", yml, env={OFF: "1"})
    # basicsr 1.4.2 as it is with current torchvision: it cannot import
    assert code != 0 and "No module named 'torchvision.transforms.functional_tensor'" in log, log[-3000:]
    assert "classsr_plugin" not in log


def test_start_up_imports_nothing_of_the_plugin(work):
    probe = textwrap.dedent("""
        import json, sys
        mods = [m for m in sys.modules if m.split('.')[0] in ('classsr_plugin', 'basicsr', 'torch', 'torchvision')]
        hook = sys.modules.get('_classsr_autoload')
        print(mods, hook is not None and hook.FINDER in sys.meta_path)""")
    assert run(work, "-c", probe)[1].strip() == "[] True"  # only the finder, waiting for basicsr
    assert run(work, "-c", probe, env={OFF: "1"})[1].strip() == "[] False"


def test_plugin_registered_once_when_imported_first():
    """This process imported classsr_plugin.registry.basicsr first (conftest), as `classsr` and a
    Real-ESRGAN-style train.py do: the hook ran inside that import and then left."""
    hook = sys.modules.get("_classsr_autoload")
    if hook is None:
        pytest.skip(f"{OFF} is set" if os.environ.get(OFF, "0") not in ("", "0") else
                    "the start-up hook is not installed: reinstall the package (pip install -e .)")
    import basicsr
    import basicsr.utils.options as bsr_options
    from basicsr.utils.registry import ARCH_REGISTRY, DATASET_REGISTRY, LOSS_REGISTRY, MODEL_REGISTRY
    from classsr_plugin.registry import basicsr_scripts
    assert hook.FINDER not in sys.meta_path
    assert type(basicsr.__loader__).__name__ == "SourceFileLoader"  # basicsr keeps its own loader
    assert bsr_options.parse_options is basicsr_scripts.parse_options
    assert "ClassSR" in ARCH_REGISTRY and "FSRCNN" in ARCH_REGISTRY and "ClassSRModel" in MODEL_REGISTRY
    assert "ClassSRDataset" in DATASET_REGISTRY and "ClassLoss" in LOSS_REGISTRY and "AverageLoss" in LOSS_REGISTRY
