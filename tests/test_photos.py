"""`classsr photos`: the reserved photographs are skipped by name wherever they turn up, each
picture is taken once at its largest size, and the held-out split is kept apart."""
import json
import os

import cv2
import numpy as np

from classsr_plugin.data import photos as ph


def _img(path, w, h):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    assert cv2.imwrite(str(path), np.full((h, w, 3), 128, np.uint8))


def test_reserved_names_are_skipped_before_reading(tmp_path):
    root = tmp_path / "pkgs"
    for name in ("Bridge_by_Sander_Klootwijk", "Fossa_by_Jasper_Roks", "calm_lake"):
        _img(root / "bg" / f"{name}.jpg", 64, 48)
    for name in ("Path", "EveningGlow", "Kite"):  # plasma: the folder is the picture's name
        _img(root / "wp" / name / "images" / "640x400.jpg", 640, 400)
        _img(root / "wp" / name / "images" / "1280x800.jpg", 1280, 800)
        os.symlink(root / "wp" / name / "images" / "1280x800.jpg", root / "wp" / name / "images" / "2x.jpg")
    sources = (ph.Source("lomiri", "lomiri", str(root / "bg" / "%s.jpg"),
                         ("Bridge_by_Sander_Klootwijk", "Fossa_by_Jasper_Roks", "calm_lake", "not_installed")),
               ph.Source("plasma", "plasma", str(root / "wp" / "%s" / "images" / "*"), ("Path", "EveningGlow", "Kite")))
    rep = ph.collect(str(tmp_path / "out"), sources, held_out=("plasma_Kite",), bundled=())
    ids = {p["id"]: p for p in rep["photos"]}
    assert set(ids) == {"lomiri_calm_lake", "plasma_Kite"}
    assert sorted(rep["reserved_skipped"]) == ["lomiri: Bridge_by_Sander_Klootwijk", "lomiri: Fossa_by_Jasper_Roks",
                                               "plasma: EveningGlow", "plasma: Path"]
    assert rep["missing_packages"] == ["lomiri"]  # not_installed
    # the largest size, once; the held-out photo in its own folder
    assert (ids["plasma_Kite"]["width"], ids["plasma_Kite"]["split"]) == (1280, "heldout")
    assert os.listdir(tmp_path / "out" / "heldout") == ["plasma_Kite.jpg"]
    assert os.listdir(tmp_path / "out" / "train") == ["lomiri_calm_lake.jpg"]
    written = json.load(open(tmp_path / "out" / "photos.json"))
    assert written["counts"] == {"train": 1, "heldout": 1}
    assert not any(ph.is_reserved(p["source"]) for p in written["photos"])


def test_shipped_lists_hold_no_reserved_photo_and_enough_held_out():
    names = [n for src in ph.SOURCES for n in src.names]
    assert not [n for n in names if ph.is_reserved(n)]
    ids = {f"{src.prefix}_{os.path.basename(n)}" for src in ph.SOURCES for n in src.names}
    assert set(ph.HELD_OUT) <= ids and len(ph.HELD_OUT) >= 8
    assert len(ph.RESERVED) == 17
