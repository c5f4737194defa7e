"""MMagic adapter: ClassSR around any MMagic generator, trained by MMagic's (mmengine's) Runner.

In a config: ``custom_imports = dict(imports=['classsr_plugin.registry.mmagic'],
allow_failed_imports=False)``. Registers in MMagic's registries:

- MODELS:   ClassSR (``type='ClassSR', base=dict(type='MSRResNet', ...)``: the same options as in
            BasicSR; `base.type` resolves through MMagic's MODELS), ClassLoss, AverageLoss and
            ClassSREditModel (BaseEditModel's modes tensor / predict / loss, MMagic's
            DataPreprocessor, one phase per config)
- DATASETS: ClassSRSubImages (`classsr prepare` output; use MMagic's loading pipeline with
            ``PackInputs(meta_keys=['classsr_label'])``)
- METRICS:  ClassSRMetric (class shares and FLOPs %, beside MMagic's PSNR / SSIM)
- HOOKS:    ClassSRHook (checkpoint loads, reset_classifier, phase summary, class-collapse warning)

Everything ClassSR-specific lives in the core and in registry/mmengine.py; this file only
connects MMagic's data samples and registries to it.
"""
from typing import List, Optional

import torch
from mmagic.models.base_models import BaseEditModel
from mmagic.registry import METRICS, MODELS
from mmagic.structures import DataSample

from ..archs import add_arch_lookup
from .mmengine import ClassSRMetric as EngineClassSRMetric
from .mmengine import ClassSRTraining


def _lookup(name):
    # mmagic imports all its model modules on the first lookup, video editors with mmcv's
    # compiled ops among them
    try:
        return MODELS.get(name)
    except ModuleNotFoundError as err:
        if "mmcv._ext" in str(err):
            raise ImportError(f"base.type={name!r}: MMagic's model zoo imports mmcv's compiled ops "
                              "(mmcv._ext), which this mmcv lacks (mmcv-lite); `make mmagic-env` or "
                              "scripts/build_mmcv.sh installs mmcv with its ops built for your torch") from err
        raise


add_arch_lookup(_lookup)
# ClassSR, the losses, the dataset and the hook are registered once, in mmengine's root
# registries (registry/mmengine.py); MMagic's registries are its children and find them there.


@METRICS.register_module()
class ClassSRMetric(EngineClassSRMetric):
    """ClassSRMetric for MMagic's Evaluator (MultiValLoop): it asks each metric for a sampler
    and evaluates without a dataset size."""
    SAMPLER_MODE = "normal"
    sample_model = "orig"

    def prepare(self, module, dataloader) -> None:
        self.size = len(dataloader.dataset)

    def get_metric_sampler(self, model, dataloader, metrics):
        return dataloader

    def evaluate(self, size: Optional[int] = None) -> dict:
        return super().evaluate(self.size if size is None else size)


@MODELS.register_module()
class ClassSREditModel(ClassSRTraining, BaseEditModel):
    """BaseEditModel with a ClassSR generator, trained one phase per config.

    phase: 'branches' (each sub-image through its class's branch; needs `classsr_label` in the
    data samples' metainfo), 'classifier' or 'joint' (pixel + class + average losses).
    init_base: a pretrained base generator checkpoint (an MMagic editor's, or plain weights) for
    the widest branch; init_narrow: 'scratch', 'slice' or 'prune' (with prune_data); routing: 'soft' or 'hard' (see
    ClassSREngineModel). Validation and test run each whole
    image through ClassSR tiled (val_tile / val_stride) and record its class counts and FLOPs %
    for ClassSRMetric."""

    def __init__(self, generator: dict, pixel_loss: dict,
                 class_loss: dict = dict(type="ClassLoss", loss_weight=0.5),
                 average_loss: dict = dict(type="AverageLoss", loss_weight=3.0),
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None, **settings):
        super().__init__(generator=generator, pixel_loss=pixel_loss, train_cfg=train_cfg,
                         test_cfg=test_cfg, init_cfg=init_cfg, data_preprocessor=data_preprocessor)
        self._setup_classsr(settings, class_loss, average_loss)

    def forward_tensor(self, inputs, data_samples=None, **kwargs):
        return self.generator(inputs).out

    def forward_train(self, inputs, data_samples: Optional[DataSample] = None, **kwargs):
        labels: Optional[List[int]] = data_samples.metainfo.get("classsr_label")
        label = None if labels is None else torch.as_tensor(labels, device=inputs.device).long()
        return self.classsr_losses(inputs, data_samples.gt_img, label)

    def forward_inference(self, inputs, data_samples: Optional[DataSample] = None, **kwargs):
        outs, stats = self.classsr_restore(inputs)
        sizes = {tuple(o.shape) for o in outs}
        if len(sizes) > 1:
            raise ValueError(f"val_dataloader.batch_size: images of sizes {sorted(sizes)} in one batch; "
                             f"use batch_size=1 for whole-image validation")
        pred = DataSample(pred_img=self.data_preprocessor.destruct(torch.stack(outs), data_samples).cpu())
        pred.set_metainfo({k: [s[k] for s in stats] for k in stats[0]})
        return pred
