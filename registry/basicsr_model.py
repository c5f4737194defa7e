"""ClassSRModel: BasicSR's SRModel with the ClassSR training phases and tiled validation.

Options, beside SRModel's (checked by classsr_plugin.phases.PhaseSettings):
  classsr:
    phase: branches | classifier | joint      (one run per phase; see README)
    router: paper | supervised                (classifier phase: the paper's losses, or cross-entropy
                                               to oracle classes from `classsr label --by oracle`)
    routing: soft | hard                      (paper losses: the p-weighted blend of all branches, or
                                               the argmax branch as at inference)
    init_base: path to a pretrained base network (the widest branch)
    init_narrow: scratch | slice | prune      (from scratch, sliced base weights, or pruned from them
                                               on prune_data, a folder of inputs: plain chains, DnCNN)
    freeze_widest: true                       (the widest branch stays the base network)
    distill: 0                                (branches phase: weight of L1 to the widest's output)
    val_tile: 32, val_stride: 28              (whole-image tiled validation)
    collapse_share: 0.9                       (warn when one class takes more than this)
  train:
    pixel_opt:   {type: L1Loss, loss_weight: 1000}
    class_opt:   {type: ClassLoss, loss_weight: 0.5}     (paper router: classifier and joint phases)
    average_opt: {type: AverageLoss, loss_weight: 3}
"""
from collections import OrderedDict

import torch
from basicsr.losses import build_loss
from basicsr.models.sr_model import SRModel
from basicsr.utils import get_root_logger
from basicsr.utils.registry import MODEL_REGISTRY
from torch.nn.parallel import DataParallel, DistributedDataParallel

from ..phases import DEFAULT_WEIGHTS, PhaseSettings, collapse_fixes, collapse_warning
from .basicsr_io import load_network, save_network, save_training_state


@MODEL_REGISTRY.register()
class ClassSRModel(SRModel):
    # weights_only loads and atomic saves (basicsr_io.py)
    load_network, save_network, save_training_state = load_network, save_network, save_training_state

    def __init__(self, opt):
        self.settings = PhaseSettings.from_options(opt.get("classsr"), "classsr.")
        self.phase = self.settings.phase
        self.settings.check_widest_source(bool((opt.get("path") or {}).get("pretrain_network_g")),
                                          "path.pretrain_network_g")
        self._window = None  # class counts since the last log
        super().__init__(opt)

    # Phase freezing happens here, before any DDP wrapping, so DDP sees only trainable params.
    def model_to_device(self, net):
        self.settings.apply(net, get_root_logger().info)
        net = net.to(self.device)
        if self.opt["dist"]:
            cuda = self.device.type == "cuda"
            net = DistributedDataParallel(
                net, device_ids=[torch.cuda.current_device()] if cuda else None,
                find_unused_parameters=self.opt.get("find_unused_parameters", self.settings.unused_parameters))
        elif self.opt["num_gpu"] > 1:
            net = DataParallel(net)
        return net

    def init_training_settings(self):
        train_opt = self.opt["train"]
        train_opt.setdefault("pixel_opt", {"type": "L1Loss", "loss_weight": DEFAULT_WEIGHTS["pixel"]})
        # path.pretrain_network_g is in by now; on a resume it is the run's own checkpoint, whose
        # classifier is the trained one, not the previous phase's
        if not (self.opt.get("path") or {}).get("resume_state"):
            self.settings.after_load(self.bare, get_root_logger().info)
        super().init_training_settings()
        self.cri_class = self.cri_average = None
        if self.phase != "branches" and not self.settings.supervised:
            self.cri_class = build_loss(train_opt.get(
                "class_opt", {"type": "ClassLoss", "loss_weight": DEFAULT_WEIGHTS["class"]})).to(self.device)
            self.cri_average = build_loss(train_opt.get(
                "average_opt", {"type": "AverageLoss", "loss_weight": DEFAULT_WEIGHTS["average"]})).to(self.device)

    def setup_optimizers(self):
        # SRModel's, minus a warning line per frozen parameter: the phase freezes them on purpose
        train_opt = self.opt["train"]
        params = [p for p in self.net_g.parameters() if p.requires_grad]
        optim = dict(train_opt["optim_g"])
        self.optimizer_g = self.get_optimizer(optim.pop("type"), params, **optim)
        self.optimizers.append(self.optimizer_g)

    def feed_data(self, data):
        super().feed_data(data)
        self.label = data["label"].to(self.device) if "label" in data else None

    def optimize_parameters(self, current_iter):
        self.optimizer_g.zero_grad()
        losses, idx, out = self.settings.forward_losses(self.net_g, self.lq, self.gt, self.label, self.cri_pix,
                                                        self.cri_class, self.cri_average)
        if out is not None:
            self.output = out
        sum(losses.values()).backward()
        self.optimizer_g.step()
        log = OrderedDict(losses)
        counts = torch.bincount(idx, minlength=self.bare.num_classes).float()
        for k, share in enumerate((counts / counts.sum()).tolist()):
            log[f"share_{k}"] = torch.tensor(share, device=self.device)
        self.log_dict = self.reduce_loss_dict(log)
        self._window = counts if self._window is None else self._window + counts
        if current_iter % self.opt["logger"].get("print_freq", 100) == 0:
            self._check_collapse(current_iter)
        if self.ema_decay > 0:
            self.model_ema(decay=self.ema_decay)

    @property
    def bare(self):
        return self.get_bare_model(self.net_g)

    def _check_collapse(self, current_iter):
        counts, self._window = self._window, None
        if self.phase == "branches" or self.settings.supervised or counts is None:
            return
        fixes = collapse_fixes("train.average_opt.loss_weight", getattr(self.cri_average, "loss_weight", None),
                               "train.pixel_opt.loss_weight", getattr(self.cri_pix, "loss_weight", None))
        msg = collapse_warning((counts / counts.sum()).tolist(), self.settings.collapse_share,
                               f"at iter {current_iter}, since the last log", fixes)
        if msg:
            get_root_logger().warning(msg)

    # -- validation: whole images, tiled, with class distribution and FLOPs -------------------
    def test(self):
        net = self.get_bare_model(self.net_g_ema if hasattr(self, "net_g_ema") else self.net_g)
        outs = []
        for img in self.lq:
            res = net.restore_image(img, self.settings.validation)
            outs.append(res.image)
            self._val_counts = [a + b for a, b in zip(self._val_counts, res.counts)]
        self.output = torch.stack(outs)

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        net = self.bare
        self._val_counts = [0] * net.num_classes
        super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        counts = self._val_counts
        total = max(sum(counts), 1)
        pct = net.tile_cost(self.settings.val_tile).percent(counts)
        name = dataloader.dataset.opt["name"]
        shares = ", ".join(f"{100 * c / total:.1f}%" for c in counts)
        get_root_logger().info(f"Validation {name}: classes (narrow..wide) {counts} = [{shares}], "
                               f"FLOPs {pct:.1f}% of the base network")
        self.val_summary = {"counts": counts, "flops_percent": pct, **getattr(self, "metric_results", {})}
        if tb_logger:
            tb_logger.add_scalar(f"metrics/{name}/flops_percent", pct, current_iter)
            for k, c in enumerate(counts):
                tb_logger.add_scalar(f"metrics/{name}/class_{k}_share", c / total, current_iter)
