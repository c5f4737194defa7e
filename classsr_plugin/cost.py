"""FLOPs, measured with torch.utils.flop_counter: 2 x multiply-accumulates of convolutions
(transposed ones included) and matrix products; activations, pixel shuffles, additions and
normalisations are not counted, as in the ClassSR paper."""
from dataclasses import dataclass
from typing import List, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode


@torch.no_grad()
def count_flops(module: torch.nn.Module, x: torch.Tensor):
    """(FLOPs of one forward of `module` on `x`, its output)."""
    with FlopCounterMode(display=False) as counter:
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

    def per_tile(self, counts: Sequence[int]) -> float:
        """Average FLOPs per tile for a class distribution, classifier included."""
        n = sum(counts)
        if n == 0:
            return 0.0
        return self.classifier + sum(c * f for c, f in zip(counts, self.branches)) / n

    def percent(self, counts: Sequence[int]) -> float:
        return 100.0 * self.per_tile(counts) / self.base
