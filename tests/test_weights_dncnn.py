"""The DnCNN recipe's committed weights (ClassSR-DnCNN, sigma 25): the protocol (the widest branch
is DnCNN-O) and seams at scale 1 with trained weights; the shipped model (dncnn-s25): its files,
the router its card names, and the card's demo numbers, reproduced."""
import json
import os

import pytest
import torch

from classsr_plugin import TileGrid, run_tiled, weights
from classsr_plugin.checkpoint import load
from classsr_plugin.demo import RESTORE_CROP, _centre_crop
from classsr_plugin.tiling import seam_ratio

SHIPPED = weights.CATALOGUE["dncnn-s25"]  # its degradation
CKPT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "checkpoints")
MODEL, REFERENCE = (os.path.join(CKPT, f) for f in ("classsr_dncnn_denoise_branches.pth", "dncnn_denoise_o.pth"))


@pytest.fixture(scope="module")
def noisy():
    """The demo's input: the demo photo's centre crop with the model's seeded noise, and the clean crop."""
    hr = _centre_crop(weights.demo_photo(), RESTORE_CROP)
    return SHIPPED.degrade().of_picture(hr, "BytheWater"), hr


def test_widest_branch_is_dncnn_o_exactly(noisy):
    model, ref = load(MODEL), load(REFERENCE)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.branches[-1].state_dict()[k], v), k
    lr = noisy[0][:, :160, :200]
    forced = model.restore_image(lr, force_class=model.num_classes - 1, execution="tiles", stride=24).image
    cl = torch.channels_last if model.channels_last else torch.contiguous_format
    ref = ref.to(memory_format=cl)
    with torch.no_grad():
        assert torch.equal(forced, run_tiled(lr, lambda x: ref(x.contiguous(memory_format=cl)), 1, 32, 24))


def test_seams_at_scale_1(noisy):
    """A denoiser's receptive field (35 px) is wider than a tile's overlap: with trained weights,
    tile and cell borders must still not show against the whole-image output at the same places."""
    from classsr_plugin.regions import CellGrid
    lr = noisy[0][:, :256, :384]
    model, ref = load(MODEL), load(REFERENCE)
    with torch.no_grad():
        whole = ref(lr[None])[0].clamp(0, 1)
    rows, cols = TileGrid(lr.shape[1], lr.shape[2], 32, 24, 1).borders()
    tiles = model.restore_image(lr, execution="tiles", stride=24).image
    assert seam_ratio(tiles.clamp(0, 1), rows, cols, 1) < seam_ratio(whole, rows, cols, 1) * 1.03
    cells = CellGrid(lr.shape[1], lr.shape[2], 32)
    rows, cols = [int(y) for y in cells.ys[1:]], [int(x) for x in cells.xs[1:]]
    regions = model.restore_image(lr).image
    assert seam_ratio(regions.clamp(0, 1), rows, cols, 1) < seam_ratio(whole, rows, cols, 1) * 1.03


def test_shipped_denoiser_matches_its_card(noisy):
    """The files make_card.py shipped: the widest branch is the shipped DnCNN-O bit for bit, the
    router is the one the card names, and the demo crop gives the card's PSNR, classes and FLOPs."""
    from basicsr.metrics import calculate_psnr
    from basicsr.utils import tensor2img
    assert SHIPPED.present(), f"missing {SHIPPED.path} or {SHIPPED.reference}"
    card = json.load(open(SHIPPED.facts_path))
    model, ref = load(SHIPPED.path), load(SHIPPED.reference)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.branches[-1].state_dict()[k], v), k
    assert model.widths == card["classsr"]["widths"] and model.config["classifier"] == card["classsr"]["classifier"]
    edge = card["classsr"]["router"].endswith("score")
    assert card["classsr"]["classifier"]["type"] == ("EdgeScore" if edge else "ClassModule")
    d = card["demo_photo"]
    res = model.restore_image(noisy[0])
    psnr = calculate_psnr(tensor2img(res.image), tensor2img(noisy[1]), crop_border=0)
    assert abs(psnr - d["classsr_psnr"]) < 0.01, (psnr, d)
    assert res.counts == d["classsr_counts"] and abs(res.flops_percent - d["classsr_flops_percent"]) < 0.01
    assert card["degradation"] == str(SHIPPED.degrade())
