"""Weights that ship inside the package (see MODEL_CARD.md beside this file): MODELS, by the name
`--model` takes (`classsr infer --model fsrcnn`); the first is the default."""
import os
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))


@dataclass(frozen=True)
class Shipped:
    """One shipped ClassSR model and the base network it accelerates, trained alone."""
    key: str             # what --model takes
    name: str            # as the model card calls it
    file: str            # the ClassSR checkpoint, in this folder
    reference_name: str  # the base network alone
    reference_file: str
    task: str            # what it does, for --help
    card: str = "MODEL_CARD.md"
    facts: str = "card.json"  # the card's measurements (scripts/make_card.py), which the tests check
    degradation: dict = None  # scale 1: data.degrade.Degradation's arguments (the demo's input); None: SR, bicubic

    def degrade(self):
        """The degradation this model restores, as made for its training and held-out data."""
        from ..data.degrade import Degradation
        return Degradation(**{"scale": 1, **self.degradation}) if self.degradation else None

    @property
    def path(self) -> str:
        return os.path.join(HERE, self.file)

    @property
    def reference(self) -> str:
        return os.path.join(HERE, self.reference_file)

    @property
    def facts_path(self) -> str:
        return os.path.join(HERE, self.facts)

    def present(self) -> bool:
        return os.path.exists(self.path) and os.path.exists(self.reference)


# every model a recipe and scripts/make_card.py can ship (make_card writes its files here)
CATALOGUE = {m.key: m for m in [
    Shipped("fsrcnn", "ClassSR-FSRCNN", "classsr_fsrcnn_x4.pth", "FSRCNN-O", "fsrcnn_o_x4.pth", "x4 super-resolution"),
    Shipped("dncnn-s25", "ClassSR-DnCNN", "classsr_dncnn_s25.pth", "DnCNN-O", "dncnn_o_s25.pth",
            "colour denoising, Gaussian sigma 25", card="MODEL_CARD_dncnn.md", facts="card_dncnn.json",
            degradation={"task": "denoise", "sigma": "25"}),
    Shipped("msrresnet", "ClassSR-MSRResNet", "classsr_msrresnet_x4.pth", "MSRResNet-O", "msrresnet_o_x4.pth",
            "x4 super-resolution, BasicSR's MSRResNet", card="MODEL_CARD_msrresnet.md", facts="card_msrresnet.json"),
]}
DEFAULT = "fsrcnn"
# what --model takes: the default (an untrained stand-in runs the demo without its files) and every
# other model whose files are in this install
MODELS = {k: m for k, m in CATALOGUE.items() if k == DEFAULT or m.present()}


def get(key: str = None) -> Shipped:
    """The shipped model `key` (None: the default); a KeyError names the ones there are."""
    key = key or DEFAULT
    if key not in MODELS:
        raise KeyError(f"--model: {key!r} is not a shipped model; shipped: {describe()}")
    return MODELS[key]


def describe() -> str:
    """`fsrcnn (ClassSR-FSRCNN, x4 super-resolution), ...` for --help and errors."""
    return ", ".join(f"{m.key} ({m.name}, {m.task})" for m in MODELS.values())


CLASSSR_FSRCNN_X4, FSRCNN_O_X4 = MODELS["fsrcnn"].path, MODELS["fsrcnn"].reference
# The demo photo: "By the Water" by Maciej Wiklo, from KDE Plasma's wallpapers (Debian package
# plasma-workspace-wallpapers), LGPL-3; one of the held-out photos, never trained on.
DEMO_PHOTO = os.path.join(HERE, "demo_BytheWater.jpg")
MODEL, REFERENCE = get().path, get().reference  # what commands use without -opt / --model / --reference


def demo_photo():
    """The demo photo as a [3, H, W] float tensor in [0, 1]."""
    from ..imageio import read_picture
    return read_picture(DEMO_PHOTO).rgb


def shipped(key: str = None) -> bool:
    return get(key).present()


def label(path: str) -> str:
    """What tables call a model file: a shipped model's name, else the file's name."""
    names = {p: n for m in MODELS.values() for p, n in ((m.path, m.name), (m.reference, m.reference_name))}
    return names.get(path, os.path.basename(path or ""))
