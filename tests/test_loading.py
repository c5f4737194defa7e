"""Models come from files through one front door (checkpoint.load), and nothing loads silently
wrong (issue 22, round 2): NaN / Inf weights, a damaged zip, a classifier config that would
reach a model hub or open another file, a huge probe tile, a changed tensor shape."""
import ast
import os
import struct
import zipfile

import cv2
import numpy as np
import pytest
import torch
import yaml

from classsr_plugin import ClassSR
from classsr_plugin.cli import main
from classsr_plugin.imageio import write_picture

FSRCNN = {"type": "FSRCNN", "d": 56, "upscale": 4}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ClassSR(base=dict(FSRCNN)).eval()


@pytest.fixture
def photo(tmp_path):
    path = tmp_path / "in.png"
    cv2.imwrite(str(path), (np.random.default_rng(0).random((24, 30, 3)) * 255).astype(np.uint8))
    return str(path)


def rewrite(src, dst, edit):
    """The file at src, its dict changed by edit, saved as dst (as an attacker or a bug would)."""
    ckpt = torch.load(src, weights_only=True)
    edit(ckpt)
    torch.save(ckpt, dst)
    return str(dst)


def damage(path):
    """Overwrite 4 bytes in the middle of the largest tensor's record of a torch zip file; the
    zip's structure stays readable."""
    with zipfile.ZipFile(path) as z:
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    data = bytearray(open(path, "rb").read())
    name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
    start = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    data[start:start + 4] = bytes(255 - b for b in data[start:start + 4])
    open(path, "wb").write(bytes(data))


