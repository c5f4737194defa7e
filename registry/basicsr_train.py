"""`classsr train -opt options.yml [BasicSR's flags]`: BasicSR's train_pipeline with the plugin
registered, and fixes scoped to this entry point:
- DDP without CUDA: BasicSR's init_dist assumes CUDA and NCCL; on CPU it uses gloo.
- resuming without CUDA: BasicSR's load_resume_state maps tensors with torch.cuda.
- options are data: the file is read with a safe YAML loader first (python tags are refused
  before BasicSR, whose loader would run them, sees it), and BasicSR's own parse is safe too.
- --force_yml numbers: BasicSR reads `lr=2e-4` or `-1` as strings (Adam then fails on a str);
  here they are numbers.
- --auto_resume takes the newest training state that loads (with its networks, whole and
  finite), saying which ones it passed over: a run killed while saving cannot block resuming.
"""
import os
import os.path as osp
import re
import sys
from collections import Counter, OrderedDict

import torch

from . import basicsr as _registered  # noqa: F401  (alias + registrations)
from .basicsr_scripts import init_dist  # noqa: E402  (gloo without CUDA)
import basicsr.train as bsr_train  # noqa: E402
import basicsr.utils.options as bsr_options  # noqa: E402
from basicsr.utils import check_resume  # noqa: E402

from .. import checkpoint  # noqa: E402
from ..checks import Refused, describe  # noqa: E402
from ..options import check_network, read_options  # noqa: E402
from ..phases import PhaseSettings  # noqa: E402

_bsr_ordered_yaml = bsr_options.ordered_yaml
_bsr_yml_value = bsr_options._postprocess_yml_value
NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _safe_ordered_yaml():
    """BasicSR's ordered_yaml with a safe loader: no python tags, so no code from the file."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass
    Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                           lambda loader, node: OrderedDict(loader.construct_pairs(node)))
    return Loader, _bsr_ordered_yaml()[1]


def yml_value(value: str):
    """A --force_yml value as BasicSR reads it, except that every number is a number."""
    out = _bsr_yml_value(value)
    if isinstance(out, str) and NUMBER.fullmatch(out.strip()):
        return float(out) if re.search(r"[.eE]", out) else int(out)
    return out


def _load_state(path, device):
    # MultiStepRestartLR keeps its milestones in a Counter: allowed for this load only
    state = checkpoint.read(path, map_location=device, safe_globals=[Counter])
    if not isinstance(state, dict) or "iter" not in state:
        raise Refused(f"{path}: not a BasicSR training state (no 'iter')")
    return state


def _nets_of(opt, it):
    """The network files check_resume will load with the state of iteration `it`."""
    skip = opt["path"].get("ignore_resume_networks") or []
    return [osp.join(opt["path"]["models"], f"net_{k[len('network_'):]}_{it}.pth")
            for k in opt if k.startswith("network_") and k not in skip]


def load_resume_state(opt):
    device = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    if opt["auto_resume"]:
        folder = osp.join("experiments", opt["name"], "training_states")
        names = os.listdir(folder) if osp.isdir(folder) else []
        found = sorted((int(n.split(".")[0]), n) for n in names if re.fullmatch(r"\d+\.state", n))
        for it, name in reversed(found):
            path = osp.join(folder, name)
            try:
                state = _load_state(path, device)
                for net in _nets_of(opt, state["iter"]):
                    checkpoint.weights(net)  # readable, whole and finite
            except Refused as err:
                print(f"auto_resume: passed over {path}: {err}", file=sys.stderr)
                continue
            if name != found[-1][1]:
                print(f"auto_resume: resuming from {path}, the newest state that loads", file=sys.stderr)
            opt["path"]["resume_state"] = path
            check_resume(opt, state["iter"])
            return state
        if found:
            raise Refused(f"{folder}: no training state loads ({', '.join(n for _, n in found)}); "
                          f"remove them to start over")
    path = opt["path"].get("resume_state")
    if not path:
        return None
    state = _load_state(path, device)
    check_resume(opt, state["iter"])
    return state


def check_options(argv) -> None:
    """-opt read safely and its network and classsr keys checked, before BasicSR parses it."""
    if "-opt" not in argv or argv.index("-opt") + 1 >= len(argv):
        return  # BasicSR's own argument parser says what is missing
    path = argv[argv.index("-opt") + 1]
    opt = read_options(path)
    try:
        if opt.get("network_g") is not None:
            check_network(opt["network_g"])
        PhaseSettings.from_options(opt.get("classsr"), "classsr.")
    except (KeyError, ValueError, FileNotFoundError) as err:
        raise Refused(f"{path}: {err.args[0] if err.args else err}")


def _install():
    bsr_options.init_dist = init_dist
    bsr_options.ordered_yaml = _safe_ordered_yaml
    bsr_options._postprocess_yml_value = yml_value
    bsr_train.load_resume_state = load_resume_state


def train_pipeline(root_path: str) -> None:
    """BasicSR's train_pipeline with everything `classsr train` adds (CPU DDP with gloo, CPU
    resume that passes over broken states, safe option files, checked keys, custom_imports),
    for your own train.py, the Real-ESRGAN pattern:

        import classsr_plugin.registry.basicsr_train as classsr_train
        import my_archs                                   # your registrations
        if __name__ == '__main__':
            classsr_train.train_pipeline(osp.abspath(osp.join(__file__, osp.pardir)))

    BasicSR's command-line flags work as with its own train.py."""
    _install()
    check_options(sys.argv[1:])
    bsr_train.train_pipeline(root_path)


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    _install()
    saved, sys.argv = sys.argv, ["classsr train"] + argv
    try:
        check_options(argv)
        bsr_train.train_pipeline(os.getcwd())
    except (Refused, FileNotFoundError) as err:  # a file refused or missing: one line, not a traceback
        print(f"classsr train: error: {describe(err)}", file=sys.stderr)
        return 2
    finally:
        sys.argv = saved
    return 0
