"""Atomic file writes: a temporary file in the same folder, renamed over the target when
complete, so a crash or kill leaves either the old file or the new one, never a part.
(No fsync: this guards against killed processes, not against power loss.)

Temporary names start with a dot and carry `.part` and the writer's process id
(`.photo_x4.1a2b3c4d.4242.part.png`): they keep the extension, since OpenCV picks its encoder
by it, and image listings skip them. What a killed process left (its temporary files, its
stage folders) is removed by the next write into that folder.

A write that fails says so in one line naming the target and why (`explain`): a full or
read-only disk, a file where a folder should be, a folder where a file should be."""
import errno
import io
import os
import re
import secrets
import shutil
import signal
import sys
import threading
from contextlib import contextmanager, redirect_stdout

import torch

_TEMP = re.compile(r"^\..+\.[0-9a-f]{8}(?:\.(\d+))?\.part(?:\.[^.]*)?$")
_STAGE = re.compile(r"^\.stage\.(?:(\d+)\.)?[0-9a-f]{8}$")
_REASONS = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
            errno.EFBIG: "file too large", errno.EROFS: "read-only file system",
            errno.EISDIR: "a folder where a file should be", errno.EACCES: "permission denied"}
# errors of the device written to, not of one item: a batch stops on them
DISK = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})
_cleaned = set()  # folders this process has cleaned


def temp_path(path: str) -> str:
    folder, name = os.path.split(os.path.abspath(path))
    stem, ext = os.path.splitext(name)
    return os.path.join(folder, f".{stem}.{secrets.token_hex(4)}.{os.getpid()}.part{ext}")


def is_temp(name: str) -> bool:
    """A temporary file of an atomic write (a crash may leave one behind)."""
    return bool(_TEMP.match(os.path.basename(name)))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except OSError:
        return True  # someone else's
    return True


def _stale(name: str) -> bool:
    """A temporary file or stage folder whose process is gone (older ones name none)."""
    m = _TEMP.match(name) or _STAGE.match(name)
    return bool(m) and (m.group(1) is None or not _alive(int(m.group(1))))


def clean(folder: str) -> None:
    """Remove what killed runs left in `folder`; a live process's files stay."""
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in filter(_stale, names):
        path = os.path.join(folder, name)
        try:
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        except OSError:
            pass  # a read-only folder keeps them; writing there fails anyway


def _clean_once(folder: str) -> None:
    if folder not in _cleaned:
        _cleaned.add(folder)
        clean(folder)


def _in_the_way(path: str):
    """The nearest existing part of `path`, when it is a file and not a folder."""
    while path and not os.path.lexists(path):
        path = os.path.dirname(path)
    return path if path and not os.path.isdir(path) else None


def explain(err: OSError, path: str = None) -> str:
    """An OSError as one line: the path at fault (never a temporary file) and why."""
    names = [str(f) for f in (err.filename2, err.filename) if f is not None]
    where = next((f for f in names if not is_temp(f)), path)
    if err.errno is None or where is None:
        return OSError.__str__(err)
    if err.errno in (errno.ENOTDIR, errno.EEXIST) and _in_the_way(where):
        return f"{_in_the_way(where)}: a file where a folder should be"
    return f"{where}: {_REASONS.get(err.errno) or err.strerror or err}"


class WriteError(OSError):
    """A failed write; its text is `explain`'s line."""

    def __str__(self):
        return explain(self)


def _named(err: OSError, path: str) -> OSError:
    """`err` naming `path` where it named the temporary file."""
    if err.errno is None or isinstance(err, WriteError):
        return err
    names = [str(f) for f in (err.filename2, err.filename) if f is not None]
    return WriteError(err.errno, err.strerror, next((f for f in names if not is_temp(f)), path))


@contextmanager
def atomic(path: str):
    """Yields a temporary path to write; on success it replaces `path`, on error it is removed
    and the error names `path`."""
    tmp = temp_path(path)
    try:
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        _clean_once(os.path.dirname(tmp))
        yield tmp
        if not os.path.isfile(tmp):
            raise OSError(f"{path}: nothing was written")
        os.replace(tmp, path)
    except OSError as err:
        raise _named(err, path) from err
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def put(path: str, data) -> None:
    """The one place where the plugin's bytes reach a disk. data: bytes-like, or a list of
    them written one after the other (no joined copy of a large file in memory)."""
    with open(path, "wb") as f:
        for part in data if isinstance(data, list) else [data]:
            f.write(part)


def write_bytes(path: str, data) -> None:
    with atomic(path) as tmp:
        put(tmp, data)


def write_text(path: str, text: str) -> None:
    write_bytes(path, text.encode("utf-8", "surrogateescape"))  # any file name survives


def save_torch(obj, path: str) -> None:
    """torch.save, through `put`: a full disk is an OSError (torch's own writer raises two
    chained RuntimeErrors)."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    write_bytes(path, buf.getbuffer())


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
    `Discard` inside to keep the old files. Errors name `folder`, never the stage."""
    os.makedirs(folder, exist_ok=True)
    clean(folder)
    stage = os.path.join(folder, f".stage.{os.getpid()}.{secrets.token_hex(4)}")
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
    except OSError as err:
        for key in ("filename", "filename2"):
            if isinstance(getattr(err, key), str):
                setattr(err, key, getattr(err, key).replace(stage, folder))
        raise
    finally:
        shutil.rmtree(stage, ignore_errors=True)


class Discard(Exception):
    """Raised inside `staged` to drop what was written there."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as Ctrl-C raises KeyboardInterrupt, so that cleanups run."""


def _terminate(signum, frame):
    raise Terminated()


@contextmanager
def stoppable():
    """Within: SIGTERM raises Terminated (in the main thread, unless SIGTERM is ignored), so a
    killed command removes its stage folders and temporary files as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is signal.SIG_IGN:
        yield
        return
    old = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
