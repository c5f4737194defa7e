"""Shared-weight branches: one network's parameters, each width the leading slices of the
widest's tensors, trained by the sandwich rule (phase: supernet)."""
import pytest
import torch
from basicsr.archs import build_network
from basicsr.losses import build_loss

from classsr_plugin import ClassSR
from classsr_plugin.phases import PhaseSettings

SMALL = {
    "FSRCNN": dict(type="FSRCNN", d=56),
    "CARNM": dict(type="CARNM", nf=64),
    "MSRResNet": dict(type="MSRResNet", num_feat=32, num_block=2, upscale=4),
    "EDSR": dict(type="EDSR", num_in_ch=3, num_out_ch=3, num_feat=32, num_block=2, upscale=4),
    "RCAN": dict(type="RCAN", num_in_ch=3, num_out_ch=3, num_feat=32, num_group=1, num_block=2, upscale=4,
                 squeeze_factor=8),
    "SwinIR": dict(type="SwinIR", upscale=4, img_size=32, window_size=8, embed_dim=24, depths=[2], num_heads=[6],
                   mlp_ratio=2, upsampler="pixelshuffledirect"),
}


def n_params(m):
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name", list(SMALL))
def test_shared_branches_hold_one_networks_parameters(name):
    torch.manual_seed(0)
    model = ClassSR(base=SMALL[name], share_weights=True).eval()
    base = build_network(SMALL[name])
    assert n_params(model) == n_params(base) + n_params(model.classifier)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        # forced to the widest, ClassSR is the base network with these weights
        ref = model.build_base().eval()
        assert torch.allclose(model(x, force_class=model.num_classes - 1).out, ref(x), atol=1e-5)
        # each narrow width equals a separately built narrow network carrying the slices
        for k, w in enumerate(model.widths[:-1]):
            narrow = build_network({**SMALL[name], model.width_key: w}).eval()
            wide = model.branches[-1].state_dict()
            narrow.load_state_dict({n: wide[n][tuple(slice(0, s) for s in t.shape)]
                                    for n, t in narrow.state_dict().items()})
            assert torch.allclose(model(x, force_class=k).out, narrow(x), atol=1e-5), (name, w)
    cost = model.tile_cost(32).branches
    assert cost == sorted(cost) and cost[0] < cost[-1]


def test_narrow_gradients_reach_only_their_slices():
    model = ClassSR(base=SMALL["FSRCNN"], share_weights=True).train()
    model(torch.rand(2, 3, 32, 32), force_class=0).out.abs().mean().backward()
    grad = model.branches[-1].body[0].weight.grad  # first conv: [d, 3, 5, 5]
    assert grad[:16].abs().sum() > 0
    assert torch.count_nonzero(grad[16:]) == 0
    assert model.classifier.fc.weight.grad is None  # forced routing: the classifier did not run


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = ClassSR(base=SMALL["FSRCNN"], share_weights=True).eval()
    model.save(str(tmp_path / "m.pth"))
    again = ClassSR.from_checkpoint(str(tmp_path / "m.pth")).eval()
    assert again.share_weights and again.widths == model.widths
    x = torch.rand(3, 40, 50)
    for k in range(3):
        assert torch.equal(again.restore_image(x, force_class=k).image, model.restore_image(x, force_class=k).image)
    state = torch.load(tmp_path / "m.pth", weights_only=True)["params"]
    assert not [k for k in state if k.startswith(("branches.0.", "branches.1."))]  # nothing of its own


def test_batchnorm_archs_are_refused_by_name():
    with pytest.raises(ValueError, match=r"share_weights: DnCNN has BatchNorm2d layer 'body\.\d+'"):
        ClassSR(base=dict(type="DnCNN", num_feat=16, num_layers=4), share_weights=True)
    # without BN (what the DnCNN configs train: BN did not learn here) the slices are one network
    model = ClassSR(base=dict(type="DnCNN", num_feat=16, num_layers=4, bn=False), share_weights=True)
    assert not [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert model.restore_image(torch.rand(3, 40, 40)).image.shape == (3, 40, 40)


def test_supernet_phase_trains_every_width_by_the_sandwich_rule():
    torch.manual_seed(0)
    model = ClassSR(base=dict(type="FSRCNN", d=56, s=8, m=1, upscale=2), share_weights=True, probe_tile=16)
    settings = PhaseSettings(phase="supernet", distill=0.5, freeze_widest=False)
    settings.freeze(model, log=lambda s: None)
    widths_seen = []
    for b in model.branches[:-1]:
        b.register_forward_pre_hook(lambda m, i: widths_seen.append(i[0].shape[0]))
    lq = torch.rand(4, 3, 16, 16)
    gt = torch.nn.functional.interpolate(lq, scale_factor=2, mode="bicubic")
    terms, idx, out = settings.forward_losses(model.train(), lq, gt, None, build_loss({"type": "L1Loss"}))
    assert set(terms) == {"l_pix", "l_distill"} and out.shape == (4, 3, 32, 32)
    assert sorted(idx.tolist()) == sorted([2] * 4 + [0] * 4 + [1] * 4)  # widest, narrowest, the middle
    assert widths_seen == [4, 4]  # one batched call per narrow width
    sum(terms.values()).backward()
    assert model.branches[-1].last.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="supernet.*share_weights: true"):
        PhaseSettings(phase="supernet").freeze(ClassSR(base=SMALL["FSRCNN"]), log=lambda s: None)
    with pytest.raises(ValueError, match="freeze_widest: with share_weights"):
        PhaseSettings(phase="branches").freeze(model, log=lambda s: None)
