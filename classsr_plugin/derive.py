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
