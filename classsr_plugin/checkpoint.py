"""Every checkpoint the plugin reads is read here: with weights_only=True, whatever torch's
default or the environment says, and a bad file is one error naming it.

Kinds (`state_dict` finds the weights in each):
- plain state dicts, with or without DDP's 'module.' prefix;
- BasicSR's net_g files: {'params': ..., 'params_ema': ...} (`key` picks, e.g. param_key_g);
- mmengine / MMagic Runner checkpoints: {'state_dict': ...}, an editor's under 'generator.'
  (their message_hub needs the mmengine adapter's allowlist: `safe_globals`);
- the plugin's self-describing files (ClassSR.save, `classsr export`): a build config with the
  weights, which `load_model` turns back into a network.
"""
from typing import Optional, Sequence

import torch

from .checks import load_weights

WEIGHT_KEYS = ("params", "params_ema", "state_dict")


def read(path: str, map_location="cpu", safe_globals: Sequence = ()) -> dict:
    """The file's contents; `safe_globals` are allowed for this load only."""
    if safe_globals:
        with torch.serialization.safe_globals(list(safe_globals)):
            return load_weights(path, map_location=map_location)
    return load_weights(path, map_location=map_location)


def state_dict(ckpt: dict, key: Optional[str] = None, prefix: Optional[str] = None, where: str = "") -> dict:
    """The weights in a checkpoint of any kind above. key: the entry to take (BasicSR's
    param_key), else the first of params / params_ema / state_dict present; prefix: keep only
    the keys under it, stripped (default: 'generator.' when an editor's keys are there)."""
    if not isinstance(ckpt, dict):
        raise ValueError(f"{where}: not a checkpoint of weights (a {type(ckpt).__name__})")
    if key is not None and any(k in ckpt for k in WEIGHT_KEYS):
        if key not in ckpt:
            # BasicSR falls back from params_ema to params; so do we, saying nothing new
            if key == "params_ema" and "params" in ckpt:
                key = "params"
            else:
                raise KeyError(f"{where}: no {key!r} in the checkpoint (keys: {list(ckpt)[:10]})")
        ckpt = ckpt[key]
    elif key is None:
        ckpt = next((ckpt[k] for k in WEIGHT_KEYS if isinstance(ckpt.get(k), dict)), ckpt)
    if prefix is None and any(k.startswith("generator.") for k in ckpt):
        prefix = "generator."
    if prefix:
        ckpt = {k[len(prefix):]: v for k, v in ckpt.items() if k.startswith(prefix)}
    return {k[7:] if k.startswith("module.") else k: v for k, v in ckpt.items()}


def load_model(path: str) -> torch.nn.Module:
    """A self-describing file (ClassSR.save, `classsr export`) -> the network, in eval mode."""
    from .imports import missing_hint
    ckpt = read(path)
    hint = missing_hint(ckpt.get("imports")) if isinstance(ckpt, dict) else ""
    if isinstance(ckpt, dict) and "classsr" in ckpt:
        from .wrapper import ClassSR
        try:
            model = ClassSR(**ckpt["classsr"])
        except (KeyError, ValueError) as err:
            raise type(err)(f"{path}: {err.args[0] if err.args else err}{hint}") from err
    elif isinstance(ckpt, dict) and "network_g" in ckpt:
        from .archs import resolve_arch
        cfg = dict(ckpt["network_g"])
        try:
            arch = resolve_arch(cfg.pop("type"), "network_g.type")
        except KeyError as err:
            raise KeyError(f"{path}: {err.args[0]}{hint}") from err
        model = arch(**cfg)
    else:
        raise KeyError(f"{path}: neither a ClassSR checkpoint nor a `classsr export` file "
                       f"(BasicSR's net_g files need their options: -opt options.yml)")
    model.load_state_dict(ckpt["params"])
    return model.eval()


def build(network_g: dict, where: str = "network_g") -> torch.nn.Module:
    """A network from its config: ClassSR, or any arch the plugin or a registered toolkit knows."""
    from .archs import resolve_arch
    from .checks import check_network
    from .wrapper import ClassSR
    check_network(network_g, where)
    cfg = dict(network_g)
    kind = cfg.pop("type")
    return ClassSR(**cfg) if kind == "ClassSR" else resolve_arch(kind, f"{where}.type")(**cfg)


def from_options(opt: dict, path: str, weights: Optional[str] = None, need_weights: bool = False):
    """BasicSR options (network_g; weights: `weights` or path.pretrain_network_g, picked by
    path.param_key_g) -> (network, weights file or None when there are none)."""
    if not isinstance(opt.get("network_g"), dict):
        raise KeyError(f"{path}: network_g: missing")
    net = build(opt["network_g"])
    paths = opt.get("path") or {}
    key = "-w" if weights else "path.pretrain_network_g"
    weights = weights or paths.get("pretrain_network_g")
    if not weights:
        if need_weights:
            raise KeyError(f"{path}: path.pretrain_network_g: no weights (or give -w)")
        return net, None
    import os
    if not os.path.exists(str(weights)):
        raise FileNotFoundError(f"{path}: {key}: {weights} does not exist")
    net.load_state_dict(state_dict(read(weights), key=paths.get("param_key_g", "params"), where=weights))
    return net, weights


def save_model(net: torch.nn.Module, path: str, network_g: Optional[dict] = None) -> None:
    """A self-describing file, written atomically: ClassSR.save, or a plain network's config
    (network_g), weights and the modules its arch comes from."""
    from .atomic import save_torch
    from .imports import modules_of
    from .wrapper import ClassSR
    if isinstance(net, ClassSR):
        net.save(path)
    else:
        save_torch({"network_g": network_g, "params": net.state_dict(), "imports": modules_of(net)}, path)
