"""BasicSR adapter: registers ClassSR, the plugin's archs and losses in BasicSR's registries,
and lets the core resolve any arch in ARCH_REGISTRY. Import it once, before building.

basicsr 1.4.2 needs one alias to import with current torchvision (see classsr_plugin.compat);
nothing else is patched.
"""
from ..compat import alias_torchvision_for_basicsr

alias_torchvision_for_basicsr()

import basicsr.archs  # noqa: E402,F401  (fills ARCH_REGISTRY)
from basicsr.utils.registry import ARCH_REGISTRY, LOSS_REGISTRY  # noqa: E402

from ..archs import ARCHS, add_arch_lookup  # noqa: E402
from ..losses import AverageLoss, ClassLoss  # noqa: E402
from ..wrapper import ClassSR  # noqa: E402


def _lookup(name):
    # BasicSR keeps some archs under `name_basicsr` (SRVGGNetCompact_basicsr); its own `get`
    # falls back to that too, but prints a line each time.
    for key in (name, f"{name}_basicsr"):
        if key in ARCH_REGISTRY:
            return ARCH_REGISTRY.get(key)
    return None


# BasicSR asserts names are unique, so a second import under another path fails loudly.
assert ARCHS["ClassSR"] is ClassSR  # registered by the core with its own archs
for _cls in ARCHS.values():
    ARCH_REGISTRY.register(_cls)
for _cls in (ClassLoss, AverageLoss):
    LOSS_REGISTRY.register(_cls)
add_arch_lookup(_lookup)

from . import basicsr_data, basicsr_model  # noqa: E402,F401  (register dataset and model)
