"""mmengine adapter: ClassSR trained and validated by mmengine's Runner, with or without MMagic.

In a config: ``custom_imports = dict(imports=['classsr_plugin.registry.mmengine'],
allow_failed_imports=False)``. Registered in mmengine's root registries (MMagic's registries fall
back to these, so they resolve under ``default_scope='mmagic'`` too):

- MODELS:   ClassSR (the generator), ClassLoss, AverageLoss, WeightedL1Loss, ClassSRModel
- DATASETS: ClassSRSubImages (the output of ``classsr prepare``), ClassSRPairs (whole LR/HR pairs)
- METRICS:  ClassSRMetric (class shares and FLOPs %; PSNR/SSIM through basicsr when the model
            returns images, as ClassSRModel does)
- HOOKS:    ClassSRHook (phase summary at start, class-collapse warning)

One config per phase, as with BasicSR: the phase is a model argument, so parameters are frozen
when the model is built, before the Runner wraps it in DDP (set
``model_wrapper_cfg=dict(type='MMDistributedDataParallel', find_unused_parameters=True)`` for the
branches phase: a batch need not hold every class).

Checkpoints: importing this module makes mmengine load local files (load_from, resume) with
weights_only=True explicit, allowing mmengine's HistoryBuffer and the numpy types its state
holds during those loads only; torch's process-wide safe-globals list is left as it is.
"""
import codecs
import os
import pickle
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.dataset import BaseDataset
from mmengine.evaluator import BaseMetric
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer, MMLogger
from mmengine.model import BaseModel
from mmengine.registry import DATASETS, HOOKS, METRICS, MODELS
from mmengine.runner.checkpoint import CheckpointLoader

from .. import checkpoint
from ..compat import alias_torchvision_for_basicsr
from ..data.prepare import META, find_lr, read_meta
from ..imageio import list_images, read_rgb
from ..losses import AverageLoss, ClassLoss
from ..phases import PhaseSettings, collapse_fixes, collapse_warning
from ..wrapper import ClassSR


def _history_getattr(obj, name):
    """Stands in for `getattr` while unpickling: HistoryBuffer's state holds its statistics
    methods, pickled as getattr(HistoryBuffer, 'mean'). Only those are given out."""
    if obj is HistoryBuffer and not name.startswith("_") and callable(getattr(HistoryBuffer, name, None)):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(f"getattr({obj!r}, {name!r}) is not allowed in a checkpoint")


def _mmengine_globals() -> list:
    """mmengine checkpoints pickle HistoryBuffer objects (numpy arrays and statistics methods
    inside) in message_hub; torch's weights_only loader must be told these are safe."""
    safe = [HistoryBuffer, np.ndarray, np.dtype, np.core.multiarray._reconstruct,
            np.core.multiarray.scalar, codecs.encode, (_history_getattr, "builtins.getattr")]
    return safe + [type(np.dtype(t)) for t in (np.float64, np.float32, np.int64, np.int32, np.bool_)]


def load_local_checkpoint(filename, map_location=None):
    """mmengine's loader for local files, with weights_only=True explicit and the allowlist in
    force for this load only."""
    filename = os.path.expanduser(filename)
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"{filename} can not be found.")
    return checkpoint.read(filename, map_location=map_location, safe_globals=_mmengine_globals())


CheckpointLoader.register_scheme(prefixes="", loader=load_local_checkpoint, force=True)


