"""A user's own SR network, outside the plugin, registered in BasicSR's ARCH_REGISTRY as any
BasicSR arch is. It imports basicsr before the plugin on purpose: the order must not matter."""
import torch.nn as nn
from basicsr.utils.registry import ARCH_REGISTRY


@ARCH_REGISTRY.register()
class SixConvSR(nn.Module):
    """Six 3x3 convs and a pixel shuffle; `num_feat` is the width ClassSR narrows."""

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=32, upscale=2):
        super().__init__()
        layers = [nn.Conv2d(num_in_ch, num_feat, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(4):
            layers += [nn.Conv2d(num_feat, num_feat, 3, padding=1), nn.ReLU(inplace=True)]
        layers += [nn.Conv2d(num_feat, num_out_ch * upscale ** 2, 3, padding=1), nn.PixelShuffle(upscale)]
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return self.body(x)
