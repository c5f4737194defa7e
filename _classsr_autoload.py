"""classsr-plugin's start-up hook, so that BasicSR's own train.py and test.py (and
`python -m basicsr.train`) run ClassSR options as written.

`classsr_plugin_autoload.pth` (written to site-packages by setup.py) imports this module at
interpreter start, unless CLASSSR_DISABLE_AUTOLOAD is set (to anything but empty or 0). At
start-up it only puts a finder on sys.meta_path; nothing else of the plugin is imported until
`basicsr` is:
- before basicsr runs, the torchvision alias basicsr 1.4.2 needs (classsr_plugin.compat);
- after it has run (its registries filled), the plugin registers once
  (classsr_plugin.registry.basicsr_scripts), and the finder leaves sys.meta_path.
"""
import sys


class _Loader:
    """basicsr's own loader, with the plugin's steps before and after basicsr runs."""

    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):  # is_package, get_resource_reader, ...: basicsr's loader answers
        return getattr(self.real, name)

    def create_module(self, spec):
        return self.real.create_module(spec)

    def exec_module(self, module):
        module.__loader__ = module.__spec__.loader = self.real  # basicsr keeps nothing of ours
        from classsr_plugin.compat import alias_torchvision_for_basicsr
        alias_torchvision_for_basicsr()
        self.real.exec_module(module)
        uninstall()
        try:
            from classsr_plugin.registry.basicsr_scripts import install as register
            register()
        except Exception as err:
            raise ImportError(f"classsr-plugin could not register with basicsr ({err}); "
                              f"CLASSSR_DISABLE_AUTOLOAD=1 imports basicsr without it") from err


class Finder:
    """Answers for `basicsr` only: its own spec, loaded through _Loader."""
    busy = False  # the lookup below asks sys.meta_path again, this finder included

    def find_spec(self, name, path=None, target=None):
        if name != "basicsr" or self.busy:
            return None
        from importlib.util import find_spec
        self.busy = True
        try:
            spec = find_spec(name)
        finally:
            self.busy = False
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


FINDER = Finder()


def install():
    # first: the finders after it (the path finder) would load basicsr without the plugin
    if FINDER not in sys.meta_path:
        sys.meta_path.insert(0, FINDER)


def uninstall():
    if FINDER in sys.meta_path:
        sys.meta_path.remove(FINDER)
