"""The MMagic path with real mmagic and mmengine on CPU: ClassSR around MMagic's MSRResNet,
EDSRNet, RRDBNet and SwinIRNet; the three phases from the shipped configs in mmengine's Runner,
validation through MMagic's PSNR/SSIM with class shares and FLOPs %, a mid-phase resume."""
import os

import pytest
import torch

mmagic = pytest.importorskip("mmagic", reason="mmagic is not installed in this environment "
                             "(`make test` runs this file in .venv-mmagic)")
import mmcv_ext_stub  # noqa: E402

mmcv_ext_stub.install()
from mmengine.config import Config  # noqa: E402
from mmengine.registry import init_default_scope  # noqa: E402
from mmengine.runner import Runner  # noqa: E402

import classsr_plugin.registry.mmagic  # noqa: E402,F401
from classsr_plugin.registry.mmengine import load_local_checkpoint  # noqa: E402
from mm_helpers import base_checkpoint, scalars, short_run, small_data  # noqa: E402

CONFIGS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "mmagic")
SMALL = {  # the shipped generators, shrunk so CPU tests stay short
    "msrresnet": dict(num_blocks=2, mid_channels=16),
    "edsr": dict(num_blocks=2, mid_channels=16),
    "rrdbnet": dict(num_blocks=1, mid_channels=16, growth_channels=8),
    "swinir": dict(depths=[2], num_heads=[2], embed_dim=16),
}


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


def run_config(name, data, work_dir, iters, **extra):
    cfg = load_config(name, **SMALL["msrresnet"])
    cfg.merge_from_dict(short_run(data, work_dir, iters, **{"env_cfg.dist_cfg.backend": "gloo", **extra}))
    runner = Runner.from_cfg(cfg)
    runner.train()
    return runner


def test_three_phases_validate_and_resume(data, tmp_path):
    from mmagic.registry import MODELS
    p1 = tmp_path / "p1"
    base = MODELS.build(dict(load_config("classsr_msrresnet_x4_1_branches.py", **SMALL["msrresnet"]).model.generator.base))
    run_config("classsr_msrresnet_x4_1_branches.py", data, p1, 4, **{"model.init_narrow": "slice",
               "model.init_base": base_checkpoint(base, tmp_path / "base.pth")})
    val = [r for r in scalars(p1) if "PSNR" in r]
    # the logged numbers, cross-checked: the saved generator run on the validation image by hand
    from classsr_plugin import checkpoint
    from classsr_plugin.imageio import read_picture
    from mmagic.evaluation.metrics.psnr import psnr  # MMagic's PSNR, as its metric computes it
    gen = MODELS.build(load_config("classsr_msrresnet_x4_1_branches.py", **SMALL["msrresnet"]).model.generator)
    gen.load_state_dict(checkpoint.state_dict(load_local_checkpoint(str(p1 / "iter_4.pth"))))
    (lr_path,) = [os.path.join(data / "val" / "lr", f) for f in os.listdir(data / "val" / "lr")]
    res = gen.eval().restore_image(read_picture(lr_path).rgb, execution="tiles")  # as validation runs
    hr = read_picture(lr_path.replace("/lr/", "/hr/")).rgb
    to255 = lambda t: (t.clamp(0, 1) * 255).round().permute(1, 2, 0).numpy()  # noqa: E731
    assert val[-1]["PSNR"] == pytest.approx(psnr(to255(res.image), to255(hr), crop_border=4), abs=0.05)
    assert val[-1]["classsr/flops_percent"] == pytest.approx(gen.tile_cost(32).percent(res.counts), abs=1e-4)
    assert [r["iter"] for r in scalars(p1) if "loss_pix" in r] == [1, 2, 3, 4]

    # phase 2 trains the classifier only; phase 1's widest branch starts phase 2 unchanged
    p2 = tmp_path / "p2"
    run_config("classsr_msrresnet_x4_2_classifier.py", data, p2, 2, load_from=str(p1 / "iter_4.pth"))
    before = load_local_checkpoint(str(p1 / "iter_4.pth"))["state_dict"]
    after = load_local_checkpoint(str(p2 / "iter_2.pth"))["state_dict"]
    changed = {k.split(".")[1] for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"classifier"}

    # phase 3 stopped after 2 of 4 iterations, then resumed (torch's weights_only loading)
    p3 = tmp_path / "p3"
    run_config("classsr_msrresnet_x4_3_joint.py", data, p3, 2, load_from=str(p2 / "iter_2.pth"))
    runner = run_config("classsr_msrresnet_x4_3_joint.py", data, p3, 4, resume=True, load_from=None)
    assert runner.iter == 4
    assert [r["iter"] for r in scalars(p3) if "loss_pix" in r] == [1, 2, 3, 4]


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


def test_mmtrain_without_mmcv_ops_says_so_at_once(tmp_path):
    """As a user runs the README's MMagic command in this environment (mmcv-lite, no stand-in):
    one line naming the cause and the mmengine-only alternative, no traceback."""
    import subprocess
    import sys
    cfg = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "mmagic",
                       "classsr_msrresnet_x4_1_branches.py")
    run = subprocess.run([sys.executable, "-m", "classsr_plugin.cli", "mmtrain", cfg, "--work-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    import importlib.machinery
    import mmcv
    if importlib.machinery.PathFinder.find_spec("_ext", mmcv.__path__) is not None:  # on disk, not the stand-in
        pytest.skip("a full mmcv is installed here: the message is for mmcv-lite")
    assert run.returncode == 2, run.stderr[-2000:]
    assert "mmcv._ext" in run.stderr and "configs/mmengine/classsr_fsrcnn_x4_1_branches.py" in run.stderr
    assert "Traceback" not in run.stderr
