"""Every build-time mistake names the key at fault; wrong inputs name the shape."""
import pytest
import torch
import torch.nn as nn
from basicsr.archs import build_network

from classsr_plugin import ClassSR, register_arch

SWINIR = dict(type="SwinIR", upscale=4, in_chans=3, img_size=32, window_size=8, embed_dim=60,
              depths=[2], num_heads=[6], mlp_ratio=2, upsampler="pixelshuffledirect")
FSRCNN = dict(type="FSRCNN", d=56, upscale=4)


@register_arch
class NoWidthNet(nn.Module):
    def __init__(self, scale=2):
        super().__init__()
        self.up = nn.Upsample(scale_factor=scale)

    def forward(self, x):
        return self.up(x)


@register_arch
class PickyNet(nn.Module):
    """Accepts only widths of at least 20."""

    def __init__(self, num_feat=32):
        super().__init__()
        if num_feat < 20:
            raise ValueError(f"num_feat must be >= 20, got {num_feat}")
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(base={"type": "NoSuchNet"}), KeyError, "base.type.*NoSuchNet"),
    (dict(base={"num_feat": 64}), KeyError, "base.*'type'"),
    (dict(base={"type": "NoWidthNet"}), KeyError, "width_key.*NoWidthNet"),
    (dict(base=FSRCNN, width_key="num_feat"), KeyError, "width_key.*num_feat"),
    (dict(base=FSRCNN, num_classes=1), ValueError, "num_classes"),
    (dict(base=FSRCNN, widths=[36, 16, 56]), ValueError, "widths.*ascending"),
    (dict(base=FSRCNN, widths=[16, 36, 48]), ValueError, "widths.*end at the base width 56"),
    (dict(base=FSRCNN, widths=[16, 56]), ValueError, "widths.*2 entries.*num_classes is 3"),
    (dict(base=SWINIR, widths=[32, 40, 60]), ValueError, "widths.*multiples of 6"),
    (dict(base={"type": "CARNM", "nf": 64}, widths=[30, 50, 64]), ValueError, "widths.*multiples of 4"),
    (dict(base={"type": "PickyNet"}, widths=[8, 16, 32]), ValueError, r"widths.*PickyNet\(num_feat=8\).*>= 20"),
])
def test_build_errors_name_the_key(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        ClassSR(**kwargs)


def test_build_errors_through_basicsr_config():
    with pytest.raises(KeyError, match="base.type.*NoSuchNet"):
        build_network({"type": "ClassSR", "base": {"type": "NoSuchNet"}})


@pytest.mark.parametrize("channels", [1, 4])
def test_wrong_channel_count_is_a_clear_error(channels):
    model = ClassSR(base=FSRCNN)
    with pytest.raises(ValueError, match=rf"\({channels}, 40, 40\).*C = 3"):
        model.restore_image(torch.rand(channels, 40, 40))
    with pytest.raises(ValueError, match=rf"\(2, {channels}, 32, 32\).*C = 3"):
        model(torch.rand(2, channels, 32, 32))


def test_force_class_out_of_range():
    with pytest.raises(ValueError, match="force_class.*3"):
        ClassSR(base=FSRCNN).restore_image(torch.rand(3, 40, 40), force_class=3)
