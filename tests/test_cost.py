import pytest
import torch

from classsr_plugin import ClassSR


def conv_flops(cin, cout, k, hw):
    return 2 * cin * cout * k * k * hw


def test_fsrcnn56_flops_for_one_tile():
    hw = 32 * 32
    expected = (conv_flops(3, 56, 5, hw) + conv_flops(56, 12, 1, hw) + 4 * conv_flops(12, 12, 3, hw)
                + conv_flops(12, 56, 1, hw)
                + conv_flops(56, 3, 9, hw))  # transposed conv: every LR pixel scatters a 9x9 kernel
    model = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4))
    cost = model.tile_cost(32)
    assert cost.base == expected == 49_840_128
    assert cost.branches[0] < cost.branches[1] < cost.branches[2]
    # the paper's Class-Module on a 32x32 RGB tile
    cls = conv_flops(3, 128, 4, 64) + 3 * conv_flops(128, 128, 1, 64) + conv_flops(128, 32, 1, 64) + 2 * 32 * 3
    assert cost.classifier == cls


def test_cost_is_cached_and_reported():
    model = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4))
    assert model.tile_cost(32) is model.tile_cost((32, 32))
    cost = model.tile_cost(32)
    assert cost.per_tile([1, 0, 0]) == cost.classifier + cost.branches[0]
    assert cost.per_tile([1, 1, 2]) == pytest.approx(
        cost.classifier + (cost.branches[0] + cost.branches[1] + 2 * cost.branches[2]) / 4)
    assert cost.percent([0, 0, 5]) == pytest.approx(100 * (1 + cost.classifier / cost.base))
    out = model.restore_image(torch.rand(3, 60, 60), execution="tiles")
    assert out.flops_per_tile == cost.per_tile(out.counts)
    forced = model.restore_image(torch.rand(3, 60, 60), force_class=0, execution="tiles")
    assert forced.flops_percent == pytest.approx(100 * cost.branches[0] / cost.base)


def test_fsrcnn_residual_starts_at_bicubic_and_its_skip_is_counted():
    import torch.nn.functional as F
    from classsr_plugin.archs.fsrcnn import FSRCNN
    torch.manual_seed(0)
    net = FSRCNN(residual=True).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        bicubic = F.interpolate(x, scale_factor=4, mode="bicubic", align_corners=False)
        assert (net(x) - bicubic).abs().max() < 0.05  # the last layer starts near zero
    plain = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4)).tile_cost(32).base
    skip = ClassSR(base=dict(type="FSRCNN", d=56, upscale=4, residual=True)).tile_cost(32).base
    assert skip - plain == 2 * 16 * 3 * 128 * 128  # 4x4 taps per output value
