"""Scale-1 tasks (denoising, deblurring) through the same pipeline: prepare -> phases -> eval."""
import json
import os

import cv2
import numpy as np
import pytest
import torch

from classsr_plugin import ClassSR
from classsr_plugin.cli import main
from classsr_plugin.data import prepare, prepare_whole, read_meta
from classsr_plugin.data.degrade import Degradation
from test_training import CONFIGS, photos, train


def test_noise_is_reproducible_per_image_and_seed():
    img = np.full((40, 40, 3), 0.5, np.float32)
    d = Degradation("denoise", 1, sigma="25")
    a, b = d(img, "photo_s1.00"), d(img, "photo_s1.00")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, d(img, "other_s1.00"))
    assert not np.array_equal(a, Degradation("denoise", 1, sigma="25", seed=1)(img, "photo_s1.00"))
    assert abs((a - img).std() * 255 - 25) < 2.5
    blind = Degradation("denoise", 1, sigma="15-50")
    stds = {round(float((blind(img, f"k{i}") - img).std() * 255)) for i in range(6)}
    assert len(stds) > 2 and min(stds) >= 13 and max(stds) <= 52
    blur = Degradation("deblur", 1, blur="motion")
    assert np.array_equal(blur(img, "x"), blur(img, "x"))


@pytest.mark.parametrize("kwargs,match", [
    (dict(task="dehaze"), "--task: 'dehaze'"),
    (dict(task="denoise", scale=1), "--sigma: required"),
    (dict(task="denoise", scale=4, sigma="25"), "--scale: denoise is a scale-1 task"),
    (dict(task="denoise", scale=1, sigma="fifty"), "--sigma: expected a number"),
    (dict(task="deblur", scale=1, blur="box"), "--blur: 'box'"),
])
def test_bad_task_options(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Degradation(**kwargs)


def test_cli_task_errors(tmp_path, capsys):
    assert main(["prepare", "--task", "denoise", "--hr", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "--sigma: required for --task denoise" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["prepare", "--task", "dehaze", "--hr", str(tmp_path), "--out", str(tmp_path / "o")])
    assert "invalid choice: 'dehaze'" in capsys.readouterr().err


@pytest.mark.parametrize("h,w", [(1, 1), (31, 33), (77, 123)])
def test_scale1_output_size(h, w):
    model = ClassSR(base={"type": "DnCNN", "num_feat": 16, "num_layers": 4}).eval()
    assert model.scale == 1
    assert model.restore_image(torch.rand(3, h, w)).image.shape == (3, h, w)


TINY = ["network_g:base:num_feat=16", "network_g:base:num_layers=4", "train:total_iter=2", "val:val_freq=2",
        "logger:save_checkpoint_freq=2"]


@pytest.mark.parametrize("task,args,tag,init", [("denoise", dict(sigma="25"), "s25", "prune"),
                                                ("deblur", dict(blur="gaussian"), "gauss", "slice")])
def test_restoration_end_to_end(tmp_path, task, args, tag, init):
    deg = Degradation(task, 1, **args)
    hr = photos(str(tmp_path / "hr"), names=("astronaut", "coffee"), size=96)
    rep = prepare(hr, str(tmp_path / "run" / "datasets" / f"classsr_{task}"), classes=3, scales=(1.0,),
                  stride=16, progress=False, degradation=deg)
    assert rep.scorer == "input" and sum(rep.counts) == rep.pairs
    lq = cv2.imread(str(tmp_path / "run" / "datasets" / f"classsr_{task}" / "lq" / f"{read_meta(str(tmp_path / 'run' / 'datasets' / f'classsr_{task}' / 'meta_info.txt'))[0][0]}.png"))
    assert lq.shape == (32, 32, 3)
    val_hr = photos(str(tmp_path / "val_hr"), names=("chelsea",), size=75)  # odd size
    prepare_whole(val_hr, str(tmp_path / "run" / "datasets" / f"classsr_val_{task}"), degradation=deg)
    # the protocol: the plain DnCNN first, then ClassSR's branches with it as the frozen widest
    train(tmp_path / "run", f"DnCNN_{task}_{tag}_baseline.yml", "network_g:num_feat=16", "network_g:num_layers=4",
          *TINY[2:])
    base = tmp_path / "base.pth"
    assert main(["export", "-opt", os.path.join(CONFIGS, f"DnCNN_{task}_{tag}_baseline.yml"),
                 "-w", str(tmp_path / "run" / "experiments" / f"DnCNN_{task}_{tag}_baseline" / "models" /
                           "net_g_latest.pth"), "-o", str(base),
                 "--set", "network_g.num_feat=16", "network_g.num_layers=4"]) == 0
    for i, phase in ((1, "branches"), (2, "classifier"), (3, "joint")):
        extra = [f"classsr:init_base={base}", f"classsr:init_narrow={init}", "classsr:distill=1"] if i == 1 else []
        if i == 1 and init == "prune":  # DnCNN is a plain chain: its narrow branches reconstruct it
            extra.append(f"classsr:prune_data={tmp_path / 'run' / 'datasets' / f'classsr_{task}' / 'lq'}")
        log = train(tmp_path / "run", f"ClassSR_DnCNN_{task}_{tag}_{i}_{phase}.yml", *TINY, *extra)
        assert f"phase '{phase}'" in log and "# psnr:" in log and "FLOPs" in log
        assert (i == 1 and init == "prune") == ("narrow branches pruned from the widest" in log)
    ckpt = tmp_path / "run" / "experiments" / f"ClassSR_DnCNN_{task}_{tag}_3_joint" / "models" / "net_g_latest.pth"
    import yaml
    opt = yaml.safe_load(open(os.path.join(CONFIGS, f"ClassSR_DnCNN_{task}_{tag}_3_joint.yml")))
    opt["network_g"]["base"].update(num_feat=16, num_layers=4)
    opt["path"]["pretrain_network_g"] = str(ckpt)
    (tmp_path / "m.yml").write_text(yaml.safe_dump(opt))
    val = tmp_path / "run" / "datasets" / f"classsr_val_{task}"
    assert main(["eval", "-opt", str(tmp_path / "m.yml"), "--hr", str(val / "hr"), "--lr", str(val / "lr"),
                 "--scale", "1", "-o", str(tmp_path / "ev")]) == 0
    rows = json.load(open(tmp_path / "ev" / "eval.json"))["folders"]["hr"]["rows"]
    assert main(["infer", "-opt", str(tmp_path / "m.yml"), str(val / "lr"), "-o", str(tmp_path / "inf"),
                 "--exec", "tiles"]) == 0  # eval's protocol
    out = cv2.imread(str(tmp_path / "inf" / "chelsea_x1.png"))
    assert out.shape == (75, 75, 3)
    # eval's PSNR is infer's output against the clean image (scale 1: no border crop)
    from basicsr.metrics import calculate_psnr
    assert rows["ClassSR"]["images"] == 1
    assert rows["ClassSR"]["psnr"] == pytest.approx(calculate_psnr(out, cv2.imread(str(val / "hr" / "chelsea.png")), 0),
                                                    abs=1e-6)


def test_scale1_defaults_cut_as_many_pairs_per_photo_as_x4(tmp_path, capsys):
    """The stride follows the scale (16 at x4, 64 at scale 1), the count printed before cutting
    is the count cut, and --max-per-image caps a photo's pairs, evenly spaced."""
    from classsr_plugin.data.prepare import default_stride, estimate
    hr = photos(str(tmp_path / "hr"), names=("astronaut",), size=512)
    paths = [os.path.join(hr, f) for f in os.listdir(hr)]
    assert (default_stride(4), default_stride(1)) == (16, 64)
    sr = estimate(paths, 4, (1.0, 0.75), 32, 16)[0]
    dn = estimate(paths, 1, (1.0, 0.75), 32, 64)[0]
    assert 0.5 < dn / sr < 2, (sr, dn)  # at stride 16, scale 1 would cut 16x as many
    deg = Degradation("denoise", 1, sigma="25")
    out = str(tmp_path / "dn")
    rep = prepare(hr, out, classes=3, scales=(1.0, 0.75), progress=True, degradation=deg)
    assert rep.pairs == dn == rep.estimate[0] and f"about {dn} sub-image pairs" in capsys.readouterr().out
    assert rep.estimate[1] == dn * 32 * 32 * 3 * 2
    capped = prepare(hr, str(tmp_path / "cap"), classes=3, scales=(1.0, 0.75), degradation=deg,
                     max_per_image=20, progress=False)
    names = [n for n, _, _ in read_meta(os.path.join(str(tmp_path / "cap"), "meta_info.txt"))]
    assert capped.pairs == len(names) == capped.estimate[0] <= 20 and len(set(names)) == len(names)
    ys = sorted({int(n.split("_")[-2]) for n in names if "_s1.00_" in n})
    assert ys[0] == 0 and ys[-1] == 512 - 32  # spread over the photo, not its first rows
    with pytest.raises(ValueError, match="max_per_image: 30 now, 20 before"):
        prepare(hr, str(tmp_path / "cap"), classes=3, scales=(1.0, 0.75), degradation=deg, max_per_image=30,
                progress=False)


def test_eval_at_scale1_names_its_grid_and_shows_empty_classes_as_dashes(tmp_path):
    """The header states the stride eval ran (not the x4 default 28), and a class no tile went
    to reads "-", never nan."""
    torch.manual_seed(0)
    model = ClassSR(base={"type": "DnCNN", "num_feat": 16, "num_layers": 4},  # every tile to class 0
                    classifier={"type": "EdgeScore", "thresholds": [10.0, 20.0]}).eval()
    ckpt = str(tmp_path / "dn.pth")
    model.save(ckpt)
    hr = photos(str(tmp_path / "hr"), names=("astronaut",), size=96)
    val = str(tmp_path / "val")
    prepare_whole(hr, val, degradation=Degradation("denoise", 1, sigma="25"))
    out = tmp_path / "ev"
    assert main(["eval", "-opt", ckpt, "--hr", f"{val}/hr", "--lr", f"{val}/lr", "--scale", "1", "--stride", "24",
                 "--exec", "tiles", "-o", str(out)]) == 0
    md = (out / "eval.md").read_text()
    assert "32/24 grid" in md and "32/28" not in md
    assert "nan" not in md.lower()
    per_class = md[md.index("| routed to"):]
    assert "| - |" in per_class  # classes 1 and 2 got no tile


def test_whole_crop_keeps_the_centre(tmp_path):
    """prepare --whole --crop: the centre of each photo (and all of a smaller one), its input
    degraded from that crop."""
    hr = photos(str(tmp_path / "hr"), names=("astronaut", "coffee"), size=96)
    out = tmp_path / "val"
    assert main(["prepare", "--whole", "--task", "denoise", "--sigma", "25", "--hr", hr, "--out", str(out),
                 "--crop", "40"]) == 0
    for name in ("astronaut", "coffee"):
        full = cv2.imread(os.path.join(hr, name + ".png"))
        crop = cv2.imread(str(out / "hr" / f"{name}.png"))
        t, l = (full.shape[0] - 40) // 2, (full.shape[1] - 40) // 2
        assert crop.shape == (40, 40, 3) and np.array_equal(crop, full[t:t + 40, l:l + 40])
        assert cv2.imread(str(out / "lr" / f"{name}.png")).shape == (40, 40, 3)
    big = tmp_path / "val_big"
    assert main(["prepare", "--whole", "--task", "denoise", "--sigma", "25", "--hr", hr, "--out", str(big),
                 "--crop", "500"]) == 0
    assert cv2.imread(str(big / "hr" / "coffee.png")).shape == cv2.imread(os.path.join(hr, "coffee.png")).shape
