"""Shared-weight branches (ARM, ECCV 2022; slimmable networks): a narrow branch is the same arch
built at a smaller width whose every tensor is the leading slice of the widest branch's, so
ClassSR holds the parameters of one network and training a narrow width trains those slices.

`SlicedBranch` runs its own skeleton (the narrow arch, built once) through
`torch.func.functional_call` with slices of the widest branch's parameters and buffers. The
skeleton's own parameters are never used, saved or counted; `.to()`, `.train()` and the memory
format reach it all the same (it can hold plain tensor attributes, e.g. EDSR's RGB mean).
"""
from typing import Dict

import torch
import torch.nn as nn
from torch.func import functional_call

# Running statistics belong to one width: a shared BatchNorm would mix every width's batches.
_STATEFUL_NORMS = (nn.modules.batchnorm._BatchNorm, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d)


def check_shareable(net: nn.Module, arch_name: str) -> None:
    """Refuse archs with per-width state: normalisation layers with running statistics."""
    for name, mod in net.named_modules():
        if isinstance(mod, _STATEFUL_NORMS) and getattr(mod, "track_running_stats", False):
            raise ValueError(f"share_weights: {arch_name} has {type(mod).__name__} layer '{name}', whose running "
                             f"statistics cannot be shared across widths; use separate branches "
                             f"(share_weights: false)")


def _slice(t: torch.Tensor, shape) -> torch.Tensor:
    return t[tuple(slice(0, n) for n in shape)]


class SlicedBranch(nn.Module):
    """A narrow branch whose weights are the leading slices of `wide`'s."""

    def __init__(self, skeleton: nn.Module, wide: nn.Module):
        super().__init__()
        wide_state = dict(wide.named_parameters()) | dict(wide.named_buffers())
        for name, t in list(skeleton.named_parameters()) + list(skeleton.named_buffers()):
            w = wide_state.get(name)
            if w is None or w.dim() != t.dim() or any(a > b for a, b in zip(t.shape, w.shape)):
                raise ValueError(f"share_weights: {type(wide).__name__} tensor '{name}' of shape {tuple(t.shape)} "
                                 f"is not a leading slice of the widest's "
                                 f"{None if w is None else tuple(w.shape)}")
        skeleton.requires_grad_(False)
        # neither is a submodule: their tensors are not this branch's parameters
        object.__setattr__(self, "_skeleton", skeleton)
        object.__setattr__(self, "_wide", wide)
        self._shapes = {n: t.shape for n, t in list(skeleton.named_parameters()) + list(skeleton.named_buffers())}

    def _apply(self, fn, *args, **kwargs):
        self._skeleton._apply(fn, *args, **kwargs)
        return super()._apply(fn, *args, **kwargs)

    def train(self, mode: bool = True):
        self._skeleton.train(mode)
        return super().train(mode)

    def sliced_state(self) -> Dict[str, torch.Tensor]:
        wide = dict(self._wide.named_parameters()) | dict(self._wide.named_buffers())
        return {n: _slice(wide[n], shape) for n, shape in self._shapes.items()}

    def forward(self, x):
        return functional_call(self._skeleton, self.sliced_state(), (x,))
