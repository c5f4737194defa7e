import torch.nn as nn
import torch.nn.functional as F

from . import register_arch


@register_arch
class FSRCNN(nn.Module):
    """FSRCNN (Dong et al., ECCV 2016) on RGB, as ClassSR uses it: d is the width ClassSR narrows.

    feature extraction 5x5 -> shrink 1x1 to s -> m mapping 3x3 -> expand 1x1 to d ->
    9x9 transposed conv at stride `upscale`.

    residual=True adds the bicubic upsampling of the input to the output (not in the paper): the
    network learns only what bicubic misses, so it starts at bicubic quality and cannot drift
    below it on smooth areas through a colour bias, which a small FSRCNN otherwise does.
    """

    def __init__(self, num_in_ch=3, num_out_ch=3, d=56, s=12, m=4, upscale=4, residual=False):
        super().__init__()
        self.upscale, self.residual = upscale, residual
        # the fixed-skip protocol (README, "Your own network"): bicubic reads 2 LR px each side
        self.skip_context = 4 if residual else None
        if residual and num_in_ch != num_out_ch:
            raise ValueError(f"FSRCNN residual=True needs num_in_ch == num_out_ch, got {num_in_ch}, {num_out_ch}")
        if upscale not in (1, 2, 3, 4):
            raise ValueError(f"FSRCNN upscale must be 1, 2, 3 or 4, got {upscale}")
        layers = [nn.Conv2d(num_in_ch, d, 5, padding=2), nn.PReLU(d),
                  nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            layers += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        layers += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.body = nn.Sequential(*layers)
        self.last = nn.ConvTranspose2d(d, num_out_ch, 9, stride=upscale, padding=4,
                                       output_padding=upscale - 1)
        self._init()

    def _init(self):
        for mod in self.modules():
            if isinstance(mod, nn.Conv2d):
                nn.init.kaiming_normal_(mod.weight, a=0.25, nonlinearity="leaky_relu")
                nn.init.zeros_(mod.bias)
        nn.init.normal_(self.last.weight, std=1e-3)
        nn.init.zeros_(self.last.bias)

    def forward(self, x):
        out = self.forward_residual(x)
        return out + self.skip(x) if self.residual else out

    # With skip_context set, ClassSR in regions computes the skip once on the whole image and
    # runs only forward_residual per rectangle.
    def forward_residual(self, x):
        """The learned part of the output (all of it when residual=False)."""
        return self.last(self.body(x))

    def skip(self, x):
        """The fixed part: bicubic upsampling of the input (the input itself at x1)."""
        if not self.residual:
            return None
        return F.interpolate(x, scale_factor=self.upscale, mode="bicubic", align_corners=False) if self.upscale > 1 else x
