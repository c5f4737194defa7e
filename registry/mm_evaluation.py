"""ClassSRMetric: class shares and FLOPs % (and PSNR / SSIM through basicsr on mmengine alone)."""
from typing import Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.registry import METRICS

from ..compat import alias_torchvision_for_basicsr


@METRICS.register_module()
class ClassSRMetric(BaseMetric):
    """Class shares and FLOPs % of the base network over the validation set; PSNR / SSIM (RGB
    and Y, through basicsr, `crop_border` px cropped) when samples carry `pred` and `gt` in
    [0, 1] (ClassSREngineModel; under MMagic use its PSNR/SSIM metrics beside this one)."""
    default_prefix = "classsr"

    def __init__(self, crop_border: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.crop_border = crop_border

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        alias_torchvision_for_basicsr()
        from basicsr.metrics import calculate_psnr, calculate_ssim
        from basicsr.utils import tensor2img
        for s in data_samples:
            s = s if "classsr_counts" in s else s.get("output", {})  # MMagic: in the prediction
            if "classsr_counts" not in s:
                raise KeyError("classsr_counts: ClassSRMetric needs a ClassSR model's predictions")
            r = {"counts": list(s["classsr_counts"]), "flops": float(s["classsr_flops"])}
            if s.get("pred") is not None and s.get("gt") is not None:
                sr, gt = tensor2img(s["pred"]), tensor2img(s["gt"])
                c = self.crop_border
                r.update(psnr=calculate_psnr(sr, gt, c), psnr_y=calculate_psnr(sr, gt, c, test_y_channel=True),
                         ssim=calculate_ssim(sr, gt, c), ssim_y=calculate_ssim(sr, gt, c, test_y_channel=True))
            self.results.append(r)

    def compute_metrics(self, results: list) -> dict:
        counts = np.sum([r["counts"] for r in results], 0)
        tiles = [sum(r["counts"]) for r in results]
        out = {"flops_percent": float(np.average([r["flops"] for r in results], weights=tiles))}
        out.update({f"share_{k}": float(c / counts.sum()) for k, c in enumerate(counts)})
        for key in ("psnr", "psnr_y", "ssim", "ssim_y"):
            if all(key in r for r in results):
                out[key] = float(np.mean([r[key] for r in results]))
        return out
