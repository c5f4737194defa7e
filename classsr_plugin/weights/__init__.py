"""Weights that ship inside the package (see MODEL_CARD.md beside this file)."""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CLASSSR_FSRCNN_X4 = os.path.join(HERE, "classsr_fsrcnn_x4.pth")
FSRCNN_O_X4 = os.path.join(HERE, "fsrcnn_o_x4.pth")
# The demo photo: "By the Water" by Maciej Wiklo, from KDE Plasma's wallpapers (Debian package
# plasma-workspace-wallpapers), LGPL-3; one of the held-out photos, never trained on.
DEMO_PHOTO = os.path.join(HERE, "demo_BytheWater.jpg")
MODEL, REFERENCE = CLASSSR_FSRCNN_X4, FSRCNN_O_X4  # what commands use without -opt / --reference
NAMES = {CLASSSR_FSRCNN_X4: "ClassSR-FSRCNN", FSRCNN_O_X4: "FSRCNN-O"}  # as the model card calls them


def demo_photo():
    """The demo photo as a [3, H, W] float tensor in [0, 1]."""
    from ..imageio import read_picture
    return read_picture(DEMO_PHOTO).rgb


def shipped() -> bool:
    return os.path.exists(CLASSSR_FSRCNN_X4) and os.path.exists(FSRCNN_O_X4)


def label(path: str) -> str:
    """What tables call a model file: a shipped model's name, else the file's name."""
    return NAMES.get(path, os.path.basename(path or ""))
