"""The ClassSR training phases: what each trains, which losses it sums, and the one settings
object both toolkit adapters build by keyword, so every option is checked here and only here.

- branches:   each narrow branch trained on the sub-images of its own difficulty class (each sample
              routed by its label); L1 to HR, plus optionally L1 to the widest branch's output
              (`distill`); the classifier is frozen and unused.
- classifier: branches frozen; the router learns, either from the paper's losses (w1 * L1 of the
              routed output + w2 * ClassLoss + w3 * AverageLoss) or, with `router: supervised`,
              by cross-entropy to each sub-image's oracle class (`classsr label --by oracle`).
- joint:      classifier and narrow branches trained with the paper's losses.
- supernet:   shared-weight branches (`share_weights: true`): every batch trains the widest, the
              narrowest and one random middle width (the sandwich rule), L1 to HR, plus
              optionally L1 of the narrower widths to the widest's output (`distill`).

The widest branch is the base network: with `freeze_widest` (default) it stays as loaded from
`init_base` (or the previous phase) in every phase, so ClassSR forced to it is the base network.
"""
import os
from dataclasses import dataclass, fields
from typing import Callable, Optional, Sequence

import torch
import torch.nn.functional as F

from .checks import flag
from .execution import Execution
from .wrapper import ClassSR

PHASES = ("branches", "classifier", "joint", "supernet")
# Reference loss weights (ClassSR's code: l1w 1000, class 0.5, average 3).
DEFAULT_WEIGHTS = {"pixel": 1000.0, "class": 0.5, "average": 3.0}


def check_phase(phase: str) -> str:
    if phase not in PHASES:
        raise ValueError(f"classsr.phase: {phase!r} is not one of {PHASES}")
    return phase


def _choice(where: str, key: str, value, allowed):
    if value not in allowed:
        raise ValueError(f"{where}{key}: {value!r} is not one of {tuple(allowed)}")


