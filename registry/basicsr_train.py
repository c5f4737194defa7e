"""`classsr train -opt options.yml [BasicSR's flags]`: BasicSR's train_pipeline with the plugin
registered, and two CPU fixes scoped to this entry point:
- DDP without CUDA: BasicSR's init_dist assumes CUDA and NCCL; on CPU it uses gloo.
- resuming without CUDA: BasicSR's load_resume_state maps tensors with torch.cuda.
"""
import os
import os.path as osp
import sys
from collections import Counter

import torch
import torch.distributed as dist

from . import basicsr as _registered  # noqa: F401  (alias + registrations)
import basicsr.train as bsr_train  # noqa: E402
import basicsr.utils.options as bsr_options  # noqa: E402
from basicsr.utils import check_resume, scandir  # noqa: E402

_cuda_init_dist = bsr_options.init_dist


def init_dist(launcher, backend="nccl", **kwargs):
    if torch.cuda.is_available():
        return _cuda_init_dist(launcher, backend, **kwargs)
    if launcher != "pytorch":
        raise ValueError(f"--launcher {launcher}: on CPU only 'pytorch' (torchrun) is supported")
    dist.init_process_group(backend="gloo", **kwargs)


def load_resume_state(opt):
    path = opt["path"].get("resume_state")
    if opt["auto_resume"]:
        folder = osp.join("experiments", opt["name"], "training_states")
        states = list(scandir(folder, suffix="state")) if osp.isdir(folder) else []
        if states:
            path = osp.join(folder, f"{max(int(s.split('.state')[0]) for s in states)}.state")
            opt["path"]["resume_state"] = path
    if not path:
        return None
    # MultiStepRestartLR keeps its milestones in a Counter: allow it under weights_only.
    torch.serialization.add_safe_globals([Counter])
    device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    state = torch.load(path, map_location=device, weights_only=True)
    check_resume(opt, state["iter"])
    return state


def main(argv=None):
    bsr_options.init_dist = init_dist
    bsr_train.load_resume_state = load_resume_state
    sys.argv = ["classsr train"] + list(sys.argv[1:] if argv is None else argv)
    bsr_train.train_pipeline(os.getcwd())
    return 0
