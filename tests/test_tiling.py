import time

import pytest
import torch
import torch.nn.functional as F

from classsr_plugin import ClassSR, TileGrid, run_tiled
from classsr_plugin.tiling import tile_starts


def test_starts_cover_borders():
    assert tile_starts(100, 32, 28).tolist() == [0, 28, 56, 68]
    assert tile_starts(32, 32, 28).tolist() == [0]
    assert tile_starts(88, 32, 28).tolist() == [0, 28, 56]
    assert tile_starts(5, 32, 28).tolist() == [0]


@pytest.fixture(scope="module")
def fsrcnn():
    torch.manual_seed(0)
    return ClassSR(base=dict(type="FSRCNN", d=56, upscale=4)).eval()


@pytest.mark.parametrize("h,w", [(1, 1), (31, 33), (123, 77)])
def test_output_is_exactly_input_times_scale(fsrcnn, h, w):
    img = torch.rand(3, h, w)
    start = time.perf_counter()
    out = fsrcnn.restore_image(img, execution="tiles")
    elapsed = time.perf_counter() - start
    assert out.image.shape == (3, h * 4, w * 4)
    # a tiny image is one padded tile: its output is the branch's on the padded tile, cropped
    if h < 32 and w < 32:
        k = int(out.class_map.view(-1)[0])
        padded = torch.nn.functional.pad(img[None], (0, 32 - w, 0, 32 - h), mode="replicate")
        with torch.no_grad():
            ref = fsrcnn.branches[k](padded)[0, :, :h * 4, :w * 4]
        assert torch.allclose(out.image, ref, atol=1e-5)
    assert sum(out.counts) == out.class_map.numel() == len(TileGrid(h, w, 32, 28))
    assert 0 < out.seconds <= elapsed  # the call's own wall time
    cost = fsrcnn.tile_cost(32)
    assert out.flops_per_tile == pytest.approx(cost.per_tile(out.counts))  # classifier included
    assert out.flops_percent == pytest.approx(100 * cost.per_tile(out.counts) / cost.base)


def test_batched_input_keeps_batch_dim(fsrcnn):
    out = fsrcnn.restore_image(torch.rand(1, 3, 40, 40), execution="tiles")
    assert out.image.shape == (1, 3, 160, 160)


def _nearest(tiles):
    return F.interpolate(tiles, scale_factor=4, mode="nearest")


def test_constant_image_stays_constant_through_overlaps():
    img = torch.full((3, 97, 61), 0.37)
    out = run_tiled(img, _nearest, scale=4, tile=32, stride=20, batch=7)
    assert torch.allclose(out, torch.full_like(out, 0.37), atol=1e-6)


@pytest.mark.parametrize("h,w,tile,stride", [(97, 61, 32, 28), (50, 50, 16, 5), (7, 90, 32, 28)])
def test_tiles_are_placed_where_they_came_from(h, w, tile, stride):
    # each tile's output is the matching crop of the whole-image output, so the average of the
    # overlapping copies must reproduce the whole-image result exactly
    img = torch.rand(3, h, w)
    out = run_tiled(img, _nearest, scale=4, tile=tile, stride=stride, batch=5)
    assert torch.allclose(out, _nearest(img[None])[0], atol=1e-6)


def test_restore_image_streams_in_bounded_batches(fsrcnn):
    sizes = []
    hooks = [b.register_forward_hook(lambda m, i, o: sizes.append(i[0].shape[0])) for b in fsrcnn.branches]
    try:
        out = fsrcnn.restore_image(torch.rand(3, 200, 300), batch=16, execution="tiles")
    finally:
        for h in hooks:
            h.remove()
    assert max(sizes) <= 16 and sum(sizes) == sum(out.counts)


def test_bad_tiling_arguments():
    with pytest.raises(ValueError, match="stride"):
        TileGrid(10, 10, tile=32, stride=40)
    with pytest.raises(ValueError, match="0x10"):
        TileGrid(0, 10)


def test_force_class_per_tile(fsrcnn):
    img = torch.rand(3, 70, 90)
    n = len(TileGrid(70, 90, 32, 28))
    assign = torch.arange(n) % 3
    out = fsrcnn.restore_image(img, force_class=assign, execution="tiles")
    assert out.class_map.view(-1).tolist() == assign.tolist()
    assert out.counts == torch.bincount(assign, minlength=3).tolist()
    with pytest.raises(ValueError, match="force_class"):
        fsrcnn.restore_image(img, force_class=assign[:-1], execution="tiles")
