"""The shipped denoiser (ClassSR-DnCNN, sigma 25): the protocol (the widest branch is DnCNN-O),
the numbers its card documents, and seams at scale 1 with trained weights."""
import json

import pytest
import torch
from basicsr.metrics import calculate_psnr
from basicsr.utils import tensor2img

from classsr_plugin import TileGrid, run_tiled, weights
from classsr_plugin.checkpoint import load
from classsr_plugin.demo import RESTORE_CROP, _centre_crop
from classsr_plugin.tiling import seam_ratio

SHIPPED = weights.CATALOGUE["dncnn-s25"]
if not SHIPPED.present():  # scripts/make_card.py --model dncnn-s25 writes them; README: "In training: ClassSR-DnCNN"
    pytest.skip(f"{SHIPPED.name} is not shipped yet (no {SHIPPED.file} in classsr_plugin/weights)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def noisy():
    """The demo's input: the demo photo's centre crop with the model's seeded noise, and the clean crop."""
    hr = _centre_crop(weights.demo_photo(), RESTORE_CROP)
    return SHIPPED.degrade().of_picture(hr, "BytheWater"), hr


def test_shipped_with_its_card():
    assert SHIPPED.present(), f"missing {SHIPPED.path} or {SHIPPED.reference}"
    card = json.load(open(SHIPPED.facts_path))
    model = load(SHIPPED.path)
    assert model.scale == 1 and model.widths == card["classsr"]["widths"]
    assert model.config["classifier"] == card["classsr"]["classifier"]
    assert card["degradation"] == str(SHIPPED.degrade()) == "denoise sigma 25"


def test_widest_branch_is_dncnn_o_exactly(noisy):
    model, ref = load(SHIPPED.path), load(SHIPPED.reference)
    for k, v in ref.state_dict().items():
        assert torch.equal(model.branches[-1].state_dict()[k], v), k
    lr = noisy[0][:, :160, :200]
    forced = model.restore_image(lr, force_class=model.num_classes - 1, execution="tiles", stride=24).image
    cl = torch.channels_last if model.channels_last else torch.contiguous_format
    ref = ref.to(memory_format=cl)
    with torch.no_grad():
        assert torch.equal(forced, run_tiled(lr, lambda x: ref(x.contiguous(memory_format=cl)), 1, 32, 24))


def test_documented_numbers_on_the_demo_crop(noisy):
    card = json.load(open(SHIPPED.facts_path))["demo_photo"]
    lr, hr = noisy
    res = load(SHIPPED.path).restore_image(lr)
    psnr = calculate_psnr(tensor2img(res.image), tensor2img(hr), crop_border=0)
    assert abs(psnr - card["classsr_psnr"]) < 0.01, (psnr, card)
    assert res.counts == card["classsr_counts"]
    assert abs(res.flops_percent - card["classsr_flops_percent"]) < 0.01
    assert card["classsr_psnr"] > card["input_psnr"] + 5  # it denoises: sigma 25 leaves about 20 dB


def test_seams_at_scale_1(noisy):
    """A denoiser's receptive field (35 px) is wider than a tile's overlap: with trained weights,
    tile and cell borders must still not show against the whole-image output at the same places."""
    from classsr_plugin.regions import CellGrid
    lr = noisy[0][:, :256, :384]
    model, ref = load(SHIPPED.path), load(SHIPPED.reference)
    with torch.no_grad():
        whole = ref(lr[None])[0].clamp(0, 1)
    rows, cols = TileGrid(lr.shape[1], lr.shape[2], 32, 24, 1).borders()
    tiles = model.restore_image(lr, execution="tiles", stride=24).image
    assert seam_ratio(tiles.clamp(0, 1), rows, cols, 1) < seam_ratio(whole, rows, cols, 1) * 1.03
    cells = CellGrid(lr.shape[1], lr.shape[2], 32)
    rows, cols = [int(y) for y in cells.ys[1:]], [int(x) for x in cells.xs[1:]]
    regions = model.restore_image(lr).image
    assert seam_ratio(regions.clamp(0, 1), rows, cols, 1) < seam_ratio(whole, rows, cols, 1) * 1.03
