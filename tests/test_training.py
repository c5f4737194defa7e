"""The training issue end to end, with real basicsr: prepare -> each phase -> resume -> validate,
a 2-process CPU DDP run, and a learning check of the classifier phase."""
import os
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.losses import build_loss

from classsr_plugin import ClassSR, register_arch
from classsr_plugin.data import prepare, prepare_whole, read_meta
from classsr_plugin.phases import PhaseSettings, set_phase

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIGS = os.path.join(ROOT, "configs", "basicsr")
CLASSSR = [sys.executable, "-m", "classsr_plugin.cli"]


def photos(folder, names=("astronaut", "coffee", "chelsea"), size=160):
    from skimage import data
    os.makedirs(folder, exist_ok=True)
    for name in names:
        img = getattr(data, name)()[:size, :size]
        cv2.imwrite(os.path.join(folder, f"{name}.png"), img[:, :, ::-1])
    return folder


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    hr = photos(str(root / "hr"))
    # non-RGB inputs are converted, a corrupt file is reported and skipped
    gray16 = (cv2.cvtColor(cv2.imread(os.path.join(hr, "coffee.png")), cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257)
    cv2.imwrite(os.path.join(hr, "gray16.png"), gray16)
    rgba = cv2.cvtColor(cv2.imread(os.path.join(hr, "chelsea.png")), cv2.COLOR_BGR2BGRA)
    cv2.imwrite(os.path.join(hr, "rgba.png"), rgba)
    (root / "hr" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    rep = prepare(hr, str(root / "sub"), scale=4, classes=3, scales=(1.0, 0.8), stride=16, progress=False)
    val_hr = photos(str(root / "val_hr"), names=("rocket",), size=200)
    prepare_whole(val_hr, str(root / "val"), scale=4)
    return root, rep


def test_prepare_ranks_sub_images_and_resumes(dataset):
    root, rep = dataset
    assert [os.path.basename(p) for p, _ in rep.skipped] == ["corrupt.png"]
    assert "corrupt.png" in open(root / "sub" / "skipped.txt").read()
    assert len(rep.done) == 5 and rep.pairs == sum(rep.counts)
    assert max(rep.counts) - min(rep.counts) <= 1  # equal-count classes
    items = read_meta(str(root / "sub" / "meta_info.txt"))
    assert len(items) == rep.pairs
    by_class = {k: [p for _, p, c in items if c == k] for k in range(3)}
    assert min(by_class[0]) >= max(by_class[1]) and min(by_class[1]) >= max(by_class[2])  # class 2 = hardest
    name = items[0][0]
    lq = cv2.imread(str(root / "sub" / "lq" / f"{name}.png"))
    gt = cv2.imread(str(root / "sub" / "gt" / f"{name}.png"))
    assert lq.shape == (32, 32, 3) and gt.shape == (128, 128, 3)
    again = prepare(str(root / "hr"), str(root / "sub"), scale=4, classes=3, scales=(1.0, 0.8), progress=False)
    assert again.done == [] and len(again.resumed) == 5 and again.pairs == rep.pairs


def test_prepare_bad_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="empty: no images"):
        prepare(str(tmp_path / "empty"), str(tmp_path / "out"), progress=False)
    hr = photos(str(tmp_path / "hr"), names=("astronaut", "coffee"))
    lr = tmp_path / "lr"
    lr.mkdir()
    cv2.imwrite(str(lr / "astronaut.png"), np.zeros((40, 40, 3), np.uint8))   # 160 = 4 x 40: fine
    cv2.imwrite(str(lr / "coffee.png"), np.zeros((41, 40, 3), np.uint8))      # mismatched
    rep = prepare(hr, str(tmp_path / "out"), scales=(1.0,), lr_dir=str(lr), progress=False)
    assert [os.path.basename(p) for p in rep.done] == ["astronaut.png"]
    (path, reason), = rep.skipped
    assert path.endswith("coffee.png") and "HR 160x160 is not 4 x its LR 40x41" in reason
    # the CLI reports a bad folder without a traceback
    out = subprocess.run(CLASSSR + ["prepare", "--hr", str(tmp_path / "nope"), "--out", str(tmp_path / "o")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "nope: not a folder" in out.stderr


def train(cwd, config, *overrides, launcher=None, flags=()):
    """Run `classsr train` in a fresh process (BasicSR's logger is process-global); `config`: a
    file in configs/basicsr or a path. The tests folder is importable there (custom_imports)."""
    cmd = CLASSSR + ["train", "-opt", os.path.join(CONFIGS, config)]
    if launcher:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
               "--master_port=29561", "-m", "classsr_plugin.cli", "train", "-opt",
               os.path.join(CONFIGS, config), "--launcher", "pytorch"]
    cmd += [*flags, "--force_yml", "num_gpu=0", "datasets:train:num_worker_per_gpu=0",
            "datasets:train:batch_size_per_gpu=8", "logger:print_freq=2", "logger:use_tb_logger=false",
            *overrides]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.dirname(__file__), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    return log


@pytest.fixture(scope="module")
def workdir(dataset):
    root, _ = dataset
    os.makedirs(root / "run" / "datasets", exist_ok=True)
    for name, target in (("classsr_x4", "sub"), ("classsr_val_x4", "val")):
        link = root / "run" / "datasets" / name
        if not link.exists():
            os.symlink(root / target, link)
    # the base network ClassSR wraps, trained first: the widest branch, frozen in every phase
    torch.manual_seed(1)
    base = ClassSR(base={"type": "FSRCNN", "d": 56}).build_base()
    torch.save({"params": base.state_dict()}, root / "run" / "base.pth")
    return root / "run"


def base_output(workdir, lq):
    from classsr_plugin.archs.fsrcnn import FSRCNN
    net = FSRCNN(residual=True)  # as the shipped FSRCNN configs build it
    net.load_state_dict(torch.load(workdir / "base.pth", weights_only=True)["params"])
    # in ClassSR's branch layout: NCHW and channels_last convolutions may round differently
    cl = torch.channels_last
    with torch.no_grad():
        return net.eval().to(memory_format=cl)(lq.contiguous(memory_format=cl))


def test_three_phases_resume_and_validate(workdir):
    short = ["train:total_iter=4", "val:val_freq=4", "logger:save_checkpoint_freq=2"]
    log1 = train(workdir, "ClassSR_FSRCNN_x4_1_branches.yml", *short, f"classsr:init_base={workdir / 'base.pth'}",
                 "classsr:distill=0.5")
    assert "l_distill" in log1
    assert "phase 'branches'" in log1 and "l_pix" in log1 and "l_class" not in log1
    assert re.search(r"# psnr: \d+\.\d+", log1) and re.search(r"# ssim_y: 0\.\d+", log1)
    assert re.search(r"classes \(narrow\.\.wide\) \[\d+, \d+, \d+\].*FLOPs \d+\.\d% of the base", log1)

    log2 = train(workdir, "ClassSR_FSRCNN_x4_2_classifier.yml", *short)
    assert "phase 'classifier'" in log2 and "l_class" in log2 and "l_average" in log2
    assert "Loading ClassSR model from experiments/ClassSR_FSRCNN_x4_1_branches/models/net_g_latest.pth" in log2
    # the widest branch stayed the base network through phases 1 and 2: forced to it, ClassSR is the base
    for phase in ("1_branches", "2_classifier"):
        model = ClassSR(base={"type": "FSRCNN", "d": 56, "residual": True}, classifier={"type": "ClassModule", "nf": 32})
        model.load_state_dict(torch.load(workdir / "experiments" / f"ClassSR_FSRCNN_x4_{phase}" / "models" /
                                         "net_g_latest.pth", weights_only=True)["params"])
        lq = torch.rand(4, 3, 32, 32)
        with torch.no_grad():
            assert torch.equal(model.eval()(lq, force_class=2).out, base_output(workdir, lq))

    # joint phase: stop at 4, then resume with --auto_resume to 6: same phase, state restored
    train(workdir, "ClassSR_FSRCNN_x4_3_joint.yml", *short)
    states = sorted(os.listdir(workdir / "experiments" / "ClassSR_FSRCNN_x4_3_joint" / "training_states"))
    assert states == ["2.state", "4.state"]
    log3b = train(workdir, "ClassSR_FSRCNN_x4_3_joint.yml", "train:total_iter=6", "val:val_freq=6",
                  "logger:save_checkpoint_freq=2", flags=["--auto_resume"])
    assert "Resuming training from epoch" in log3b and "iter: 4." in log3b
    assert "iter:       6" in log3b and "phase 'joint'" in log3b
    assert not re.search(r"iter:\s+[1-3],", log3b)  # did not restart from scratch
    assert os.path.exists(workdir / "experiments" / "ClassSR_FSRCNN_x4_3_joint" / "models" / "net_g_6.pth")


def test_supernet_phase_in_basicsr(workdir):
    log = train(workdir, "ClassSR_FSRCNN_x4_1_supernet.yml", "train:total_iter=2", "val:val_freq=2",
                "logger:save_checkpoint_freq=2", f"classsr:init_base={workdir / 'base.pth'}")
    assert "phase 'supernet'" in log and "l_distill" in log and "0 frozen" in log
    state = torch.load(workdir / "experiments" / "ClassSR_FSRCNN_x4_1_supernet" / "models" / "net_g_latest.pth",
                       weights_only=True)["params"]
    assert not [k for k in state if k.startswith("branches.0.")]  # one network's parameters
    base = torch.load(workdir / "base.pth", weights_only=True)["params"]
    assert not torch.equal(state["branches.2.last.weight"], base["last.weight"])  # the widest trained too


def test_ddp_two_processes_on_cpu(workdir):
    """Two processes, each on its own sub-images, hold the same weights after every step: DDP
    averaged their gradients (ddp_ranks.py writes each process's weights when BasicSR saves)."""
    import yaml
    with open(os.path.join(CONFIGS, "ClassSR_FSRCNN_x4_1_branches.yml")) as f:
        opt = yaml.safe_load(f)
    opt.update(model_type="RankWeightsModel", custom_imports=["ddp_ranks"])
    (workdir / "ddp.yml").write_text(yaml.safe_dump(opt))
    log = train(workdir, str(workdir / "ddp.yml"), "name=ddp_branches", "train:total_iter=4",
                f"classsr:init_base={workdir / 'base.pth'}", "datasets:train:dataset_enlarge_ratio=4",
                "val:val_freq=4", "logger:save_checkpoint_freq=2", launcher="pytorch")
    assert "World size (gpu number): 2" in log and "iter:       4" in log
    ranks = workdir / "experiments" / "ddp_branches" / "ranks"
    state = {(it, r): torch.load(ranks / f"{it}_rank{r}.pth", weights_only=True) for it in (2, 4) for r in (0, 1)}
    for it in (2, 4):
        assert all(torch.equal(v, state[it, 1][k]) for k, v in state[it, 0].items()), f"iteration {it}"
    moved = [k for k, v in state[2, 0].items() if not torch.equal(v, state[4, 0][k])]
    assert moved and {k.split(".")[1] for k in moved} == {"0", "1"}  # the narrow branches trained; widest frozen


def test_collapse_warning(workdir, caplog):
    from basicsr.models import build_model
    import yaml
    with open(os.path.join(CONFIGS, "ClassSR_FSRCNN_x4_2_classifier.yml")) as f:
        opt = yaml.safe_load(f)
    opt.update(num_gpu=0, dist=False, is_train=True, rank=0, world_size=1)
    opt["path"]["pretrain_network_g"] = None
    with pytest.raises(ValueError, match="path.pretrain_network_g: phase 'classifier' trains over the branches"):
        build_model(opt)  # no trained branches: refused unless asked for
    opt["classsr"]["allow_untrained"] = True
    model = build_model(opt)
    model._window = torch.tensor([95.0, 3.0, 2.0])
    import logging
    logger = logging.getLogger("basicsr")
    logger.addHandler(caplog.handler)
    try:
        model._check_collapse(100)
    finally:
        logger.removeHandler(caplog.handler)
    assert "class 0 took 95%" in caplog.text and "average_opt.loss_weight (now 3)" in caplog.text
    assert "pixel_opt.loss_weight (now 1000)" in caplog.text


def test_resume_keeps_the_trained_classifier(workdir, tmp_path):
    """classsr.reset_classifier starts phase 2 from a fresh classifier, but a resumed run loads its
    own checkpoint: that classifier is the trained one and must stay."""
    from basicsr.models import build_model
    import yaml
    with open(os.path.join(CONFIGS, "ClassSR_FSRCNN_x4_2_classifier.yml")) as f:
        opt = yaml.safe_load(f)
    opt.update(num_gpu=0, dist=False, is_train=True, rank=0, world_size=1)
    torch.manual_seed(3)
    trained = ClassSR(base={"type": "FSRCNN", "d": 56, "residual": True}, classifier={"type": "ClassModule", "nf": 32})
    torch.save({"params": trained.state_dict()}, tmp_path / "net_g_6.pth")
    opt["path"]["pretrain_network_g"] = str(tmp_path / "net_g_6.pth")
    opt["classsr"]["reset_classifier"] = True
    kept = {k: v for k, v in trained.state_dict().items() if k.startswith("classifier.")}

    def classifier_kept(resume_state):
        opt["path"]["resume_state"] = resume_state
        state = build_model(opt).bare.state_dict()
        return all(torch.equal(state[k].cpu(), v) for k, v in kept.items())

    assert not classifier_kept(None)  # a new phase: the previous phase's classifier is replaced
    assert classifier_kept(str(tmp_path / "6.state"))  # a resume: the run's own classifier stays


# -- learning check --------------------------------------------------------------------------
@register_arch
class BlendUp(nn.Module):
    """x2 upsampler whose quality on texture is set by `sharp`: nearest (exact for the synthetic
    ground truth below) blended with bilinear (exact only on flat tiles). num_feat sets its cost."""

    def __init__(self, num_feat=8, sharp=1.0):
        super().__init__()
        self.sharp = nn.Parameter(torch.tensor(float(sharp)))
        self.cost = nn.Conv2d(3, num_feat, 1)

    def forward(self, x):
        near = F.interpolate(x, scale_factor=2, mode="nearest")
        bil = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        return self.sharp * near + (1 - self.sharp) * bil + 0 * self.cost(x).mean()


def synthetic(n, gen):
    """Half flat tiles (one colour), half textured (random black/white pixels). Ground truth:
    nearest x2, so only the sharp branch restores texture; both are exact on flat tiles."""
    flat = torch.rand(n // 2, 3, 1, 1, generator=gen).expand(-1, -1, 16, 16)
    tex = (torch.rand(n - n // 2, 1, 16, 16, generator=gen) > 0.5).float().expand(-1, 3, -1, -1)
    lq = torch.cat([flat, tex])
    is_tex = torch.arange(n) >= n // 2
    return lq, F.interpolate(lq, scale_factor=2, mode="nearest"), is_tex


def test_classifier_phase_learns_difficulty():
    # two classes for two kinds of tile: the average loss asks for an even split, so only the
    # flat/textured split satisfies every loss at once
    model = ClassSR(base={"type": "BlendUp", "num_feat": 8}, num_classes=2, widths=[4, 8], probe_tile=16)
    model.branches[0].sharp.data.fill_(0.0)  # frozen: bilinear, wrong on texture
    model.branches[1].sharp.data.fill_(1.0)  # frozen: exact
    settings = PhaseSettings(phase="classifier")
    settings.freeze(model)
    # The reference weights (1000 : 0.5 : 3) suit real SR, where branches differ by ~1e-3 in L1;
    # here they differ by ~0.3, so the pixel weight is scaled down to keep the same balance.
    pixel = build_loss({"type": "L1Loss", "loss_weight": 10})
    cls = build_loss({"type": "ClassLoss", "loss_weight": 0.5})
    avg = build_loss({"type": "AverageLoss", "loss_weight": 3})
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(150):
        lq, gt, _ = synthetic(32, gen)
        terms, _, _ = settings.forward_losses(model, lq, gt, None, pixel, cls, avg)
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    lq, _, is_tex = synthetic(200, torch.Generator().manual_seed(1))
    with torch.no_grad():
        idx = model(lq, run_branches=False).idx
    assert (idx[~is_tex] == 0).float().mean() > 0.8, idx[~is_tex].bincount(minlength=2)
    assert (idx[is_tex] == 1).float().mean() > 0.8, idx[is_tex].bincount(minlength=2)


def test_prepare_with_reference_network(tmp_path):
    import yaml
    hr = photos(str(tmp_path / "hr"), names=("astronaut",), size=200)
    net = ClassSR(base={"type": "FSRCNN", "d": 16}).build_base()
    torch.save({"params": net.state_dict()}, tmp_path / "fsrcnn.pth")
    ref = tmp_path / "ref.yml"
    ref.write_text(yaml.safe_dump({"network_g": {"type": "FSRCNN", "d": 16, "upscale": 4},
                                   "path": {"pretrain_network_g": str(tmp_path / "fsrcnn.pth")}}))
    out = subprocess.run(CLASSSR + ["prepare", "--hr", hr, "--out", str(tmp_path / "o"), "--ref", str(ref),
                                    "--scales", "1"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "ref.yml PSNR" in open(tmp_path / "o" / "meta_info.txt").readline()
    # resuming with another scorer would mix two difficulty scales: refused
    with pytest.raises(ValueError, match="scorer: 'bicubic' now, 'ref.yml' before"):
        prepare(hr, str(tmp_path / "o"), scales=(1.0,), progress=False)


def test_slice_init_copies_leading_channels():
    from classsr_plugin.phases import slice_init
    model = ClassSR(base={"type": "FSRCNN", "d": 56})
    n = slice_init(model.branches[0], model.branches[-1])
    assert n == len(model.branches[0].state_dict())
    narrow, wide = model.branches[0].body[0].weight, model.branches[-1].body[0].weight
    assert torch.equal(narrow, wide[:16])


def test_frozen_branches_keep_their_batchnorm_statistics():
    model = ClassSR(base={"type": "DnCNN", "num_feat": 16, "num_layers": 4})
    set_phase(model, "classifier")
    model.train()
    before = {k: v.clone() for k, v in model.branches.state_dict().items()}
    pixel = build_loss({"type": "L1Loss"})
    lq = torch.rand(8, 3, 32, 32)
    terms, _, _ = PhaseSettings(phase="classifier").forward_losses(model, lq, lq, None, pixel)
    sum(terms.values()).backward()
    assert all(torch.equal(before[k], v) for k, v in model.branches.state_dict().items())
    assert model.classifier.training
    set_phase(model, "joint")
    model.train()
    assert model.branches.training


def test_hard_routing_outputs_the_chosen_branch_and_trains_the_classifier():
    model = ClassSR(base={"type": "FSRCNN", "d": 16, "s": 8, "m": 1, "upscale": 2}).train()
    x = torch.rand(6, 3, 16, 16)
    out, logits, idx = model(x, hard=True)
    with torch.no_grad():
        assert torch.equal(idx, logits.argmax(1))
        chosen = torch.stack([model.branches[int(k)](x[i:i + 1])[0] for i, k in enumerate(idx)])
    assert torch.allclose(out, chosen, atol=1e-6)
    out.abs().mean().backward()
    assert model.classifier.fc.weight.grad.abs().sum() > 0
    assert model.branches[int(idx[0])].parameters().__next__().grad.abs().sum() > 0
