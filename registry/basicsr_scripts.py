"""What BasicSR's own scripts (`python -m basicsr.train` / `basicsr.test`, basicsr/train.py and
test.py of a checkout) get when the plugin loads with basicsr (the start-up hook,
_classsr_autoload.py), beside its registrations:
- `custom_imports` of the options file (the user's archs), imported once BasicSR has read it;
- DDP without CUDA: BasicSR's init_dist assumes CUDA and NCCL; on CPU it uses gloo.
Options without custom_imports, and machines with CUDA, get BasicSR's own behaviour.
"""
import torch
import torch.distributed as dist

import basicsr.test as bsr_test
import basicsr.train as bsr_train
import basicsr.utils.dist_util as bsr_dist
import basicsr.utils.options as bsr_options

from . import basicsr as _registered  # noqa: F401  (alias + registrations)
from ..imports import custom_imports

_bsr_parse_options = bsr_options.parse_options


def init_dist(launcher, backend="nccl", **kwargs):
    if torch.cuda.is_available():
        return bsr_dist.init_dist(launcher, backend, **kwargs)
    if launcher != "pytorch":
        raise ValueError(f"--launcher {launcher}: on CPU only 'pytorch' (torchrun) is supported")
    dist.init_process_group(backend="gloo", **kwargs)


def parse_options(root_path, is_train=True):
    """BasicSR's parse_options, then the options file's custom_imports."""
    opt, args = _bsr_parse_options(root_path, is_train)
    custom_imports(opt, args.opt)
    return opt, args


def install() -> None:
    bsr_options.init_dist = init_dist
    # the scripts bind parse_options by name: basicsr.train/test, and a checkout's script run
    # as __main__ after this (it imports basicsr first)
    for mod in (bsr_options, bsr_train, bsr_test):
        mod.parse_options = parse_options