# -- item 1: NaN or Inf weights -----------------------------------------------------------------
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_naming_the_tensor(model, tmp_path, photo, capsys, bad):
    path = str(tmp_path / "m.pth")
    model.save(path)
    rewrite(path, path, lambda c: c["params"]["branches.0.last.weight"].__setitem__((0, 0, 0, 3), bad))
    out = tmp_path / "out"
    assert main(["infer", "-opt", path, photo, "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{path}: branches.0.last.weight holds NaN or Inf" in err
    assert not out.exists() or not os.listdir(out)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_output_is_not_written(tmp_path, bad):
    img = torch.rand(3, 8, 8)
    img[1, 2, 3] = bad
    path = tmp_path / "o.png"
    with pytest.raises(ValueError, match=f"{path}: .*NaN or Inf"):
        write_picture(str(path), img)
    assert not path.exists()
    alpha = torch.rand(1, 8, 8)
    alpha[0, 0, 0] = bad
    with pytest.raises(ValueError, match="NaN or Inf"):
        write_picture(str(path), torch.rand(3, 8, 8), alpha)
    write_picture(str(path), torch.rand(3, 8, 8))  # a finite one is written
    assert path.exists()


# -- item 2: a damaged zip --------------------------------------------------------------------
def test_damaged_checkpoint_is_refused(model, tmp_path, photo, capsys):
    path = str(tmp_path / "m.pth")
    model.save(path)
    damage(path)
    with pytest.raises(ValueError, match=f"{path}: damaged: .*/data/[0-9]+ fails its CRC check"):
        ClassSR.from_checkpoint(path)
    assert main(["infer", "-opt", path, photo, "-o", str(tmp_path / "o")]) == 2
    assert "fails its CRC check" in capsys.readouterr().err
    # a plain BasicSR state dict (no digest of ours) is checked the same way
    plain = str(tmp_path / "net_g.pth")
    torch.save({"params": model.build_base().state_dict()}, plain)
    damage(plain)
    with pytest.raises(ValueError, match="net_g.pth: damaged"):
        ClassSR(base=dict(FSRCNN)).load_base(plain)


def test_shipped_weights_still_load():
    from classsr_plugin import checkpoint, weights
    files = [weights.CLASSSR_FSRCNN_X4, weights.FSRCNN_O_X4]
    files += sorted(os.path.join(ROOT, "scripts", "checkpoints", f)
                    for f in os.listdir(os.path.join(ROOT, "scripts", "checkpoints")) if f.endswith(".pth"))
    for f in files:
        net = checkpoint.load(f)
        assert not net.training and net.weights_file == f


# -- item 3: a classifier config that reaches out ---------------------------------------------
@pytest.fixture(scope="module")
def timm_file(tmp_path_factory):
    import warnings
    path = str(tmp_path_factory.mktemp("timm") / "t.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the classifier costs more than it saves: not the point here
        ClassSR(base=dict(FSRCNN), classifier={"type": "timm", "model_name": "resnet10t"}).save(path)
    return path


@pytest.mark.parametrize("key,value", [
    ("pretrained", True),                                           # a model hub (64 s of retries offline)
    ("checkpoint_path", "/etc/hostname"),                           # another local file
    ("pretrained_cfg_overlay", {"hf_hub_id": "someone/else"}),      # any hub repository
    ("cache_dir", "/tmp"),
])
def test_classifier_loading_keys_are_refused_by_name(timm_file, tmp_path, key, value):
    path = rewrite(timm_file, tmp_path / "bad.pth", lambda c: c["classsr"]["classifier"].update({key: value}))
    with pytest.raises(ValueError, match=f"{path}: .*classifier.{key}: .*refused"):
        ClassSR.from_checkpoint(path)


def test_saved_classifier_config_is_architecture_only(tmp_path):
    import warnings
    cfg = {"type": "timm", "model_name": "resnet10t", "pretrained": False, "drop_rate": 0.1,
           "pretrained_cfg_overlay": {"mean": (0.5, 0.5, 0.5)}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ClassSR(base=dict(FSRCNN), classifier=cfg).save(str(tmp_path / "t.pth"))
        again = ClassSR.from_checkpoint(str(tmp_path / "t.pth"))
    assert torch.load(tmp_path / "t.pth", weights_only=True)["classsr"]["classifier"] == \
        {"type": "timm", "model_name": "resnet10t", "drop_rate": 0.1}
    assert again.classifier.drop_rate == 0.1


# -- item 10: a probe tile from a file, a changed tensor shape ---------------------------------
@pytest.mark.parametrize("tile", [10 ** 6, "32", 4])
def test_probe_tile_from_a_file_is_bounded(model, tmp_path, tile):
    path = str(tmp_path / "m.pth")
    model.save(path)
    rewrite(path, path, lambda c: c["classsr"].update(probe_tile=tile))
    with pytest.raises(ValueError, match=f"{path}: .*probe_tile: {tile!r}"):
        ClassSR.from_checkpoint(path)


def test_changed_tensor_shape_names_the_file(model, tmp_path, photo, capsys):
    path = str(tmp_path / "m.pth")
    model.save(path)
    rewrite(path, path, lambda c: c["params"].update({"branches.2.last.weight": torch.zeros(16, 3, 9, 9)}))
    assert main(["infer", "-opt", path, photo, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: size mismatch for branches.2.last.weight" in err
    # a plain network's options and weights of another width
    torch.save({"params": ClassSR(base=dict(FSRCNN, d=16), num_classes=2, widths=[8, 16]).build_base().state_dict()},
               tmp_path / "w.pth")
    opt = tmp_path / "o.yml"
    opt.write_text(yaml.safe_dump({"network_g": dict(FSRCNN), "path": {"pretrain_network_g": str(tmp_path / "w.pth")}}))
    assert main(["export", "-opt", str(opt), "-o", str(tmp_path / "e.pth")]) == 2
    assert f"{tmp_path / 'w.pth'}: size mismatch for" in capsys.readouterr().err


# -- issue 24: one front door ---------------------------------------------------------------
def _sources():
    for folder in ("classsr_plugin", "registry"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, folder)):
            for f in files:
                if f.endswith(".py"):
                    yield os.path.relpath(os.path.join(dirpath, f), ROOT)


def test_torch_load_only_in_the_checkpoint_module():
    users = [p for p in _sources() if "torch.load(" in open(os.path.join(ROOT, p)).read()]
    assert users == [os.path.join("classsr_plugin", "checkpoint.py")]


def _imports(path):
    """The plugin modules a core file imports, at any depth (inside functions too)."""
    pkg = os.path.dirname(path).replace(os.sep, ".")
    out = set()
    for node in ast.walk(ast.parse(open(os.path.join(ROOT, path)).read())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = pkg.rsplit(".", node.level - 1)[0] if node.level > 1 else pkg
            mod = f"{base}.{node.module}" if node.module else base
            out |= {mod} if node.module else {f"{base}.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("classsr_plugin"):
            out.add(node.module)
    return out


def test_no_import_circle_through_the_loading_modules():
    core = {p[:-3].replace(os.sep, "."): p for p in _sources() if p.startswith("classsr_plugin")}
    core = {k[:-9] if k.endswith(".__init__") else k: v for k, v in core.items()}
    graph = {m: {i for i in _imports(p) if i in core} for m, p in core.items()}

    def reaches(a, b, seen=()):
        return any(n == b or (n not in seen and reaches(n, b, seen + (n,))) for n in graph[a])
    for mod in ("classsr_plugin.checkpoint", "classsr_plugin.checks", "classsr_plugin.wrapper"):
        assert not reaches(mod, mod), mod
    assert graph["classsr_plugin.checks"] == set()  # argument types only


def test_every_kind_through_load(tmp_path):
    from classsr_plugin import checkpoint
    import classsr_plugin.registry.mmengine  # noqa: F401  (the mmengine config kind)
    # as configs/mmengine's generator, so one set of weights fits every kind
    net = {"type": "ClassSR", "base": dict(FSRCNN, residual=True), "classifier": {"type": "ClassModule", "nf": 32}}
    torch.manual_seed(1)
    model = checkpoint.load(net)  # a config alone: untrained, and it says so
    assert model.weights_file is None
    saved = str(tmp_path / "m.pth")
    model.save(saved)
    sd = model.state_dict()
    torch.save({"params": sd}, tmp_path / "net_g.pth")
    torch.save({"state_dict": {f"generator.{k}": v for k, v in sd.items()}}, tmp_path / "iter_1.pth")
    (tmp_path / "o.yml").write_text(yaml.safe_dump({"network_g": net,
                                                    "path": {"pretrain_network_g": str(tmp_path / "net_g.pth")}}))
    config = os.path.join(ROOT, "configs", "mmengine", "classsr_fsrcnn_x4_3_joint.py")
    got = {"file": checkpoint.load(saved), "options": checkpoint.load(str(tmp_path / "o.yml")),
           "dict": checkpoint.load(net, str(tmp_path / "net_g.pth")),
           "mmengine": checkpoint.load(config, str(tmp_path / "iter_1.pth")),
           "from_checkpoint": ClassSR.from_checkpoint(saved)}
    for kind, loaded in got.items():
        assert isinstance(loaded, ClassSR) and not loaded.training, kind
        assert all(torch.equal(loaded.state_dict()[k], v) for k, v in sd.items()), kind
    assert got["mmengine"].weights_file == str(tmp_path / "iter_1.pth")
    assert got["options"].weights_file == str(tmp_path / "net_g.pth")
    with pytest.raises(KeyError, match="path.pretrain_network_g: no weights"):
        checkpoint.load({"network_g": {"type": "FSRCNN"}}, need_weights=True)
    with pytest.raises(KeyError, match="--set is for options"):
        checkpoint.load(saved, overrides={"network_g.d": 16})
    with pytest.raises(KeyError, match="holds a plain FSRCNN, not a ClassSR"):
        checkpoint.load({"type": "FSRCNN"}, expect=ClassSR)


def test_classsr_save_is_atomic(model, tmp_path):
    path = tmp_path / "m.pth"
    model.save(str(path))
    before = path.read_bytes()
    broken = ClassSR(base=dict(FSRCNN))
    broken.config = dict(broken.config, note=lambda: 0)  # cannot be pickled: the save dies half-way
    with pytest.raises(Exception):
        broken.save(str(path))
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.pth"]
