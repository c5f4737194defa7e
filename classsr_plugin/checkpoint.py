"""The one front door for models, and the one place a checkpoint is read.

`load(spec, weights=None, device="cpu")` -> a network in eval mode, from:
- BasicSR options (.yml / .yaml, or a dict with network_g): weights from `weights` or
  path.pretrain_network_g, the entry path.param_key_g;
- a network config (a dict with 'type') and a weights file of any kind below;
- the plugin's own files (ClassSR.save, `classsr export`): a build config with the weights;
- kinds an adapter adds (`add_kind`): the mmengine adapter's .py configs, a Runner's checkpoint
  as weights.

Weights come in any of these kinds (`state_dict` finds them): plain state dicts (DDP's
'module.' prefix dropped), BasicSR's {'params', 'params_ema'}, mmengine / MMagic Runner
checkpoints {'state_dict'} (an editor's under 'generator.'), and the plugin's files.

Nothing loads silently wrong: `read` is the plugin's only torch.load (weights_only=True,
whatever torch's default or the environment says); zip files have every record's CRC checked
first (torch's reader does not); every float tensor is finite; a tensor of another shape names
the file; a file's network config names an architecture only (options.check_from_file).
`save` writes the plugin's own file atomically.
"""
import copy
import os
import pickle
import zipfile
from typing import Callable, Dict, NamedTuple, Optional, Sequence

import torch

from .archs import resolve_arch
from .atomic import save_torch
from .checks import Refused, check_device, describe
from .classifier import architecture_only
from .imports import missing_hint, modules_of
from .options import check_from_file, override, read_options

WEIGHT_KEYS = ("params", "params_ema", "state_dict")


class Plan(NamedTuple):
    """What a spec asks for: a network config, its weights (a path, a checkpoint already read,
    or None: untrained) and the entry to take; `where` names the spec in messages, `used` the
    weights file, `hint` what to import when the arch is unknown."""
    network: dict
    weights: object = None
    key: Optional[str] = None
    where: str = "network_g"
    used: Optional[str] = None
    hint: str = ""


_KINDS: Dict[str, Callable[..., Plan]] = {}


def add_kind(suffix: str, plan: Callable[..., Plan]) -> None:
    """An adapter's kind of file: plan(path, weights, overrides) -> Plan."""
    _KINDS[suffix.lower()] = plan


# -- reading ------------------------------------------------------------------------------------
def _check_zip(path: str) -> None:
    """torch reads a zip's records without their CRCs: bytes changed inside a tensor load as
    other numbers. zipfile checks them (about what reading the file once more costs)."""
    if not zipfile.is_zipfile(path):
        return  # torch's legacy format (no CRCs to check), or no torch file: torch.load says
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except Exception as err:  # a damaged header: zipfile fails on names, sizes, offsets
        raise Refused(f"{path}: damaged zip ({describe(err)})")
    if bad:
        raise Refused(f"{path}: damaged: {bad} fails its CRC check (the file changed after it was written)")


def read(path, map_location="cpu", safe_globals: Sequence = ()):
    """A file's contents; `safe_globals` are allowed for this load only. Missing, empty,
    damaged, truncated or refused files are one Refused naming the file."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise Refused(f"{path}: no such file")
    _check_zip(path)
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        found = [ln.strip() for ln in str(err).splitlines() if "GLOBAL" in ln]
        if found:
            raise Refused(f"{path}: refused: {found[0]} (weights_only loading: a checkpoint holds tensors "
                          f"and plain data; nothing was run)")
        raise Refused(f"{path}: not a readable checkpoint (not a torch file)")
    except Exception as err:
        msg = "empty file" if os.path.getsize(path) == 0 else describe(err).split(". ")[0]
        raise Refused(f"{path}: not a readable checkpoint ({msg})")


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


def _is_path(source) -> bool:
    return isinstance(source, (str, os.PathLike))


def _name(source) -> Optional[str]:
    return os.fspath(source) if _is_path(source) else None


def finite(t: torch.Tensor) -> bool:
    """No NaN or Inf in a float tensor: one pass of min and max, through which NaN propagates
    (4x faster here than isfinite().all(), and no mask as large as the tensor)."""
    if not t.is_floating_point() or not t.numel():
        return True
    lo, hi = torch.aminmax(t.detach())
    return bool(torch.isfinite(lo) & torch.isfinite(hi))


def weights(source, key: Optional[str] = None, where: Optional[str] = None) -> dict:
    """The tensors of a checkpoint (a path, or one already read), every float tensor finite:
    a NaN or Inf weight would write black or white pixels wherever its branch runs."""
    where = where or _name(source) or "weights"
    state = state_dict(read(source) if _is_path(source) else source, key=key, where=where)
    for name, t in state.items():
        if torch.is_tensor(t) and not finite(t):
            raise Refused(f"{where}: {name} holds NaN or Inf values (a diverged run, or a damaged file)")
    return state


def _problem(err: Exception) -> str:
    """load_state_dict's error as one line: its first complaint."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    line = lines[1] if len(lines) > 1 and lines[0].startswith("Error(s) in loading") else lines[0]
    return line if len(line) <= 300 else line[:297] + "..."


def fill(net: torch.nn.Module, source, key: Optional[str] = None, strict: bool = True,
         where: Optional[str] = None) -> torch.nn.Module:
    """Weights from a checkpoint of any kind (a path, or one already read) into `net`; a tensor
    that does not fit is a ValueError naming the file."""
    where = where or _name(source) or "weights"
    state = weights(source, key, where)
    try:
        net.load_state_dict(state, strict=strict)
    except (RuntimeError, ValueError) as err:
        raise ValueError(f"{where}: {_problem(err)}") from err
    return net