def load_classsr(config: str, weights: str) -> ClassSR:
    """An mmengine / MMagic config (model.generator of type ClassSR) and a checkpoint of its
    Runner (weights_only; the generator's weights, 'generator.'-prefixed) -> the ClassSR model."""
    from mmengine.config import Config

    from ..checks import check_config
    if not weights:
        raise KeyError(f"{config}: an mmengine config needs its checkpoint: -w work_dirs/.../iter_N.pth")
    check_config(config)
    cfg = Config.fromfile(config)
    gen = cfg.get("model", {}).get("generator")
    if not gen or gen.get("type") != "ClassSR":
        raise KeyError(f"{config}: model.generator: expected type='ClassSR', got {gen and gen.get('type')!r}")
    if cfg.get("default_scope") == "mmagic":  # base.type resolves through MMagic's registry
        import classsr_plugin.registry.mmagic  # noqa: F401
    model = ClassSR(**{k: v for k, v in gen.to_dict().items() if k != "type"})
    model.load_state_dict(checkpoint.state_dict(load_local_checkpoint(weights), where=weights))
    return model


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
    """The ClassSR part of an mmengine model (ClassSRModel here, the MMagic editor in
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
        terms, idx, _ = self.settings.terms(self.generator, lq, gt, label, self.pixel_loss, self.class_loss,
                                            self.average_loss)
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
            r = self.generator.restore_image(img, tile=self.settings.val_tile, stride=self.settings.val_stride)
            outs.append(r.image)
            stats.append({"classsr_counts": r.counts, "classsr_flops": r.flops_percent})
        return outs, stats


def _stack(x, like: Optional[torch.Tensor] = None):
    """A batch from mmengine's collate (stacked, or a list of tensors or numbers) -> one tensor."""
    if isinstance(x, (list, tuple)):
        x = torch.stack(list(x)) if torch.is_tensor(x[0]) else torch.as_tensor(x)
    return x if like is None else x.to(like.device)


@MODELS.register_module()
class ClassSRModel(ClassSRTraining, BaseModel):
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


