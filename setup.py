"""Metadata is in setup.cfg; this file adds one build step: the start-up hook's .pth file
(see _classsr_autoload.py), at the root of site-packages for `pip install .` and `pip install -e .`."""
import os

from setuptools import setup
from setuptools.command.build_py import build_py

PTH = "classsr_plugin_autoload.pth"
# site runs an `import` line of a .pth at every interpreter start: keep it to the finder
LINE = ("import os; os.environ.get('CLASSSR_DISABLE_AUTOLOAD', '0') in ('', '0') "
        "and __import__('_classsr_autoload').install()\n")


class BuildPyWithPth(build_py):
    def run(self):
        super().run()
        # A wheel's root lands in site-packages. A wheel is made of build_lib; an editable wheel
        # leaves build_lib out and is assembled where editable_wheel points `install`.
        root = self.get_finalized_command("install").install_lib if self.editable_mode else self.build_lib
        self.mkpath(root)
        with open(os.path.join(root, PTH), "w") as f:
            f.write(LINE)


setup(cmdclass={"build_py": BuildPyWithPth})
