"""How a whole image runs: one frozen settings object with the defaults in one place, and the
inter-op workers that run its jobs.

Workers: on a CPU, one network call on two OpenMP threads makes both threads wait for the
slower one at every layer; when another process is busy on one core, small calls then run
several times slower than on one thread (benchmarks/inference_speed.py --busy). So jobs (tile
batches, region batches, skip bands, classifier batches) go to `workers` threads with one
intra-op thread each: a worker slowed by the other process only takes fewer jobs.
"""
import dataclasses
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional

import torch

MODES = ("regions", "tiles")
MARGIN = 2  # regions' context when neither the call nor the model sets one (benchmarks/margins.py)


def check_margin(margin) -> None:
    """None (not set here) or an int >= 0."""
    if margin is not None and (not isinstance(margin, int) or isinstance(margin, bool) or margin < 0):
        raise ValueError(f"margin={margin!r}: must be an int >= 0")


@dataclass(frozen=True)
class Execution:
    """Settings of `ClassSR.restore_image` (and of every command that runs whole images).

    mode:      "regions": cells of `tile` px are classified and adjacent cells of one class run
               as rectangles of up to max_cells x max_cells cells with `margin` px of context
               (regions.py); "tiles": the paper's way,
               tiles of `tile` px every `stride` px, each through its class's branch (tiling.py).
    tile:      classifier window and cell size, LR px (the method's granularity).
    stride:    tiles only: distance between tile starts (overlap = tile - stride).
    margin:    regions only: LR px of context around each rectangle (the smallest within
               0.01 dB of the whole image: benchmarks/margins.py). None: the model's own
               (ClassSR's `margin`, MARGIN = 2 unless its config sets one: a network whose
               trained receptive field reaches further, MSRResNet say, needs more).
    max_cells: regions only: longest rectangle side, in cells.
    coarsen:   regions only: run the cheapest cover of the class map by rectangles, each at the
               widest class among its cells, by a cost model (FLOPs per pixel, margins and a
               per-window overhead: regions.cover); cells only move to wider classes. False:
               rectangles of one routed class each (regions.merge_cells).
    batch:     tiles per call in tiles mode and classifier windows per call; None = as many as
               fit 65536 LR px. In regions, one call runs at most 4x that many pixels.
    workers:   inter-op workers, each with one intra-op thread; None = torch.get_num_threads()
               at the call, 1 = one call at a time on torch's own threads.
    """
    mode: str = "regions"
    tile: int = 32
    stride: int = 28
    margin: Optional[int] = None
    max_cells: int = 8
    coarsen: bool = True
    batch: Optional[int] = None
    workers: Optional[int] = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"execution: {self.mode!r} is not 'tiles' or 'regions'")
        for key in ("tile", "stride", "max_cells", "batch", "workers"):
            value = getattr(self, key)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{key}={value!r}: must be an int >= 1")
        check_margin(self.margin)
        if self.mode == "tiles" and self.stride > self.tile:
            raise ValueError(f"tile={self.tile}, stride={self.stride}: need 1 <= stride <= tile")
        if self.margin is not None and self.margin > self.tile:
            raise ValueError(f"margin={self.margin}: at most the cell size ({self.tile} px); more context "
                             f"than a cell costs more than the cell itself")

    @classmethod
    def of(cls, execution=None, **settings) -> "Execution":
        """An Execution from None, a mode name or an Execution, with some settings replaced
        (None values are left out, so callers can pass their optional arguments through)."""
        settings = {k: v for k, v in settings.items() if v is not None}
        unknown = set(settings) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise TypeError(f"unknown execution settings: {', '.join(sorted(unknown))}")
        if isinstance(execution, cls):
            return dataclasses.replace(execution, **settings)
        if execution is not None:
            settings.setdefault("mode", execution)
        return cls(**settings)

    @property
    def tile_batch(self) -> int:
        return self.batch or max(1, 65536 // (self.tile * self.tile))

    def n_workers(self) -> int:
        return self.workers or max(1, torch.get_num_threads())


class Workers:
    """Run jobs on n threads with one intra-op thread each, for the duration of a `with` block
    (torch's thread count is per process: it is restored on exit). n = 1 runs each job in the
    calling thread on torch's own threads. Grad and inference modes are per thread: jobs run
    without grad, in inference mode where the caller is."""

    def __init__(self, n: int):
        self.n = max(1, int(n))
        self.lock = threading.Lock()  # for jobs that add into one shared output
        self._pool = None

    def __enter__(self) -> "Workers":
        if self.n > 1:
            self._threads = torch.get_num_threads()
            torch.set_num_threads(1)
            self._pool = ThreadPoolExecutor(self.n, thread_name_prefix="classsr")
        return self

    def __exit__(self, *exc):
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
            torch.set_num_threads(self._threads)
        return False

    def map(self, fn: Callable, jobs: Iterable, progress: Optional[Callable] = None) -> List:
        """[fn(job) for job in jobs], the jobs spread over the workers (the largest should come
        first: the last jobs then leave no worker idle for long). `progress(n)` after each job."""
        jobs = list(jobs)
        tick = progress or (lambda n: None)
        inference = torch.is_inference_mode_enabled()  # the caller's: its tensors may be inference tensors

        def run(job):
            with torch.inference_mode(inference), torch.no_grad():
                out = fn(job)
            tick(1)
            return out

        if self._pool is None:
            return [run(job) for job in jobs]
        futures = [self._pool.submit(run, job) for job in jobs]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        for f in done:
            if f.exception() is not None:
                for g in futures:
                    g.cancel()
                raise f.exception()
        return [f.result() for f in futures]



def flops_basis(ex: Execution) -> str:
    """What a FLOPs percentage run this way is a percentage of (printed beside every figure)."""
    return "on the whole image" if ex.mode == "regions" else f"on the same tiles ({ex.tile}/{ex.stride})"
