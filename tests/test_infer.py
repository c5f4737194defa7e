"""`classsr infer` and `classsr eval` end to end."""
import json
import os

import cv2
import numpy as np
import pytest
import torch
import yaml

from classsr_plugin import ClassSR
from classsr_plugin.cli import main
from classsr_plugin.regions import MARGIN


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4))
    with torch.no_grad():
        model.classifier.fc.weight.normal_(0, 3)  # a classifier with opinions
    path = str(tmp_path_factory.mktemp("m") / "classsr.pth")
    model.save(path)
    return path


def test_checkpoint_round_trip(ckpt):
    model = ClassSR.from_checkpoint(ckpt)
    assert model.widths == [16, 36, 56] and model.scale == 4
    state = torch.load(ckpt, weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state["params"][k])


def test_infer_every_kind_of_input(ckpt, tmp_path, capsys):
    rng = np.random.default_rng(0)
    src = tmp_path / "in"
    src.mkdir()
    files = {"rgb.png": (37, 50, 3), "photo.jpg": (30, 41, 3), "pic.webp": (33, 33, 3)}
    for name, shape in files.items():
        cv2.imwrite(str(src / name), (rng.random(shape) * 255).astype(np.uint8))
    cv2.imwrite(str(src / "gray16.tif"), (rng.random((21, 19)) * 65535).astype(np.uint16))
    rgba = (rng.random((20, 25, 4)) * 255).astype(np.uint8)
    rgba[:, :, 3] = 255
    rgba[:10, :, 3] = 0  # top half transparent
    cv2.imwrite(str(src / "rgba.png"), rgba)
    (src / "corrupt.png").write_bytes(b"broken")
    out = tmp_path / "out"
    rc = main(["infer", "-opt", ckpt, str(src), "-o", str(out), "--class-map"])
    text = capsys.readouterr()
    assert rc == 1 and "corrupt.png" in text.out + text.err and "1 of 6 images failed" in text.err
    for name, (h, w, _) in files.items():
        stem = os.path.splitext(name)[0]
        assert cv2.imread(str(out / f"{stem}_x4.png")).shape == (h * 4, w * 4, 3)
        assert os.path.exists(out / f"{stem}_x4_classes.png")
    g16 = cv2.imread(str(out / "gray16_x4.png"), cv2.IMREAD_UNCHANGED)
    assert g16.shape == (84, 76) and g16.dtype == np.uint16
    a = cv2.imread(str(out / "rgba_x4.png"), cv2.IMREAD_UNCHANGED)
    assert a.shape == (80, 100, 4) and a[:30, :, 3].max() == 0 and a[50:, :, 3].min() == 255
    assert "rgb.png: 50x37 -> 200x148, cells per class" in text.out
    # existing outputs are kept unless asked
    before = os.path.getmtime(out / "rgb_x4.png")
    assert main(["infer", "-opt", ckpt, str(src / "rgb.png"), "-o", str(out)]) == 0
    assert "exists, skipped" in capsys.readouterr().out
    assert os.path.getmtime(out / "rgb_x4.png") == before


def test_infer_writes_restore_images_output_rounded(ckpt, tmp_path):
    """infer keeps the output in uint8 (HWC memory, written without a copy): the file holds the
    float output rounded, in RGB order, and the tensor is RGB again after the write (its
    channels are swapped in place only while it is encoded)."""
    from classsr_plugin.imageio import read_picture, write_picture
    rng = np.random.default_rng(1)
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), cv2.GaussianBlur((rng.random((45, 70, 3)) * 255).astype(np.uint8), (5, 5), 2))
    assert main(["infer", "-opt", ckpt, str(src), "-o", str(tmp_path / "out"), "--class-map"]) == 0
    model = ClassSR.from_checkpoint(ckpt).eval()
    with torch.no_grad():
        want = model.restore_image(read_picture(str(src)).rgb).image.clamp(0, 1).mul(255).round()
        stored = model.restore_image(read_picture(str(src)).rgb, dtype=torch.uint8).image
    assert torch.equal(read_picture(str(tmp_path / "out" / "in_x4.png")).rgb.mul(255).round(), want)
    kept = stored.clone()
    write_picture(str(tmp_path / "again.png"), stored)
    assert torch.equal(stored, kept)  # RGB again after the write
    assert torch.equal(read_picture(str(tmp_path / "again.png")).rgb.mul(255).round(), want)


