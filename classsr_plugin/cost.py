"""FLOPs, measured with torch.utils.flop_counter: 2 x multiply-accumulates of convolutions
(transposed ones included), matrix products and bicubic upsampling; activations, pixel
shuffles, additions and normalisations are not counted, as in the ClassSR paper."""
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode


def _bicubic_flops(*args, out_shape=None, **kwargs) -> int:
    """Bicubic upsampling: 4 x 4 taps, a multiply and an add each, per output value (archs' fixed
    skips; flop_counter has no formula of its own for it)."""
    n = 1
    for d in out_shape:
        n *= d
    return 2 * 16 * n


_CUSTOM = {torch.ops.aten.upsample_bicubic2d: _bicubic_flops}


@torch.no_grad()
def count_flops(module: torch.nn.Module, x: torch.Tensor):
    """(FLOPs of one forward of `module` on `x`, its output)."""
    with FlopCounterMode(display=False, custom_mapping=_CUSTOM) as counter:
        out = module(x)
    return counter.get_total_flops(), out


@dataclass(frozen=True)
class TileCost:
    """FLOPs of one tile of a given size through the classifier and each branch."""
    tile: tuple
    classifier: int
    branches: List[int]

    @property
    def base(self) -> int:
        """The original network: the widest branch, without a classifier."""
        return self.branches[-1]

    def per_tile(self, counts: Sequence[int], with_classifier: bool = True) -> float:
        """Average FLOPs per tile for a class distribution; the classifier's are added unless it
        did not run (forced routing)."""
        n = sum(counts)
        if n == 0:
            return 0.0
        branches = sum(c * f for c, f in zip(counts, self.branches)) / n
        return branches + self.classifier if with_classifier else branches

    def percent(self, counts: Sequence[int], with_classifier: bool = True) -> float:
        return 100.0 * self.per_tile(counts, with_classifier) / self.base


BUDGET_MODES = ("ceiling", "target")


def route_under_budget(logits: torch.Tensor, branch_flops: Sequence[int], budget: float,
                       cost: Optional[Callable[[torch.Tensor], float]] = None, mode: str = "ceiling",
                       steps: int = 30, path=None) -> torch.Tensor:
    """Class per tile so that cost(routing) is at most `budget`, changing the classifier's
    decision as little as possible.

    Each class's logit is offset by -lam * (its FLOPs / the widest's); one lam is solved per
    call (bisection) as the smallest that meets the budget. A larger lam never picks a costlier
    class for any tile. cost: what the routing costs as a fraction of the base network, in the
    terms the caller reports (classifier, margins included); default: the branches' average
    FLOPs over the widest's. mode "ceiling": lam >= 0, so a budget the classifier's own routing
    already meets leaves it unchanged; "target": lam may be negative, so a larger budget moves
    tiles to wider branches than the classifier chose. A budget below what every tile on the
    narrowest branch costs gives that (the cheapest the model can do)."""
    if mode not in BUDGET_MODES:
        raise ValueError(f"budget mode: {mode!r} is not one of {', '.join(BUDGET_MODES)}")
    rel = torch.tensor([float(f) for f in branch_flops], dtype=logits.dtype, device=logits.device)
    rel = rel / rel[-1]
    measure = cost or (lambda idx: float(rel[idx].double().mean()))
    known = {}  # late bisection steps repeat a routing: cost it once (in regions, a plan and cover)

    def cost(idx):
        key = idx.cpu().numpy().tobytes()
        if key not in known:
            known[key] = measure(idx)
        return known[key]
    budget = budget + 1e-9  # a routing that costs exactly the budget meets it
    if path is not None:
        pick, lo, hi = path
        lo = 0.0 if mode == "ceiling" else lo
    else:
        def pick(lam):
            return (logits - lam * rel).argmax(1)

        gap = (rel[1:] - rel[:-1]).min().clamp_min(1e-6)
        hi = float((logits.max() - logits.min()) / gap) + 1.0   # every tile to the narrowest at +hi
        lo = 0.0 if mode == "ceiling" else -hi                   # the classifier's own / every tile widest
    if cost(pick(lo)) <= budget:
        return pick(lo)
    if cost(pick(hi)) > budget:
        return pick(hi)
    for _ in range(steps):
        mid = (lo + hi) / 2
        if cost(pick(mid)) <= budget:
            hi = mid
        else:
            lo = mid
    return pick(hi)
