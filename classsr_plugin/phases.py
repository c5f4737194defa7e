"""The three ClassSR training phases: what each trains and which losses it sums. The one place
toolkit adapters ask; plain torch.

- branches:   every branch trained on the sub-images of its own difficulty class (each sample
              routed by its label); L1 only; the classifier is frozen and unused.
- classifier: branches frozen; the classifier learns from w1 * L1(probability-weighted output)
              + w2 * ClassLoss + w3 * AverageLoss.
- joint:      everything trained with the same three losses.
"""
from typing import Callable, Dict, Optional, Sequence

import torch

from .wrapper import ClassSR

PHASES = ("branches", "classifier", "joint")
# Reference loss weights (ClassSR's code: l1w 1000, class 0.5, average 3).
DEFAULT_WEIGHTS = {"pixel": 1000.0, "class": 0.5, "average": 3.0}


def check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise ValueError(f"classsr.phase: {phase!r} is not one of {PHASES}")
    return phase


def set_phase(model: ClassSR, phase: str) -> None:
    """Freeze what the phase does not train. Call before wrapping the model in DDP, so DDP only
    registers the trainable parameters."""
    check_phase(phase)
    model.branches_frozen = phase == "classifier"  # keeps BatchNorm statistics fixed too
    model.train(model.training)
    for p in model.branches.parameters():
        p.requires_grad_(phase != "classifier")
    for p in model.classifier.parameters():
        p.requires_grad_(phase != "branches")


def unused_parameters(phase: str) -> bool:
    """Whether some trainable parameters may get no gradient in an iteration (DDP must know):
    in the branches phase a batch need not hold every class."""
    return check_phase(phase) == "branches"


def phase_forward(net: torch.nn.Module, phase: str, lq: torch.Tensor,
                  label: Optional[torch.Tensor] = None, hard: bool = False):
    """Forward for training: (output, probabilities or None, class index per sub-image).
    `net` may be the ClassSR module or a DDP/DataParallel wrapper of it. `hard` (classifier and
    joint phases): the output is the chosen branch's alone, as at inference (straight-through
    gradients to the classifier), instead of the paper's probability-weighted blend."""
    if check_phase(phase) == "branches":
        if label is None:
            raise KeyError("label: the branches phase needs each sub-image's difficulty class "
                           "(a dataset from `classsr prepare`)")
        out, idx = net(lq, force_class=label)
        return out, None, idx
    out, p = net(lq, hard=hard)
    return out, p, p.detach().argmax(1)


def phase_losses(phase: str, out: torch.Tensor, gt: torch.Tensor, p: Optional[torch.Tensor],
                 pixel: Callable, class_: Optional[Callable] = None,
                 average: Optional[Callable] = None) -> Dict[str, torch.Tensor]:
    """The losses of a phase, each already weighted by its module's loss_weight."""
    losses = {"l_pix": pixel(out, gt)}
    if check_phase(phase) != "branches":
        if class_ is not None:
            losses["l_class"] = class_(p)
        if average is not None:
            losses["l_average"] = average(p)
    return losses


def collapse_warning(shares: Sequence[float], limit: float, weight_key: str, weight, when: str) -> Optional[str]:
    """The class-collapse message when one class took more than `limit` of the sub-images
    (`shares`: class fractions over a window), else None. Names the loss weight that counters it."""
    k = max(range(len(shares)), key=lambda i: shares[i])
    if shares[k] <= limit:
        return None
    return (f"ClassSR class collapse {when}: class {k} took {100 * shares[k]:.0f}% of the sub-images "
            f"(limit {100 * limit:.0f}%). Raise {weight_key} (now {weight}) to spread sub-images over "
            f"the branches.")


def slice_init(narrow: torch.nn.Module, wide: torch.nn.Module) -> int:
    """Initialise a narrow branch from the leading channels of the wide one: every tensor of the
    narrow branch takes the first entries along each dimension of its wide counterpart.
    Returns the number of tensors copied (shapes that cannot be sliced keep their init)."""
    wide_state = wide.state_dict()
    copied = 0
    with torch.no_grad():
        for name, t in narrow.state_dict().items():
            w = wide_state.get(name)
            if w is None or w.dim() != t.dim() or any(a > b for a, b in zip(t.shape, w.shape)):
                continue
            t.copy_(w[tuple(slice(0, n) for n in t.shape)])
            copied += 1
    return copied
