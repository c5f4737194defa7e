"""The mmengine-only path (no MMagic): the three phases in mmengine's Runner from the shipped
configs, validation with PSNR, class shares and FLOPs %, and a mid-phase resume under torch's
weights_only checkpoint loading."""
import glob
import os

import cv2
import numpy as np
import pytest
import torch

from mm_helpers import base_checkpoint, scalars, short_run, small_data
from mmengine.config import Config
from mmengine.runner import Runner

from classsr_plugin.registry.mmengine import load_local_checkpoint

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "mmengine")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from classsr_plugin.archs.fsrcnn import FSRCNN
    root = small_data(tmp_path_factory.mktemp("mm_data"))
    base_checkpoint(FSRCNN(), root / "base.pth")
    return root


def config(name, data, work_dir, iters, **extra):
    cfg = Config.fromfile(os.path.join(CONFIGS, name))
    cfg.merge_from_dict(short_run(data, work_dir, iters, **extra))
    return cfg


def test_three_phases_validate_and_resume(data, tmp_path):
    p1 = tmp_path / "p1"
    Runner.from_cfg(config("classsr_fsrcnn_x4_1_branches.py", data, p1, 4,
                           **{"model.init_narrow": "slice", "model.init_base": str(data / "base.pth")})).train()
    val = [r for r in scalars(p1) if "classsr/psnr" in r]
    # the logged numbers, cross-checked: the saved model run on the validation image by hand
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    from classsr_plugin import ClassSR, checkpoint
    from classsr_plugin.imageio import read_picture
    model = ClassSR(**{k: v for k, v in Config.fromfile(os.path.join(CONFIGS, "classsr_fsrcnn_x4_1_branches.py"))
                       .model.generator.to_dict().items() if k != "type"})
    model.load_state_dict(checkpoint.state_dict(load_local_checkpoint(str(p1 / "iter_4.pth"))))
    (lr_path,) = glob.glob(str(data / "val" / "lr" / "*.png"))
    res = model.eval().restore_image(read_picture(lr_path).rgb, execution="tiles")  # as validation runs
    hr = read_picture(lr_path.replace("/lr/", "/hr/")).rgb
    assert val[-1]["classsr/psnr"] == pytest.approx(calculate_psnr(tensor2img(res.image), tensor2img(hr), 4), abs=1e-4)
    assert val[-1]["classsr/flops_percent"] == pytest.approx(model.tile_cost(32).percent(res.counts), abs=1e-4)
    assert [val[-1][f"classsr/share_{k}"] for k in range(3)] == pytest.approx([c / sum(res.counts) for c in res.counts])
    train_rows = [r for r in scalars(p1) if "loss_pix" in r]
    assert [r["iter"] for r in train_rows] == [1, 2, 3, 4]

    # phase 2: only the classifier changes
    p2 = tmp_path / "p2"
    before = load_local_checkpoint(str(p1 / "iter_4.pth"))["state_dict"]
    Runner.from_cfg(config("classsr_fsrcnn_x4_2_classifier.py", data, p2, 2,
                           load_from=str(p1 / "iter_4.pth"))).train()
    after = load_local_checkpoint(str(p2 / "iter_2.pth"))["state_dict"]
    changed = {k.split(".")[1] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"classifier"}
    assert any("loss_average" in r and "loss_class" in r for r in scalars(p2))
    assert load_local_checkpoint(str(p2 / "iter_2.pth"))["meta"]["classsr_phase"] == "classifier"

    # reset_classifier, at mmengine's after_load_checkpoint: phase 1's classifier (never trained)
    # is replaced as it loads; a checkpoint of this phase (a resume) keeps its own
    runner = Runner.from_cfg(config("classsr_fsrcnn_x4_2_classifier.py", data, tmp_path / "r", 2,
                                    **{"model.reset_classifier": True}))
    runner.call_hook("before_run")
    classifier = runner.model.generator.classifier
    runner.load_checkpoint(str(p1 / "iter_4.pth"))
    assert not any(torch.equal(v, before[f"generator.classifier.{k}"])
                   for k, v in classifier.state_dict().items() if k.endswith("weight"))
    runner.load_checkpoint(str(p2 / "iter_2.pth"))
    assert all(torch.equal(v, after[f"generator.classifier.{k}"]) for k, v in classifier.state_dict().items())
    runner.call_hook("after_run")

    # phase 3, stopped at iteration 2 of 4 and resumed: it goes on at 3 (weights_only loading)
    p3 = tmp_path / "p3"
    hard = {"model.routing": "hard"}  # the inference-like routing option, end to end
    Runner.from_cfg(config("classsr_fsrcnn_x4_3_joint.py", data, p3, 2,
                           load_from=str(p2 / "iter_2.pth"), **hard)).train()
    runner = Runner.from_cfg(config("classsr_fsrcnn_x4_3_joint.py", data, p3, 4, resume=True, load_from=None,
                                    **hard))
    runner.train()
    assert runner.iter == 4
    iters = [r["iter"] for r in scalars(p3) if "loss_pix" in r]
    assert iters == [1, 2, 3, 4]
    assert os.path.exists(p3 / "iter_4.pth")

    # from the Runner's checkpoint and its config to export and infer, weights_only throughout
    from classsr_plugin import ClassSR
    from classsr_plugin.cli import main
    cfg = os.path.join(CONFIGS, "classsr_fsrcnn_x4_3_joint.py")
    assert main(["export", "-opt", cfg, "-w", str(p3 / "iter_4.pth"), "-o", str(tmp_path / "x.pth")]) == 0
    exported = ClassSR.from_checkpoint(str(tmp_path / "x.pth"))
    state = load_local_checkpoint(str(p3 / "iter_4.pth"))["state_dict"]
    assert torch.equal(exported.branches[0].last.weight, state["generator.branches.0.last.weight"])
    photo = data / "val" / "lr"
    assert main(["infer", "-opt", cfg, "-w", str(p3 / "iter_4.pth"), str(photo), "-o", str(tmp_path / "inf")]) == 0
    (lr_path,) = glob.glob(str(photo / "*.png"))
    stem = os.path.splitext(os.path.basename(lr_path))[0]
    assert os.listdir(tmp_path / "inf") == [f"{stem}_x4.png"]
    from classsr_plugin.imageio import to_uint
    want = to_uint(exported.restore_image(read_picture(lr_path).rgb).image)  # the same weights, as infer runs
    assert np.array_equal(cv2.imread(str(tmp_path / "inf" / f"{stem}_x4.png")), want)