@dataclass
class PhaseSettings:
    """ClassSR's training options. BasicSR reads them from `classsr:` in the options file, the
    mmengine/MMagic models take them as keyword arguments; `where` prefixes error messages with
    the key's place ('classsr.' or 'model.')."""
    phase: str = "joint"
    routing: str = "soft"            # soft: the paper's p-weighted blend; hard: the argmax branch
    router: str = "paper"            # classifier phase: paper losses, or supervised (oracle labels)
    init_base: Optional[str] = None  # pretrained base network -> the widest branch
    init_narrow: str = "scratch"     # scratch | slice (leading channels of the widest) | prune (plain chains)
    prune_data: Optional[str] = None  # prune: a folder of training inputs (prepare's lq/) to calibrate on
    freeze_widest: bool = True       # the widest branch stays the base network
    distill: float = 0.0             # branches phase: weight of L1 to the widest branch's output
    collapse_share: float = 0.9      # warn when one class takes more than this
    allow_untrained: bool = False    # classifier / joint phases without trained branches, on purpose
    reset_classifier: bool = False   # classifier phase: start the classifier afresh after loading
    val_tile: int = 32
    val_stride: int = 28
    where: str = "classsr."

    @property
    def validation(self) -> Execution:
        """How validation runs whole images: the paper's tiles, val_tile every val_stride."""
        return Execution(mode="tiles", tile=self.val_tile, stride=self.val_stride)

    @classmethod
    def from_options(cls, opt: Optional[dict], where: str = "classsr.") -> "PhaseSettings":
        """From a plain dict (BasicSR's `classsr:` block); unknown keys are errors that list the
        known ones."""
        opt = dict(opt or {})
        known = {f.name for f in fields(cls)} - {"where"}
        unknown = sorted(set(opt) - known)
        if unknown:
            raise KeyError(f"{where}{unknown[0]}: unknown option; known: {', '.join(sorted(known))}")
        return cls(**opt, where=where)

    def __post_init__(self):
        w = self.where
        _choice(w, "phase", self.phase, PHASES)
        _choice(w, "routing", self.routing, ("soft", "hard"))
        _choice(w, "router", self.router, ("paper", "supervised"))
        _choice(w, "init_narrow", self.init_narrow, ("scratch", "slice", "prune"))
        if self.init_narrow == "prune" and not (self.init_base and self.prune_data):
            raise ValueError(f"{w}init_narrow: 'prune' reconstructs a trained base on training inputs: set "
                             f"{w}init_base and {w}prune_data (the training sub-images' lq/ folder)")
        if self.prune_data is not None and self.init_narrow != "prune":
            raise ValueError(f"{w}prune_data: for init_narrow: prune (now {self.init_narrow!r})")
        if self.prune_data is not None and not os.path.isdir(str(self.prune_data)):
            raise FileNotFoundError(f"{w}prune_data: {self.prune_data} is not a folder")
        if self.router == "supervised" and self.phase != "classifier":
            raise ValueError(f"{w}router: 'supervised' trains the classifier alone: use it with phase: classifier")
        for key in ("freeze_widest", "allow_untrained", "reset_classifier"):
            flag(getattr(self, key), w + key)
        if not (isinstance(self.distill, (int, float)) and self.distill >= 0):
            raise ValueError(f"{w}distill: {self.distill!r} is not a weight >= 0")
        if self.reset_classifier and self.phase != "classifier":
            raise ValueError(f"{w}reset_classifier: for phase: classifier")
        if self.distill and self.phase not in ("branches", "supernet"):
            raise ValueError(f"{w}distill: distillation to the widest branch is for phase: branches or supernet")
        if not 0 < self.collapse_share <= 1:
            raise ValueError(f"{w}collapse_share: {self.collapse_share!r} is not in (0, 1]")
        if self.init_base is not None and not os.path.isfile(str(self.init_base)):
            raise FileNotFoundError(f"{w}init_base: {self.init_base} does not exist")

    @property
    def supervised(self) -> bool:
        return self.router == "supervised"

    @property
    def unused_parameters(self) -> bool:
        """Whether some trainable parameters may get no gradient in an iteration (DDP must know):
        in the branches phase a batch need not hold every class."""
        return self.phase == "branches"

    def check_widest_source(self, pretrained: bool, key: str) -> None:
        """Trained weights must come from somewhere: a frozen widest branch from init_base or the
        previous phase (`key`, e.g. path.pretrain_network_g); the classifier and joint phases
        from the previous phase."""
        if self.freeze_widest and self.phase == "branches" and not (self.init_base or pretrained):
            raise ValueError(f"{self.where}init_base: the widest branch is frozen (freeze_widest: true) and "
                             f"would stay untrained: give the trained base network as init_base (or {key}), "
                             f"or set freeze_widest: false to train it here")
        if self.phase in ("classifier", "joint") and not pretrained and not self.allow_untrained:
            raise ValueError(f"{key}: phase '{self.phase}' trains over the branches of the previous phase, and "
                             f"none are given: set {key} to phase 1's weights (or {self.where}allow_untrained: "
                             f"true to train over untrained branches on purpose)")

    def frozen_branches(self, num_classes: int) -> Sequence[int]:
        if self.phase == "classifier":
            return tuple(range(num_classes))
        return (num_classes - 1,) if self.freeze_widest and self.phase != "supernet" else ()

    def check_model(self, model: ClassSR) -> None:
        shared = getattr(model, "share_weights", False)
        if getattr(model, "zero_class", False) and self.phase in ("branches", "supernet"):
            raise ValueError(f"{self.where}phase: '{self.phase}' trains the branches on their difficulty classes, "
                             f"which do not include the zero class: train them without zero_class, then set "
                             f"network_g.zero_class: true for the classifier phase (the branches load unchanged)")
        if self.phase == "supernet" and not shared:
            raise ValueError(f"{self.where}phase: 'supernet' trains shared-weight branches: set share_weights: "
                             f"true in network_g")
        if shared and self.phase in ("branches", "joint") and self.freeze_widest:
            raise ValueError(f"{self.where}freeze_widest: with share_weights the narrow branches are slices of "
                             f"the widest, so freezing it freezes them: use phase: supernet, or set "
                             f"freeze_widest: false")

    def init_weights(self, model: ClassSR, log: Callable[[str], None] = print) -> None:
        """init_base into the widest branch, then the narrow branches sliced from it."""
        if self.init_base:
            model.load_base(self.init_base)
            log(f"ClassSR: widest branch initialised from {self.init_base}")
        if self.init_narrow == "slice":
            n = [slice_init(b, model.branches[-1]) for b in model.branches[:-1]]
            log(f"ClassSR: narrow branches sliced from the widest ({n} tensors)")
        elif self.init_narrow == "prune":
            from .prune import calibration_inputs, prune_branches
            x = calibration_inputs(self.prune_data)
            mse = prune_branches(model, x.to(next(model.parameters()).device))
            log(f"ClassSR: narrow branches pruned from the widest on {len(x)} inputs from {self.prune_data} "
                f"(output MSE against the widest: {', '.join(f'{m:.2e}' for m in mse)})")

    def freeze(self, model: ClassSR, log: Callable[[str], None] = print) -> None:
        """Freeze what the phase does not train. Call before wrapping the model in DDP, so DDP
        registers only trainable parameters."""
        self.check_model(model)
        set_phase(model, self.phase, self.frozen_branches(len(model.branches)))
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        log(f"ClassSR phase '{self.phase}' (router {self.router}, routing {self.routing}): {trainable} trainable "
            f"parameters, {frozen} frozen (branches {list(model.frozen_branches)}"
            f"{' and the classifier' if self.phase == 'branches' else ''})")

    def after_load(self, model: ClassSR, log: Callable[[str], None] = print) -> None:
        """Once the previous phase's weights are in: a fresh classifier if asked for (the
        previous phase's was never trained)."""
        if self.reset_classifier:
            model.classifier.apply(lambda m: m.reset_parameters() if hasattr(m, "reset_parameters") else None)
            log("ClassSR: classifier re-initialised")

    def apply(self, model: ClassSR, log: Callable[[str], None] = print) -> None:
        """init_weights, then freeze (BasicSR: both when the network is put on its device)."""
        self.init_weights(model, log)
        self.freeze(model, log)

    def forward_losses(self, net: torch.nn.Module, lq: torch.Tensor, gt: torch.Tensor, label: Optional[torch.Tensor],
              pixel: Callable, class_: Optional[Callable] = None, average: Optional[Callable] = None):
        """Runs one training forward and computes its weighted loss terms: (terms, class index
        per sub-image, output or None). `net` may be the ClassSR module or a DDP/DataParallel wrapper of it."""
        bare = getattr(net, "module", net)
        if self.phase == "branches" or self.supervised:
            if label is None:
                raise KeyError("label: this phase needs each sub-image's class (a dataset from `classsr prepare`"
                               + (" relabelled by `classsr label --by oracle`)" if self.supervised else ")"))
        if self.supervised:
            _, logits, idx = net(lq, run_branches=False)
            return {"l_route": F.cross_entropy(logits, label)}, idx, None
        if self.phase == "supernet":
            return self._sandwich(net, bare.num_classes, lq, gt, pixel)
        if self.phase == "branches":
            out, _, idx = net(lq, force_class=label)
            terms = {"l_pix": pixel(out, gt)}
            if self.distill:
                with torch.no_grad():
                    teacher = bare.branches[-1](bare.to_branch_format(lq))
                terms["l_distill"] = self.distill * pixel(out, teacher)
            return terms, idx, out
        out, logits, idx = net(lq, hard=self.routing == "hard")
        p = logits.softmax(1)
        terms = {"l_pix": pixel(out, gt)}
        if class_ is not None:
            terms["l_class"] = class_(p)
        if average is not None:
            terms["l_average"] = average(p)
        return terms, idx, out


    def _sandwich(self, net, m: int, lq, gt, pixel):
        """The widest, the narrowest and a random middle width on the same batch, in one forward
        call (the batch repeated, each copy forced to its width), so DDP sees one forward."""
        ks = [m - 1, 0] + ([int(torch.randint(1, m - 1, ()))] if m > 2 else [])
        b = lq.shape[0]
        force = torch.cat([torch.full((b,), k, dtype=torch.long) for k in ks]).to(lq.device)
        out, _, idx = net(lq.repeat(len(ks), 1, 1, 1), force_class=force)
        outs = out.split(b)
        terms = {"l_pix": sum(pixel(o, gt) for o in outs) / len(outs)}
        if self.distill:
            teacher = outs[0].detach()
            terms["l_distill"] = self.distill * sum(pixel(o, teacher) for o in outs[1:]) / (len(outs) - 1)
        return terms, idx, outs[0]


