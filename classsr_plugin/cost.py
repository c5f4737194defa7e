"""FLOPs, measured with torch.utils.flop_counter: 2 x multiply-accumulates of convolutions
(transposed ones included), matrix products and bicubic upsampling; activations, pixel
shuffles, additions and normalisations are not counted, as in the ClassSR paper."""
from dataclasses import dataclass
from typing import List, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode


def _bicubic_flops(*args, out_shape=None, **kwargs) -> int:
    """Bicubic upsampling: 4 x 4 taps, a multiply and an add each, per output value (the FSRCNN
    residual and other archs' skips; flop_counter has no formula of its own for it)."""
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


def route_under_budget(logits: torch.Tensor, branch_flops: Sequence[int], budget: float,
                       steps: int = 60) -> torch.Tensor:
    """Class per tile so that the branches' average cost is at most `budget` x the widest
    branch's, changing the classifier's decision as little as possible.

    Each class's logit is offset by -lam * (its cost / the widest's); one lam is solved per call
    (bisection) as the smallest that meets the budget. A larger lam never picks a costlier class
    for any tile, so cost is monotone in the budget. budget >= 1 routes every tile to the widest
    branch, a budget at or below the narrowest's cost ratio every tile to the narrowest."""
    cost = torch.tensor([float(f) for f in branch_flops], dtype=logits.dtype, device=logits.device)
    cost = cost / cost[-1]
    n, m = logits.shape
    if budget >= 1:
        return torch.full((n,), m - 1, dtype=torch.long, device=logits.device)
    if budget <= cost[0]:
        return torch.zeros(n, dtype=torch.long, device=logits.device)

    def pick(lam):
        return (logits - lam * cost).argmax(1)

    gap = (cost[1:] - cost[:-1]).min().clamp_min(1e-6)
    hi = float((logits.max() - logits.min()) / gap) + 1.0   # all narrowest at +hi
    lo = -hi                                                  # all widest at -hi
    for _ in range(steps):
        mid = (lo + hi) / 2
        if cost[pick(mid)].mean() <= budget:
            hi = mid
        else:
            lo = mid
    return pick(hi)
