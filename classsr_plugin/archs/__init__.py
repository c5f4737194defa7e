"""Networks the ClassSR paper uses that BasicSR lacks, and the arch lookup the core uses.

The core resolves ``{'type': name, ...}`` dicts through :func:`resolve_arch`: first the archs
registered here (ClassSR too, by wrapper.py: checkpoint builds it as any arch), then the
lookups toolkit adapters add with :func:`add_arch_lookup` (``classsr_plugin.registry.basicsr``
adds BasicSR's ARCH_REGISTRY). The core itself never imports a toolkit.
"""
from typing import Callable, Dict, List, Optional

ARCHS: Dict[str, type] = {}
_LOOKUPS: List[Callable[[str], Optional[type]]] = []


def register_arch(cls: type) -> type:
    if cls.__name__ in ARCHS:
        raise KeyError(f"arch {cls.__name__!r} is already registered")
    ARCHS[cls.__name__] = cls
    return cls


def add_arch_lookup(lookup: Callable[[str], Optional[type]]) -> None:
    """Add a name -> class lookup (returns None for unknown names); later lookups win ties."""
    if lookup not in _LOOKUPS:
        _LOOKUPS.append(lookup)


def resolve_arch(name, key: str = "base.type") -> type:
    if isinstance(name, type):
        return name
    if name in ARCHS:
        return ARCHS[name]
    for lookup in reversed(_LOOKUPS):
        cls = lookup(name)
        if cls is not None:
            return cls
    hint = "" if _LOOKUPS else (" (no toolkit registry is loaded: `import classsr_plugin.registry.basicsr`"
                               " to use BasicSR's archs)")
    raise KeyError(f"{key}: unknown arch {name!r}{hint}; plugin archs: {sorted(ARCHS)}")


from .fsrcnn import FSRCNN  # noqa: E402
from .carn import CARNM  # noqa: E402
from .dncnn import DnCNN  # noqa: E402

__all__ = ["ARCHS", "register_arch", "add_arch_lookup", "resolve_arch", "FSRCNN", "CARNM", "DnCNN"]
