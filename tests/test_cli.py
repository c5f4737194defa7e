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


def test_shipped_models_by_name(tmp_path, capsys, monkeypatch):
    """--model picks a shipped model (and, in eval, its base network as the reference); a name
    that is not shipped, or --model beside -opt, is refused with the names there are."""
    import dataclasses
    import json
    import torch
    from classsr_plugin import ClassSR, weights
    lr = tmp_path / "lr"
    lr.mkdir()
    cv2.imwrite(str(lr / "a.png"), (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8))
    assert main(["infer", "--model", "fsrcnn", str(lr), "-o", str(tmp_path / "default")]) == 0
    assert "classsr_fsrcnn_x4.pth" in capsys.readouterr().out
    # a second model "shipped" in a folder of its own: a small FSRCNN x2 and its base alone
    torch.manual_seed(0)
    small = ClassSR(base={"type": "FSRCNN", "d": 16, "s": 8, "m": 1, "upscale": 2}).eval()
    small.save(str(tmp_path / "classsr_small_x2.pth"))
    from classsr_plugin.archs.fsrcnn import FSRCNN
    from classsr_plugin.checkpoint import save
    base = {"type": "FSRCNN", "d": 16, "s": 8, "m": 1, "upscale": 2}
    save(FSRCNN(**{k: v for k, v in base.items() if k != "type"}), str(tmp_path / "small_x2.pth"), network_g=base)
    other = dataclasses.replace(weights.get(), key="small", name="ClassSR-Small", file="classsr_small_x2.pth",
                                reference_name="Small-O", reference_file="small_x2.pth", task="x2 test")
    monkeypatch.setattr(weights, "HERE", str(tmp_path))
    monkeypatch.setitem(weights.MODELS, "small", other)
    assert main(["infer", "--model", "small", str(lr), "-o", str(tmp_path / "small")]) == 0
    assert cv2.imread(str(tmp_path / "small" / "a_x2.png")).shape == (80, 96, 3)
    assert main(["demo", "--model", "small", "--input", str(lr / "a.png"), "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "shipped weights: ClassSR-Small x2" in out and "over Small-O on the whole image" in out
    assert cv2.imread(str(tmp_path / "demo" / "a_small_o_x2.png")).shape == (80, 96, 3)
    hr = tmp_path / "hr"
    hr.mkdir()
    cv2.imwrite(str(hr / "a.png"), (np.random.default_rng(1).random((40, 48, 3)) * 255).astype(np.uint8))
    assert main(["eval", "--model", "small", "--scale", "2", "--hr", str(hr), "-o", str(tmp_path / "ev")]) == 0
    rows = json.load(open(tmp_path / "ev" / "eval.json"))["folders"]["hr"]["rows"]
    assert "Small-O" in rows  # the shipped model's base network, by the card's name
    capsys.readouterr()
    assert main(["infer", "--model", "nope", str(lr), "-o", str(tmp_path / "x")]) != 0
    assert "'nope' is not a shipped model; shipped: fsrcnn (ClassSR-FSRCNN" in capsys.readouterr().err
    assert main(["infer", "--model", "small", "-opt", weights.MODEL, str(lr), "-o", str(tmp_path / "x")]) != 0
    assert "give -opt or --model, not both" in capsys.readouterr().err


def test_demo_of_a_scale1_model(tmp_path, capsys, monkeypatch):
    """A shipped denoiser: the demo degrades a crop of the demo photo as the model's held-out
    data were made (seeded noise), restores it with ClassSR and with its base alone, and reports
    PSNR against the clean crop; a scale-1 entry without a degradation is refused by name."""
    import dataclasses
    import torch
    from classsr_plugin import ClassSR, weights
    from classsr_plugin.archs.dncnn import DnCNN
    from classsr_plugin.checkpoint import save
    base = {"type": "DnCNN", "num_feat": 8, "num_layers": 3}
    torch.manual_seed(0)
    ClassSR(base=base).eval().save(str(tmp_path / "classsr_dn.pth"))
    save(DnCNN(**{k: v for k, v in base.items() if k != "type"}), str(tmp_path / "dn.pth"), network_g=base)
    demo_photo = weights.DEMO_PHOTO
    monkeypatch.setattr(weights, "HERE", str(tmp_path))
    monkeypatch.setattr(weights, "DEMO_PHOTO", demo_photo)
    entry = dataclasses.replace(weights.get(), key="dn", name="ClassSR-Dn", file="classsr_dn.pth", reference_name="Dn-O",
                                reference_file="dn.pth", task="denoising", degradation={"task": "denoise", "sigma": "25"})
    monkeypatch.setitem(weights.MODELS, "dn", entry)
    assert main(["demo", "--model", "dn", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    assert "input 512x512 -> output 512x512" in out
    psnr = {line.split(":")[0][5:]: float(line.split(":")[1].split()[0]) for line in out.splitlines()
            if line.startswith("PSNR ")}
    assert set(psnr) == {"input (denoise sigma 25)", "Dn-O", "ClassSR-Dn"}
    assert 19 < psnr["input (denoise sigma 25)"] < 22  # sigma 25 on 8 bits: about 20.2 dB
    for f in ["BytheWater_input_x1.png", "BytheWater_classsr_x1.png", "BytheWater_dn_o_x1.png",
              "BytheWater_classmap.png", "BytheWater_compare.png"]:
        assert cv2.imread(str(tmp_path / "demo" / f)) is not None, f
    # the same input twice: the noise is seeded by the photo's name
    first = cv2.imread(str(tmp_path / "demo" / "BytheWater_input_x1.png"))
    assert main(["demo", "--model", "dn", "--out", str(tmp_path / "again")]) == 0
    assert np.array_equal(first, cv2.imread(str(tmp_path / "again" / "BytheWater_input_x1.png")))
    monkeypatch.setitem(weights.MODELS, "dn", dataclasses.replace(entry, degradation=None))
    capsys.readouterr()
    assert main(["demo", "--model", "dn", "--out", str(tmp_path / "x")]) != 0
    assert "ClassSR-Dn is a scale-1 model" in capsys.readouterr().err
    # a named model whose files are missing is refused by name (the untrained stand-in is the default model's)
    monkeypatch.setitem(weights.MODELS, "dn", dataclasses.replace(entry, file="gone.pth"))
    assert main(["demo", "--model", "dn", "--out", str(tmp_path / "y")]) != 0
    assert "--model dn: ClassSR-Dn's weights are missing from this install" in capsys.readouterr().err