def set_phase(model: ClassSR, phase: str, frozen: Optional[Sequence[int]] = None) -> None:
    """Freeze what the phase does not train: the `frozen` branches (default: every branch in the
    classifier phase, none otherwise) and the classifier in the branches phase."""
    check_phase(phase)
    if frozen is None:
        frozen = range(len(model.branches)) if phase == "classifier" else ()
    model.frozen_branches = tuple(frozen)  # kept in eval mode: BatchNorm statistics stay fixed too
    model.train(model.training)
    for k, branch in enumerate(model.branches):
        for p in branch.parameters():
            p.requires_grad_(k not in model.frozen_branches)
    for p in model.classifier.parameters():
        p.requires_grad_(phase != "branches")


def collapse_warning(shares: Sequence[float], limit: float, when: str, fixes: str) -> Optional[str]:
    """The class-collapse message when one class took more than `limit` of the sub-images
    (`shares`: class fractions over a window), else None. `fixes` names the options that counter it."""
    k = max(range(len(shares)), key=lambda i: shares[i])
    if shares[k] <= limit:
        return None
    return (f"ClassSR class collapse {when}: class {k} took {100 * shares[k]:.0f}% of the sub-images "
            f"(limit {100 * limit:.0f}%). {fixes}")


def collapse_fixes(average_key: str, average_weight, pixel_key: str, pixel_weight) -> str:
    return (f"Raise {average_key} (now {average_weight}) to spread sub-images over the branches, or lower "
            f"{pixel_key} (now {pixel_weight}) when the branches' L1 errors are large (the softmax then "
            f"saturates on one class).")


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
