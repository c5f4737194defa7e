"""A ClassSRModel that also writes each process's weights whenever BasicSR saves, so the DDP test
can compare the processes (imported through the options' custom_imports)."""
import os

import torch
import torch.distributed as dist
from basicsr.utils.registry import MODEL_REGISTRY

from classsr_plugin.registry.basicsr_model import ClassSRModel


@MODEL_REGISTRY.register()
class RankWeightsModel(ClassSRModel):
    def save(self, epoch, current_iter):
        super().save(epoch, current_iter)
        folder = os.path.join(self.opt["path"]["experiments_root"], "ranks")
        os.makedirs(folder, exist_ok=True)
        torch.save(self.bare.state_dict(), os.path.join(folder, f"{current_iter}_rank{dist.get_rank()}.pth"))
