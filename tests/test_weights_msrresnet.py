"""The shipped ClassSR-MSRResNet x4 (`--model msrresnet`, scripts/recipe_msrresnet_x4.sh): the protocol
(the widest branch is the shipped MSRResNet-O, BasicSR's arch unchanged), the router its card names,
the card's demo numbers reproduced, and no seams with trained weights at the margin it ships with."""
import json

import pytest
import torch
from basicsr.metrics import calculate_psnr
from basicsr.utils import tensor2img

from classsr_plugin import TileGrid, weights
from classsr_plugin.checkpoint import load
from classsr_plugin.evaluate import bicubic_pair
from classsr_plugin.tiling import seam_ratio

SHIPPED = weights.CATALOGUE["msrresnet"]


@pytest.fixture(scope="module")
def shipped():
    assert SHIPPED.present(), f"missing {SHIPPED.path} or {SHIPPED.reference}"
    return load(SHIPPED.path), load(SHIPPED.reference), json.load(open(SHIPPED.facts_path))


def test_widest_branch_is_the_shipped_msrresnet_o(shipped):
    model, ref, card = shipped
    assert type(ref).__name__ == "MSRResNet" and model.arch.__name__ == "MSRResNet"
    for k, v in ref.state_dict().items():
        assert torch.equal(model.branches[-1].state_dict()[k], v), k
    assert model.widths == card["classsr"]["widths"] and model.widths[-1] == 64
    assert model.config["classifier"] == card["classsr"]["classifier"]
    edge = card["classsr"]["router"].split(", ")[-1].split(",")[0].endswith("score")
    assert card["classsr"]["classifier"]["type"] == ("EdgeScore" if edge else "ClassModule")
    for p in list(model.parameters()) + list(ref.parameters()):  # fp16 on disk or not: fp32 once loaded
        assert p.dtype == torch.float32


def test_card_demo_numbers_reproduce(shipped):
    model, _, card = shipped
    d = card["demo_photo"]
    hr, lr = bicubic_pair(weights.demo_photo(), 4)
    res = model.restore_image(lr)
    psnr = calculate_psnr(tensor2img(res.image), tensor2img(hr), crop_border=4)
    assert abs(psnr - d["classsr_psnr"]) < 0.01, (psnr, d)
    assert res.counts == d["classsr_counts"] and abs(res.flops_percent - d["classsr_flops_percent"]) < 0.01


def test_no_seams_with_trained_weights(shipped):
    """Tile borders (32/28, feathered) and cell borders (regions, the shipped margin) against the
    whole-image output at the same places."""
    from classsr_plugin.regions import CellGrid
    model, ref, _ = shipped
    lr = bicubic_pair(weights.demo_photo()[:, :640, :960], 4)[1]
    with torch.no_grad():
        whole = ref(lr[None])[0].clamp(0, 1)
    rows, cols = TileGrid(lr.shape[1], lr.shape[2], 32, 28, 4).borders()
    tiles = model.restore_image(lr, execution="tiles").image.clamp(0, 1)
    assert seam_ratio(tiles, rows, cols, 4) < seam_ratio(whole, rows, cols, 4) * 1.03
    cells = CellGrid(lr.shape[1], lr.shape[2], 32)
    rows, cols = [int(y) * 4 for y in cells.ys[1:]], [int(x) * 4 for x in cells.xs[1:]]
    regions = model.restore_image(lr).image.clamp(0, 1)
    assert seam_ratio(regions, rows, cols, 4) < seam_ratio(whole, rows, cols, 4) * 1.03
