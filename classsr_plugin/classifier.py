"""Class-Modules: map an LR sub-image to logits over M difficulty classes."""
import torch.nn as nn


class ClassModule(nn.Module):
    """The ClassSR paper's classifier, as its code builds it: a 4x4 stride-4 conv, three 1x1
    convs (LeakyReLU 0.1 after each of these four), a 1x1 conv to `nf_out` without activation,
    global average pooling and a linear layer; convs start from Kaiming-normal weights scaled by
    0.1 (small logits: every class starts near 1/M). About 7.6 MFLOPs on a 32x32 RGB tile at
    nf=128. Returns logits."""

    def __init__(self, num_classes=3, in_ch=3, nf=128, nf_out=32):
        super().__init__()
        act = lambda: nn.LeakyReLU(0.1, inplace=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(in_ch, nf, 4, stride=4), act(),
            nn.Conv2d(nf, nf, 1), act(),
            nn.Conv2d(nf, nf, 1), act(),
            nn.Conv2d(nf, nf, 1), act(),
            nn.Conv2d(nf, nf_out, 1),
            nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(nf_out, num_classes)
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
                m.weight.data.mul_(0.1)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        return self.fc(self.features(x))


def build_classifier(cfg, num_classes: int, in_ch: int) -> nn.Module:
    """`None` or `{type: ClassModule, ...}` -> the paper's module; `{type: timm, model_name: ...}`
    -> any timm model with `num_classes` outputs (built offline: pretrained weights are off
    unless asked for)."""
    cfg = dict(cfg or {})
    kind = cfg.pop("type", "ClassModule")
    if kind == "ClassModule":
        return ClassModule(num_classes=num_classes, in_ch=in_ch, **cfg)
    if kind == "timm":
        import timm
        if "model_name" not in cfg:
            raise KeyError("classifier.model_name: required for a timm classifier")
        cfg.setdefault("pretrained", False)
        name = cfg["model_name"]
        if name not in timm.list_models(name):
            import difflib
            close = difflib.get_close_matches(name, timm.list_models(), n=5, cutoff=0.6)
            raise KeyError(f"classifier.model_name: timm has no model {name!r}"
                           + (f"; close: {', '.join(close)}" if close else "; see timm.list_models()"))
        return timm.create_model(num_classes=num_classes, in_chans=in_ch, **cfg)
    raise KeyError(f"classifier.type: unknown classifier {kind!r}; use 'ClassModule' or 'timm'")
