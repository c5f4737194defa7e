"""ClassSRHook: ClassSR's part of mmengine's Runner life cycle, at its documented points: the
plugin's checkpoint loader while the Runner runs, the previous phase's checkpoint checked and
its untrained classifier replaced as it loads, the phase summary and the class-collapse warning."""
from typing import List

import numpy as np
from mmengine.hooks import Hook
from mmengine.registry import HOOKS

from ..phases import collapse_fixes, collapse_warning
from .mm_checkpoint import use_plugin_loader


@HOOKS.register_module()
class ClassSRHook(Hook):
    """- before_run / after_run: the Runner's local checkpoints (load_from, resume) load through
      the plugin's loader (weights_only, integrity checks, mmengine's own state allowed), then
      mmengine's own loader is back;
    - before_save_checkpoint: the checkpoint records its phase;
    - after_load_checkpoint: with `reset_classifier`, a checkpoint of another phase (the previous
      one) loads with the classifier the model was built with: it never trained there. A resume
      (a checkpoint of this phase) keeps its classifier;
    - before_train: the classifier and joint phases need a checkpoint (load_from); the summary;
    - after_train_iter: warns when one class takes more than the model's `collapse_share` of
      the sub-images over `interval` iterations (classifier and joint phases), naming the loss
      weight that counters it."""
    priority = "LOW"

    def __init__(self, interval: int = 50):
        self.interval = interval
        self._shares: List[np.ndarray] = []
        self._loaded = False

    @staticmethod
    def _model(runner):
        m = runner.model
        return m.module if hasattr(m, "module") else m

    def before_run(self, runner) -> None:
        use_plugin_loader(True)

    def after_run(self, runner) -> None:
        use_plugin_loader(False)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        checkpoint.setdefault("meta", {})["classsr_phase"] = self._model(runner).phase

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        self._loaded = True
        model = self._model(runner)
        if not model.settings.reset_classifier or checkpoint.get("meta", {}).get("classsr_phase") == model.phase:
            return
        model.settings.after_load(model.generator, runner.logger.info)
        state = checkpoint["state_dict"]
        for k, v in model.generator.classifier.state_dict().items():
            state[f"generator.classifier.{k}"] = v.clone()

    def before_train(self, runner) -> None:
        model = self._model(runner)
        if model.phase in ("classifier", "joint") and not self._loaded:
            model.settings.check_widest_source(False, "load_from")
        gen = model.generator
        trainable = sum(p.numel() for p in gen.parameters() if p.requires_grad)
        frozen = sum(p.numel() for p in gen.parameters() if not p.requires_grad)
        runner.logger.info(f"ClassSR phase '{model.phase}': {gen.width_key}={gen.widths}, "
                           f"{trainable} trainable parameters, {frozen} frozen "
                           f"(branches {list(gen.frozen_branches)})")

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        model = self._model(runner)
        if model.phase == "branches" or model.settings.supervised or not outputs:
            return
        m = model.generator.num_classes
        if f"share_{m - 1}" in outputs:
            self._shares.append(np.array([float(outputs[f"share_{k}"]) for k in range(m)]))
        if self.every_n_train_iters(runner, self.interval) and self._shares:
            mean, self._shares = np.mean(self._shares, 0), []
            fixes = collapse_fixes("model.average_loss.loss_weight", getattr(model.average_loss, "loss_weight", None),
                                   "model.pixel_loss.loss_weight", getattr(model.pixel_loss, "loss_weight", None))
            msg = collapse_warning(mean.tolist(), model.settings.collapse_share,
                                   f"at iter {runner.iter + 1}, over the last {self.interval} iterations", fixes)
            if msg:
                runner.logger.warning(msg)
