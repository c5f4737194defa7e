"""The zero class: a first class with no network call, whose output is the arch's fixed skip
(FSRCNN's bicubic) or bicubic upsampling."""
import pytest
import torch
import torch.nn.functional as F

from classsr_plugin import ClassSR
from classsr_plugin.regions import CellGrid

FSRCNN = dict(type="FSRCNN", d=56, upscale=4, residual=True)


def _bicubic(img):
    return F.interpolate(img[None], scale_factor=4, mode="bicubic", align_corners=False)[0]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = ClassSR(base=FSRCNN, zero_class=True, classifier={"type": "ClassModule", "nf": 32}).eval()
    with torch.no_grad():
        for b in m.branches:  # trained-like: the learned part is not ~0
            torch.nn.init.normal_(b.last.weight, std=0.05)
    return m


def test_classes_costs_and_names(model):
    assert model.num_classes == 4 and len(model.branches) == 3 and model.widths == [16, 36, 56]
    assert model.class_names == ["skip", "d=16", "d=36", "d=56"]
    assert model.classifier.fc.out_features == 4
    cost = model.tile_cost(32)
    # the zero class costs its bicubic only (2 x 16 taps per output value): 3% of FSRCNN-O
    assert cost.branches[0] == 2 * 16 * 3 * 128 * 128
    assert cost.branches == sorted(cost.branches) and cost.branches[0] < 0.04 * cost.base
    assert "zero" not in "".join(model.state_dict())  # no weights of its own


def test_zero_class_everywhere_is_the_skip(model):
    from classsr_plugin import run_tiled
    img = torch.rand(3, 70, 90)
    res = model.restore_image(img, force_class=0)  # regions: the skip computed once, nothing else
    assert torch.allclose(res.image, _bicubic(img), atol=1e-5)
    assert res.flops_percent == pytest.approx(100 * model.tile_cost(32).branches[0] / model.tile_cost(32).base)
    tiles = model.restore_image(img, "tiles", force_class=0)  # each tile's bicubic, blended
    assert torch.allclose(tiles.image, run_tiled(img, lambda x: F.interpolate(x, scale_factor=4, mode="bicubic"), 4),
                          atol=1e-5)


def test_mixed_routing_in_regions(model):
    """Deep inside a zero-class cell the output is the skip; deep inside a widest cell it is
    FSRCNN-O on the whole image (margin 16 covers its receptive field)."""
    img = torch.rand(3, 128, 128)
    grid = CellGrid(128, 128, 32)
    assign = torch.tensor([[0, 3, 0, 3], [3, 0, 3, 0], [0, 3, 0, 3], [3, 0, 3, 0]]).view(-1)
    # coarsen=False: each cell as routed (the cheapest cover would run this checkerboard at the
    # widest class, whose windows cost less than 8 separate ones with 16 px of margin)
    res = model.restore_image(img, "regions", force_class=assign, margin=16, max_cells=2, coarsen=False)
    with torch.no_grad():
        widest = model.branches[-1](img[None])[0]
    bic = _bicubic(img)
    inner = slice(4 * 12, 4 * 20)  # LR 12..20 of the cell at 0..32: far from its borders
    assert torch.allclose(res.image[:, inner, inner], bic[:, inner, inner], atol=1e-5)  # cell (0, 0): zero class
    far = slice(4 * 44, 4 * 52)  # cell (1, 1): the zero class; cell (0, 1) = LR cols 32..64: widest
    assert torch.allclose(res.image[:, inner, far], widest[:, inner, far], atol=1e-4)
    assert not torch.allclose(res.image[:, inner, far], bic[:, inner, far], atol=1e-3)
    assert res.counts == [8, 0, 0, 8]
    # FLOPs: 8 widest cells, each its own window with 16 px of margin as far as the image goes,
    # and 8 zero-class cells at the bicubic's cost, over FSRCNN-O on the whole image
    side = lambda i: min(32 * i + 48, 128) - max(32 * i - 16, 0)  # noqa: E731
    widest = sum(side(r) * side(c) for r in range(4) for c in range(4) if (r + c) % 2)
    cost = model.tile_cost(32)
    expect = (widest * cost.branches[3] + 8 * 1024 * cost.branches[0]) / (128 * 128 * cost.branches[3])
    assert res.flops_percent == pytest.approx(100 * expect)


def test_without_a_skip_the_zero_class_is_bicubic():
    torch.manual_seed(0)
    m = ClassSR(base=dict(type="FSRCNN", d=32, s=8, m=1, upscale=4), zero_class=True,
                classifier={"type": "ClassModule", "nf": 16}).eval()
    assert m.class_names[0] == "bicubic"
    img = torch.rand(3, 40, 50)
    assert torch.allclose(m.restore_image(img, force_class=0).image, _bicubic(img), atol=1e-5)
    assert torch.allclose(m.restore_image(img, force_class=0, max_cells=1).image, _bicubic(img), atol=0.02)


