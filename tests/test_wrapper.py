import pytest
import torch
import torch.nn as nn
from basicsr.archs import build_network
from basicsr.utils.registry import ARCH_REGISTRY

from classsr_plugin import ClassSR, register_classifier, run_tiled

# Small but real configs of every arch the plugin promises to wrap.
ARCHS = {
    "MSRResNet": dict(type="MSRResNet", num_in_ch=3, num_out_ch=3, num_feat=64, num_block=2, upscale=4),
    "EDSR": dict(type="EDSR", num_in_ch=3, num_out_ch=3, num_feat=64, num_block=2, upscale=4),
    "RCAN": dict(type="RCAN", num_in_ch=3, num_out_ch=3, num_feat=64, num_group=2, num_block=2,
                 upscale=4),
    "RRDBNet": dict(type="RRDBNet", num_in_ch=3, num_out_ch=3, scale=4, num_feat=32, num_block=2,
                    num_grow_ch=16),
    "SRVGGNetCompact": dict(type="SRVGGNetCompact", num_in_ch=3, num_out_ch=3, num_feat=32,
                            num_conv=4, upscale=4),
    "SwinIR": dict(type="SwinIR", upscale=4, in_chans=3, img_size=32, window_size=8, embed_dim=60,
                   depths=[2, 2], num_heads=[6, 6], mlp_ratio=2, upsampler="pixelshuffledirect"),
    "FSRCNN": dict(type="FSRCNN", d=56, s=12, m=4, upscale=4),
    "CARNM": dict(type="CARNM", nf=64, group=4, upscale=4),
}
EXPECTED_KEY = {"MSRResNet": "num_feat", "EDSR": "num_feat", "RCAN": "num_feat", "RRDBNet": "num_feat",
                "SRVGGNetCompact": "num_feat", "SwinIR": "embed_dim", "FSRCNN": "d", "CARNM": "nf"}
PAPER = {"FSRCNN": [16, 36, 56], "MSRResNet": [36, 52, 64], "RCAN": [36, 50, 64], "CARNM": [36, 52, 64]}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", ARCHS)
def test_wrap_every_arch_with_one_config_line(name):
    base = ARCHS[name]
    model = build_network({"type": "ClassSR", "base": base})
    assert model.width_key == EXPECTED_KEY[name]
    assert model.widths == sorted(set(model.widths)) and len(model.widths) == 3
    assert model.widths[-1] == base[model.width_key]
    if name in PAPER:
        assert model.widths == PAPER[name]
    if name == "SwinIR":
        assert all(w % 6 == 0 for w in model.widths)
    # the widest branch is the base network itself; narrower ones are smaller
    assert n_params(model.branches[-1]) == n_params(build_network(base))
    sizes = [n_params(b) for b in model.branches]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]
    assert model.scale == 4

    x = torch.rand(2, 3, 32, 32)
    model.train()
    y, logits, idx = model(x)
    p = logits.softmax(1)
    assert y.shape == (2, 3, 128, 128) and p.shape == (2, 3) and torch.equal(idx, p.argmax(1))
    y.mean().backward()  # gradients reach the classifier through the probability mix
    assert any(q.grad is not None and q.grad.abs().sum() > 0 for q in model.classifier.parameters())
    model.eval()
    with torch.no_grad():
        y, logits, idx = model(x)
        only = model(x, run_branches=False)
    assert y.shape == (2, 3, 128, 128) and idx.shape == (2,) and idx.dtype == torch.long
    assert torch.equal(idx, logits.argmax(1)) and only.out is None and torch.equal(only.idx, idx)


def test_train_forward_is_probability_weighted_sum():
    model = ClassSR(base=ARCHS["FSRCNN"]).train()
    x = torch.rand(3, 3, 32, 32)
    y, logits, _ = model(x)
    p = logits.softmax(1)
    with torch.no_grad():
        expected = sum(p[:, j, None, None, None] * model.branches[j](x) for j in range(3))
    assert torch.allclose(y, expected, atol=1e-5)


class BrightnessClassifier(nn.Module):
    def forward(self, x):
        m = x.mean((1, 2, 3))[:, None]
        return -(m - torch.tensor([0.1, 0.25, 0.4])) ** 2


def test_eval_forward_one_batched_call_per_class():
    model = ClassSR(base=ARCHS["FSRCNN"]).eval()
    model.classifier = BrightnessClassifier()  # routes by mean brightness: a mixed batch
    x = torch.rand(32, 3, 32, 32) * torch.linspace(0, 1, 32)[:, None, None, None]
    calls = {k: [] for k in range(3)}
    for k, branch in enumerate(model.branches):
        branch.register_forward_hook(lambda m, inp, out, k=k: calls[k].append(inp[0].shape[0]))
    with torch.no_grad():
        y, _, idx = model(x)
    present = set(idx.tolist())
    assert len(present) >= 2, "test needs a mixed batch"
    for k in range(3):
        assert len(calls[k]) == (1 if k in present else 0)
        assert sum(calls[k]) == int((idx == k).sum())
    for k in present:
        sel = idx == k
        with torch.no_grad():
            assert torch.allclose(y[sel], model.branches[k](x[sel]), atol=1e-5)