def test_infer_from_basicsr_options(ckpt, tmp_path):
    opt = {"network_g": {"type": "ClassSR", "base": {"type": "FSRCNN", "d": 56, "upscale": 4}},
           "path": {"pretrain_network_g": ckpt}}
    (tmp_path / "o.yml").write_text(yaml.safe_dump(opt))
    cv2.imwrite(str(tmp_path / "x.png"), np.full((40, 40, 3), 128, np.uint8))
    assert main(["infer", "-opt", str(tmp_path / "o.yml"), str(tmp_path / "x.png"), "-o", str(tmp_path / "o")]) == 0
    assert cv2.imread(str(tmp_path / "o" / "x_x4.png")).shape == (160, 160, 3)
    (tmp_path / "bad.yml").write_text(yaml.safe_dump({"network_g": {"type": "FSRCNN"}}))
    assert main(["infer", "-opt", str(tmp_path / "bad.yml"), str(tmp_path / "x.png"), "-o", str(tmp_path)]) == 2


def test_eval_table_budgets_and_plot(ckpt, tmp_path, capsys):
    from skimage import data
    hr = tmp_path / "hr"
    hr.mkdir()
    cv2.imwrite(str(hr / "coffee.png"), data.coffee()[:160, :200, ::-1])
    cv2.imwrite(str(hr / "chelsea.png"), data.chelsea()[:120, :160, ::-1])
    out = tmp_path / "ev"
    # the widest branch's weights as a plain FSRCNN: the same numbers through the reference path
    ref = tmp_path / "ref.pth"
    torch.save({"network_g": {"type": "FSRCNN", "d": 56, "upscale": 4},
                "params": ClassSR.from_checkpoint(ckpt).build_base().state_dict()}, ref)
    assert main(["eval", "-opt", ckpt, "--hr", str(hr), "--budgets", "0.4,0.7,1.5", "--budget-mode", "target",
                 "--reference", str(ref), "-o", str(out)]) == 0
    rep = json.load(open(out / "eval.json"))
    rows = rep["folders"]["hr"]["rows"]
    widest = rows["widest branch (d=56)"]
    assert rows["ref.pth"]["psnr"] == pytest.approx(widest["psnr"], abs=1e-4)
    assert rows["ref.pth"]["flops_percent"] == pytest.approx(100)
    assert widest["flops_percent"] == pytest.approx(100) and widest["class_share"] == [0, 0, 1]
    # as a target, budget 1.5 is the widest branch (plus the classifier's cost), 0.4 the narrowest
    assert rows["ClassSR budget 1.5"]["psnr"] == pytest.approx(widest["psnr"], abs=1e-9)
    assert rows["ClassSR budget 0.4"]["class_share"] == [1, 0, 0]
    fl = [rows[f"ClassSR budget {b}"]["flops_percent"] for b in ("0.4", "0.7", "1.5")]
    assert fl == sorted(fl)
    assert "| ClassSR |" in open(out / "eval.md").read()
    assert rows["bicubic"]["psnr"] > 20 and rows["bicubic"]["flops_percent"] == 0
    # beside the reference on the whole image: ClassSR in regions, its shares over its own cells
    regions = rows[f"ClassSR, regions (margin {MARGIN})"]
    assert cv2.imread(str(out / "psnr_vs_flops.png")) is not None
    # the per-class table, cross-checked on one image by hand: the widest branch's pooled PSNR
    # over the tiles the classifier routes to each class
    per_class = rep["folders"]["hr"]["per_class"]
    from classsr_plugin import TileGrid
    from classsr_plugin.evaluate import bicubic_pair
    from classsr_plugin.imageio import read_picture
    model = ClassSR.from_checkpoint(ckpt).eval()
    mse, routed = [], []
    flops = base = 0.0
    cells = torch.zeros(3)
    for name in ("chelsea.png", "coffee.png"):  # eval's order: sorted file names
        hr_img, lr = bicubic_pair(read_picture(str(hr / name)).rgb, 4)
        grid = TileGrid(lr.shape[1], lr.shape[2], 32, 28, 4)
        res = model.restore_image(lr)  # the regions row, against the base on the table's tiles
        flops += res.flops_per_tile * sum(res.counts)
        base += model.tile_cost(32).base * len(grid)
        cells += torch.tensor(res.counts)
        ids = torch.arange(len(grid))
        tiles = grid.windows(grid.pad(lr), ids)
        hr_grid = TileGrid(hr_img.shape[1], hr_img.shape[2], 128, 112, 1)
        hr_tiles = hr_grid.windows(hr_grid.pad(hr_img), ids)
        with torch.no_grad():
            mse.append((model.branches[2](tiles).clamp(0, 1) - hr_tiles).pow(2).mean((1, 2, 3)))
            routed.append(model.classifier(tiles).argmax(1))
    mse, routed = torch.cat(mse), torch.cat(routed)
    assert regions["flops_percent"] == pytest.approx(100 * flops / base, rel=1e-9)
    assert regions["class_share"] == pytest.approx((cells / cells.sum()).tolist())
    assert [r["tiles"] for r in per_class] == torch.bincount(routed, minlength=3).tolist()
    for r in per_class:
        if r["tiles"]:
            expected = float(10 * torch.log10(1 / mse[routed == r["class"]].mean()))
            assert r["branches"][2] == pytest.approx(expected, abs=1e-3)
    assert "Per class" in open(out / "eval.md").read()
    assert main(["eval", "-opt", ckpt, "--hr", str(hr), "--scale", "2", "-o", str(out)]) == 2


