"""Where batch commands write, so that outputs never collide with inputs or with each other,
and the writer that writes them while the next image computes."""
import itertools
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Sequence, Tuple

from .imageio import unique_stems, written_here


def _key(path: str) -> str:
    # lower case: two names that differ only in case are one file on macOS and Windows
    return os.path.realpath(path).lower()


def plan_outputs(paths: Sequence[str], out: str, scale: int, ext: str = "png") -> Tuple[List[tuple], List[str]]:
    """(input, output, class map) per input, and the inputs left out: files in the output
    folder that an earlier run wrote (marked PNGs) are not inputs. Each input gets its own
    names (photo.png and photo.jpg: photo_png_x4.png, photo_jpg_x4.png), and a name that is
    an input's path gets a number (a.png -> a_x4_2.png when a_x4.png is an input)."""
    out_key = _key(out)
    inputs, earlier, seen = [], [], set()
    for p in paths:
        if _key(p) in seen:
            continue
        seen.add(_key(p))
        (earlier if _key(os.path.dirname(os.path.abspath(p))) == out_key and written_here(p) else inputs).append(p)
    taken = {_key(p) for p in inputs}
    jobs = []
    for path, name in zip(inputs, unique_stems(inputs)):
        for k in itertools.count(1):
            base = os.path.join(out, f"{name}_x{scale}" + (f"_{k}" if k > 1 else ""))
            img, cmap = f"{base}.{ext}", base + "_classes.png"
            if not {_key(img), _key(cmap)} & taken:
                break
        taken |= {_key(img), _key(cmap)}
        jobs.append((path, img, cmap))
    return jobs, earlier


class Writer:
    """Writes in one background thread while the caller computes the next image. At most
    `depth` writes wait, so at most that many outputs are held in memory beside the one being
    computed. A failed write is returned by the next `submit` or by `close`, with its label."""

    def __init__(self, depth: int = 1):
        self.depth = depth
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="classsr-writer")
        self.pending = deque()

    def _collect(self, keep: int) -> List[Tuple[str, BaseException]]:
        failed = []
        while len(self.pending) > keep or (self.pending and self.pending[0][1].done()):
            label, future = self.pending.popleft()
            err = future.exception()  # waits for it
            if err is not None:
                failed.append((label, err))
        return failed

    def submit(self, label: str, fn: Callable, *args) -> List[Tuple[str, BaseException]]:
        failed = self._collect(self.depth - 1)
        self.pending.append((label, self.pool.submit(fn, *args)))
        return failed

    def close(self) -> List[Tuple[str, BaseException]]:
        failed = self._collect(0)
        self.pool.shutdown(wait=True)
        return failed