@pytest.mark.parametrize("name", ["FSRCNN", "MSRResNet", "CARNM", "SwinIR"])
def test_forced_widest_equals_base_network_tiled(name):
    model = ClassSR(base=ARCHS[name]).eval()
    img = torch.rand(3, 45, 70)
    got = model.restore_image(img, force_class=2, execution="tiles")
    base = model.build_base().eval()
    with torch.no_grad():
        ref = run_tiled(img, base, scale=4, tile=32, stride=28)
    assert got.image.shape == ref.shape == (3, 180, 280)
    assert (got.image - ref).abs().max() < 1e-5
    assert got.counts == [0, 0, len(got.class_map.view(-1))]
    assert got.flops_percent == 100  # the widest branch; forced routing runs no classifier


def test_load_base_basicsr_checkpoint(tmp_path):
    base_cfg = ARCHS["MSRResNet"]
    pretrained = build_network(base_cfg)
    path = tmp_path / "net_g.pth"
    torch.save({"params": pretrained.state_dict()}, path)
    model = ClassSR(base=base_cfg)
    model.load_base(str(path))
    for k, v in pretrained.state_dict().items():
        assert torch.equal(model.branches[-1].state_dict()[k], v)
    # plain state dict, DDP-prefixed keys
    model2 = ClassSR(base=base_cfg)
    model2.load_base({"module." + k: v for k, v in pretrained.state_dict().items()})
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model2.branches[-1](x), pretrained(x), atol=1e-5)
    with pytest.raises(ValueError, match="weights: (Missing|Unexpected)"):  # one line, not torch's list
        ClassSR(base=base_cfg).load_base({"params": build_network(ARCHS["EDSR"]).state_dict()})


def test_timm_classifier():
    # resnet10t costs more per tile than FSRCNN's narrowest branch saves: said at build
    with pytest.warns(UserWarning, match="no routing can save FLOPs"):
        model = build_network({"type": "ClassSR", "base": ARCHS["FSRCNN"], "num_classes": 4,
                               "classifier": {"type": "timm", "model_name": "resnet10t"}})
    assert type(model.classifier).__name__ == "ResNet"
    assert len(model.widths) == 4
    model.train()
    y, logits, _ = model(torch.rand(2, 3, 32, 32))
    assert logits.shape == (2, 4) and y.shape == (2, 3, 128, 128)


@ARCH_REGISTRY.register()
class UserTinyNet(nn.Module):
    """A user's own arch registered in BasicSR, with an unusual width argument name."""

    def __init__(self, in_ch=3, hidden=24, scale=2):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(in_ch, hidden, 3, padding=1), nn.ReLU(),
                                  nn.Conv2d(hidden, in_ch * scale * scale, 3, padding=1),
                                  nn.PixelShuffle(scale))

    def forward(self, x):
        return self.body(x)


def test_user_arch_registered_in_basicsr():
    model = build_network({"type": "ClassSR", "base": {"type": "UserTinyNet", "hidden": 24},
                           "width_key": "hidden", "num_classes": 2})
    assert model.widths == [14, 24] and model.scale == 2
    out = model.restore_image(torch.rand(3, 40, 50))
    assert out.image.shape == (3, 80, 100)


def test_classifier_mistakes_name_the_option():
    with pytest.raises(KeyError, match=r"classifier.model_name: timm has no model 'resnet10x'; close: .*resnet10t"):
        ClassSR(base=ARCHS["FSRCNN"], classifier={"type": "timm", "model_name": "resnet10x"})
    small = ClassSR(base=ARCHS["FSRCNN"], classifier={"type": "ClassModule", "nf": 32})
    paper = ClassSR(base=ARCHS["FSRCNN"])
    with pytest.raises(ValueError, match=r"network_g.classifier: the checkpoint's classifier .* same classifier in every phase"):
        paper.load_state_dict(small.state_dict())


@register_classifier("Brightness")
class Brightness(nn.Module):
    """A user's router: bright sub-images to the wider of two branches."""

    def __init__(self, num_classes=2, in_ch=3, level=0.5):
        super().__init__()
        self.level = level

    def forward(self, x):
        m = x.mean((1, 2, 3)) - self.level
        return torch.stack([-m, m], 1)


def test_a_registered_classifier_routes_and_saves(tmp_path):
    model = ClassSR(base=dict(type="FSRCNN", d=16, upscale=2), num_classes=2, widths=[8, 16],
                    classifier={"type": "Brightness", "level": 0.4})
    x = torch.cat([torch.full((1, 3, 16, 16), 0.3), torch.full((1, 3, 16, 16), 0.5)])
    assert model(x, run_branches=False).idx.tolist() == [0, 1]
    model.save(str(tmp_path / "m.pth"))  # the config names the type; the test module is where it lives
    assert ClassSR.from_checkpoint(str(tmp_path / "m.pth")).classifier.level == 0.4
    with pytest.raises(KeyError, match="unknown classifier 'Nope'; registered: Brightness, ClassModule, EdgeScore"):
        ClassSR(base=dict(type="FSRCNN", d=16, upscale=2), classifier={"type": "Nope"})
