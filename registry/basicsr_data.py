"""ClassSRDataset: the LR/HR sub-image pairs of `classsr prepare`, with their difficulty class.

Options (BasicSR dataset dict): dataroot (the prepare output folder), meta_info (default
dataroot/meta_info.txt), scale, use_hflip, use_rot, classes (optional list: keep only these).
Yields lq, gt, label, lq_path, gt_path.
"""
import os

from basicsr.data.transforms import augment
from basicsr.utils import FileClient, imfrombytes, img2tensor
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data

from ..checks import flag
from ..data.prepare import META, read_meta


@DATASET_REGISTRY.register()
class ClassSRDataset(data.Dataset):
    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        root = opt["dataroot"]
        meta = opt.get("meta_info") or os.path.join(root, META)
        if not os.path.exists(meta):
            raise FileNotFoundError(f"datasets.{opt.get('name', '?')}.meta_info: {meta} does not exist "
                                    f"(make it with `classsr prepare --out {root}`)")
        items = read_meta(meta)
        keep = opt.get("classes")
        self.items = [it for it in items if keep is None or it[2] in keep]
        if not self.items:
            raise ValueError(f"{meta}: no sub-images" + (f" of classes {keep}" if keep else ""))
        self.lq_dir, self.gt_dir = os.path.join(root, "lq"), os.path.join(root, "gt")
        self.scale = opt.get("scale", 4)
        self.flips = [flag(opt.get(k, True), f"datasets.{opt.get('name', '?')}.{k}") for k in ("use_hflip", "use_rot")]
        self.client = FileClient("disk")

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        name, _, label = self.items[i]
        lq_path, gt_path = (os.path.join(d, name + ".png") for d in (self.lq_dir, self.gt_dir))
        lq = imfrombytes(self.client.get(lq_path, "lq"), float32=True)
        gt = imfrombytes(self.client.get(gt_path, "gt"), float32=True)
        if gt.shape[:2] != (lq.shape[0] * self.scale, lq.shape[1] * self.scale):
            raise ValueError(f"{gt_path}: {gt.shape[1]}x{gt.shape[0]} is not {self.scale} x its LR "
                             f"{lq.shape[1]}x{lq.shape[0]} ({lq_path})")
        if self.opt.get("phase") == "train":
            gt, lq = augment([gt, lq], *self.flips)
        gt, lq = img2tensor([gt, lq], bgr2rgb=True, float32=True)
        return {"lq": lq, "gt": gt, "label": label, "lq_path": lq_path, "gt_path": gt_path}
