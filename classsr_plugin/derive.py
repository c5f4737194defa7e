"""Branch widths from a base network's config.

ClassSR's branches are the base arch with a narrower width argument. This module finds that
argument, the arch's divisibility constraints, and the default widths.
"""
import inspect
import math
from typing import Dict, List, Optional, Sequence

# Constructor arguments that set a network's width, most specific first.
WIDTH_KEYS = ("num_feat", "embed_dim", "mid_channels", "num_channel", "n_feats", "nf", "d",
              "num_features", "n_feat", "channels", "dim", "width")
IN_CH_KEYS = ("num_in_ch", "in_chans", "in_channels", "in_nc", "n_colors", "in_ch")

# Widths the ClassSR paper used (arch, base width, M) -> widths; anything else is derived.
PAPER_WIDTHS = {
    ("FSRCNN", 56, 3): (16, 36, 56),
    ("CARNM", 64, 3): (36, 52, 64),
    ("MSRResNet", 64, 3): (36, 52, 64),
    ("RCAN", 64, 3): (36, 50, 64),
}
# Narrowest branch as a fraction of the base width when the paper gives no widths (36/64).
MIN_RATIO = 0.5625


def constructor_defaults(cls) -> Dict[str, object]:
    params = inspect.signature(cls.__init__).parameters
    return {k: p.default for k, p in params.items()
            if k != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}


def find_key(cls, cfg: dict, candidates: Sequence[str], what: str, key: str) -> str:
    names = constructor_defaults(cls)
    for cand in candidates:
        if cand in names or cand in cfg:
            return cand
    raise KeyError(f"{key}: no {what} argument found in {cls.__name__}{tuple(names)}; "
                   f"looked for {list(candidates)}: set {key} explicitly")


def base_value(cls, cfg: dict, name: str, key: str):
    if name in cfg:
        return cfg[name]
    default = constructor_defaults(cls).get(name, inspect.Parameter.empty)
    if default is inspect.Parameter.empty:
        raise KeyError(f"{key}: {cls.__name__} needs {name!r} and the base config does not set it")
    return default


def width_multiple(cls, cfg: dict) -> int:
    """Every width must be a multiple of this: attention heads (SwinIR) and conv groups
    (CARN-M) must divide it."""
    args = {**constructor_defaults(cls), **cfg}
    mult = 1
    for name in ("num_heads", "heads", "group", "groups", "num_groups_conv"):
        val = args.get(name)
        if isinstance(val, int) and val > 0:
            mult = math.lcm(mult, val)
        elif isinstance(val, (list, tuple)) and val and all(isinstance(v, int) for v in val):
            mult = math.lcm(mult, *val)
    return mult


def derive_widths(arch_name: str, base_width: int, num_classes: int, multiple: int = 1) -> List[int]:
    """Ascending widths ending at the base width: the paper's where it gives them, else evenly
    spaced from MIN_RATIO * base, rounded to `multiple`, duplicates removed from below."""
    paper = PAPER_WIDTHS.get((arch_name, base_width, num_classes))
    if paper and all(w % multiple == 0 for w in paper):
        return list(paper)
    lo = MIN_RATIO * base_width
    widths = []
    for i in range(num_classes):
        w = lo + (base_width - lo) * i / (num_classes - 1)
        widths.append(max(multiple, int(round(w / multiple)) * multiple))
    widths[-1] = base_width
    for i in range(num_classes - 2, -1, -1):  # keep strictly ascending
        widths[i] = min(widths[i], widths[i + 1] - multiple)
    if widths[0] < multiple:
        raise ValueError(f"widths: base width {base_width} (multiple of {multiple}) is too narrow "
                         f"for {num_classes} distinct widths; give widths explicitly")
    return widths


def check_widths(widths: Optional[Sequence[int]], base_width: int, num_classes: int,
                 multiple: int) -> List[int]:
    widths = list(widths)
    if len(widths) != num_classes:
        raise ValueError(f"widths: {widths} has {len(widths)} entries, num_classes is {num_classes}")
    if not all(isinstance(w, int) and w > 0 for w in widths):
        raise ValueError(f"widths: {widths} must be positive ints")
    if any(a >= b for a, b in zip(widths, widths[1:])):
        raise ValueError(f"widths: {widths} must be strictly ascending (narrowest first)")
    if widths[-1] != base_width:
        raise ValueError(f"widths: {widths} must end at the base width {base_width}")
    bad = [w for w in widths if w % multiple]
    if bad:
        raise ValueError(f"widths: {bad} are not multiples of {multiple}, which the arch requires "
                         f"(attention heads / conv groups)")
    return widths


