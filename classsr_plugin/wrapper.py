"""ClassSR: a classifier routes each LR sub-image to one of M branches, the base network and
narrower copies of it (Kong et al., CVPR 2021)."""
import time
from dataclasses import dataclass, replace
from typing import Dict, List, NamedTuple, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from . import checkpoint
from .archs import register_arch
from .checks import flag
from .classifier import build_classifier
from .cost import BUDGET_MODES, TileCost, count_flops, route_under_budget
from .derive import BaseSpec, check_widths, derive_widths, measure_widths
from .shared import SlicedBranch, check_shareable
from .execution import MARGIN, Execution, Workers, check_margin
from .regions import CellGrid, block_rows, paint, plan, rectangles, run_regions
from .tiling import OUTPUT_DTYPES, TileGrid, stored


def skip_context(net: nn.Module) -> Optional[int]:
    """The fixed-skip protocol: a network whose output is `forward_residual(x) + skip(x)`, the
    skip a fixed local function of the input (bicubic upsampling, say), declares how many LR px
    each side its skip reads as `skip_context`; None, or no such attribute: no fixed skip.
    Returns that context, or None."""
    ctx = getattr(net, "skip_context", None)
    methods = all(callable(getattr(net, m, None)) for m in ("skip", "forward_residual"))
    return ctx if ctx is not None and methods else None


class _Routing(NamedTuple):
    """How each sub-image's class is picked (see ClassSR._route)."""
    force_class: object = None
    logit_bias: Optional[torch.Tensor] = None
    budget: Optional[float] = None
    budget_mode: str = "ceiling"


class Routed(NamedTuple):
    """What `ClassSR.forward` returns, in every mode."""
    out: Optional[torch.Tensor]     # [B, C, H*s, W*s], or None when only the classifier ran
    logits: Optional[torch.Tensor]  # [B, M] classifier logits, or None when routing was forced
    idx: torch.Tensor               # [B] the branch each sub-image went (or would go) through


@dataclass
class Restored:
    """What `ClassSR.restore_image` returns."""
    image: torch.Tensor          # [C, H*s, W*s] (or [1, C, H*s, W*s] if the input had a batch dim)
    class_map: torch.Tensor      # [tiles down, tiles across] class index of every tile
    counts: List[int]            # tiles (or cells, in regions) per class, narrowest branch first
    flops_per_tile: float        # average FLOPs per tile, classifier included
    flops_percent: float         # of the base network on the same tiles (tiles) or the whole image
                                 # (regions); classifier included when it ran
    seconds: float               # wall time of the whole call
    layout: tuple = ()           # (row starts, col starts) in LR px of the class map's tiles / cells


class ZeroPath(nn.Module):
    """The zero class: no network call. Its output is the arch's fixed skip where it declares
    one (`skip(x)`, see skip_context), else bicubic upsampling, or the input itself at scale 1."""

    def __init__(self, scale: int, skip=None):
        super().__init__()
        self.scale, self._skip = scale, skip  # a function, not a module: no second copy of weights
        self.name = "skip" if skip is not None else ("input" if scale == 1 else "bicubic")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._skip is not None:
            return self._skip(x)
        return x if self.scale == 1 else F.interpolate(x, scale_factor=self.scale, mode="bicubic", align_corners=False)


def _conv_heavy(module: nn.Module) -> bool:
    """channels_last helps convolutions on CPU; skip it for mostly-linear nets (transformers)."""
    conv = sum(p.numel() for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))
               for p in m.parameters(recurse=False))
    linear = sum(p.numel() for m in module.modules() if isinstance(m, nn.Linear)
                 for p in m.parameters(recurse=False))
    return conv > linear


