"""Nothing lost, nothing silent (issue 16): atomic outputs, resume past a broken state file,
outputs that never collide with inputs, inputs checked at the door, arguments and files
refused in one line, and no code from option files or checkpoints. Real files in tmp_path."""
import json
import os
import pickle
import struct
import zlib

import cv2
import numpy as np
import pytest
import torch
import yaml
from PIL import Image, ImageOps

from classsr_plugin import ClassSR
from classsr_plugin.atomic import atomic, is_temp
from classsr_plugin.cli import main
from classsr_plugin.imageio import complete, list_images, read_picture

FSRCNN = {"type": "FSRCNN", "d": 56, "upscale": 4}


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    torch.manual_seed(0)
    path = str(tmp_path_factory.mktemp("m") / "classsr.pth")
    ClassSR(base=dict(FSRCNN)).save(path)
    return path


def noise(h, w, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def png_header(path, w, h):
    """A small valid PNG whose header claims w x h pixels (a decompression bomb's header)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4096))
                     + chunk(b"IEND", b""))


class Payload:
    """Unpickling it makes a folder: proof that code from a file ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return os.mkdir, (self.path,)


# -- 1. atomic writes ---------------------------------------------------------------------------
def test_atomic_write_keeps_the_old_file_when_the_writer_dies(tmp_path):
    target = tmp_path / "table.md"
    target.write_text("old, complete")
    with pytest.raises(RuntimeError):
        with atomic(str(target)) as tmp:
            open(tmp, "w").write("new, half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "old, complete"
    assert os.listdir(tmp_path) == ["table.md"]


def test_infer_redoes_a_partial_output(ckpt, tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    cv2.imwrite(str(src / "img.png"), noise(24, 30))
    assert main(["infer", "-opt", ckpt, str(src), "-o", str(out)]) == 0
    whole = (out / "img_x4.png").read_bytes()
    # kill -9 mid-write, as the old code left it: a partial PNG under the final name, and a
    # temporary file of an interrupted atomic write beside it
    (out / "img_x4.png").write_bytes(whole[:len(whole) // 2])
    (out / ".img_x4.0badf00d.part.png").write_bytes(whole[:100])
    assert not complete(str(out / "img_x4.png"))
    capsys.readouterr()
    assert main(["infer", "-opt", ckpt, str(src), str(out), "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "exists, skipped" not in text and (out / "img_x4.png").read_bytes() == whole
    assert [os.path.basename(p) for p in list_images(str(out))] == ["img_x4.png"]  # temporaries are no images
    assert is_temp(".img_x4.0badf00d.part.png")


def _model_opt(tmp_path, pretrain=None):
    return {"model_type": "ClassSRModel", "name": "t", "num_gpu": 0, "is_train": False, "dist": False,
            "network_g": {"type": "ClassSR", "base": dict(FSRCNN)},
            "path": {"pretrain_network_g": pretrain, "strict_load_g": True, "param_key_g": "params",
                     "models": str(tmp_path / "models"), "training_states": str(tmp_path / "states")},
            "classsr": {"phase": "joint", "allow_untrained": True}}


class _BadOptimizer:
    def state_dict(self):
        return {"step": lambda: 0}  # cannot be pickled: torch.save fails halfway


def test_basicsr_saves_are_atomic(tmp_path):
    from basicsr.models import build_model
    for sub in ("models", "states"):
        (tmp_path / sub).mkdir()
    model = build_model(_model_opt(tmp_path))
    model.save(epoch=0, current_iter=10)
    net = torch.load(tmp_path / "models" / "net_g_10.pth", weights_only=True)["params"]
    assert set(net) == set(model.net_g.state_dict())
    assert torch.load(tmp_path / "states" / "10.state", weights_only=True)["iter"] == 10
    # a save that dies while writing keeps the previous state whole
    model.optimizers = [_BadOptimizer()]
    model.save_training_state(0, 10)
    assert torch.load(tmp_path / "states" / "10.state", weights_only=True)["iter"] == 10
    assert sorted(os.listdir(tmp_path / "states")) == ["10.state"]


def test_auto_resume_passes_over_an_empty_state(tmp_path, monkeypatch, capsys):
    from classsr_plugin.registry.basicsr_train import load_resume_state
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "experiments" / "exp"
    (root / "training_states").mkdir(parents=True)
    (root / "models").mkdir()
    params = {"params": ClassSR(base=dict(FSRCNN)).state_dict()}
    for it in (50, 60):
        torch.save(params, root / "models" / f"net_g_{it}.pth")
    torch.save({"epoch": 1, "iter": 50, "optimizers": [], "schedulers": []}, root / "training_states" / "50.state")
    (root / "training_states" / "60.state").write_bytes(b"")  # killed while BasicSR wrote it
    opt = {"auto_resume": True, "name": "exp", "network_g": {"type": "ClassSR"},
           "path": {"models": str(root / "models"), "resume_state": None}}
    state = load_resume_state(opt)
    assert state["iter"] == 50 and opt["path"]["resume_state"].endswith("50.state")
    assert opt["path"]["pretrain_network_g"].endswith("net_g_50.pth")
    err = capsys.readouterr().err
    assert "passed over" in err and "60.state: not a readable checkpoint (empty file)" in err
    assert "resuming from" in err and "50.state" in err
    # no state loads: a sentence naming them, not an EOFError
    (root / "training_states" / "50.state").write_bytes(b"junk")
    with pytest.raises(ValueError, match="no training state loads.*50.state, 60.state"):
        load_resume_state(opt)


# -- 2. outputs never collide -------------------------------------------------------------------
def test_output_folder_equal_to_input_folder(ckpt, tmp_path):
    d = tmp_path / "photos"
    d.mkdir()
    cv2.imwrite(str(d / "a.png"), noise(20, 24, 1))
    cv2.imwrite(str(d / "a_x4.png"), noise(16, 20, 2))  # an input that looks like an output
    inputs = {n: (d / n).read_bytes() for n in ("a.png", "a_x4.png")}
    assert main(["infer", "-opt", ckpt, str(d), "-o", str(d), "--overwrite", "--class-map"]) == 0
    after_first = sorted(os.listdir(d))
    assert main(["infer", "-opt", ckpt, str(d), "-o", str(d), "--overwrite", "--class-map"]) == 0
    assert sorted(os.listdir(d)) == after_first  # its own outputs were not inputs: no a_x4_x4_x4.png
    assert {n: (d / n).read_bytes() for n in inputs} == inputs
    assert cv2.imread(str(d / "a_x4_2.png")).shape == (80, 96, 3)  # a.png's output, beside the input a_x4.png
    assert cv2.imread(str(d / "a_x4_x4.png")).shape == (64, 80, 3)


def test_same_stem_inputs_get_distinct_outputs(ckpt, tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    cv2.imwrite(str(src / "photo.png"), noise(20, 20, 1))
    cv2.imwrite(str(src / "photo.jpg"), noise(16, 24, 2))
    assert main(["infer", "-opt", ckpt, str(src), "-o", str(out)]) == 0
    assert "skipped" not in capsys.readouterr().out
    assert cv2.imread(str(out / "photo_png_x4.png")).shape == (80, 80, 3)
    assert cv2.imread(str(out / "photo_jpg_x4.png")).shape == (64, 96, 3)


def _prepare(hr, out, *extra):
    return main(["prepare", "--hr", str(hr), "--out", str(out), "--scales", "1", "--tile", "8", "--stride", "8",
                 *extra])


def test_prepare_same_stem_images(tmp_path):
    hr = tmp_path / "hr"
    hr.mkdir()
    cv2.imwrite(str(hr / "chelsea.png"), noise(64, 64, 1))
    cv2.imwrite(str(hr / "chelsea.jpg"), noise(64, 64, 2))
    assert _prepare(hr, tmp_path / "sub") == 0
    names = [line.split()[0] for line in open(tmp_path / "sub" / "meta_info.txt") if not line.startswith("#")]
    assert len(names) == len(set(names)) == 8  # 4 sub-images of 8 px from each 16x16 LR
    assert sum(n.startswith("chelsea_png_") for n in names) == sum(n.startswith("chelsea_jpg_") for n in names) == 4


def test_prepare_refuses_other_settings_on_resume(tmp_path, capsys):
    hr = tmp_path / "hr"
    hr.mkdir()
    cv2.imwrite(str(hr / "a.png"), noise(64, 64))
    assert _prepare(hr, tmp_path / "sub") == 0
    meta = (tmp_path / "sub" / "meta_info.txt").read_text()
    assert json.load(open(tmp_path / "sub" / "settings.json"))["tile"] == 8
    capsys.readouterr()
    assert main(["prepare", "--hr", str(hr), "--out", str(tmp_path / "sub"), "--scales", "1", "--tile", "12",
                 "--stride", "6"]) == 2
    err = capsys.readouterr().err
    assert "stride: 6 now, 8 before" in err and "tile: 12 now, 8 before" in err
    assert (tmp_path / "sub" / "meta_info.txt").read_text() == meta
    assert _prepare(hr, tmp_path / "sub") == 0  # the same settings resume
    assert "1 already done" in capsys.readouterr().out


# -- 3. inputs checked at the door --------------------------------------------------------------
def test_header_bombs_before_a_good_file(ckpt, tmp_path, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    png_header(src / "a_huge.png", 100000, 100000)
    png_header(src / "b_big.png", 20000, 20000)
    cv2.imwrite(str(src / "c_good.png"), noise(20, 20))
    assert main(["infer", "-opt", ckpt, str(src), "-o", str(out)]) == 1
    text = capsys.readouterr()
    assert "a_huge.png: 100000x100000 is 10000 megapixels, over the limit of 50 (--max-pixels)" in text.out
    assert "b_big.png: 20000x20000" in text.out and "2 of 3 images failed" in text.err
    assert cv2.imread(str(out / "c_good_x4.png")).shape == (80, 80, 3)


def test_truncated_jpeg_is_bad(ckpt, tmp_path, capsys):
    ok, buf = cv2.imencode(".jpg", noise(64, 64))
    path = tmp_path / "cut.jpg"
    path.write_bytes(buf.tobytes()[:len(buf) * 6 // 10])
    assert cv2.imread(str(path)) is not None  # OpenCV alone decodes it, the rest grey
    assert main(["infer", "-opt", ckpt, str(path), "-o", str(tmp_path / "out")]) == 1
    assert "cut.jpg: truncated file" in capsys.readouterr().out
    assert not os.path.exists(tmp_path / "out" / "cut_x4.png")


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_as_viewers_show_it(tmp_path, orientation):
    img = Image.fromarray(noise(6, 10))
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "o.png"
    img.save(path, exif=exif.tobytes())
    shown = np.asarray(ImageOps.exif_transpose(Image.open(path)).convert("RGB"))
    ours = (read_picture(str(path)).rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(ours, shown)


def test_exif_rotated_jpeg_through_infer(ckpt, tmp_path):
    arr = np.zeros((16, 24, 3), np.uint8)
    arr[:, :12] = 255  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: the white half on top
    Image.fromarray(arr).save(tmp_path / "cam.jpg", quality=95, exif=exif.tobytes())
    rgb = read_picture(str(tmp_path / "cam.jpg")).rgb
    assert rgb.shape == (3, 24, 16) and rgb[:, :10].mean() > 0.9 and rgb[:, 14:].mean() < 0.1
    assert main(["infer", "-opt", ckpt, str(tmp_path / "cam.jpg"), "-o", str(tmp_path / "out")]) == 0
    assert cv2.imread(str(tmp_path / "out" / "cam_x4.png")).shape == (96, 64, 3)


def test_eval_says_n_of_m_and_fails_when_nothing_was_evaluated(ckpt, tmp_path, capsys):
    hr, lr, out = tmp_path / "hr", tmp_path / "lr", tmp_path / "ev"
    for d in (hr, lr):
        d.mkdir()
    for name in ("a", "b"):
        cv2.imwrite(str(hr / f"{name}.png"), noise(128, 128))
    cv2.imwrite(str(lr / "a.png"), noise(20, 20))  # the wrong size
    assert main(["eval", "-opt", ckpt, "--hr", str(hr), "--lr", str(lr), "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "0 of 2 images evaluated" in err and "no image was evaluated" in err
    assert not os.path.exists(out / "eval.md")
    # one good pair, one missing LR: the table says on how many images it stands
    cv2.imwrite(str(lr / "a.png"), noise(32, 32))
    assert main(["eval", "-opt", ckpt, "--hr", str(hr), "--lr", str(lr), "-o", str(out)]) == 0
    md = (out / "eval.md").read_text()
    assert "### hr\n\n**1 of 2 images** (skipped ones and why: eval.json)\n\nFLOPs:" in md
    assert md in capsys.readouterr().out  # written as printed: the table is made whole, then written once
    assert json.load(open(out / "eval.json"))["folders"]["hr"]["evaluated"] == 1
    assert [n for n in os.listdir(out) if n.startswith(".")] == []


def test_eval_skips_an_image_smaller_than_the_scale(ckpt, tmp_path, capsys):
    hr = tmp_path / "hr"
    hr.mkdir()
    cv2.imwrite(str(hr / "tiny.png"), noise(3, 3))
    cv2.imwrite(str(hr / "good.png"), noise(128, 128))
    assert main(["eval", "-opt", ckpt, "--hr", str(hr), "-o", str(tmp_path / "ev")]) == 0
    assert "tiny.png: 3x3 is smaller than the scale x4" in capsys.readouterr().err
    assert "**1 of 2 images**" in (tmp_path / "ev" / "eval.md").read_text()


def test_tile_larger_than_the_image_is_cut(ckpt, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "s.png"), noise(48, 64))
    assert main(["infer", "-opt", ckpt, str(tmp_path / "s.png"), "-o", str(tmp_path / "o"), "--tile", "4096",
                 "--stride", "4096"]) == 0
    assert "--tile 4096 is larger than the 64x48 image: using 64" in capsys.readouterr().out
    assert cv2.imread(str(tmp_path / "o" / "s_x4.png")).shape == (192, 256, 3)


# -- 4. arguments and files ---------------------------------------------------------------------
@pytest.mark.parametrize("args,flag", [
    (["infer", "x.png", "-o", "o", "--budget", "nan"], "--budget"),
    (["infer", "x.png", "-o", "o", "--budget", "2.5"], "--budget"),
    (["infer", "x.png", "-o", "o", "--workers", "0"], "--workers"),
    (["infer", "x.png", "-o", "o", "--margin", "1000"], "--margin"),
    (["infer", "x.png", "-o", "o", "--tile", "0"], "--tile"),
    (["infer", "x.png", "-o", "o", "--stride", "0"], "--stride"),
    (["infer", "x.png", "-o", "o", "--tile", "16", "--stride", "20"], "--stride"),
    (["infer", "x.png", "-o", "o", "--batch", "0"], "--batch"),
    (["prepare", "--hr", "h", "--out", "o", "--scale", "0"], "--scale"),
    (["prepare", "--hr", "h", "--out", "o", "--scale", "-2"], "--scale"),
    (["prepare", "--hr", "h", "--out", "o", "--stride", "0"], "--stride"),
    (["eval", "--hr", "h", "--budgets", "0.5,inf"], "--budgets"),
])
def test_nonsense_values_are_refused(args, flag, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2 and flag in capsys.readouterr().err


@pytest.mark.parametrize("name,content,says", [
    ("empty.yml", b"", "empty file"),
    ("text.yml", b"just some words\n", "expected a mapping"),
    ("list.yml", b"- network_g\n- path\n", "expected a mapping of options (key: value), got a list"),
    ("broken.yml", b"network_g: {type: ClassSR\npath: x\n", "not valid YAML"),
    ("binary.yml", b"\xff\xfe\x00\x81", "not a text file"),
    ("empty.pth", b"", "not a readable checkpoint (empty file)"),
    ("text.pth", b"hello\n", "not a readable checkpoint"),
    ("cut.pth", None, "not a readable checkpoint"),
])
def test_bad_option_and_checkpoint_files_are_one_line(ckpt, tmp_path, capsys, name, content, says):
    bad = tmp_path / name
    bad.write_bytes(open(ckpt, "rb").read()[:5000] if content is None else content)
    cv2.imwrite(str(tmp_path / "x.png"), noise(16, 16))
    assert main(["infer", "-opt", str(bad), str(tmp_path / "x.png"), "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bad) in err and says in err
    if name.endswith(".yml"):  # training reads its options through the same door
        assert main(["train", "-opt", str(bad)]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and str(bad) in err and says in err


def test_unknown_network_keys_list_the_valid_ones(tmp_path, capsys):
    img = tmp_path / "x.png"
    cv2.imwrite(str(img), noise(16, 16))
    for net, key, valid in [({"type": "ClassSR", "base": dict(FSRCNN), "foo": 1}, "network_g.foo", "widths"),
                            ({"type": "ClassSR", "base": {**FSRCNN, "bar": 2}}, "network_g.base.bar", "upscale")]:
        (tmp_path / "o.yml").write_text(yaml.safe_dump({"network_g": net}))
        assert main(["infer", "-opt", str(tmp_path / "o.yml"), str(img), "-o", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert f"{key}: unknown key" in err and valid in err
        assert main(["train", "-opt", str(tmp_path / "o.yml")]) == 2  # before BasicSR builds anything
        assert f"{key}: unknown key" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_unavailable_device_says_so(ckpt, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "x.png"), noise(16, 16))
    assert main(["infer", "-opt", ckpt, str(tmp_path / "x.png"), "-o", str(tmp_path / "o"), "--device", "cuda"]) == 2
    assert "--device cuda: CUDA is not available here" in capsys.readouterr().err


# -- 5. no code from files ----------------------------------------------------------------------
def test_yaml_python_tag_does_not_run(tmp_path, capsys):
    from classsr_plugin.registry.basicsr_train import _bsr_ordered_yaml, _safe_ordered_yaml
    marker = tmp_path / "ran"
    opt = tmp_path / "evil.yml"
    opt.write_text(f"name: evil\nmodel_type: ClassSRModel\nnote: !!python/object/apply:os.mkdir ['{marker}']\n")
    # BasicSR's own loader would run it
    yaml.load(opt.read_text(), Loader=_bsr_ordered_yaml()[0])
    assert marker.exists()
    marker.rmdir()
    assert main(["train", "-opt", str(opt)]) == 2
    err = capsys.readouterr().err
    assert "evil.yml: line 3" in err and "python/object/apply:os.mkdir" in err and not marker.exists()
    with pytest.raises(yaml.YAMLError):  # and BasicSR's parse, under `classsr train`, is safe as well
        yaml.load(opt.read_text(), Loader=_safe_ordered_yaml()[0])
    cfg = tmp_path / "evil_cfg.yaml"
    cfg.write_text(opt.read_text())
    assert main(["mmtrain", str(cfg)]) == 2
    assert "evil_cfg.yaml: line 3" in capsys.readouterr().err and not marker.exists()


def test_payload_in_pretrain_network_g_does_not_run(tmp_path, monkeypatch):
    from basicsr.models import build_model
    marker = tmp_path / "ran"
    payload = tmp_path / "payload.pth"
    torch.save({"params": Payload(marker)}, payload)
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    torch.load(payload)  # with the environment set, a load that does not say weights_only runs it
    assert marker.exists()
    marker.rmdir()
    with pytest.raises(ValueError, match=r"payload.pth: refused: .*posix.mkdir"):
        build_model(_model_opt(tmp_path, pretrain=str(payload)))
    assert not marker.exists()


def test_mmengine_loads_through_the_plugin_only_while_a_classsr_runner_runs(tmp_path, monkeypatch):
    from mmengine.logging import HistoryBuffer
    from mmengine.runner.checkpoint import _load_checkpoint
    from classsr_plugin.registry.mmengine import ClassSRHook
    hub = HistoryBuffer()
    hub.update(2.0)
    torch.save({"state_dict": {"w": torch.ones(1)}, "message_hub": {"log_scalars": {"loss": hub}}}, tmp_path / "c.pth")
    with pytest.raises(pickle.UnpicklingError):  # importing the adapter changed nothing: mmengine's own loader
        _load_checkpoint(str(tmp_path / "c.pth"), map_location="cpu")
    hook = ClassSRHook()
    hook.before_run(runner=None)  # as the Runner starts: its load_from / resume go through the plugin
    try:
        loaded = _load_checkpoint(str(tmp_path / "c.pth"), map_location="cpu")
        assert loaded["message_hub"]["log_scalars"]["loss"].mean() == 2
        assert HistoryBuffer not in torch.serialization.get_safe_globals()  # allowed for that load only
        with pytest.raises(pickle.UnpicklingError):  # torch's own list was not widened
            torch.load(tmp_path / "c.pth", weights_only=True)
        # load_from with a payload, under TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD
        marker = tmp_path / "ran"
        torch.save({"state_dict": Payload(marker)}, tmp_path / "p.pth")
        monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
        with pytest.raises(ValueError, match="p.pth: refused"):
            _load_checkpoint(str(tmp_path / "p.pth"), map_location="cpu")
        assert not marker.exists()
        monkeypatch.delenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD")
    finally:
        hook.after_run(runner=None)
    with pytest.raises(pickle.UnpicklingError):  # the run over: mmengine's own loader again
        _load_checkpoint(str(tmp_path / "c.pth"), map_location="cpu")


def test_force_yml_numbers_are_numbers():
    """`--force_yml train:optim_g:lr=2e-4`: BasicSR alone passes the string '2e-4' to Adam."""
    from classsr_plugin.registry.basicsr_train import yml_value
    assert yml_value("2e-4") == 2e-4 and isinstance(yml_value("2e-4"), float)
    assert yml_value("-1") == -1 and isinstance(yml_value("-1"), int)
    assert yml_value("1.5E+3") == 1500.0 and yml_value("0.003") == 0.003 and yml_value("16") == 16
    assert yml_value("[16, 36]") == [16, 36] and yml_value("~") is None and yml_value("true") is True
    assert yml_value("e-4") == "e-4" and yml_value("exp_2e-4") == "exp_2e-4"
