import torch.nn as nn

from . import register_arch


@register_arch
class DnCNN(nn.Module):
    """DnCNN (Zhang et al., TIP 2017) for colour images, scale 1: conv-ReLU, (num_layers - 2) x
    conv-BN-ReLU, conv; predicts the residual (noise / blur) and subtracts it. num_feat is the
    width ClassSR narrows. Convolutions start from He's initialisation, as in the paper.

    bn: False drops the BatchNorm layers (conv-ReLU with biases). Measured here (sigma 25,
    batch 16 of 32x32 sub-images, Adam 1e-3): with BN the 17-layer network did not learn in
    1,600 iterations (L1 stayed at the noise's 0.074; 400 with He's init too), without BN and
    with He's init it reached 0.053 in 150; BN is also one set of statistics for every branch."""

    def __init__(self, num_in_ch=3, num_out_ch=3, num_feat=64, num_layers=17, bn=True):
        super().__init__()
        if num_layers < 3:
            raise ValueError(f"DnCNN num_layers must be >= 3, got {num_layers}")
        layers = [nn.Conv2d(num_in_ch, num_feat, 3, padding=1), nn.ReLU(inplace=True)]
        for _ in range(num_layers - 2):
            layers += [nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=not bn)]
            layers += [nn.BatchNorm2d(num_feat)] if bn else []
            layers += [nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(num_feat, num_out_ch, 3, padding=1))
        self.body = nn.Sequential(*layers)
        for m in self.body:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        return x - self.body(x)
