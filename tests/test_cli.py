import cv2
import numpy as np

from classsr_plugin.cli import main


def test_demo_own_image(tmp_path, capsys):
    img = (np.random.default_rng(0).random((37, 50, 3)) * 255).astype(np.uint8)
    path = tmp_path / "mine.png"
    cv2.imwrite(str(path), img)
    assert main(["demo", "--input", str(path), "--out", str(tmp_path / "out")]) == 0
    assert cv2.imread(str(tmp_path / "out" / "mine_classsr_x4.png")).shape == (148, 200, 3)


def test_demo_unreadable_input(tmp_path, capsys):
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not an image")
    assert main(["demo", "--input", str(bad), "--out", str(tmp_path)]) == 2
    assert "broken.png" in capsys.readouterr().err
