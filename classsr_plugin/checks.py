"""Checks at the door: command-line values, option files, checkpoints, network keys and
devices. Each failure is one sentence naming the argument, file or key at fault."""
import argparse
import inspect
import math
import os
import pickle
from typing import Optional

import torch


class Refused(ValueError):
    """A file refused at the door (unreadable, broken, or holding code): one line says why."""


# -- command-line values (argparse types: a bad value is a usage error naming the flag) -------
def _number(text: str, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {'an integer' if kind is int else 'a number'}")


def fraction(text: str) -> float:
    """A FLOPs budget: finite, in [0, 2] (above 1: the widest branch everywhere plus the margins
    and the classifier it costs)."""
    v = _number(text, float)
    if not (math.isfinite(v) and 0 <= v <= 2):
        raise argparse.ArgumentTypeError(f"{text}: needs a number in [0, 2] (1 = the base network's FLOPs)")
    return v


def fractions(text: str):
    return [fraction(t) for t in text.split(",")]


def positive(text: str) -> int:
    v = _number(text, int)
    if v < 1:
        raise argparse.ArgumentTypeError(f"{text}: needs an integer >= 1")
    return v


def non_negative(text: str) -> int:
    v = _number(text, int)
    if v < 0:
        raise argparse.ArgumentTypeError(f"{text}: needs an integer >= 0")
    return v


def tile_size(text: str) -> int:
    v = _number(text, int)
    if v < 8:
        raise argparse.ArgumentTypeError(f"{text}: tiles need at least 8 px")
    return v


def tolerances(text: str):
    vals = [_number(t, float) for t in text.split(",")]
    if not all(math.isfinite(v) and v >= 0 for v in vals):
        raise argparse.ArgumentTypeError(f"{text}: needs finite numbers >= 0")
    return vals


def factors(text: str):
    """HR downscaling factors for prepare: in (0, 1]."""
    vals = [_number(t, float) for t in text.split(",")]
    if not all(0 < v <= 1 for v in vals):
        raise argparse.ArgumentTypeError(f"{text}: needs factors in (0, 1]")
    return vals


def flag(value, where: str) -> bool:
    """A boolean option: true or false only (YAML reads a quoted "false" as a string, which
    Python takes as true)."""
    if not isinstance(value, bool):
        raise ValueError(f"{where}: {value!r} is not true or false")
    return value


STRIDE = 28  # tile stride when --stride is not given


def check_stride(parser: argparse.ArgumentParser, args) -> None:
    """stride in (0, tile]: a usage error otherwise. A stride not given is 28 (STRIDE); regions
    take no stride, so there only a stride given on the command line is checked (28 would not fit
    --tile 16)."""
    tile, stride = getattr(args, "tile", None), getattr(args, "stride", None)
    if hasattr(args, "stride") and stride is None:
        args.stride = STRIDE
        if getattr(args, "exec", "tiles") == "regions":
            return
        stride = STRIDE
    if tile is not None and stride is not None and not 0 < stride <= tile:
        parser.error(f"--stride {stride}: needs 1 <= stride <= --tile ({tile})")


def fit_tile(tile: int, stride: int, width: int, height: int):
    """A tile no larger than the image needs: one beyond the image (and the default 32) is cut
    to the image's size, rounded up to 8. -> (tile, stride, note or None)."""
    need = max(32, -(-max(width, height) // 8) * 8)
    if tile <= need:
        return tile, stride, None
    return need, min(stride, need), f"--tile {tile} is larger than the {width}x{height} image: using {need}"


def describe(err: BaseException) -> str:
    """An exception as one line; the type is named unless it is one of ours (ValueError, OSError)."""
    lines = str(err).strip().splitlines()
    text = lines[0] if lines else ("out of memory" if isinstance(err, MemoryError) else "")
    if isinstance(err, (ValueError, OSError)) and text:
        return text
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


# -- files ------------------------------------------------------------------------------------
def read_options(path: str) -> dict:
    """A YAML options file -> a dict, parsed safely: no python tags, so no code runs.
    Unreadable, empty, broken or non-mapping files are one ValueError naming the file."""
    import yaml
    if not os.path.exists(path):
        raise Refused(f"{path}: no such file")
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8")
    except UnicodeDecodeError:
        raise Refused(f"{path}: not a text file (expected YAML options)")
    except OSError as err:
        raise Refused(f"{path}: cannot read ({err.strerror or err})")
    if not text.strip():
        raise Refused(f"{path}: empty file (expected YAML options)")
    try:
        opt = yaml.safe_load(text)
    except yaml.constructor.ConstructorError as err:
        where = f"line {err.problem_mark.line + 1}: " if err.problem_mark else ""
        raise Refused(f"{path}: {where}{err.problem}: options are data; tags that build Python objects "
                         f"(!!python/...) are refused and nothing was run")
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise Refused(f"{path}: {where}not valid YAML ({getattr(err, 'problem', None) or err})")
    if not isinstance(opt, dict):
        raise Refused(f"{path}: expected a mapping of options (key: value), got a {type(opt).__name__}")
    from .imports import custom_imports
    custom_imports(opt, path)  # the user's archs, named by the user (mmengine's convention)
    return opt


def check_config(path: str) -> None:
    """mmengine configs: YAML ones are read safely first (mmengine's YAML loader builds Python
    objects); .py configs are Python programs by design."""
    if path.lower().endswith((".yml", ".yaml")):
        read_options(path)
    elif not os.path.exists(path):
        raise Refused(f"{path}: no such file")


def load_weights(path: str, map_location="cpu"):
    """torch.load with weights_only=True, whatever torch's default or environment says; a
    missing, empty, truncated or refused file is one error naming it."""
    if not os.path.exists(str(path)):
        raise Refused(f"{path}: no such file")
    try:
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


def check_network(opt, where: str = "network_g") -> None:
    """Unknown keys in a network config (and in a ClassSR base) name the valid ones, before
    the arch's TypeError would."""
    from .archs import resolve_arch
    from .wrapper import ClassSR
    if not isinstance(opt, dict) or "type" not in opt:
        raise KeyError(f"{where}: expected a network config with a 'type' key, got {opt!r}")
    cls = ClassSR if opt["type"] == "ClassSR" else resolve_arch(opt["type"], f"{where}.type")
    params = inspect.signature(cls.__init__).parameters
    if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
        valid = [n for n, p in params.items() if n != "self" and p.kind != p.VAR_POSITIONAL]
        unknown = sorted(set(opt) - set(valid) - {"type"})
        if unknown:
            raise KeyError(f"{where}.{unknown[0]}: unknown key for {cls.__name__}; valid: {', '.join(valid)}")
    if cls is ClassSR:
        check_network(opt.get("base"), f"{where}.base")


def check_device(name: Optional[str]) -> str:
    """A device torch can use here, or a ValueError saying why not."""
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"--device {name}: not a device ({describe(err)})")
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {name}: CUDA is not available here (torch {torch.__version__}, "
                             f"{'no GPU visible' if torch.version.cuda else 'built without CUDA'}); use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"--device {name}: only {count} CUDA device(s) here")
    elif dev.type == "mps" and not (hasattr(torch.backends, "mps") and torch.backends.mps.is_available()):
        raise ValueError(f"--device {name}: MPS is not available here; use --device cpu")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device {name}: use cpu, cuda or cuda:N")
    return name
