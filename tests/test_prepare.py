

def test_photo_of_inverts_sub_image_name():
    from classsr_plugin.data.prepare import photo_of, sub_image_name
    for stem in ("mate_Storm", "a_s1.00_b", "x_0001_0002"):
        assert photo_of(sub_image_name(stem, 0.75, 16, 480)) == stem


def test_a_photo_smaller_than_one_sub_image_is_skipped_by_name(tmp_path):
    """A photo too small for one sub-image is reported as such (it once failed inside imresize with
    a tensor-size error), and copies downscaled below one sub-image are left out, not resized."""
    import cv2
    import numpy as np
    from classsr_plugin.data.prepare import prepare
    hr = tmp_path / "hr"
    hr.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(hr / "tiny.png"), (rng.random((6, 6, 3)) * 255).astype(np.uint8))
    cv2.imwrite(str(hr / "small.png"), (rng.random((160, 176, 3)) * 255).astype(np.uint8))  # only x1 fits
    prepare(str(hr), str(tmp_path / "out"), scale=4, classes=2, scales=[1, 0.75, 0.5], tile=32, stride=16)
    skipped = (tmp_path / "out" / "skipped.txt").read_text()
    assert "tiny.png" in skipped and "6x6 is smaller than one sub-image (32 px input, 128 px here" in skipped
    names = [line.split()[0] for line in (tmp_path / "out" / "meta_info.txt").read_text().splitlines()[1:]]
    assert names and all("_s1.00_" in n for n in names)


def test_prepare_stride_follows_the_scale_when_not_given(tmp_path):
    """`classsr prepare` without --stride cuts every 16 input px at x4 and every 64 at scale 1
    (the same number of sub-images a photo); the tiling commands' default of 28 once applied here,
    cutting 5x as many sub-images at scale 1."""
    import json
    import cv2
    import numpy as np
    from classsr_plugin.cli import main
    hr = tmp_path / "hr"
    hr.mkdir()
    cv2.imwrite(str(hr / "a.png"), (np.random.default_rng(0).random((256, 256, 3)) * 255).astype(np.uint8))
    for args, stride in ([], 16), (["--task", "denoise", "--sigma", "25"], 64):
        out = tmp_path / f"out{stride}"
        assert main(["prepare", "--hr", str(hr), "--out", str(out), "--scales", "1", *args]) == 0
        assert json.load(open(out / "settings.json"))["stride"] == stride
    assert main(["prepare", "--hr", str(hr), "--out", str(tmp_path / "o40"), "--scales", "1", "--stride", "40"]) == 0
    assert json.load(open(tmp_path / "o40" / "settings.json"))["stride"] == 40