def test_export_round_trip(tmp_path, ckpt):
    from basicsr.archs import build_network
    from classsr_plugin.checkpoint import load
    net = build_network({"type": "FSRCNN", "d": 24, "upscale": 4})
    torch.save({"params": net.state_dict()}, tmp_path / "net_g_5.pth")
    opt = {"network_g": {"type": "FSRCNN", "d": 24, "upscale": 4}, "path": {"pretrain_network_g": str(tmp_path / "net_g_5.pth")}}
    (tmp_path / "o.yml").write_text(yaml.safe_dump(opt))
    assert main(["export", "-opt", str(tmp_path / "o.yml"), "-o", str(tmp_path / "plain.pth")]) == 0
    again = load(str(tmp_path / "plain.pth"))
    x = torch.rand(1, 3, 20, 20)
    with torch.no_grad():
        assert torch.equal(again(x), net.eval()(x))
    assert isinstance(load(ckpt), ClassSR)
    assert main(["infer", "-opt", str(tmp_path / "plain.pth"), str(tmp_path), "-o", str(tmp_path / "x")]) == 2


def test_class_map_geometry_and_lr_size(ckpt, tmp_path):
    from classsr_plugin.visual import class_colours, class_overlay
    img = torch.zeros(3, 64, 96)
    cm = torch.tensor([[0, 2, 1]])
    out = class_overlay(img, cm, 3, (torch.tensor([0]), torch.tensor([0, 10, 20])), 2)
    col = class_colours(3)
    for x, k in ((5, 0), (30, 2), (60, 1)):  # owner: the last tile starting at or before the pixel
        assert torch.allclose(out[:, 30, x], 0.25 * col[k])
    assert torch.allclose(out[:, 30, 20], col[2]) and torch.allclose(out[:, 30, 40], col[1])  # outlines
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "p.png"), (np.random.default_rng(0).random((40, 70, 3)) * 255).astype(np.uint8))
    assert main(["infer", "-opt", ckpt, str(src), "-o", str(tmp_path / "o"), "--class-map-lr"]) == 0
    lr_map = cv2.imread(str(tmp_path / "o" / "p_x4_classes.png"))
    assert lr_map.shape[1] == 70 and lr_map.shape[0] == 40 + 22  # LR size, plus the legend strip


