"""Class-Modules: map an LR sub-image to logits over M difficulty classes. A config's `type`
names one in CLASSIFIERS; `register_classifier` adds yours."""
from typing import Callable, Dict, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F


CLASSIFIERS: Dict[str, Callable[..., nn.Module]] = {}


def register_classifier(name: str):
    """Decorator: `builder(num_classes=, in_ch=, **config)` -> a module returning [B, M] logits,
    built for `classifier: {type: name, ...}`."""
    def add(builder):
        if name in CLASSIFIERS:
            raise KeyError(f"classifier {name!r} is already registered")
        CLASSIFIERS[name] = builder
        return builder
    return add


@register_classifier("ClassModule")
class ClassModule(nn.Module):
    """The ClassSR paper's classifier, as its code builds it: a 4x4 stride-4 conv, three 1x1
    convs (LeakyReLU 0.1 after each of these four), a 1x1 conv to `nf_out` without activation,
    global average pooling and a linear layer; convs start from Kaiming-normal weights scaled by
    0.1 (small logits: every class starts near 1/M). About 7.6 MFLOPs on a 32x32 RGB tile at
    nf=128. Returns logits."""

    def __init__(self, num_classes=3, in_ch=3, nf=128, nf_out=32, init_scale=0.1):
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
        self.init_scale = init_scale
        self.reset_parameters()

    def reset_parameters(self):
        """Kaiming-normal convs scaled by init_scale (0.1: the reference, whose L1 x 1000 loss has
        large gradients; at 1 a cross-entropy router learns, at 0.1 its gradients vanish)."""
        for m in self.features:
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, a=0, mode="fan_in")
                m.weight.data.mul_(self.init_scale)
                nn.init.zeros_(m.bias)
        self.fc.reset_parameters()

    def forward(self, x):
        return self.fc(self.features(x))