def time_per_tile(net, in_ch: int, tile: int = 32, batch: int = 16, repeats: int = 7,
                  device: str = "cpu"):
    """(seconds per tile, channels_last?, spread) for the faster memory layout: the median of
    `repeats` timings (single timings on a shared machine flip the choice from run to run), and
    their spread (max - min) / median."""
    import statistics
    import time

    import torch
    net = net.to(device).eval()
    x = torch.rand(batch, in_ch, tile, tile, device=device)
    best = {}
    for cl in (False, True):
        fmt = torch.channels_last if cl else torch.contiguous_format
        m, xi = net.to(memory_format=fmt), x.contiguous(memory_format=fmt)
        with torch.inference_mode():
            m(xi)  # warm-up
            times = []
            for _ in range(repeats):
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                t = time.perf_counter()
                m(xi)
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                times.append(time.perf_counter() - t)
        best[cl] = (statistics.median(times) / batch, (max(times) - min(times)) / statistics.median(times))
    cl = best[True][0] < best[False][0]
    return best[cl][0], cl, best[cl][1]


def candidate_widths(base_width: int, multiple: int, count: int = 12) -> List[int]:
    """Widths to time: multiples of `multiple` from a quarter of the base up to the base."""
    step = max(multiple, int(round(base_width * 0.75 / count / multiple)) * multiple)
    lo = max(multiple, int(base_width * 0.25) // multiple * multiple)
    return sorted(set(list(range(lo, base_width, step)) + [base_width]))


def latency_widths(latency: Dict[int, float], num_classes: int) -> List[int]:
    """M widths with evenly spaced latency: branch k gets the widest candidate that runs within
    (k + 1) / M of the base width's time. Latency is not monotone in width on CPU (a wider net
    can be faster), so taking the widest width within each time target avoids slow narrow ones."""
    widths = sorted(latency)
    base = widths[-1]
    chosen = []
    for k in range(num_classes - 1):
        target = latency[base] * (k + 1) / num_classes
        fits = [w for w in widths if latency[w] <= target and (not chosen or w > chosen[-1]) and w < base]
        if fits:
            chosen.append(max(fits))
        else:  # nothing that fast (fixed costs dominate): the narrowest width not taken yet
            rest = [w for w in widths if (not chosen or w > chosen[-1]) and w < base]
            if not rest:
                raise ValueError(f"widths: not enough candidate widths below {base} for {num_classes} classes")
            chosen.append(rest[0])
    chosen.append(base)
    for i in range(len(chosen) - 1):  # strictly ascending
        if chosen[i] >= chosen[i + 1]:
            raise ValueError(f"widths: latency-based choice {chosen} is not ascending; give widths explicitly")
    return chosen


def measure_widths(spec: "BaseSpec", num_classes: int, tile: int = 32, device: str = "cpu",
                   progress: bool = False):
    """Time the base arch at candidate widths; return (widths, {width: (s/tile, channels_last,
    spread)})."""
    from tqdm import tqdm
    table = {}
    for w in tqdm(candidate_widths(spec.width, spec.multiple), desc="widths", disable=None if progress else True):
        table[w] = time_per_tile(spec.build(w), spec.in_ch, tile, device=device)
    return latency_widths({w: t for w, (t, _, _) in table.items()}, num_classes), table


class BaseSpec:
    """A base network config resolved once: arch class, its other arguments, the width argument
    and value, input channels and the width multiple the arch needs."""

    def __init__(self, base: dict, width_key: Optional[str] = None, key: str = "base"):
        from .archs import resolve_arch
        if not isinstance(base, dict) or "type" not in base:
            raise KeyError(f"{key}: expected the original network's config with a 'type' key, got {base!r}")
        cfg = dict(base)
        self.arch = resolve_arch(cfg.pop("type"), f"{key}.type")
        self.width_key = width_key or find_key(self.arch, cfg, WIDTH_KEYS, "width", "width_key")
        if self.width_key not in constructor_defaults(self.arch) and self.width_key not in cfg:
            raise KeyError(f"width_key: {self.arch.__name__} has no argument {self.width_key!r}")
        self.width = base_value(self.arch, cfg, self.width_key, "width_key")
        self.cfg = cfg
        self.multiple = width_multiple(self.arch, cfg)
        try:
            self.in_ch = int(base_value(self.arch, cfg, find_key(self.arch, cfg, IN_CH_KEYS, "input channels", key), key))
        except KeyError:
            self.in_ch = 3

    def build(self, width: Optional[int] = None):
        return self.arch(**{**self.cfg, self.width_key: self.width if width is None else width})
