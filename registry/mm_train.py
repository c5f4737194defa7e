"""`classsr mmtrain`: mmengine's Runner on a config (MMagic's or the mmengine-only one), with
MMagic's tools/train.py flags, and what the plugin adds: YAML configs read safely, MMagic's
missing compiled ops said at once, and DDP on CPU (gloo)."""
import importlib.util
import os
import sys

import torch

from ..options import check_config
from ..phases import PhaseSettings


def check_mmagic_ops(cfg, path) -> None:
    """An MMagic config needs mmagic, and mmcv with its compiled ops (MMagic's model zoo imports
    them, for its video and detection editors, as soon as any of its models is built). Where
    either is missing (the BasicSR environment, mmcv-lite) say so at once in one line, with the
    way out, instead of mmengine's hint about PYTHONPATH after a traceback."""
    if cfg.get("default_scope") != "mmagic":
        return
    fix = ("run `make mmagic-env` and use .venv-mmagic/bin/classsr (README, 'Train (MMagic / mmengine)'), "
           "or train with the mmengine-only configs, which need no MMagic: "
           "classsr mmtrain configs/mmengine/classsr_fsrcnn_x4_1_branches.py")
    if importlib.util.find_spec("mmagic") is None:
        raise ValueError(f"{path}: MMagic configs need mmagic, which is not installed in this environment "
                         f"({sys.prefix}); {fix}")
    try:
        found = importlib.util.find_spec("mmcv._ext") is not None
    except ImportError:  # no mmcv at all
        found = False
    if not found:
        raise ValueError(f"{path}: MMagic configs need mmcv's compiled ops (mmcv._ext), and this environment "
                         f"({sys.prefix}) has no mmcv with them (mmcv-lite, or none); {fix} "
                         f"(scripts/build_mmcv.sh builds mmcv with its ops for your torch)")


def train(config: str, cfg_options=None, launcher: str = "none", work_dir=None, resume: bool = False) -> None:
    from mmengine.config import Config
    from mmengine.runner import Runner
    check_config(config)  # YAML: refused with python tags, before mmengine's loader sees it
    # the config's custom_imports after the ops check: importing MMagic without them fails
    cfg = Config.fromfile(config, import_custom_modules=False)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    check_mmagic_ops(cfg, config)
    if cfg.get("custom_imports"):
        from mmengine.utils import import_modules_from_strings
        import_modules_from_strings(**cfg.custom_imports)
    cfg.launcher = launcher
    if work_dir:
        cfg.work_dir = work_dir
    cfg.setdefault("work_dir", os.path.join("work_dirs", os.path.splitext(os.path.basename(config))[0]))
    if resume:
        cfg.resume = True
    wrapper = {"type": "MMDistributedDataParallel", **(cfg.get("model_wrapper_cfg") or {})}
    if cfg.get("model", {}).get("phase"):  # DDP must expect parameters without gradients where a phase has them
        wrapper.setdefault("find_unused_parameters", PhaseSettings(phase=cfg.model.phase).unused_parameters)
    if launcher != "none" and not torch.cuda.is_available():
        # CPU processes: mmengine's init_dist and DDP wrapping assume one CUDA device per
        # process; start gloo here (the Runner then skips init_dist) and wrap without devices
        import torch.distributed as dist
        dist.init_process_group("gloo")
        wrapper["device_ids"] = None
    cfg.model_wrapper_cfg = wrapper
    Runner.from_cfg(cfg).train()
