"""Checks at the door: command-line values and devices, each failure one sentence naming the
argument at fault; and the error a refused file raises (files are checked in options.py and
checkpoint.py). Imports nothing of the plugin."""
import argparse
import math
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


# -- devices ----------------------------------------------------------------------------------
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
