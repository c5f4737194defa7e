"""ClassSRHook: the phase summary and the class-collapse warning in mmengine's Runner."""
from typing import List

import numpy as np
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..phases import collapse_fixes, collapse_warning


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
        if not runner._resume:  # load_from is in by now: a fresh classifier if asked for
            model.settings.after_load(model.generator, runner.logger.info)
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
