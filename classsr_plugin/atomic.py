"""Atomic file writes: a temporary file in the same folder, renamed over the target when
complete, so a crash or kill leaves either the old file or the new one, never a part.
(No fsync: this guards against killed processes, not against power loss.)

Temporary names start with a dot and carry `.part` (`.photo_x4.1a2b3c4d.part.png`): they keep
the extension, since OpenCV picks its encoder by it, and image listings skip them."""
import os
import re
import secrets
import shutil
import sys
from contextlib import contextmanager, redirect_stdout

import torch

_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}\.part(\.[^.]*)?$")


def temp_path(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.{secrets.token_hex(4)}.part{ext}")


def is_temp(name: str) -> bool:
    """A temporary file of an atomic write (a crash may leave one behind)."""
    return bool(_TEMP.match(os.path.basename(name)))


@contextmanager
def atomic(path: str):
    """Yields a temporary path to write; on success it replaces `path`, on error it is removed."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = temp_path(path)
    try:
        yield tmp
        if not os.path.isfile(tmp):
            raise OSError(f"{path}: nothing was written")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path: str, data: bytes) -> None:
    with atomic(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode())


def save_torch(obj, path: str) -> None:
    with atomic(path) as tmp:
        torch.save(obj, tmp)


class _Renamed:
    """stdout that shows the final folder where a staged one is printed, and holds back the
    lines that say "wrote ..." until the files are really there."""

    def __init__(self, out, old: str, new: str):
        self.out, self.old, self.new, self.held, self._holding = out, old, new, [], False

    def write(self, s):
        s = s.replace(self.old, self.new)
        if s.startswith("wrote ") or (self._holding and s == "\n"):
            self.held.append(s)
            self._holding = not self._holding
            return len(s)
        return self.out.write(s)

    def __getattr__(self, name):
        return getattr(self.out, name)


@contextmanager
def staged(folder: str):
    """Yields a hidden folder inside `folder` for code that writes its files directly; on
    success each file is renamed into `folder` (one atomic replace per file). Raise
    `Discard` inside to keep the old files."""
    os.makedirs(folder, exist_ok=True)
    stage = os.path.join(folder, f".stage.{secrets.token_hex(4)}")
    os.makedirs(stage)
    out = _Renamed(sys.stdout, stage, folder)
    try:
        with redirect_stdout(out):
            yield stage
        for name in os.listdir(stage):
            os.replace(os.path.join(stage, name), os.path.join(folder, name))
        out.out.write("".join(out.held))
    except Discard:
        pass
    finally:
        shutil.rmtree(stage, ignore_errors=True)


class Discard(Exception):
    """Raised inside `staged` to drop what was written there."""
