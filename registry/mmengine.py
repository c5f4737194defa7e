"""mmengine adapter: ClassSR trained and validated by mmengine's Runner, with or without MMagic.

In a config: ``custom_imports = dict(imports=['classsr_plugin.registry.mmengine'],
allow_failed_imports=False)``. Registered in mmengine's root registries (MMagic's registries fall
back to these, so they resolve under ``default_scope='mmagic'`` too):

- MODELS:   ClassSR (the generator), ClassLoss, AverageLoss, WeightedL1Loss, ClassSREngineModel
- DATASETS: ClassSRSubImages (the output of ``classsr prepare``), ClassSRPairs (whole LR/HR pairs)
- METRICS:  ClassSRMetric (class shares and FLOPs %; PSNR/SSIM through basicsr when the model
            returns images, as ClassSREngineModel does)
- HOOKS:    ClassSRHook (the Runner's checkpoint loads, reset_classifier, phase summary at start,
            class-collapse warning)

One config per phase, as with BasicSR: the phase is a model argument, so parameters are frozen
when the model is built, before the Runner wraps it in DDP (set
``model_wrapper_cfg=dict(type='MMDistributedDataParallel', find_unused_parameters=True)`` for the
branches phase: a batch need not hold every class).

Checkpoints: while a Runner with ClassSRHook runs, its local files (load_from, resume) load with
weights_only=True explicit and the plugin's integrity checks, allowing mmengine's HistoryBuffer
and the numpy types its state holds during those loads only; mmengine's own loader is back
after the run, and importing this module changes nothing of mmengine's.

The parts follow MMagic's own layout: mm_models, mm_datasets, mm_evaluation, mm_hooks,
mm_checkpoint (checkpoint safety) and mm_train (`classsr mmtrain`); importing this module
registers them all.
"""
from .mm_checkpoint import _history_getattr, load_local_checkpoint, use_plugin_loader  # noqa: F401
from .mm_datasets import ClassSRPairs, ClassSRSubImages  # noqa: F401
from .mm_evaluation import ClassSRMetric  # noqa: F401
from .mm_hooks import ClassSRHook  # noqa: F401
from .mm_models import ClassSREngineModel, ClassSRTraining, WeightedL1Loss  # noqa: F401
