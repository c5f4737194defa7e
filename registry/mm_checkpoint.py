"""mmengine checkpoints under weights_only: the allowlist mmengine's own state needs
(HistoryBuffer, numpy), in force during the plugin's loads only; the plugin's loader for a
Runner's local files (load_from, resume) while ClassSRHook's Runner runs; and checkpoint.load's
kind for .py configs (a ClassSR model from a config and its Runner's checkpoint)."""
import codecs
import os
import pickle

import numpy as np
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader, load_from_local

from .. import checkpoint
from ..options import check_config


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


def use_plugin_loader(on: bool) -> None:
    """mmengine's loader for local files: the plugin's (on), or mmengine's own again. ClassSRHook
    turns it on for its Runner's run only; importing the adapter changes nothing."""
    CheckpointLoader.register_scheme(prefixes="", loader=load_local_checkpoint if on else load_from_local, force=True)


def plan(config: str, weights: str, overrides: dict) -> checkpoint.Plan:
    """checkpoint.load's kind for an mmengine / MMagic config (model.generator of type ClassSR)
    with a checkpoint of its Runner (weights_only; the generator's 'generator.'-prefixed weights);
    overrides as --cfg-options."""
    from mmengine.config import Config
    if not weights:
        raise KeyError(f"{config}: an mmengine config needs its checkpoint: -w work_dirs/.../iter_N.pth")
    check_config(config)
    cfg = Config.fromfile(config)
    cfg.merge_from_dict(overrides)
    gen = cfg.get("model", {}).get("generator")
    if not gen or gen.get("type") != "ClassSR":
        raise KeyError(f"{config}: model.generator: expected type='ClassSR', got {gen and gen.get('type')!r}")
    if cfg.get("default_scope") == "mmagic":  # base.type resolves through MMagic's registry
        import classsr_plugin.registry.mmagic  # noqa: F401
    return checkpoint.Plan(gen.to_dict(), load_local_checkpoint(weights), None, config, weights)


checkpoint.add_kind(".py", plan)
