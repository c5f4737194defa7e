"""basicsr 1.4.2 (its latest release) imports `torchvision.transforms.functional_tensor`, which
torchvision 0.17 removed; its one use (rgb_to_grayscale) lives in
`torchvision.transforms.functional`. Alias it before the first basicsr import. Nothing else."""
import sys


def alias_torchvision_for_basicsr() -> None:
    import torchvision.transforms.functional as functional
    sys.modules.setdefault("torchvision.transforms.functional_tensor", functional)
