"""The MMagic path with real mmagic, mmengine and mmcv (its compiled ops, built for this torch by
scripts/build_mmcv.sh) on CPU: ClassSR around MMagic's MSRResNet, EDSRNet, RRDBNet and SwinIRNet;
README's `classsr mmtrain configs/mmagic/...` commands, each phase for a few iterations on tiny
data, validation through MMagic's PSNR/SSIM with class shares and FLOPs %, a resume, and the
configs under the steps of MMagic's own tools/train.py."""
import os
import subprocess
import sys

import pytest
import torch

mmagic = pytest.importorskip("mmagic", reason="mmagic is not installed in this environment "
                             "(`make test` runs this file in .venv-mmagic)")
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402

import classsr_plugin.registry.mmagic  # noqa: E402,F401
from classsr_plugin.cli import main as classsr  # noqa: E402
from classsr_plugin.registry.mmengine import load_local_checkpoint  # noqa: E402
from mm_helpers import base_checkpoint, scalars, small_data  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "mmagic")
SMALL = {  # the shipped generators, shrunk so CPU tests stay short (as --cfg-options on the command line)
    "msrresnet": dict(num_blocks=2, mid_channels=16),
    "edsr": dict(num_blocks=2, mid_channels=16),
    "rrdbnet": dict(num_blocks=1, mid_channels=16, growth_channels=8),
    "swinir": dict(depths=[2], num_heads=[2], embed_dim=16),
}


def test_mmcv_ops_are_compiled_and_run_on_cpu():
    """The mmcv here is the one scripts/build_mmcv.sh built: its compiled ops load and compute."""
    import mmcv
    import mmcv._ext  # noqa: F401
    from mmcv.ops import ModulatedDeformConv2dPack, nms
    assert mmcv.__version__ == "2.1.0"
    boxes = torch.tensor([[0., 0., 10., 10.], [1., 1., 11., 11.], [20., 20., 30., 30.]])
    _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7]), iou_threshold=0.5)
    assert keep.tolist() == [0, 2]  # the second box overlaps the first by 68%
    conv = ModulatedDeformConv2dPack(4, 8, 3, padding=1)  # zero offsets, mask 0.5 at init
    x = torch.rand(1, 4, 9, 9)
    expected = torch.nn.functional.conv2d(x, conv.weight, padding=1) * 0.5 + conv.bias.view(1, -1, 1, 1)
    assert torch.allclose(conv(x), expected, atol=1e-5)


def load_config(name, **small):
    init_default_scope("mmagic")  # as the Runner does from the config's default_scope
    cfg = Config.fromfile(os.path.join(CONFIGS, name))
    cfg.model.generator.base.update(small)
    return cfg


@pytest.mark.parametrize("net", sorted(SMALL))
def test_wraps_each_mmagic_generator(net):
    from mmagic.registry import MODELS
    cfg = load_config(f"classsr_{net}_x4_1_branches.py", **SMALL[net])
    cfg.model.freeze_widest = False  # no trained base to start from: nothing is trained here
    model = MODELS.build(cfg.model)
    gen = model.generator
    assert gen.scale == 4 and len(gen.branches) == 3
    assert gen.widths[-1] == SMALL[net].get("embed_dim", SMALL[net].get("mid_channels"))
    assert gen.widths[0] < gen.widths[1] < gen.widths[2]
    costs = gen.tile_cost(32).branches
    assert costs[0] < costs[1] < costs[2]
    model.eval()
    out = model(torch.rand(2, 3, 32, 32), mode="tensor")
    assert out.shape == (2, 3, 128, 128)
    res = gen.restore_image(torch.rand(3, 37, 45))
    assert res.image.shape == (3, 148, 180)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return small_data(tmp_path_factory.mktemp("mmagic_data"))


def options(net, data, iters, *more):
    """README's command's --cfg-options for a short CPU run: tiny data, the generator shrunk."""
    small = [f"model.generator.base.{k}={v}".replace(" ", "") for k, v in SMALL[net].items()]
    return [f"train_dataloader.dataset.data_root={data / 'sub'}", f"val_dataloader.dataset.data_root={data / 'val'}",
            "train_dataloader.batch_size=4", "train_dataloader.num_workers=0", "val_dataloader.num_workers=0",
            f"train_cfg.max_iters={iters}", f"train_cfg.val_interval={iters}", "default_hooks.checkpoint.interval=2",
            "default_hooks.logger.interval=1", *small, *more]


def mmtrain(config, work_dir, opts, resume=False):
    """`classsr mmtrain configs/mmagic/CONFIG --work-dir W [--resume] --cfg-options ...`, as README writes it."""
    argv = ["mmtrain", os.path.join(CONFIGS, config), "--work-dir", str(work_dir)] + (["--resume"] if resume else [])
    assert classsr(argv + ["--cfg-options", *opts]) == 0