def gradient_score(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels (right and below), per sub-image."""
    return (x[..., 1:] - x[..., :-1]).abs().mean((1, 2, 3)) + (x[..., 1:, :] - x[..., :-1, :]).abs().mean((1, 2, 3))


def laplacian_score(x: torch.Tensor) -> torch.Tensor:
    """RMS of the 4-neighbour Laplacian of the channel mean, per sub-image. A linear ramp scores 0:
    what a narrow branch (or the bicubic skip) gets wrong is curvature and fine texture, not slope."""
    g = x.mean(1)
    lap = g[:, 1:-1, :-2] + g[:, 1:-1, 2:] + g[:, :-2, 1:-1] + g[:, 2:, 1:-1] - 4 * g[:, 1:-1, 1:-1]
    return lap.pow(2).mean((1, 2)).sqrt()


def coarse_score(x: torch.Tensor, cell: int = 4) -> torch.Tensor:
    """gradient_score of the channel mean averaged over cell x cell blocks: for noisy inputs
    (denoising), where white noise swamps the pixel-level scores. Averaging 3 channels x 16 pixels
    divides the noise by about 7 while structure coarser than a cell stays."""
    g = F.avg_pool2d(x.mean(1, keepdim=True), cell) if min(x.shape[-2:]) >= 2 * cell else x.mean(1, keepdim=True)
    return gradient_score(g)


EDGE_SCORES = {"gradient": gradient_score, "laplacian": laplacian_score, "coarse": coarse_score}


@register_classifier("EdgeScore")
class EdgeScore(nn.Module):
    """A router without weights (as ARM routes by an edge score): a sub-image's score (`score`:
    "gradient", the mean absolute difference between neighbouring pixels, "laplacian", the
    RMS of the Laplacian: on the training sub-images of the shipped FSRCNN branches it routes for
    about 10 points fewer FLOPs at the same loss, or "coarse", the gradient of 4x4 block means,
    for noisy inputs) against M-1 ascending thresholds. The
    thresholds are fitted to the trained branches (`classsr label --by oracle --edge-router`,
    fit_edge). Logits are piecewise linear in the score, l_k = sum_{j<k} (score - t_j) / spread,
    so the argmax is the number of thresholds below the score (edge_classes). `path`: the
    thresholds fitted at each lam of the fit's grid, costliest first (`classsr label` writes it):
    the budget knob then moves along them (budget_path); without it, by offsets on the logits."""

    def __init__(self, num_classes=3, in_ch=3, thresholds: Sequence[float] = (), score: str = "gradient",
                 path: Sequence[Sequence[float]] = ()):
        super().__init__()
        t = [float(v) for v in thresholds] or [0.01 * (k + 1) for k in range(num_classes - 1)]
        if len(t) != num_classes - 1 or sorted(t) != t:
            raise ValueError(f"classifier.thresholds: {t} needs {num_classes - 1} ascending values")
        if score not in EDGE_SCORES:
            raise KeyError(f"classifier.score: {score!r} is not one of {', '.join(EDGE_SCORES)}")
        rows = [[float(v) for v in r] for r in path]
        if rows and (any(len(r) != len(t) or sorted(r) != r for r in rows) or t not in rows):
            raise ValueError(f"classifier.path: rows of {len(t)} ascending thresholds, one of them the "
                             f"thresholds {t}")
        if any(a > b for r0, r1 in zip(rows, rows[1:]) for a, b in zip(r0, r1)):
            raise ValueError("classifier.path: a threshold falls along the path (costliest routing first)")
        self.kind = score
        self.register_buffer("thresholds", torch.tensor(t, dtype=torch.float32))
        # the thresholds fitted at every lam: the budget knob follows them (not in the state: the config has them)
        self.register_buffer("path", torch.tensor(rows, dtype=torch.float32).view(len(rows), len(t)), persistent=False)
        self.own = rows.index(t) if rows else None

    score = staticmethod(gradient_score)  # the default score, as before `score` was an option

    def _spread(self):
        t = self.thresholds
        return (t[-1] - t[0]).clamp_min(1e-3) if len(t) > 1 else t[0].abs().clamp_min(1e-3)

    def forward(self, x):
        steps = (EDGE_SCORES[self.kind](x)[:, None] - self.thresholds[None, :]) / self._spread()  # [B, M-1]
        return torch.cat([torch.zeros_like(steps[:, :1]), steps.cumsum(1)], 1)

    def budget_path(self, logits: torch.Tensor):
        """The budget knob's routings for these logits (cost.route_under_budget's `path`): the
        thresholds fitted at each lam, linearly between them, from every tile on the widest (lo)
        through the router's own thresholds (0) to every tile on the narrowest (hi). Offsets on
        the logits instead move the cheapest classes first, far off the trade the thresholds were
        fitted on. None without a fitted path."""
        if self.own is None:
            return None
        s = logits[:, 1].float() * self._spread().cpu() + self.thresholds[0].cpu()  # the score, back from the logits
        rows = self.path.cpu()
        knots = torch.cat([torch.full_like(rows[:1], -1.0), rows, torch.full_like(rows[:1], float(s.max()) + 1.0)])
        k0 = self.own + 1

        def pick(v: float) -> torch.Tensor:
            if v == 0:
                return logits.argmax(1)
            x = min(max(v + k0, 0.0), len(knots) - 1.0)
            i = min(int(x), len(knots) - 2)
            return edge_classes(s, knots[i] + (x - i) * (knots[i + 1] - knots[i]))
        return pick, float(-k0), float(len(knots) - 1 - k0)


def edge_classes(scores: torch.Tensor, thresholds: Sequence[float]) -> torch.Tensor:
    """The class of each edge score: how many thresholds lie below it (EdgeScore's argmax)."""
    return (scores[:, None] > torch.as_tensor(thresholds, dtype=scores.dtype)[None]).sum(1)


def fit_edge(scores: torch.Tensor, errors: torch.Tensor, rel_cost: Sequence[float], lam: float, grid: int = 61,
             weights: torch.Tensor = None):
    """Thresholds (M = 3: both, by a grid over score quantiles; else one by one) minimising the
    mean added error (each sub-image's times its weight, where given) + lam x relative FLOPs over
    the sub-images: errors [N, M] is each branch's MSE, narrow -> widest. Returns the thresholds."""
    rel = torch.as_tensor(rel_cost, dtype=errors.dtype)
    delta = errors - errors[:, -1:]
    if weights is not None:
        delta = delta * torch.as_tensor(weights, dtype=errors.dtype)[:, None]
    qs = scores.quantile(torch.linspace(0, 1, grid, dtype=scores.dtype)).tolist()
    m = errors.shape[1]
    rows = torch.arange(len(scores))

    def cost(t):
        k = edge_classes(scores, t)
        return float((delta[rows, k] + lam * rel[k]).mean())
    if m == 3:
        return list(min(((a, b) for i, a in enumerate(qs) for b in qs[i:]), key=lambda t: cost(list(t))))
    t = qs[::max(1, grid // m)][1:m]  # spread start, then coordinate descent
    for _ in range(3):
        for j in range(m - 1):
            lo = t[j - 1] if j else qs[0]
            hi = t[j + 1] if j + 1 < m - 1 else qs[-1]
            t[j] = min((q for q in qs if lo <= q <= hi), key=lambda q: cost(t[:j] + [q] + t[j + 1:]))
    return t


def _timm_loading() -> set:
    """timm's own arguments of create_model and its model builder: where weights come from
    (pretrained, checkpoint_path, pretrained_cfg_overlay naming a hub repository, cache_dir, ...)
    and how the model is scripted, not what it is. Read from timm's signatures, so a new one is
    covered too."""
    import inspect
    import timm
    from timm.models import build_model_with_cfg
    names = set(inspect.signature(timm.create_model).parameters)
    names |= set(inspect.signature(build_model_with_cfg).parameters)
    return names - {"model_name", "model_cls", "variant", "kwargs"}


def loading_keys(cfg) -> list:
    """The keys of a classifier config that would load weights or reach out (set to anything
    but None / False): none for the plugin's own classifiers."""
    if not isinstance(cfg, dict) or cfg.get("type") != "timm":
        return []
    return sorted(k for k in set(cfg) & _timm_loading() if cfg[k] not in (None, False))


def architecture_only(cfg):
    """A classifier config as a file keeps it: the architecture, not where weights came from
    (the checkpoint holds them)."""
    if not isinstance(cfg, dict) or cfg.get("type") != "timm":
        return cfg
    return {k: v for k, v in cfg.items() if k not in _timm_loading()}


@register_classifier("timm")
def timm_classifier(num_classes: int, in_ch: int, **cfg) -> nn.Module:
    """Any timm model with `num_classes` outputs (built offline: pretrained weights are off
    unless asked for)."""
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


def build_classifier(cfg, num_classes: int, in_ch: int) -> nn.Module:
    """`None` -> the paper's ClassModule; `{type: NAME, ...}` -> CLASSIFIERS[NAME] built with
    the other keys."""
    cfg = dict(cfg or {})
    kind = cfg.pop("type", "ClassModule")
    if kind not in CLASSIFIERS:
        raise KeyError(f"classifier.type: unknown classifier {kind!r}; registered: "
                       f"{', '.join(sorted(CLASSIFIERS))} (register_classifier adds one)")
    return CLASSIFIERS[kind](num_classes=num_classes, in_ch=in_ch, **cfg)