def test_bad_data_root_names_the_file(tmp_path):
    from classsr_plugin.registry.mmengine import ClassSRSubImages
    with pytest.raises(FileNotFoundError, match="meta_info.txt"):
        ClassSRSubImages(data_root=str(tmp_path))


@pytest.mark.parametrize("share", [0.9, 1.0])
def test_collapse_warning_names_the_weight(data, tmp_path, share):
    cfg = config("classsr_fsrcnn_x4_2_classifier.py", data, tmp_path / "c", 2,
                 **{"model.average_loss.loss_weight": 0.0, "optim_wrapper.optimizer.lr": 0.0, "load_from": None,
                    "model.allow_untrained": True, "model.collapse_share": share})
    runner = Runner.from_cfg(cfg)
    # every logit bias towards the widest branch: a collapsed classifier
    with torch.no_grad():
        runner.model.generator.classifier.fc.bias.copy_(torch.tensor([-50.0, -50.0, 50.0]))
    runner.train()
    log = open(glob.glob(str(tmp_path / "c" / "*" / "*.log"))[0]).read()
    if share == 1.0:  # the model's option is the hook's limit: 100% of the sub-images is not above it
        assert "class collapse" not in log
        return
    assert "class collapse" in log and "average_loss.loss_weight (now 0.0)" in log
    assert "pixel_loss.loss_weight (now 1000.0)" in log


def test_checkpoint_loader_allows_only_history_buffer_methods():
    import pickle

    from mmengine.logging import HistoryBuffer

    from classsr_plugin.registry.mmengine import _history_getattr
    assert _history_getattr(HistoryBuffer, "mean") is HistoryBuffer.mean
    for obj, name in ((HistoryBuffer, "__init__"), (os, "system"), (HistoryBuffer, "nope")):
        with pytest.raises(pickle.UnpicklingError, match="not allowed"):
            _history_getattr(obj, name)


def test_ddp_two_processes_on_cpu(data, tmp_path):
    import subprocess
    import sys
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29633",
           "-m", "classsr_plugin.cli", "mmtrain", os.path.join(CONFIGS, "classsr_fsrcnn_x4_1_branches.py"),
           "--launcher", "pytorch", "--work-dir", str(tmp_path), "--cfg-options",
           f"train_dataloader.dataset.data_root={data / 'sub'}", f"val_dataloader.dataset.data_root={data / 'val'}",
           "train_cfg.max_iters=2", "train_cfg.val_interval=2", "train_dataloader.num_workers=0",
           "train_dataloader.batch_size=4", "val_dataloader.num_workers=0", "default_hooks.logger.interval=1",
           f"model.init_base={data / 'base.pth'}"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    log = open(glob.glob(str(tmp_path / "*" / "*.log"))[0]).read()
    assert "Distributed training: True" in log and "MMDistributedDataParallel" in log
    assert os.path.exists(tmp_path / "iter_2.pth")
    assert [r["iter"] for r in scalars(tmp_path) if "loss_pix" in r] == [1, 2]


def test_mmagic_config_here_says_make_mmagic_env(tmp_path):
    """README's MMagic command run in the BasicSR environment (.venv: no mmagic, no mmcv): one
    line naming `make mmagic-env`, no traceback, no work dir written."""
    import importlib.util
    import subprocess
    import sys
    if importlib.util.find_spec("mmagic") is not None:
        pytest.skip("mmagic is installed in this environment: the message is for one without it")
    config = os.path.join(os.path.dirname(CONFIGS), "mmagic", "classsr_msrresnet_x4_1_branches.py")
    run = subprocess.run([os.path.join(os.path.dirname(sys.executable), "classsr"), "mmtrain", config,
                          "--work-dir", str(tmp_path / "w")], capture_output=True, text=True, timeout=300)
    assert run.returncode == 2, run.stderr[-2000:]
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "`make mmagic-env`" in lines[0] and ".venv-mmagic/bin/classsr" in lines[0], run.stderr
    assert not os.path.exists(tmp_path / "w")
