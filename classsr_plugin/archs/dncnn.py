import torch.nn as nn

from . import register_arch


@register_arch
class DnCNN(nn.Module):
    """DnCNN (Zhang et al., TIP 2017) for colour images, scale 1: conv-ReLU, (num_layers - 2) x
    conv-BN-ReLU, conv; predicts the residual (noise / blur) and subtracts it. num_feat is the
    width ClassSR narrows."""

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_layers=17):
        super().__init__()
        if num_layers < 3:
            raise ValueError(f"DnCNN num_layers must be >= 3, got {num_layers}")
        layers = [nn.Conv2d(num_in_ch, num_feat, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(num_layers - 2):
            layers += [nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False), nn.BatchNorm2d(num_feat),
                       nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(num_feat, num_out_ch, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.body(x)