def test_infer_formats_quality_and_failed_writes(ckpt, tmp_path, capsys):
    """--format and --quality reach the encoder; outputs are written in the background, and a
    write that fails is reported by its input while the other images go on."""
    from skimage import data
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), data.coffee()[:64, :96, ::-1])
    cv2.imwrite(str(src / "b.png"), data.chelsea()[:48, :80, ::-1])
    sizes = {}
    for fmt, quality in (("jpg", 95), ("jpg", 20), ("webp", 90), ("png", 0), ("png", 9)):
        out = tmp_path / f"{fmt}{quality}"
        assert main(["infer", "-opt", ckpt, str(src), "-o", str(out), "--format", fmt, "--quality", str(quality)]) == 0
        got = sorted(os.listdir(out))
        assert got == [f"a_x4.{fmt}", f"b_x4.{fmt}"]
        img = cv2.imread(str(out / f"a_x4.{fmt}"))
        assert img.shape == (256, 384, 3)
        sizes[fmt, quality] = os.path.getsize(out / f"a_x4.{fmt}")
    assert sizes["jpg", 20] < sizes["jpg", 95] and sizes["png", 9] < sizes["png", 0]
    with pytest.raises(SystemExit):
        main(["infer", "-opt", ckpt, str(src), "-o", str(tmp_path / "q"), "--format", "png", "--quality", "10"])
    assert "--quality 10: png takes 0-9" in capsys.readouterr().err
    # a folder where a's output goes: its write fails in the writer thread; b is written
    out = tmp_path / "blocked"
    (out / "a_x4.png").mkdir(parents=True)
    capsys.readouterr()
    assert main(["infer", "-opt", ckpt, str(src), "-o", str(out)]) == 1
    captured = capsys.readouterr()
    assert f"FAILED {src / 'a.png'}" in captured.out + captured.err
    assert "1 of 2 images failed" in captured.err
    assert cv2.imread(str(out / "b_x4.png")).shape == (192, 320, 3)


