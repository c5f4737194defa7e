"""Test setup only: mmcv-lite has no compiled ops, yet importing MMagic's model zoo imports
mmcv.ops (for video and detection editors the tests never build). A stand-in `mmcv._ext` lets
those modules import; calling any of its ops fails loudly. The plugin never does this."""
import importlib.machinery
import sys
import types


def install():
    if "mmcv._ext" in sys.modules:
        return
    try:
        import mmcv._ext  # noqa: F401  (a full mmcv: nothing to do)
        return
    except ImportError:
        pass
    ext = types.ModuleType("mmcv._ext")
    ext.__spec__ = importlib.machinery.ModuleSpec("mmcv._ext", None)  # pkgutil asks for one

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)

        def op(*args, **kwargs):
            raise RuntimeError(f"mmcv._ext.{name}: compiled mmcv ops are not available in this test setup")
        return op
    ext.__getattr__ = __getattr__
    sys.modules["mmcv._ext"] = ext
