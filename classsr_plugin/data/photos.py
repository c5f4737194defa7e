"""The training and held-out photographs, gathered offline from packages that ship them.

Natural photographs only (no renders, charts, text or abstract art), chosen by looking at every
file once; the lists below are that choice. Each picture is used once, at its largest size (KDE
Plasma ships several sizes of a wallpaper, most of them links to one file).

Some of these packages' photographs are reserved for an independent evaluation: they are skipped
by name wherever they turn up, before anything reads them (RESERVED).
"""
import glob
import json
import os
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Sequence

from ..atomic import write_bytes, write_text

# Never trained, tuned or evaluated on by this project.
RESERVED = frozenset(n.lower() for n in (
    "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Kleiber_by_Lukas_Baubkus",
    "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi",
    "picosdeeuropa_by_Aitzol_Berasategi", "aitzgorri_by_Aitzol_Berasategi",
    "life_by_Aitzol_Berasategi", "Fossa_by_Jasper_Roks",               # lomiri
    "Path", "EveningGlow", "ColorfulCups", "FallenLeaf", "Autumn",     # plasma
    "Wood", "TwoWings", "Aqua"))                                       # mate

# Our own held-out set: at least 2K wide, never trained on; the shipped demo photo is one of them.
HELD_OUT = ("plasma_Kite", "plasma_summer_1am", "plasma_BytheWater", "plasma_Grey",
            "plasma_OneStandsOut", "mate_LadyBird", "lomiri_friends_by_Aitzol_Berasategi",
            "lomiri_Picture_0B_by_freespace", "jxl_flower")

OPENCV = "/usr/share/doc/opencv-doc/examples/data"


@dataclass(frozen=True)
class Source:
    """Files `pattern % name` for each name; `prefix` makes ids unique across packages. A pattern
    matching several files (one picture in several sizes) keeps the largest."""
    package: str
    prefix: str
    pattern: str
    names: Sequence[str]


SOURCES = (
    Source("lomiri-wallpapers-16.04", "lomiri", "/usr/share/backgrounds/%s.jpg",
           ("Picture_0B_by_freespace", "Picture_1A_by_freespace", "Wine_by_Jakkub_Mede",
            "free_by_Peter_Nerlich", "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich")),
    # lomiri-wallpapers-20.04: its photographs are all reserved; the rest is art
    Source("plasma-workspace-wallpapers", "plasma", "/usr/share/wallpapers/%s/contents/images/*",
           ("BytheWater", "ColdRipple", "DarkestHour", "Grey", "Kite", "OneStandsOut", "summer_1am")),
    Source("mate-backgrounds", "mate", "/usr/share/backgrounds/mate/nature/%s.jpg",
           ("Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops",
            "Storm", "YellowFlower")),
    Source("libjxl-testdata", "jxl", "/usr/share/libjxl-testdata/%s.png",
           ("jxl/flower/flower", "external/wesaturate/500px/tmshre_riaphotographs_srgb8",
            "external/wesaturate/500px/cvo9xd_keong_macan_srgb8",
            "external/wesaturate/500px/u76c0g_bliznaca_srgb8")),
    Source("opencv-doc", "opencv", OPENCV + "/%s.*",
           ("aero1", "aero3", "aloeL", "apple", "baboon", "board", "building", "butterfly",
            "chicky_512", "ela_original", "fruits", "graf1", "home", "left", "leuvenA", "messi5",
            "orange", "rubberwhale1", "smarties", "squirrel_cls", "stuff")),
)
# photos bundled with Python packages the project installs anyway: (id, module, attribute)
BUNDLED = (("skimage_astronaut", "skimage.data", "astronaut"), ("skimage_chelsea", "skimage.data", "chelsea"),
           ("skimage_coffee", "skimage.data", "coffee"), ("skimage_rocket", "skimage.data", "rocket"),
           ("skimage_motorcycle_left", "skimage.data", "stereo_motorcycle"))


@dataclass
class Photo:
    id: str
    package: str
    source: str       # where it came from (a file, or module.function)
    width: int
    height: int
    split: str        # train | heldout


def is_reserved(name: str) -> bool:
    """A file name, stem or plasma folder that names a reserved photograph."""
    stem = os.path.splitext(os.path.basename(name.rstrip("/")))[0].lower()
    return stem in RESERVED


def _largest(paths: Iterable[str]) -> Optional[str]:
    import cv2
    best, best_px = None, -1
    for p in sorted({os.path.realpath(p) for p in paths}):  # sizes that link to one file count once
        img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
        if img is not None and img.shape[0] * img.shape[1] > best_px:
            best, best_px = p, img.shape[0] * img.shape[1]
    return best


def find_photos(sources: Sequence[Source] = SOURCES, held_out: Sequence[str] = HELD_OUT):
    """-> (photos found as (id, package, path, split), names skipped as reserved, missing packages).
    Reads nothing of a reserved photograph."""
    found, reserved, missing = [], [], set()
    for src in sources:
        for name in src.names:
            # plasma's folder is the picture's name; elsewhere the file stem is
            if is_reserved(name) or is_reserved(os.path.basename(name)):
                reserved.append(f"{src.package}: {name}")
                continue
            paths = [p for p in glob.glob(src.pattern % name) if not is_reserved(p)]
            path = _largest(paths)
            if path is None:
                missing.add(src.package)
                continue
            pid = f"{src.prefix}_{os.path.basename(name)}"
            found.append((pid, src.package, path, "heldout" if pid in held_out else "train"))
    return found, reserved, sorted(missing)


def collect(out: str, sources: Sequence[Source] = SOURCES, held_out: Sequence[str] = HELD_OUT,
            bundled=BUNDLED) -> Dict:
    """Copy the photos into out/train and out/heldout (ids as file names; re-running keeps what
    is there) and write out/photos.json listing every file used. Missing packages are named."""
    import cv2
    found, reserved, missing = find_photos(sources, held_out)
    photos: List[Photo] = []
    for split in ("train", "heldout"):
        os.makedirs(os.path.join(out, split), exist_ok=True)
    for pid, package, path, split in found:
        dst = os.path.join(out, split, pid + os.path.splitext(path)[1].lower())
        if not os.path.exists(dst):
            with open(path, "rb") as f:
                write_bytes(dst, f.read())
        h, w = cv2.imread(dst, cv2.IMREAD_UNCHANGED).shape[:2]
        photos.append(Photo(pid, package, path, w, h, split))
    for pid, module, attr in bundled:
        import importlib
        img = getattr(importlib.import_module(module), attr)()
        img = img[0] if isinstance(img, tuple) else img   # stereo pairs: the left view
        split = "heldout" if pid in held_out else "train"
        dst = os.path.join(out, split, pid + ".png")
        if not os.path.exists(dst):
            write_bytes(dst, cv2.imencode(".png", img[:, :, ::-1])[1].tobytes())
        photos.append(Photo(pid, module.split(".")[0], f"{module}.{attr}", img.shape[1], img.shape[0], split))
    report = {"photos": [asdict(p) for p in photos], "reserved_skipped": reserved, "missing_packages": missing,
              "counts": {s: sum(p.split == s for p in photos) for s in ("train", "heldout")}}
    write_text(os.path.join(out, "photos.json"), json.dumps(report, indent=1))
    return report