@DATASETS.register_module()
class ClassSRSubImages(BaseDataset):
    """The sub-image pairs of `classsr prepare` (lq/, gt/, meta_info.txt) with their class.

    Without a pipeline, items are ready for ClassSRModel: inputs = LR, data_samples = {gt,
    label}, RGB in [0, 1], with random flips and 90-degree turns when `augment`. With a pipeline
    (MMagic: LoadImageFromFile for `img` and `gt`, then PackInputs), items carry `img_path`,
    `gt_path` and `classsr_label`."""

    def __init__(self, data_root: str, classes: Optional[Sequence[int]] = None, augment: bool = True,
                 pipeline: Sequence = (), **kwargs):
        self.classes, self.augment = classes, augment
        super().__init__(data_root=data_root, pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> List[dict]:
        meta = os.path.join(self.data_root, META)
        if not os.path.exists(meta):
            raise FileNotFoundError(f"data_root: {meta} does not exist (make it with "
                                    f"`classsr prepare --out {self.data_root}`)")
        items = [it for it in read_meta(meta) if self.classes is None or it[2] in self.classes]
        if not items:
            raise ValueError(f"{meta}: no sub-images" + (f" of classes {self.classes}" if self.classes else ""))
        return [{"img_path": os.path.join(self.data_root, "lq", n + ".png"),
                 "gt_path": os.path.join(self.data_root, "gt", n + ".png"),
                 "classsr_label": c, "key": n} for n, _, c in items]

    def prepare_data(self, idx):
        info = self.get_data_info(idx)
        if self.pipeline.transforms:
            return self.pipeline(info)
        lq, gt = (torch.from_numpy(read_rgb(info[k])).permute(2, 0, 1) for k in ("img_path", "gt_path"))
        s = max(1, gt.shape[1] // lq.shape[1])
        if gt.shape[1:] != (lq.shape[1] * s, lq.shape[2] * s):
            raise ValueError(f"{info['gt_path']}: {tuple(gt.shape[1:])} is not a multiple of its LR "
                             f"{tuple(lq.shape[1:])} ({info['img_path']})")
        if self.augment:
            if torch.rand(()) < 0.5:
                lq, gt = lq.flip(-1), gt.flip(-1)
            k = int(torch.randint(4, ()))
            lq, gt = lq.rot90(k, (1, 2)), gt.rot90(k, (1, 2))
        return {"inputs": lq.contiguous(), "data_samples": {"gt": gt.contiguous(), "label": info["classsr_label"]}}


@DATASETS.register_module()
class ClassSRPairs(BaseDataset):
    """Whole LR/HR image pairs for validation (the output of `classsr prepare --whole`: hr/, lr/
    with matching names): inputs = LR, data_samples = {gt, name}, RGB in [0, 1]."""

    def __init__(self, data_root: str, hr: str = "hr", lr: str = "lr", **kwargs):
        self.hr_dir, self.lr_dir = hr, lr
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        hr_dir = os.path.join(self.data_root, self.hr_dir)
        paths = list_images(hr_dir)
        if not paths:
            raise FileNotFoundError(f"data_root: no images in {hr_dir}")
        lr_dir = os.path.join(self.data_root, self.lr_dir)
        return [{"gt_path": p, "img_path": find_lr(lr_dir, os.path.splitext(os.path.basename(p))[0]),
                 "name": os.path.basename(p)} for p in paths]

    def prepare_data(self, idx):
        info = self.get_data_info(idx)
        lq, gt = (torch.from_numpy(read_rgb(info[k])).permute(2, 0, 1) for k in ("img_path", "gt_path"))
        return {"inputs": lq, "data_samples": {"gt": gt, "name": info["name"]}}


@METRICS.register_module()
class ClassSRMetric(BaseMetric):
    """Class shares and FLOPs % of the base network over the validation set; PSNR / SSIM (RGB
    and Y, through basicsr, `crop_border` px cropped) when samples carry `pred` and `gt` in
    [0, 1] (ClassSRModel; under MMagic use its PSNR/SSIM metrics beside this one)."""
    default_prefix = "classsr"

    def __init__(self, crop_border: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.crop_border = crop_border

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        alias_torchvision_for_basicsr()
        from basicsr.metrics import calculate_psnr, calculate_ssim
        from basicsr.utils import tensor2img
        for s in data_samples:
            s = s if "classsr_counts" in s else s.get("output", {})  # MMagic: in the prediction
            if "classsr_counts" not in s:
                raise KeyError("classsr_counts: ClassSRMetric needs a ClassSR model's predictions")
            r = {"counts": list(s["classsr_counts"]), "flops": float(s["classsr_flops"])}
            if s.get("pred") is not None and s.get("gt") is not None:
                sr, gt = tensor2img(s["pred"]), tensor2img(s["gt"])
                c = self.crop_border
                r.update(psnr=calculate_psnr(sr, gt, c), psnr_y=calculate_psnr(sr, gt, c, test_y_channel=True),
                         ssim=calculate_ssim(sr, gt, c), ssim_y=calculate_ssim(sr, gt, c, test_y_channel=True))
            self.results.append(r)

    def compute_metrics(self, results: list) -> dict:
        counts = np.sum([r["counts"] for r in results], 0)
        tiles = [sum(r["counts"]) for r in results]
        out = {"flops_percent": float(np.average([r["flops"] for r in results], weights=tiles))}
        out.update({f"share_{k}": float(c / counts.sum()) for k, c in enumerate(counts)})
        for key in ("psnr", "psnr_y", "ssim", "ssim_y"):
            if all(key in r for r in results):
                out[key] = float(np.mean([r[key] for r in results]))
        return out


@HOOKS.register_module()
class ClassSRHook(Hook):
    """Logs the phase and what it trains at the start; warns when one class takes more than
    `collapse_share` of the sub-images over `interval` iterations (classifier and joint phases),
    naming the loss weight that counters it."""
    priority = "LOW"

    def __init__(self, interval: int = 50, collapse_share: float = 0.9):
        self.interval, self.collapse_share = interval, collapse_share
        self._shares: List[np.ndarray] = []

    @staticmethod
    def _model(runner):
        m = runner.model
        return m.module if hasattr(m, "module") else m

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if model.phase in ("classifier", "joint") and not (runner._load_from or runner._resume):
            model.settings.check_widest_source(False, "load_from")
        gen = model.generator
        trainable = sum(p.numel() for p in gen.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in gen.parameters() if not p.requires_grad)
        runner.logger.info(f"ClassSR phase '{model.phase}': {gen.width_key}={gen.widths}, "
                           f"{trainable} trainable parameters, {frozen} frozen "
                           f"(branches {list(gen.frozen_branches)})")

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self._model(runner).phase == "branches" or self._model(runner).settings.supervised or not outputs:
            return
        m = self._model(runner).generator.num_classes
        if f"share_{m - 1}" in outputs:
            self._shares.append(np.array([float(outputs[f"share_{k}"]) for k in range(m)]))
        if self.every_n_train_iters(runner, self.interval) and self._shares:
            mean, self._shares = np.mean(self._shares, 0), []
            model = self._model(runner)
            fixes = collapse_fixes("model.average_loss.loss_weight", getattr(model.average_loss, "loss_weight", None),
                                   "model.pixel_loss.loss_weight", getattr(model.pixel_loss, "loss_weight", None))
            msg = collapse_warning(mean.tolist(), self.collapse_share,
                                   f"at iter {runner.iter + 1}, over the last {self.interval} iterations", fixes)
            if msg:
                runner.logger.warning(msg)
