"""classsr-plugin: ClassSR (CVPR 2021) for any SR network, as a plugin for BasicSR and MMagic."""
__version__ = "0.1.0"

from .archs import add_arch_lookup, register_arch, resolve_arch  # noqa: E402
from .classifier import register_classifier  # noqa: E402
from .cost import TileCost, count_flops  # noqa: E402
from .losses import AverageLoss, ClassLoss, average_loss, class_loss  # noqa: E402
from .tiling import TileGrid, run_tiled  # noqa: E402
from .wrapper import ClassSR, Restored  # noqa: E402

__all__ = ["ClassSR", "Restored", "ClassLoss", "AverageLoss", "class_loss", "average_loss",
           "TileGrid", "run_tiled", "TileCost", "count_flops", "register_arch", "add_arch_lookup", "register_classifier",
           "resolve_arch", "__version__"]
