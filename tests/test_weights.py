"""The weights that ship in the package: shapes, and the PSNR the model card documents."""
import json
import os

import torch
from basicsr.archs import build_network
from basicsr.metrics import calculate_psnr
from basicsr.utils import tensor2img

from classsr_plugin import ClassSR, weights
from classsr_plugin.cli import demo_photo, load_checkpoint
from classsr_plugin.evaluate import bicubic_pair

CARD = os.path.join(weights.HERE, "card.json")


def test_weights_ship_with_the_package():
    assert weights.shipped(), f"missing {weights.CLASSSR_FSRCNN_X4} or {weights.FSRCNN_O_X4}"
    assert os.path.exists(os.path.join(weights.HERE, "MODEL_CARD.md")) and os.path.exists(CARD)


def test_weight_shapes_match_their_configs():
    state = torch.load(weights.CLASSSR_FSRCNN_X4, weights_only=True)
    fresh = ClassSR(**state["classsr"]).state_dict()
    assert {k: tuple(v.shape) for k, v in state["params"].items()} == {k: tuple(v.shape) for k, v in fresh.items()}
    assert state["classsr"]["widths"] == [16, 36, 56]
    assert state["classsr"]["classifier"] == {"type": "ClassModule", "nf": 32}
    ref = torch.load(weights.FSRCNN_O_X4, weights_only=True)
    fresh = build_network(ref["network_g"]).state_dict()
    assert {k: tuple(v.shape) for k, v in ref["params"].items()} == {k: tuple(v.shape) for k, v in fresh.items()}


def test_documented_psnr_on_the_built_in_photo():
    card = json.load(open(CARD))["demo_photo"]
    hr, lr = bicubic_pair(demo_photo(), 4)
    model = load_checkpoint(weights.CLASSSR_FSRCNN_X4)
    res = model.restore_image(lr)
    psnr = calculate_psnr(tensor2img(res.image), tensor2img(hr), crop_border=4)
    assert abs(psnr - card["classsr_psnr"]) < 0.01, (psnr, card)
    assert res.counts == card["classsr_counts"]
    assert abs(res.flops_percent - card["classsr_flops_percent"]) < 0.01


def test_demo_prints_all_three_methods(tmp_path, capsys):
    from classsr_plugin.cli import main
    assert main(["demo", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    card = json.load(open(CARD))["demo_photo"]
    assert "shipped weights" in out and "FSRCNN-O on the same tiles" in out
    assert f"{card['classsr_psnr']:.2f}" in out and f"{card['fsrcnn_o_psnr']:.2f}" in out
    assert (tmp_path / "coffee_fsrcnn_o_x4.png").exists()