@pytest.mark.parametrize("zero_class", [False, True])
def test_eval_rows_merged_from_kept_tile_outputs_match_rows_run_again(ckpt, tmp_path, zero_class):
    """evaluate(reuse=True) merges its ClassSR rows on the statistics' grid from the branch outputs
    it kept: the same images (PSNR, FLOPs, shares) as running each routing again."""
    from skimage import data
    from classsr_plugin.evaluate import evaluate
    from classsr_plugin.execution import Execution
    hr = tmp_path / "hr"
    hr.mkdir()
    cv2.imwrite(str(hr / "coffee.png"), data.coffee()[:150, :190, ::-1])
    cv2.imwrite(str(hr / "astronaut.png"), data.astronaut()[:130, :170, ::-1])
    if zero_class:
        torch.manual_seed(1)
        model = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4), zero_class=True)
        with torch.no_grad():
            model.classifier.fc.weight.normal_(0, 3)
    else:
        model = ClassSR.from_checkpoint(ckpt)
    kw = dict(budgets=[0.3, 0.6, 1], budget_mode="target", oracle_tols=[0, 1e-4], ex=Execution(mode="tiles"))
    fast = evaluate(model, [str(hr)], [None], str(tmp_path / "fast"), reuse=True, **kw)["folders"]["hr"]["rows"]
    slow = evaluate(model, [str(hr)], [None], str(tmp_path / "slow"), reuse=False, **kw)["folders"]["hr"]["rows"]
    assert fast.keys() == slow.keys()
    merged = [k for k in fast if k.startswith(("ClassSR", "widest", "oracle"))]
    assert len(merged) == 7
    for k in merged:
        assert fast[k]["psnr"] == pytest.approx(slow[k]["psnr"], abs=1e-4), k
        assert fast[k]["flops_percent"] == pytest.approx(slow[k]["flops_percent"], rel=1e-9), k
        assert fast[k]["class_share"] == slow[k]["class_share"], k
        assert fast[k]["seconds"] is None and slow[k]["seconds"] > 0, k
    shares = {tuple(fast[k]["class_share"]) for k in merged}
    assert len(shares) >= 4  # the routings differ: a merge that ignored them would fail above
    assert "| - |" in (tmp_path / "fast" / "eval.md").read_text()
    # outputs of another grid are refused by shape
    lr = torch.rand(3, 40, 40)
    with pytest.raises(ValueError, match="tile_outputs of shape"):
        model.restore_image(lr, "tiles", tile_outputs=torch.zeros(2, model.num_classes, 3, 128, 128))
    with pytest.raises(ValueError, match="serve execution 'tiles'"):
        model.restore_image(lr, "regions", tile_outputs=torch.zeros(4, model.num_classes, 3, 128, 128))


def test_tile_cache_runs_shared_branches_once_and_keeps_each_classifier(ckpt, tmp_path, monkeypatch):
    """Two routers over the same branches (make_card's candidates): with a TileCache the second
    evaluation runs no branch, and its rows are its own classifier's, as without the cache; a
    model with other branch weights is not served the first one's outputs."""
    from skimage import data
    from classsr_plugin import evaluate as ev
    from classsr_plugin.execution import Execution
    hr = tmp_path / "hr"
    hr.mkdir()
    cv2.imwrite(str(hr / "coffee.png"), data.coffee()[:150, :190, ::-1])
    first = ClassSR.from_checkpoint(ckpt)
    second = ClassSR.from_checkpoint(ckpt)
    with torch.no_grad():
        second.classifier.fc.weight.copy_(torch.randn_like(second.classifier.fc.weight) * 3)  # another router
        second.classifier.fc.bias.copy_(torch.tensor([2.0, 0.0, -2.0]))
    other = ClassSR.from_checkpoint(ckpt)
    with torch.no_grad():
        other.branches[0].parameters().__next__().mul_(0.5)
    calls = []
    real = ev.tile_stats
    monkeypatch.setattr(ev, "tile_stats", lambda *a, **k: calls.append(1) or real(*a, **k))
    kw = dict(budgets=[0.5, 1], budget_mode="target", ex=Execution(mode="tiles"))
    cache = ev.TileCache()
    rows = {}
    for name, model in (("first", first), ("second", second), ("other", other)):
        rows[name] = ev.evaluate(model, [str(hr)], [None], str(tmp_path / name), cache=cache, **kw)["folders"]["hr"]
    assert len(calls) == 2  # first and other: second's branches are first's
    plain = ev.evaluate(second, [str(hr)], [None], str(tmp_path / "plain"), **kw)["folders"]["hr"]
    assert rows["second"]["rows"]["ClassSR"]["class_share"] == plain["rows"]["ClassSR"]["class_share"]
    assert rows["second"]["rows"]["ClassSR"]["class_share"] != rows["first"]["rows"]["ClassSR"]["class_share"]
    for k, r in plain["rows"].items():
        assert rows["second"]["rows"][k]["psnr"] == pytest.approx(r["psnr"], abs=1e-9), k
    assert json.dumps(rows["second"]["per_class"]) == json.dumps(plain["per_class"])  # nan: an empty class
    assert rows["other"]["per_class"][0]["branches"][0] != rows["first"]["per_class"][0]["branches"][0]
