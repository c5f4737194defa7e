"""The sub-images of `classsr prepare` and whole LR/HR pairs as mmengine datasets."""
import os
from typing import List, Optional, Sequence

import torch
from mmengine.dataset import BaseDataset
from mmengine.registry import DATASETS

from ..checks import flag
from ..data.prepare import META, find_lr, read_meta
from ..imageio import list_images, read_rgb


@DATASETS.register_module()
class ClassSRSubImages(BaseDataset):
    """The sub-image pairs of `classsr prepare` (lq/, gt/, meta_info.txt) with their class.

    Without a pipeline, items are ready for ClassSREngineModel: inputs = LR, data_samples = {gt,
    label}, RGB in [0, 1], with random flips and 90-degree turns when `augment`. With a pipeline
    (MMagic: LoadImageFromFile for `img` and `gt`, then PackInputs), items carry `img_path`,
    `gt_path` and `classsr_label`."""

    def __init__(self, data_root: str, classes: Optional[Sequence[int]] = None, augment: bool = True,
                 pipeline: Sequence = (), **kwargs):
        self.classes, self.augment = classes, flag(augment, "augment")
        super().__init__(data_root=data_root, pipeline=list(pipeline), **kwargs)

    def load_data_list(self) -> List[dict]:
        meta = os.path.join(self.data_root, META)
        if not os.path.exists(meta):
            raise FileNotFoundError(f"data_root: {meta} does not exist (make it with "
                                    f"`classsr prepare --out {self.data_root}`)")
        items = [it for it in read_meta(meta) if self.classes is None or it[2] in self.classes]
        if not items:
            raise ValueError(f"{meta}: no sub-images" + (f" of classes {self.classes}" if self.classes else ""))
        return [{"img_path": os.path.join(self.data_root, "lq", n + ".png"),
                 "gt_path": os.path.join(self.data_root, "gt", n + ".png"),
                 "classsr_label": c, "key": n} for n, _, c in items]

    def prepare_data(self, idx):
        info = self.get_data_info(idx)
        if self.pipeline.transforms:
            return self.pipeline(info)
        lq, gt = (torch.from_numpy(read_rgb(info[k])).permute(2, 0, 1) for k in ("img_path", "gt_path"))
        s = max(1, gt.shape[1] // lq.shape[1])
        if gt.shape[1:] != (lq.shape[1] * s, lq.shape[2] * s):
            raise ValueError(f"{info['gt_path']}: {tuple(gt.shape[1:])} is not a multiple of its LR "
                             f"{tuple(lq.shape[1:])} ({info['img_path']})")
        if self.augment:
            if torch.rand(()) < 0.5:
                lq, gt = lq.flip(-1), gt.flip(-1)
            k = int(torch.randint(4, ()))
            lq, gt = lq.rot90(k, (1, 2)), gt.rot90(k, (1, 2))
        return {"inputs": lq.contiguous(), "data_samples": {"gt": gt.contiguous(), "label": info["classsr_label"]}}


@DATASETS.register_module()
class ClassSRPairs(BaseDataset):
    """Whole LR/HR image pairs for validation (the output of `classsr prepare --whole`: hr/, lr/
    with matching names): inputs = LR, data_samples = {gt, name}, RGB in [0, 1]."""

    def __init__(self, data_root: str, hr: str = "hr", lr: str = "lr", **kwargs):
        self.hr_dir, self.lr_dir = hr, lr
        super().__init__(data_root=data_root, **kwargs)

    def load_data_list(self) -> List[dict]:
        hr_dir = os.path.join(self.data_root, self.hr_dir)
        paths = list_images(hr_dir)
        if not paths:
            raise FileNotFoundError(f"data_root: no images in {hr_dir}")
        lr_dir = os.path.join(self.data_root, self.lr_dir)
        return [{"gt_path": p, "img_path": find_lr(lr_dir, os.path.splitext(os.path.basename(p))[0]),
                 "name": os.path.basename(p)} for p in paths]

    def prepare_data(self, idx):
        info = self.get_data_info(idx)
        lq, gt = (torch.from_numpy(read_rgb(info[k])).permute(2, 0, 1) for k in ("img_path", "gt_path"))
        return {"inputs": lq, "data_samples": {"gt": gt, "name": info["name"]}}