def test_branches_of_a_model_without_the_zero_class_load(tmp_path):
    torch.manual_seed(1)
    plain = ClassSR(base=FSRCNN, classifier={"type": "ClassModule", "nf": 32})
    state = plain.state_dict()
    torch.manual_seed(2)
    zero = ClassSR(base=FSRCNN, zero_class=True, classifier={"type": "ClassModule", "nf": 32})
    fresh = {k: v.clone() for k, v in zero.classifier.state_dict().items()}
    with pytest.warns(UserWarning, match="one class fewer"):
        zero.load_state_dict(state)
    for k, v in plain.branches.state_dict().items():
        assert torch.equal(zero.branches.state_dict()[k], v)
    for k, v in zero.classifier.state_dict().items():
        assert torch.equal(v, fresh[k])  # the classifier starts afresh
    other = ClassSR(base=FSRCNN, zero_class=True)  # another classifier altogether: still an error
    with pytest.raises(ValueError, match="classifier"):
        other.load_state_dict(state)


def test_budget_reaches_below_the_narrowest_branch(model):
    torch.manual_seed(5)
    img = (torch.rand(3, 128, 160) * torch.rand(1, 4, 5).repeat_interleave(32, 1).repeat_interleave(32, 2)
           + torch.rand(3, 4, 5).repeat_interleave(32, 1).repeat_interleave(32, 2)) / 2
    prev = None
    for budget in (0.05, 0.2, 0.4, 0.6, 0.9):
        res = model.restore_image(img, budget=budget, budget_mode="target")
        if budget == 0.05:
            assert res.counts[0] == sum(res.counts)  # everything to the zero class
        if prev is not None:
            assert res.flops_percent >= prev
        prev = res.flops_percent


def test_branches_phase_refuses_the_zero_class(model):
    from classsr_plugin.phases import PhaseSettings
    with pytest.raises(ValueError, match="zero_class"):
        PhaseSettings(phase="branches").check_model(model)
    PhaseSettings(phase="classifier", allow_untrained=True).check_model(model)


def test_nested_edge_router_moves_only_the_flattest_cells_to_the_zero_class():
    """scripts/nest_zero.py: the plain router's classes everywhere, shifted by one, except cells
    below the zero router's lowest threshold, which go to the zero class; the branches are the
    zero-class model's."""
    import os
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "scripts"))
    from nest_zero import nest
    from classsr_plugin.classifier import edge_classes
    torch.manual_seed(0)
    plain = ClassSR(base=FSRCNN, classifier={"type": "EdgeScore", "thresholds": [0.02, 0.05]}).eval()
    zero = ClassSR(base=FSRCNN, zero_class=True, classifier={"type": "EdgeScore", "thresholds": [0.01, 0.015, 0.03]})
    nested = nest(plain, zero)
    assert nested.zero_class and nested.config["classifier"]["thresholds"] == [0.01, 0.02, 0.05]
    assert all(torch.equal(v, zero.branches.state_dict()[k]) for k, v in nested.branches.state_dict().items())
    ramp = torch.linspace(0, 1, 64)[None, None, :].expand(3, 64, 64) * torch.linspace(0, 1, 64)[None, :, None]
    tiles = torch.stack([ramp * a for a in torch.linspace(0, 6, 24)])  # flat to steep
    k_plain, k_nested = plain.classifier(tiles).argmax(1), nested.classifier(tiles).argmax(1)
    flat = k_nested == 0
    assert flat.any() and (~flat).any()
    assert torch.equal(k_nested[~flat], k_plain[~flat] + 1)  # every other cell keeps its branch
    assert (k_plain[flat] == 0).all()  # only cells the plain router sent to its narrowest
    assert torch.equal(edge_classes(nested.classifier.score(tiles), [0.01, 0.02, 0.05]), k_nested)
    with pytest.raises(ValueError, match="lowest threshold"):
        nest(zero, plain)
    lap = ClassSR(base=FSRCNN, zero_class=True, classifier={"type": "EdgeScore", "thresholds": [0.01, 0.015, 0.03],
                                                            "score": "laplacian"})
    with pytest.raises(ValueError, match="one score: plain 'gradient', zero 'laplacian'"):
        nest(plain, lap)
    lap_plain = ClassSR(base=FSRCNN, classifier={"type": "EdgeScore", "thresholds": [0.02, 0.05], "score": "laplacian"})
    assert nest(lap_plain, lap).config["classifier"]["score"] == "laplacian"  # the score carries over


def test_class_map_legend_draws_the_zero_class_in_its_own_colour(model, tmp_path):
    """`classsr infer --class-map` of a zero-class model: the legend's first swatch is the zero
    class's blue, as the overlay tints its cells, and the branches keep the usual colours."""
    import cv2
    from classsr_plugin.cli import main
    from classsr_plugin.visual import PALETTE, ZERO
    ckpt = str(tmp_path / "zero.pth")
    model.save(ckpt)
    cv2.imwrite(str(tmp_path / "in.png"), (torch.rand(40, 64, 3) * 255).byte().numpy())
    assert main(["infer", "-opt", ckpt, str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "--class-map"]) == 0
    pic = cv2.imread(str(tmp_path / "out" / "in_x4_classes.png"))[:, :, ::-1] / 255.0
    strip = pic[160:]  # the legend under the 160 x 256 output
    h, cell = strip.shape[0], 256 // 4
    swatch = lambda k: torch.tensor(strip[h // 2, k * cell + h // 2].copy()).float()  # noqa: E731
    assert torch.allclose(swatch(0), ZERO[0], atol=0.02), swatch(0)
    assert torch.allclose(swatch(1), PALETTE[0], atol=0.02), swatch(1)