# -- the front door -----------------------------------------------------------------------------
def _options(opt: dict, where: str, weights, need_weights: bool, overrides) -> Plan:
    override(opt, overrides)
    if not isinstance(opt.get("network_g"), dict):
        raise KeyError(f"{where}: network_g: missing")
    paths = opt.get("path") or {}
    src = weights or paths.get("pretrain_network_g")
    if not src and need_weights:
        raise KeyError(f"{where}: path.pretrain_network_g: no weights (or give -w)")
    if src and not os.path.exists(str(src)):
        raise FileNotFoundError(f"{where}: {'-w' if weights else 'path.pretrain_network_g'}: {src} does not exist")
    return Plan(opt["network_g"], src or None, paths.get("param_key_g", "params"), where, src or None)


def _own_file(path: str, weights) -> Plan:
    """ClassSR.save / `classsr export`: the build config and the weights in one file."""
    ckpt = read(path)
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("classsr", ckpt.get("network_g")), dict):
        raise KeyError(f"{path}: neither a ClassSR checkpoint nor a `classsr export` file "
                       f"(BasicSR's net_g files need their options: -opt options.yml)")
    cfg = dict(ckpt["classsr"], type="ClassSR") if "classsr" in ckpt else ckpt["network_g"]
    src = weights or path
    return Plan(cfg, weights or ckpt, None if weights else "params", path, src, missing_hint(ckpt.get("imports")))


def _plan(spec, weights, need_weights: bool, overrides) -> Plan:
    """Which kind of spec this is: the one place that chooses."""
    path = None if isinstance(spec, dict) else os.fspath(spec)
    if path is not None and not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    ext = os.path.splitext(path or "")[1].lower()
    if path is None and "network_g" in spec:
        return _options(copy.deepcopy(spec), "options", weights, need_weights, overrides)
    if ext in (".yml", ".yaml"):
        return _options(read_options(path), path, weights, need_weights, overrides)
    if ext in _KINDS:
        return _KINDS[ext](path, weights, overrides or {})
    if ext == ".py":
        raise KeyError(f"{path}: an mmengine config needs the mmengine adapter: import classsr_plugin.registry.mmengine")
    if overrides:
        raise KeyError(f"{path or 'network_g'}: --set is for options files and configs, not a checkpoint")
    if path is not None:
        return _own_file(path, weights)
    if need_weights and weights is None:
        raise KeyError(f"network_g: no weights for {spec.get('type')!r}")
    return Plan(spec, weights, None, "network_g", _name(weights))


def _build(plan: Plan) -> torch.nn.Module:
    """The network a file's config names, checked as a file's config is (architecture only)."""
    try:
        check_from_file(plan.network)
        cfg = dict(plan.network)
        return resolve_arch(cfg.pop("type"))(**cfg)
    except (KeyError, ValueError) as err:
        raise type(err)(f"{plan.where}: {err.args[0] if err.args else err}{plan.hint}") from err


def load(spec, weights=None, device: str = "cpu", *, need_weights: bool = False, expect: Optional[type] = None,
         overrides: Optional[dict] = None) -> torch.nn.Module:
    """A network from files (see the module's doc), in eval mode on `device`.

    weights: a weights file of any kind, instead of the one the spec names; need_weights: refuse
    a spec without weights (else the network is untrained); expect: the class it must be (e.g.
    ClassSR); overrides: dotted keys set in options or configs first (`classsr export --set`).
    The network records `weights_file` (None: untrained) and a plain one its `network_g`."""
    check_device(device)
    plan = _plan(spec, weights, need_weights, overrides)
    net = _build(plan)
    if expect is not None and not isinstance(net, expect):
        raise KeyError(f"{plan.where}: holds a plain {type(net).__name__}, not a {expect.__name__} model")
    if plan.weights is not None:
        fill(net, plan.weights, plan.key, where=plan.used)
    net.weights_file, net.network_g = plan.used, dict(plan.network)
    return net.to(device).eval()


def save(net: torch.nn.Module, path: str, network_g: Optional[dict] = None, half: bool = False) -> None:
    """The plugin's self-describing file, written atomically: a ClassSR's build config (its
    classifier's architecture only), or a plain network's `network_g` (default: the one it was
    loaded with); the weights as BasicSR's `params`, so BasicSR loads it as net_g too; and the
    user modules its archs come from. half: the networks' float parameters stored as fp16 (they
    load into fp32 as any state dict does); buffers and the classifier's (a router's thresholds)
    stay fp32."""
    if isinstance(net, resolve_arch("ClassSR")):
        head = {"classsr": dict(net.config, classifier=architecture_only(net.config["classifier"])),
                "imports": modules_of(net.arch, net.classifier)}
    else:
        cfg = network_g or getattr(net, "network_g", None)
        if not isinstance(cfg, dict):
            raise ValueError(f"{path}: a plain {type(net).__name__} is saved with its config: give network_g")
        head = {"network_g": cfg, "imports": modules_of(net)}
    # atomic (a killed save leaves the old file or none, never a part), through memory: a full
    # disk is one OSError
    params = net.state_dict()
    if half:
        names = {n for n, p in net.named_parameters() if p.is_floating_point() and not n.startswith("classifier.")}
        params = {k: v.half() if k in names else v for k, v in params.items()}
    save_torch({**head, "params": params}, path)
