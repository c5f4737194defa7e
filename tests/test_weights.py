"""The weights that ship in the package: shapes, the protocol (the widest branch is FSRCNN-O),
and the numbers the model card documents."""
import json
import os

import torch
from basicsr.archs import build_network
from basicsr.metrics import calculate_psnr
from basicsr.utils import tensor2img

from classsr_plugin import ClassSR, run_tiled, weights
from classsr_plugin.checkpoint import load
from classsr_plugin.weights import demo_photo
from classsr_plugin.evaluate import bicubic_pair

CARD = os.path.join(weights.HERE, "card.json")


def test_weights_and_demo_photo_ship_with_the_package():
    assert weights.shipped(), f"missing {weights.CLASSSR_FSRCNN_X4} or {weights.FSRCNN_O_X4}"
    for name in ("MODEL_CARD.md", "card.json"):
        assert os.path.exists(os.path.join(weights.HERE, name))
    assert demo_photo().shape == (3, 1600, 2560)


def test_weight_shapes_match_their_configs():
    state = torch.load(weights.CLASSSR_FSRCNN_X4, weights_only=True)
    fresh = ClassSR(**state["classsr"]).state_dict()
    assert {k: tuple(v.shape) for k, v in state["params"].items()} == {k: tuple(v.shape) for k, v in fresh.items()}
    assert state["classsr"]["widths"] == [16, 36, 56]
    # the router the card says was chosen: a learnt classifier or an edge score (thresholds only)
    card = json.load(open(CARD))["classsr"]
    assert state["classsr"]["classifier"] == card["classifier"]
    edge = card["router"].split(",")[0].endswith("score")  # "Laplacian score, per-photo fit": a variant of one
    assert card["classifier"]["type"] == ("EdgeScore" if edge else "ClassModule")
    if edge:  # the score the card names
        assert card["classifier"].get("score", "gradient") == ("laplacian" if "Laplacian" in card["router"] else "gradient")
    assert state["classsr"].get("zero_class", False) == card.get("zero_class", False)
    ref = torch.load(weights.FSRCNN_O_X4, weights_only=True)
    fresh = build_network(ref["network_g"]).state_dict()
    assert {k: tuple(v.shape) for k, v in ref["params"].items()} == {k: tuple(v.shape) for k, v in fresh.items()}


def test_widest_branch_is_fsrcnn_o_exactly():
    model, ref = load(weights.CLASSSR_FSRCNN_X4), load(weights.FSRCNN_O_X4)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.branches[-1].state_dict()[k], v), k
    lr = bicubic_pair(demo_photo()[:, :400, :600], 4)[1]
    forced = model.restore_image(lr, force_class=model.num_classes - 1, execution="tiles").image
    # FSRCNN-O in the memory layout ClassSR runs its branches in (channels_last on CPU): the
    # same convolutions, so the same bits
    cl = torch.channels_last if model.channels_last else torch.contiguous_format
    ref = ref.to(memory_format=cl)
    with torch.no_grad():
        assert torch.equal(forced, run_tiled(lr, lambda x: ref(x.contiguous(memory_format=cl)), 4, 32, 28))


def test_documented_psnr_on_the_demo_photo():
    card = json.load(open(CARD))["demo_photo"]
    hr, lr = bicubic_pair(demo_photo(), 4)
    # as the card's run: cards made before `coarsen` existed record none (it was off then)
    res = load(weights.CLASSSR_FSRCNN_X4).restore_image(lr, coarsen=card.get("coarsen", False))
    psnr = calculate_psnr(tensor2img(res.image), tensor2img(hr), crop_border=4)
    assert abs(psnr - card["classsr_psnr"]) < 0.01, (psnr, card)
    assert res.counts == card["classsr_counts"]
    assert abs(res.flops_percent - card["classsr_flops_percent"]) < 0.01


def test_demo_prints_all_three_methods(tmp_path, capsys):
    from classsr_plugin.cli import main
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    card = json.load(open(CARD))["demo_photo"]
    assert "shipped weights" in out and "output 2560x1600" in out
    assert f"ClassSR-FSRCNN: {card['classsr_psnr']:.2f}" in out and f"FSRCNN-O: {card['fsrcnn_o_psnr']:.2f}" in out
    assert f"bicubic: {card['bicubic_psnr']:.2f}" in out
    import cv2
    assert cv2.imread(str(tmp_path / "BytheWater_classsr_x4.png")).shape == (1600, 2560, 3)
    assert cv2.imread(str(tmp_path / "BytheWater_classmap.png")).shape == (1600 + 64, 2560, 3)  # + legend
    assert cv2.imread(str(tmp_path / "BytheWater_compare.png")) is not None
    assert (tmp_path / "BytheWater_fsrcnn_o_x4.png").exists()


def test_tile_borders_do_not_show_on_a_real_photo():
    """Seam ratio (1.0 = no seam) at the 32/28 grid's borders, against the whole-image output's
    value at the same places (the photo's own structure): feathered overlaps stay at it, plain
    averaging, the original code's way, shows (1.5x here)."""
    from classsr_plugin import TileGrid
    from classsr_plugin.tiling import seam_ratio
    ref = load(weights.FSRCNN_O_X4)
    model = load(weights.CLASSSR_FSRCNN_X4)
    lr = bicubic_pair(demo_photo()[:, :800, :1200], 4)[1]
    borders = TileGrid(lr.shape[1], lr.shape[2], 32, 28, 4).borders()
    ratio = lambda img: seam_ratio(img.clamp(0, 1), *borders, 4)  # noqa: E731
    with torch.no_grad():
        whole_img = ref(lr[None])[0]
        whole = ratio(whole_img)
        feather, average = (ratio(run_tiled(lr, ref, 4, 32, 28, blend=b)) for b in ("feather", "average"))
    routed = ratio(model.restore_image(lr, execution="tiles").image)  # branches change across borders too
    assert feather < whole * 1.03 and routed < whole * 1.03 and feather < 1.10, (feather, routed, whole)
    assert average > whole * 1.2, (average, whole)
    # regions (the default): at the cells' borders, where rectangles and branches change
    from classsr_plugin.regions import CellGrid
    cells = CellGrid(lr.shape[1], lr.shape[2], 32)
    at_cells = lambda img: seam_ratio(img.clamp(0, 1), [int(y) * 4 for y in cells.ys[1:]],  # noqa: E731
                                      [int(x) * 4 for x in cells.xs[1:]], 4)
    regions, whole_cells = at_cells(model.restore_image(lr).image), at_cells(whole_img)
    assert regions < whole_cells * 1.03 and regions < 1.10, (regions, whole_cells)