def check_logged_psnr(net, config, work_dir, ckpt, data):
    """The PSNR and FLOPs % the run logged, against the saved generator run on the validation
    image by hand and MMagic's own psnr function."""
    from classsr_plugin import checkpoint
    from classsr_plugin.imageio import read_picture
    from mmagic.evaluation.metrics.psnr import psnr
    from mmagic.registry import MODELS
    val = [r for r in scalars(work_dir) if "PSNR" in r]
    assert val, f"{work_dir}: no validation logged"
    gen = MODELS.build(load_config(config, **SMALL[net]).model.generator)
    gen.load_state_dict(checkpoint.state_dict(load_local_checkpoint(str(work_dir / ckpt))))
    (lr_path,) = [os.path.join(data / "val" / "lr", f) for f in os.listdir(data / "val" / "lr")]
    res = gen.eval().restore_image(read_picture(lr_path).rgb, execution="tiles")  # as validation runs
    hr = read_picture(lr_path.replace("/lr/", "/hr/")).rgb
    to255 = lambda t: (t.clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()  # noqa: E731
    expected = psnr(to255(res.image), to255(hr), crop_border=4)
    assert val[-1]["PSNR"] == pytest.approx(expected, abs=0.05)
    assert val[-1]["classsr/flops_percent"] == pytest.approx(gen.tile_cost(32).percent(res.counts), abs=1e-4)


@pytest.mark.parametrize("net", sorted(SMALL))
def test_readme_commands_three_phases_and_resume(net, data, tmp_path):
    """README's three `classsr mmtrain configs/mmagic/classsr_NET_x4_*.py` commands in turn (each
    starting from the last one's checkpoint), then `--resume` of a stopped phase."""
    from mmagic.registry import MODELS
    name = f"classsr_{net}_x4_%s.py"
    base = MODELS.build(dict(load_config(name % "1_branches", **SMALL[net]).model.generator.base))
    p1, p2, p3 = tmp_path / "p1", tmp_path / "p2", tmp_path / "p3"
    mmtrain(name % "1_branches", p1, options(net, data, 4, f"model.init_base={base_checkpoint(base, tmp_path / 'b.pth')}",
                                             "model.init_narrow=slice"))
    assert [r["iter"] for r in scalars(p1) if "loss_pix" in r] == [1, 2, 3, 4]
    check_logged_psnr(net, name % "1_branches", p1, "iter_4.pth", data)
    widest = {k: v for k, v in load_local_checkpoint(str(p1 / "iter_4.pth"))["state_dict"].items()
              if k.startswith("generator.branches.2.")}
    assert all(torch.equal(v, base.state_dict()[k.split(".", 3)[3]]) for k, v in widest.items())  # frozen

    # phase 2 trains the classifier only
    mmtrain(name % "2_classifier", p2, options(net, data, 2, f"load_from={p1 / 'iter_4.pth'}"))
    check_logged_psnr(net, name % "2_classifier", p2, "iter_2.pth", data)
    before = load_local_checkpoint(str(p1 / "iter_4.pth"))["state_dict"]
    after = load_local_checkpoint(str(p2 / "iter_2.pth"))["state_dict"]
    assert {k.split(".")[1] for k in before if not torch.equal(before[k], after[k])} == {"classifier"}

    # phase 3 stopped after 2 of 4 iterations, then resumed (torch's weights_only loading)
    mmtrain(name % "3_joint", p3, options(net, data, 2, f"load_from={p2 / 'iter_2.pth'}"))
    mmtrain(name % "3_joint", p3, options(net, data, 4, "load_from=None"), resume=True)
    assert [r["iter"] for r in scalars(p3) if "loss_pix" in r] == [1, 2, 3, 4]
    check_logged_psnr(net, name % "3_joint", p3, "iter_4.pth", data)
    joint = load_local_checkpoint(str(p3 / "iter_4.pth"))["state_dict"]
    changed = {k.split(".")[1] for k in after if not torch.equal(after[k], joint[k])}
    assert changed == {"classifier", "branches"}


def test_init_base_takes_an_mmagic_checkpoint(tmp_path):
    from mmagic.registry import MODELS
    cfg = load_config("classsr_msrresnet_x4_1_branches.py", **SMALL["msrresnet"])
    base = MODELS.build(dict(cfg.model.generator.base))
    # as MMagic saves an editor: the generator's weights under state_dict, prefixed
    torch.save({"state_dict": {f"generator.{k}": v for k, v in base.state_dict().items()}},
               tmp_path / "base.pth")
    cfg.model.init_base = str(tmp_path / "base.pth")
    model = MODELS.build(cfg.model)
    model.init_weights()
    for k, v in base.state_dict().items():
        assert torch.equal(model.generator.branches[-1].state_dict()[k], v)


# MMagic 1.2.0's tools/train.py (not in the pip package) does, for one process: parse its flags,
# Config.fromfile (which runs the config's custom_imports), set launcher, merge --cfg-options,
# set work_dir, Runner.from_cfg(cfg).train(). The same steps, in a fresh interpreter, so that
# nothing but the config's custom_imports registers the plugin.
TOOLS_TRAIN_STEPS = """
import sys
from mmengine.config import Config, DictAction
from mmengine.runner import Runner
from mmagic.utils import print_colored_log  # tools/train.py's one mmagic import
import argparse
p = argparse.ArgumentParser()
p.add_argument('config'); p.add_argument('--work-dir'); p.add_argument('--cfg-options', nargs='+', action=DictAction)
args = p.parse_args()
cfg = Config.fromfile(args.config)
cfg.launcher = 'none'
cfg.merge_from_dict(args.cfg_options)
cfg.work_dir = args.work_dir
assert 'classsr_plugin.registry.mmagic' in sys.modules  # by custom_imports
Runner.from_cfg(cfg).train()
"""


def test_mmagic_tools_train_steps_run_a_config(data, tmp_path):
    from mmagic.registry import MODELS
    base = MODELS.build(dict(load_config("classsr_edsr_x4_1_branches.py", **SMALL["edsr"]).model.generator.base))
    opts = options("edsr", data, 2, f"model.init_base={base_checkpoint(base, tmp_path / 'b.pth')}")
    run = subprocess.run([sys.executable, "-c", TOOLS_TRAIN_STEPS, os.path.join(CONFIGS, "classsr_edsr_x4_1_branches.py"),
                          "--work-dir", str(tmp_path / "w"), "--cfg-options", *opts],
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    check_logged_psnr("edsr", "classsr_edsr_x4_1_branches.py", tmp_path / "w", "iter_2.pth", data)