@register_arch  # so checkpoint builds {'type': 'ClassSR', ...} as any arch, without importing this module
class ClassSR(nn.Module):
    """Wrap a network config as ClassSR.

    base:        the unchanged config of the original network, e.g. {'type': 'MyNet', 'nf': 64};
                 `type` may be a name (plugin archs, or a toolkit registry once its adapter is
                 imported) or a class.
    num_classes: M >= 2 branches.
    widths:      M strictly ascending widths ending at the base width; default: the paper's
                 widths where it gives them, else evenly spaced from 0.5625 x base.
    width_key:   the constructor argument that sets the width; default detected.
    classifier:  None (the paper's Class-Module) or {'type': 'timm', 'model_name': ...}.
    channels_last: True, False or 'auto' (on for conv-dominated nets).
    probe_tile:  tile size of the build-time check, which also measures FLOPs.
    share_weights: narrow branches use the leading slices of the widest branch's tensors (one
                 network's parameters; see shared.py) instead of weights of their own.
    zero_class:  a first class that costs no network call: its output is the arch's fixed skip
                 where it declares one (skip_context), else bicubic upsampling (the identity at
                 scale 1). The classifier then chooses among num_classes + 1 classes; class k + 1
                 is branch k. The branches and their widths are unchanged.
    margin:      LR px of context around each rectangle in regions when the call does not say
                 (execution.MARGIN = 2 if None): what the trained base network's receptive field
                 needs, measured by benchmarks/margins.py --trained (MSRResNet: 3).
    """

    def __init__(self, base: dict, num_classes: int = 3, widths: Optional[List[int]] = None,
                 width_key: Optional[str] = None, classifier: Optional[dict] = None,
                 channels_last: Union[bool, str] = "auto", probe_tile: int = 32, share_weights: bool = False,
                 zero_class: bool = False, margin: Optional[int] = None):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes: must be an int >= 2, got {num_classes!r}")
        spec = BaseSpec(base, width_key)
        arch, base, width_key, base_width, multiple = spec.arch, spec.cfg, spec.width_key, spec.width, spec.multiple
        self.in_ch = spec.in_ch
        if widths is None:
            widths = derive_widths(arch.__name__, base_width, num_classes, multiple)
        elif widths == "latency":  # measured on this machine now; recorded in config and weights
            widths, _ = measure_widths(spec, num_classes)
        elif isinstance(widths, str):
            raise ValueError(f"widths: {widths!r}: give a list of ints or 'latency'")
        widths = check_widths(widths, base_width, num_classes, multiple)

        zero_class = flag(zero_class, "zero_class")
        check_margin(margin)
        self.margin = MARGIN if margin is None else margin
        self.arch, self.base_cfg, self.width_key, self.widths = arch, base, width_key, widths
        self.zero_class = False  # until the zero class's path exists (after the probe finds the scale)
        self.config = dict(base={"type": arch.__name__, **base}, num_classes=num_classes,
                           widths=widths, width_key=width_key, classifier=classifier)
        if zero_class:
            self.config["zero_class"] = True
        if margin is not None:  # configs written before `margin` existed stay as they were
            self.config["margin"] = margin
        branches = [self._build_branch(w) for w in widths]
        self.share_weights = flag(share_weights, "share_weights")
        if self.share_weights:
            check_shareable(branches[-1], arch.__name__)
            branches = [SlicedBranch(b, branches[-1]) for b in branches[:-1]] + branches[-1:]
            self.config["share_weights"] = True
        self.branches = nn.ModuleList(branches)
        self.classifier = build_classifier(classifier, num_classes + zero_class, self.in_ch)
        self.channels_last = _conv_heavy(self.branches[-1]) if channels_last == "auto" else \
            flag(channels_last, "channels_last")
        if self.channels_last:
            self.branches.to(memory_format=torch.channels_last)
        # a fixed skip every branch shares is computed once per image in regions (skip_context)
        contexts = [skip_context(b) for b in self.branches]
        self.skip_context = None if None in contexts else max(contexts)
        # the widths travel with the weights, so a checkpoint cannot load into other widths
        self.register_buffer("widths_record", torch.tensor(widths), persistent=True)
        self._register_load_state_dict_pre_hook(self._check_widths_record)
        self._costs: Dict[tuple, TileCost] = {}
        self.zero = None
        self.scale = self._probe(probe_tile)
        if zero_class:
            if self.out_ch != self.in_ch:
                raise ValueError(f"zero_class: needs as many output as input channels ({self.out_ch} vs "
                                 f"{self.in_ch}): its output is the input upsampled")
            self.zero = ZeroPath(self.scale, self.branches[-1].skip if self.skip_context is not None else None)
            self.zero_class = True
            self._costs.clear()
        cost = self.tile_cost(probe_tile)
        if cost.classifier >= cost.base - cost.branches[0]:
            import warnings
            warnings.warn(f"classifier: {cost.classifier / 1e6:.1f} MFLOPs per {probe_tile}x{probe_tile} tile, "
                          f"{100 * cost.classifier / cost.base:.0f}% of the base network: more than the narrowest "
                          f"branch saves ({(cost.base - cost.branches[0]) / 1e6:.1f} MFLOPs), so no routing can "
                          f"save FLOPs; use a smaller classifier (e.g. classifier: {{type: ClassModule, nf: 32}})",
                          stacklevel=2)

    def train(self, mode: bool = True):
        """Frozen branches (`frozen_branches`, set by the training phase) stay in eval mode, so
        normalisation layers' running statistics do not drift while their weights are frozen."""
        super().train(mode)
        if mode:
            for k in getattr(self, "frozen_branches", ()):
                self.branches[k].eval()
        return self

    def _check_widths_record(self, state, prefix, *args):
        mine = {k: tuple(v.shape) for k, v in self.classifier.state_dict().items()}
        theirs = {k[len(prefix) + 11:]: tuple(v.shape) for k, v in state.items() if k.startswith(prefix + "classifier.")}
        if theirs and theirs != mine and self._one_class_short(theirs, mine):
            import warnings
            warnings.warn("classifier: the checkpoint's routes among one class fewer (no zero class): its "
                          "branches load, the classifier starts afresh (train it: phase classifier)", stacklevel=3)
            for k, v in self.classifier.state_dict().items():
                state[prefix + "classifier." + k] = v.clone()
            theirs = mine
        if theirs and theirs != mine:
            raise ValueError(f"network_g.classifier: the checkpoint's classifier ({len(theirs)} tensors, e.g. "
                             f"{next(iter(theirs))}) is not this config's {self.config['classifier']!r}; use the "
                             f"same classifier in every phase")
        saved = state.get(prefix + "widths_record")
        if saved is None:  # a checkpoint from before the record: its shapes will tell
            state[prefix + "widths_record"] = self.widths_record.clone()
        elif saved.tolist() != self.widths:
            raise ValueError(f"widths: the checkpoint's branches have widths {saved.tolist()}, this "
                             f"model {self.widths}; set widths: {saved.tolist()} in its config")

    def _one_class_short(self, theirs: dict, mine: dict) -> bool:
        """Whether a checkpoint's classifier differs from this zero-class model's only by routing
        among one class fewer (a model saved without the zero class)."""
        if not self.zero_class or theirs.keys() != mine.keys():
            return False
        diff = [k for k in mine if theirs[k] != mine[k]]
        return bool(diff) and all(theirs[k][0] == mine[k][0] - 1 and theirs[k][1:] == mine[k][1:] for k in diff)

    def _build_branch(self, width: int) -> nn.Module:
        try:
            return self.arch(**{**self.base_cfg, self.width_key: width})
        except Exception as err:  # the arch's own check, e.g. divisibility
            raise ValueError(f"widths: {self.arch.__name__}({self.width_key}={width}) was rejected "
                             f"by the arch: {err}") from err

    def _probe(self, tile: int) -> int:
        """Run every branch once on a tile: catches widths that only fail at run time, finds the
        scale and output channels, and caches FLOPs for this tile size."""
        x = torch.zeros(1, self.in_ch, tile, tile)
        was = self.training
        self.eval()
        shapes = []
        for width, branch in zip(self.widths, self.branches):
            try:
                _, out = count_flops(branch, self.to_branch_format(x))
            except Exception as err:
                raise ValueError(f"widths: {self.arch.__name__}({self.width_key}={width}) fails on a "
                                 f"{tile}x{tile} tile: {err}") from err
            shapes.append(tuple(out.shape))
        self.train(was)
        if len(set(shapes)) != 1 or shapes[0][-1] % tile or shapes[0][-2] != shapes[0][-1]:
            raise ValueError(f"widths: branches give output shapes {shapes} for a {tile}x{tile} tile; "
                             f"expected one square shape, a multiple of the tile")
        self.out_ch = shapes[0][1]
        self.scale = shapes[0][-1] // tile
        self.tile_cost(tile)
        return self.scale

    @property
    def num_classes(self) -> int:
        """The classes routing chooses among: the branches, and the zero class if there is one."""
        return len(self.branches) + self.zero_class

    def path(self, k: int) -> nn.Module:
        """What class k runs: the zero class's path (class 0 with zero_class), else a branch."""
        if self.zero_class:
            return self.zero if k == 0 else self.branches[k - 1]
        return self.branches[k]

    @property
    def class_names(self) -> List[str]:
        """One label per class, cheapest first, e.g. ['skip', 'd=16', 'd=36', 'd=56']."""
        zero = [self.zero.name] if self.zero_class else []
        return zero + [f"{self.width_key}={w}" for w in self.widths]

    def to_branch_format(self, x: torch.Tensor) -> torch.Tensor:
        """x in the branches' memory format (channels_last when that is on)."""
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _check_input(self, x: torch.Tensor, dims: int) -> None:
        if not torch.is_tensor(x) or x.dim() != dims or x.shape[-3] != self.in_ch:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            want = "[B, C, H, W]" if dims == 4 else "[C, H, W] or [1, C, H, W]"
            raise ValueError(f"input of shape {shape}: expected {want} with C = {self.in_ch} "
                             f"channels for this {self.arch.__name__} (convert gray/RGBA images first)")

    # -- costs ---------------------------------------------------------------------------------
    def tile_cost(self, tile) -> TileCost:
        """FLOPs of one tile (int or (h, w)) per class (its branch, or the zero class's skip) and
        for the classifier; measured once."""
        hw = (tile, tile) if isinstance(tile, int) else tuple(tile)
        if hw not in self._costs:
            x = torch.zeros(1, self.in_ch, *hw)
            was = self.training
            self.eval()
            cls_flops, _ = count_flops(self.classifier, x)
            branch_flops = [count_flops(self.path(k), self.to_branch_format(x))[0] for k in range(self.num_classes)]
            self.train(was)
            self._costs[hw] = TileCost(hw, cls_flops, branch_flops)
        return self._costs[hw]

    # -- forward -------------------------------------------------------------------------------
    def run_branches(self, x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """Each sub-image through its class's branch: one batched call per class present."""
        s = self.scale
        out = x.new_empty(x.shape[0], self.out_ch, x.shape[2] * s, x.shape[3] * s)
        for k in idx.unique().tolist():
            sel = (idx == k).nonzero().squeeze(1)
            out[sel] = self.path(k)(self.to_branch_format(x[sel])).to(out.dtype)
        return out

    def forward(self, x: torch.Tensor, force_class=None, hard: bool = False, run_branches: bool = True) -> Routed:
        """One return shape in every mode: Routed(out, logits, idx).

        Train mode: the classifier's logits, idx = their argmax, and out = sum_j p_j * branch_j(x)
        over every branch (the paper's blend), or with `hard` the argmax branch's output alone, as
        at inference, while gradients still reach the classifier through p (straight-through).
        Eval mode: each sub-image runs only through its argmax branch, one batched call per class.
        force_class (one class, or one per sub-image: the branch-training phase routes by
        difficulty label): those branches; the classifier does not run (logits None).
        run_branches=False: the classifier alone (out None), e.g. for a supervised router."""
        self._check_input(x, 4)
        if force_class is not None:
            idx = self._route(None, x.shape[0], _Routing(force_class)).to(x.device)
            return Routed(self.run_branches(x, idx), None, idx)
        logits = self.classifier(x)
        idx = self._route(logits.detach(), x.shape[0], _Routing())
        if not run_branches:
            return Routed(None, logits, idx)
        if self.training:
            p = logits.softmax(1)
            w = p + (F.one_hot(idx, self.num_classes).to(p) - p).detach() if hard else p
            outs = torch.stack([self.path(k)(self.to_branch_format(x)) for k in range(self.num_classes)], 1)
            return Routed((w[:, :, None, None, None] * outs).sum(1), logits, idx)
        return Routed(self.run_branches(x, idx), logits, idx)

    def _check_class(self, k, n: int) -> torch.Tensor:
        """An int or a [n] tensor of class indices -> a [n] long tensor."""
        idx = torch.as_tensor(k, dtype=torch.long)
        idx = idx.expand(n) if idx.dim() == 0 else idx
        if idx.shape != (n,) or idx.numel() and not (0 <= int(idx.min()) and int(idx.max()) < self.num_classes):
            shown = tuple(k.shape) if torch.is_tensor(k) and k.dim() else int(k)
            raise ValueError(f"force_class: {shown} is not a class "
                             f"(or one per sub-image) in 0..{self.num_classes - 1}")
        return idx

    # -- weights -------------------------------------------------------------------------------
    def build_base(self) -> nn.Module:
        """A plain base network carrying the widest branch's weights (for reference runs)."""
        net = self.arch(**self.base_cfg)
        net.load_state_dict(self.branches[-1].state_dict())
        return net

    def load_base(self, state, strict: bool = True, key: Optional[str] = None) -> None:
        """Load a pretrained base network into the widest branch: a state dict or a path to any
        checkpoint kind checkpoint.py reads (BasicSR's, with `key` = its param_key; mmengine's;
        an editor's 'generator.' prefix)."""
        checkpoint.fill(self.branches[-1], state, key=key, strict=strict)

    def save(self, path: str) -> None:
        """A self-describing checkpoint, written atomically (see checkpoint.save)."""
        checkpoint.save(self, path)

    @classmethod
    def from_checkpoint(cls, path: str) -> "ClassSR":
        """A ClassSR.save / `classsr export` file (or any spec checkpoint.load takes) -> the model."""
        return checkpoint.load(path, expect=cls)

    # -- whole images --------------------------------------------------------------------------
    def execution(self, execution: Union[str, Execution, None] = None, **settings) -> Execution:
        """Execution.of(execution, **settings), this model's margin where it leaves it open."""
        ex = Execution.of(execution, **settings)
        return ex if ex.margin is not None else replace(ex, margin=self.margin)

    @torch.no_grad()
    def restore_image(self, img: torch.Tensor, execution: Union[str, Execution, None] = None, *,
                      force_class=None, logit_bias: Optional[torch.Tensor] = None,
                      budget: Optional[float] = None, budget_mode: str = "ceiling",
                      progress: bool = False, dtype: torch.dtype = torch.float32,
                      tile_outputs: Optional[torch.Tensor] = None, **settings) -> Restored:
        """Super-resolve (or restore, at scale 1) a whole LR image of any size.

        img: [C, H, W] or [1, C, H, W] float tensor.
        execution: an Execution, or its mode ("regions", the default, or "tiles"); any of its
        settings may also be given by name (tile=, stride=, margin=, max_cells=, batch=,
        workers=): see execution.Execution.

        budget: a cost knob without retraining, as a fraction of the base network's FLOPs, in
        the same terms as `flops_percent` (tiles: the base on the same tiles; regions: the base
        on the whole image; margins and the classifier included). budget_mode
        "ceiling" (default): the classifier's decisions are shifted towards cheaper branches
        just enough that the cost is at most the budget, and never above its own routing;
        "target": shifted either way, towards the budget (see cost.route_under_budget).
        force_class: one class for every tile, or one per tile (row-major over `class_map`).
        dtype: of the output: float32, or uint8 (0..255, what an image file holds): in regions
        only a few blocks of rows are ever in float, so a large output needs about 3 bytes a
        pixel instead of 12 (tiles: converted at the end).
        tile_outputs: tiles mode only, [n_tiles, classes, C, t*s, t*s]: every class's output of every
        tile of this image's grid, computed once (evaluate routes one image many ways): routing and
        merging run as always, the branches do not."""
        start = time.perf_counter()
        ex = self.execution(execution, **settings)
        batched = torch.is_tensor(img) and img.dim() == 4
        if batched and img.shape[0] != 1:
            raise ValueError(f"input of shape {tuple(img.shape)}: restore_image takes one image")
        img = img[0] if batched else img
        self._check_input(img, 3)
        if dtype not in OUTPUT_DTYPES:
            raise ValueError(f"dtype: {dtype} is not one of {', '.join(map(str, OUTPUT_DTYPES))}")
        if budget_mode not in BUDGET_MODES:
            raise ValueError(f"budget_mode: {budget_mode!r} is not one of {', '.join(BUDGET_MODES)}")
        routing = _Routing(force_class, logit_bias, budget, budget_mode)
        if tile_outputs is not None and ex.mode != "tiles":
            raise ValueError(f"tile_outputs: precomputed tile outputs serve execution 'tiles', not {ex.mode!r}")
        was = self.training
        self.eval()
        try:
            with Workers(ex.n_workers()) as workers, \
                    tqdm(desc=ex.mode, unit="call", disable=None if progress else True, leave=False) as bar:
                if ex.mode == "tiles":
                    res = self._restore_tiles(img.float(), ex, workers, routing, bar.update, dtype, tile_outputs)
                else:
                    res = self._restore_regions(img.float(), ex, workers, routing, bar.update, dtype)
                image, idx, shape, layout, flops = res
        finally:
            self.train(was)
        counts = torch.bincount(idx, minlength=self.num_classes).tolist()
        return Restored(image=image[None] if batched else image, class_map=idx.view(shape), counts=counts,
                        flops_per_tile=flops[0] / len(idx), flops_percent=100.0 * flops[0] / flops[1],
                        seconds=time.perf_counter() - start, layout=layout)

    def _skip_jobs(self, img: torch.Tensor, out: torch.Tensor, y0: int = 0, y1: Optional[int] = None,
                   rows: int = 64) -> List:
        """Jobs that write the branches' shared skip of LR rows y0:y1 of img [C, H, W] into
        `out` [C, (y1 - y0) * scale, W * scale], a band of rows each; each band is computed with
        skip_context rows of context, so it equals the whole-image skip."""
        s, height, c = self.scale, img.shape[-2], self.skip_context
        y1 = height if y1 is None else y1

        def band(a0):
            a1 = min(a0 + rows, y1)
            a, b = max(a0 - c, 0), min(a1 + c, height)
            out[:, (a0 - y0) * s:(a1 - y0) * s] = self.branches[-1].skip(img[None, :, a:b])[0][:, (a0 - a) * s:(a1 - a) * s]
        return [lambda a0=a0: band(a0) for a0 in range(y0, y1, rows)]

    def _route(self, logits: Optional[torch.Tensor], n: int, routing: _Routing,
               cost: Optional[TileCost] = None, cost_of=None) -> torch.Tensor:
        """The one place a class is picked (forward, restore_image): forced, or the classifier's
        argmax (+ bias), or that under a budget; cost_of(idx) is the FLOPs fraction a routing
        reports."""
        if routing.force_class is not None:
            fc = torch.as_tensor(routing.force_class)
            return self._check_class(fc.view(-1)[0] if fc.numel() == 1 else fc.cpu(), n)
        path = getattr(self.classifier, "budget_path", None)
        if routing.logit_bias is not None:
            logits, path = logits + routing.logit_bias.float().cpu(), None
        if routing.budget is None:
            return logits.argmax(1)
        return route_under_budget(logits, cost.branches, routing.budget, cost=cost_of, mode=routing.budget_mode,
                                  path=path(logits) if path else None)

    def _classify(self, windows: torch.Tensor, ex: Execution) -> List:
        """Jobs that each return the classifier's logits of a batch of windows."""
        return [lambda w=w: self.classifier(w).float().cpu() for w in windows.split(ex.tile_batch * 4)]

    def _restore_tiles(self, img, ex: Execution, workers: Workers, routing, tick, dtype, outputs=None):
        grid = TileGrid(img.shape[-2], img.shape[-1], ex.tile, ex.stride, self.scale)
        size = ex.tile * self.scale
        if outputs is not None and tuple(outputs.shape) != (len(grid), self.num_classes, self.out_ch, size, size):
            raise ValueError(f"tile_outputs of shape {tuple(outputs.shape)}: this image's {ex.tile}/{ex.stride} grid "
                             f"needs {(len(grid), self.num_classes, self.out_ch, size, size)}")
        padded = grid.pad(img)
        all_ids = torch.arange(len(grid))
        cost = self.tile_cost(ex.tile)
        logits = None
        if routing.force_class is None:
            logits = torch.cat(workers.map(lambda job: job(), self._classify(grid.windows(padded, all_ids), ex)))

        def flops(idx):  # against the base network on the same tiles; the classifier when it ran
            counts = torch.bincount(idx, minlength=self.num_classes).tolist()
            return cost.per_tile(counts, routing.force_class is None) * len(idx), cost.base * len(idx)
        idx = self._route(logits, len(grid), routing, cost, lambda i: flops(i)[0] / flops(i)[1])
        out = grid.new_output(self.out_ch, device=img.device)

        def job(k_ids):
            k, ids = k_ids
            if outputs is not None:
                y = outputs[ids, k]
            else:
                y = self.path(k)(self.to_branch_format(grid.windows(padded, ids)))
            with workers.lock:
                grid.add(out, y, ids)
            tick(1)
        workers.map(job, [(k, ids) for k in range(self.num_classes) if (idx == k).any()
                          for ids in all_ids[idx == k].split(ex.tile_batch)])
        return stored(grid.finish(out), dtype), idx, grid.shape, (grid.ys, grid.xs), flops(idx)

    def _restore_regions(self, img, ex: Execution, workers: Workers, routing, tick, dtype):
        grid = CellGrid(img.shape[-2], img.shape[-1], ex.tile)
        hoist = self.skip_context is not None
        logits = None
        if routing.force_class is None:
            logits = torch.cat(workers.map(lambda job: job(), self._classify(grid.windows(img), ex)))
        cost = self.tile_cost(ex.tile)
        per_px = [f / (ex.tile * ex.tile) for f in cost.branches]  # conv nets: FLOPs grow with pixels
        whole = per_px[-1] * img.shape[-2] * img.shape[-1]
        classifier = cost.classifier * len(grid) * (routing.force_class is None)

        def flops(calls):  # against the base network on the whole image; margins included
            run = 0.0
            for c in calls:  # zero-class cells with a hoisted skip do not run: the skip covers them
                zero = hoist and self.zero_class and c.k == 0
                run += per_px[0] * sum(w.area for w in c.windows) if zero else c.pixels * per_px[c.k]
            return run + classifier

        # time per pixel for the cover: FLOPs, and nothing for zero-class cells the skip covers
        cost_px = [0.0 if hoist and self.zero_class and k == 0 else f for k, f in enumerate(per_px)]

        def rects_of(idx):
            return rectangles(idx.view(grid.shape), grid, ex, cost_px if ex.coarsen else None)
        idx = self._route(logits, len(grid), routing, cost, lambda i: flops(plan(grid, rects_of(i), ex)) / whole)
        rects = rects_of(idx)
        idx = paint(rects, grid.shape).view(-1)  # what ran: the cover may move cells to wider classes
        calls = plan(grid, rects, ex, block_rows(grid, self.scale, self.out_ch))
        hoisted = [None] * self.zero_class + [lambda x, b=b: b.forward_residual(self.to_branch_format(x))
                                              for b in self.branches]  # the zero class adds nothing to the skip
        plain = [lambda x, k=k: self.path(k)(self.to_branch_format(x)) for k in range(self.num_classes)]
        skip = (lambda dst, y0, y1: self._skip_jobs(img, dst, y0, y1)) if hoist else None
        image = run_regions(img, grid, calls, hoisted if hoist else plain, self.scale, self.out_ch, ex,
                            workers, skip=skip, dtype=dtype, progress=tick)
        return image, idx, grid.shape, (grid.ys, grid.xs), (flops(calls), whole)

    def extra_repr(self) -> str:
        return (f"arch={self.arch.__name__}, {self.width_key}={self.widths}, scale={self.scale}, "
                f"channels_last={self.channels_last}")
