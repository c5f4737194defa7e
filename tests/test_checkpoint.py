"""One place reads every checkpoint kind (classsr_plugin/checkpoint.py), weights_only."""
import pytest
import torch
import yaml

from classsr_plugin import ClassSR, checkpoint
from classsr_plugin.archs.fsrcnn import FSRCNN
from classsr_plugin.cli import main


@pytest.fixture(scope="module")
def nets():
    torch.manual_seed(0)
    return FSRCNN(d=16), FSRCNN(d=16)  # a network and its "EMA"


def test_every_kind_gives_the_same_weights(tmp_path, nets):
    net, ema = nets
    sd, ema_sd = net.state_dict(), ema.state_dict()
    kinds = {
        "plain": sd,
        "ddp": {f"module.{k}": v for k, v in sd.items()},
        "basicsr": {"params": sd, "params_ema": ema_sd},
        "mmengine": {"state_dict": sd, "meta": {"epoch": 1}},
        "editor": {"state_dict": {**{f"generator.{k}": v for k, v in sd.items()}, "data_preprocessor.mean": torch.zeros(3)}},
    }
    for name, obj in kinds.items():
        torch.save(obj, tmp_path / f"{name}.pth")
        got = checkpoint.state_dict(checkpoint.read(str(tmp_path / f"{name}.pth")), where=name)
        assert got.keys() == sd.keys() and all(torch.equal(got[k], sd[k]) for k in sd), name
    ema_got = checkpoint.state_dict(checkpoint.read(str(tmp_path / "basicsr.pth")), key="params_ema")
    assert all(torch.equal(ema_got[k], ema_sd[k]) for k in sd)
    with pytest.raises(KeyError, match="basicsr.pth: no 'params_x'"):
        checkpoint.state_dict(checkpoint.read(str(tmp_path / "basicsr.pth")), key="params_x",
                              where=str(tmp_path / "basicsr.pth"))
    model = ClassSR(base=dict(type="FSRCNN", d=16))
    model.load_base(str(tmp_path / "editor.pth"))  # the widest branch from an MMagic editor's file
    assert torch.equal(model.branches[-1].last.weight, sd["last.weight"])


def test_export_takes_the_options_param_key(tmp_path, nets):
    net, ema = nets
    torch.save({"params": net.state_dict(), "params_ema": ema.state_dict()}, tmp_path / "net_g.pth")
    opt = {"network_g": {"type": "FSRCNN", "d": 16}, "path": {"pretrain_network_g": str(tmp_path / "net_g.pth"),
                                                              "param_key_g": "params_ema"}}
    (tmp_path / "o.yml").write_text(yaml.safe_dump(opt))
    assert main(["export", "-opt", str(tmp_path / "o.yml"), "-o", str(tmp_path / "e.pth")]) == 0
    exported = checkpoint.load(str(tmp_path / "e.pth"))
    assert torch.equal(exported.last.weight, ema.last.weight)  # an EMA run exports its EMA weights


def test_export_half_stores_fp16_and_loads_fp32(tmp_path):
    """`classsr export --half`: the branches' weights in fp16 (about half the file), the edge
    router's thresholds exact; the model loads in fp32 and its output stays close to the fp32 file's."""
    from classsr_plugin import weights
    full, half = str(tmp_path / "full.pth"), str(tmp_path / "half.pth")
    assert main(["export", "-opt", weights.MODEL, "-o", full]) == 0
    assert main(["export", "-opt", weights.MODEL, "-o", half, "--half"]) == 0
    stored = torch.load(half, weights_only=True)["params"]
    branch = [v for k, v in stored.items() if k.startswith("branches.") and v.is_floating_point()]
    assert branch and all(v.dtype == torch.float16 for v in branch)
    assert all(v.dtype == torch.float32 for k, v in stored.items() if k.startswith("classifier.") and v.is_floating_point())
    a, b = checkpoint.load(full), checkpoint.load(half)
    assert all(p.dtype == torch.float32 for p in b.parameters())
    assert torch.equal(a.classifier.thresholds, b.classifier.thresholds)
    import os
    assert os.path.getsize(half) < 0.7 * os.path.getsize(full)
    x = torch.rand(1, 3, 48, 48)
    with torch.no_grad():
        ya, yb = a.restore_image(x[0]).image, b.restore_image(x[0]).image
    assert 0 < (ya - yb).abs().max() < 2e-3
