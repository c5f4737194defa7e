"""ClassSR in mmengine: the training part every mmengine model shares (ClassSRTraining, also
under MMagic's editor), the model for mmengine alone (ClassSREngineModel) and its pixel loss."""
from typing import Dict, Optional

import torch
import torch.nn.functional as F
from mmengine.logging import MMLogger
from mmengine.model import BaseModel
from mmengine.registry import MODELS

from ..losses import AverageLoss, ClassLoss
from ..phases import PhaseSettings
from ..wrapper import ClassSR
from .mm_checkpoint import _mmengine_globals


class WeightedL1Loss(torch.nn.Module):
    """Mean absolute error times loss_weight (the pixel loss of the mmengine-only path)."""

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = loss_weight

    def forward(self, pred, target):
        return self.loss_weight * F.l1_loss(pred, target)


for _cls in (ClassSR, ClassLoss, AverageLoss, WeightedL1Loss):
    MODELS.register_module(module=_cls)


class ClassSRTraining:
    """The ClassSR part of an mmengine model (ClassSREngineModel here, the MMagic editor in
    registry/mmagic.py): phase freezing, weight init, phase losses, tiled whole-image inference.
    Needs ``self.generator`` (a ClassSR) and ``self.pixel_loss``."""

    def _setup_classsr(self, settings: dict, class_loss, average_loss):
        """`settings`: the PhaseSettings keywords (phase, router, routing, init_base, init_narrow,
        freeze_widest, distill, val_tile, val_stride, collapse_share)."""
        if not isinstance(self.generator, ClassSR):
            raise TypeError(f"generator: expected type='ClassSR', got {type(self.generator).__name__}")
        self.settings = PhaseSettings.from_options(settings, "model.")
        # the Runner's load_from is checked by ClassSRHook.before_train; only init_base is known here
        self.settings.check_widest_source(self.settings.phase != "branches", "load_from")
        self.phase = self.settings.phase
        paper = self.phase != "branches" and not self.settings.supervised
        self.class_loss = MODELS.build(class_loss) if paper else None
        self.average_loss = MODELS.build(average_loss) if paper else None
        # before the Runner wraps the model in DDP; weights come in init_weights
        self.settings.freeze(self.generator, MMLogger.get_current_instance().info)

    def init_weights(self):
        # The Runner calls this before loading `load_from` / resuming: the pretrained base and
        # the sliced narrow branches go in here, so the arch's own init cannot overwrite them.
        super().init_weights()
        with torch.serialization.safe_globals(_mmengine_globals()):  # init_base may be an mmengine checkpoint
            self.settings.init_weights(self.generator, MMLogger.get_current_instance().info)

    def classsr_losses(self, lq, gt, label=None) -> Dict[str, torch.Tensor]:
        """Loss terms (keys with 'loss' are summed by mmengine) and class shares (logged)."""
        terms, idx, _ = self.settings.forward_losses(self.generator, lq, gt, label, self.pixel_loss,
                                                     self.class_loss, self.average_loss)
        log = {k.replace("l_", "loss_", 1): v for k, v in terms.items()}
        counts = torch.bincount(idx, minlength=self.generator.num_classes).float()
        for k, share in enumerate(counts / counts.sum()):
            log[f"share_{k}"] = share.detach()
        return log

    @torch.no_grad()
    def classsr_restore(self, inputs) -> tuple:
        """Each LR image (a [B,C,H,W] batch or a list of [C,H,W]) restored whole, tiled ->
        (list of [C, sH, sW] outputs, list of per-image stats)."""
        outs, stats = [], []
        for img in inputs:
            r = self.generator.restore_image(img, self.settings.validation)
            outs.append(r.image)
            stats.append({"classsr_counts": r.counts, "classsr_flops": r.flops_percent})
        return outs, stats


def _stack(x, like: Optional[torch.Tensor] = None):
    """A batch from mmengine's collate (stacked, or a list of tensors or numbers) -> one tensor."""
    if isinstance(x, (list, tuple)):
        x = torch.stack(list(x)) if torch.is_tensor(x[0]) else torch.as_tensor(x)
    return x if like is None else x.to(like.device)


@MODELS.register_module()
class ClassSREngineModel(ClassSRTraining, BaseModel):
    """ClassSR in mmengine without MMagic. Data: dicts with `inputs` (LR, [0, 1]) and
    `data_samples` with `gt` ([0, 1]) and, for the branches phase, `label` (ClassSRSubImages /
    ClassSRPairs give exactly that). Modes: loss, predict (whole images, tiled), tensor.
    routing: 'soft' (the paper's probability-weighted blend in the classifier and joint phases) or
    'hard' (the argmax branch, as at inference; straight-through gradients to the classifier)."""

    def __init__(self, generator: dict,
                 pixel_loss: dict = dict(type="WeightedL1Loss", loss_weight=1000.0),
                 class_loss: dict = dict(type="ClassLoss", loss_weight=0.5),
                 average_loss: dict = dict(type="AverageLoss", loss_weight=3.0),
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None, **settings):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.generator = MODELS.build(generator)
        self.pixel_loss = MODELS.build(pixel_loss)
        self._setup_classsr(settings, class_loss, average_loss)

    def forward(self, inputs, data_samples: Optional[dict] = None, mode: str = "tensor"):
        if mode == "loss":
            lq, label = _stack(inputs), data_samples.get("label")
            return self.classsr_losses(lq, _stack(data_samples["gt"], lq),
                                       None if label is None else _stack(label, lq).long())
        if mode == "predict":
            outs, stats = self.classsr_restore(inputs)
            samples = data_samples or {}
            names = samples.get("name", [None] * len(outs))
            gts = samples.get("gt", [None] * len(outs))
            return [{"pred": o.clamp(0, 1).cpu(), "gt": None if g is None else g.cpu(), "name": n, **s}
                    for o, g, n, s in zip(outs, gts, names, stats)]
        if mode == "tensor":
            return self.generator(_stack(inputs)).out
        raise ValueError(f"mode: {mode!r} is not 'loss', 'predict' or 'tensor'")
