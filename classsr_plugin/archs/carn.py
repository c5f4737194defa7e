import torch
import torch.nn as nn

from . import register_arch


class _ResidualE(nn.Module):
    """CARN-M's efficient residual block: two grouped 3x3 convs and a pointwise conv."""

    def __init__(self, nf, group):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(nf, nf, 3, padding=1, groups=group), nn.ReLU(inplace=True),
            nn.Conv2d(nf, nf, 3, padding=1, groups=group), nn.ReLU(inplace=True),
            nn.Conv2d(nf, nf, 1))

    def forward(self, x):
        return torch.relu(self.body(x) + x)


class _Cascade(nn.Module):
    """Cascading block: one shared residual block applied three times (CARN-M's recursion),
    each output concatenated with all earlier ones and fused by a 1x1 conv."""

    def __init__(self, nf, group):
        super().__init__()
        self.res = _ResidualE(nf, group)
        self.fuse = nn.ModuleList(
            nn.Sequential(nn.Conv2d(nf * (i + 2), nf, 1), nn.ReLU(inplace=True)) for i in range(3))

    def forward(self, x):
        feats, out = [x], x
        for fuse in self.fuse:
            feats.append(self.res(out))
            out = fuse(torch.cat(feats, 1))
        return out


@register_arch
class CARNM(nn.Module):
    """CARN-M (Ahn et al., ECCV 2018), the mobile CARN: nf is the width ClassSR narrows
    and must be divisible by `group`."""

    def __init__(self, num_in_ch=3, num_out_ch=3, nf=64, group=4, upscale=4,
                 rgb_mean=(0.4488, 0.4371, 0.4040)):
        super().__init__()
        if nf % group:
            raise ValueError(f"CARNM nf={nf} must be divisible by group={group}")
        if upscale not in (1, 2, 3, 4):
            raise ValueError(f"CARNM upscale must be 1, 2, 3 or 4, got {upscale}")
        mean = torch.tensor(rgb_mean if num_in_ch == 3 else [0.5] * num_in_ch)
        self.register_buffer("mean", mean.view(1, -1, 1, 1), persistent=False)
        self.entry = nn.Conv2d(num_in_ch, nf, 3, padding=1)
        self.blocks = nn.ModuleList(_Cascade(nf, group) for _ in range(3))
        self.fuse = nn.ModuleList(
            nn.Sequential(nn.Conv2d(nf * (i + 2), nf, 1), nn.ReLU(inplace=True)) for i in range(3))
        up = []
        for r in ([2, 2] if upscale == 4 else [upscale] if upscale > 1 else []):
            up += [nn.Conv2d(nf, nf * r * r, 3, padding=1, groups=group), nn.ReLU(inplace=True),
                   nn.PixelShuffle(r)]
        self.upsample = nn.Sequential(*up)
        self.exit = nn.Conv2d(nf, num_out_ch, 3, padding=1)

    def forward(self, x):
        x = x - self.mean
        feats = [self.entry(x)]
        out = feats[0]
        for block, fuse in zip(self.blocks, self.fuse):
            feats.append(block(out))
            out = fuse(torch.cat(feats, 1))
        out = self.exit(self.upsample(out))
        return out + self.mean if out.shape[1] == self.mean.shape[1] else out
