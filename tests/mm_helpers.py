"""What the mmengine and MMagic tests share: a small prepared dataset, Runner overrides for short
CPU runs, and the scalars mmengine logged."""
import glob
import json
import os

from classsr_plugin.data import prepare, prepare_whole
from test_training import photos


def small_data(root):
    prepare(photos(str(root / "hr")), str(root / "sub"), scale=4, classes=3, scales=(1.0,), stride=24,
            progress=False)
    prepare_whole(photos(str(root / "val_hr"), names=("rocket",), size=96), str(root / "val"), scale=4)
    return root


def base_checkpoint(net, path) -> str:
    """Save a base network's weights as a plain state dict: the widest branch of phase 1."""
    import torch
    torch.save(net.state_dict(), path)
    return str(path)


def short_run(data, work_dir, iters, **extra) -> dict:
    """cfg-options for a few CPU iterations on `small_data`, checkpoints every 2 iterations."""
    return {
        # mmengine keeps one logger per experiment name in a process: two runs sharing a name (a
        # parametrized test's "c" folders) would log into the first one's file
        "work_dir": str(work_dir), "experiment_name": f"{work_dir.parent.name}_{work_dir.name}_{iters}",
        "train_dataloader.dataset.data_root": str(data / "sub"),
        "train_dataloader.batch_size": 6, "train_dataloader.num_workers": 0,
        "val_dataloader.dataset.data_root": str(data / "val"), "val_dataloader.num_workers": 0,
        "train_cfg.max_iters": iters, "train_cfg.val_interval": iters,
        "default_hooks.checkpoint.interval": 2, "default_hooks.logger.interval": 1,
        "custom_hooks": [dict(type="ClassSRHook", interval=2)], **extra}


def scalars(work_dir):
    rows = []
    for path in sorted(glob.glob(os.path.join(work_dir, "*", "vis_data", "scalars.json"))):  # runs in time order
        with open(path) as f:
            rows += [json.loads(line) for line in f]
    return rows
