"""scripts/make_card.py's bookkeeping: the wall times a card reports per recipe step, reusing an
evaluation, and fp16 storage of the shipped files."""
import os
import sys

import pytest
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import make_card  # noqa: E402


def _log(path, stamps):
    with open(path, "w") as f:
        f.writelines(f"2026-12-07 {t},123 INFO: line\n" for t in stamps)


def test_walltimes_redone_step_replaces_and_resumed_training_adds_up(tmp_path, monkeypatch):
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "logs" / "walltimes.txt").write_text(
        "data_denoise 282 s (finished 2026-12-07 13:13:07)\n"
        "oracle_denoise 479 s (finished 2026-12-07 16:41:05)\n"
        "oracle_denoise 507 s (finished 2026-12-07 20:31:40)\n"       # done again: replaces, not 986
        "DnCNN_denoise_O 938 s (finished 2026-12-07 15:56:21)\n"      # the last launch only
        "oracle_lap 121 s (finished 2026-12-07 10:23:33)\n")          # another recipe's step
    exp = run / "experiments" / "DnCNN_denoise_O"
    exp.mkdir(parents=True)
    _log(exp / "train_DnCNN_denoise_O_1.log", ["14:45:20", "14:50:00", "15:00:20"])  # parked: 900 s
    _log(exp / "train_DnCNN_denoise_O_2.log", ["15:40:48", "15:56:20"])              # resumed: 932 s
    (exp / "train_DnCNN_denoise_O_3.log").write_text("no timestamps\n")
    monkeypatch.setattr(make_card, "_earlier_card", lambda spec: {"wall_seconds": {"difficulty_denoise": 226.0}})
    got = make_card.walltimes(make_card.SPECS["dncnn-s25"], str(run))
    assert got == {"data_denoise": 282.0, "oracle_denoise": 507.0, "DnCNN_denoise_O": 1832.0,
                   "difficulty_denoise": 226.0}
    assert make_card.training_seconds(str(tmp_path / "absent")) == 0.0
    # a run paused (SIGSTOP) between two progress lines: the pause counts as 3x the median step
    paused = tmp_path / "paused"
    paused.mkdir()
    with open(paused / "train_x.log", "w") as f:
        f.write("2026-12-07 10:00:00,1 INFO: start\n")
        f.writelines(f"2026-12-07 {t},1 INFO: [epoch:  1, iter:   {i}00, lr:(1e-4,)] l_pix: 0.1\n"
                     for i, t in enumerate(["10:01:40", "10:03:20", "10:05:00", "11:05:00", "11:06:40"], 1))
    assert make_card.training_seconds(str(paused)) == 100 * 4 + 300


def test_shipped_evaluation_is_reused_only_from_the_same_checkpoint_and_settings(tmp_path):
    out, ckpt = tmp_path / "shipped", tmp_path / "router.pth"
    out.mkdir()
    ckpt.write_bytes(b"weights")
    (out / "eval.json").write_text('{"folders": {}}')
    kw = {"budgets": [0.4, 1.0], "oracle_tols": [0.0, 3e-06]}
    assert make_card._same_run(str(out), str(ckpt), kw) is None  # never recorded
    make_card._remember(str(out), str(ckpt), kw, None)
    assert make_card._same_run(str(out), str(ckpt), kw) == {"folders": {}}
    assert make_card._same_run(str(out), str(ckpt), {**kw, "budgets": [0.6, 1.0]}) is None
    other = tmp_path / "other.pth"
    other.write_bytes(b"weights")
    assert make_card._same_run(str(out), str(other), kw) is None
    os.utime(ckpt, (1, 1))  # the checkpoint written again
    assert make_card._same_run(str(out), str(ckpt), kw) is None


def test_fp16_storage_ships_only_within_its_tolerance(tmp_path, monkeypatch):
    """store_half: the shipped files become fp16 (smaller, loading as fp32) when the held-out PSNR of
    ClassSR and of the base on the whole image moves by at most HALF_TOLERANCE, else stay as they were."""
    import shutil
    from classsr_plugin import weights
    from classsr_plugin.checkpoint import load
    from classsr_plugin.imageio import write_picture
    run = tmp_path / "run"
    (run / "photos" / "heldout").mkdir(parents=True)
    write_picture(str(run / "photos" / "heldout" / "crop.png"), weights.demo_photo()[:, 600:760, 900:1060])
    spec = make_card.Spec("tiny", "FSRCNN-O", "unused.pth", routers={})
    files = {}
    for name, src in (("classsr", weights.MODEL), ("reference", weights.REFERENCE)):
        files[name] = str(tmp_path / f"{name}.pth")
        shutil.copyfile(src, files[name])
    monkeypatch.setitem(weights.CATALOGUE, "tiny", weights.Shipped("tiny", "ClassSR-FSRCNN", files["classsr"],
                                                                   "FSRCNN-O", files["reference"], "x4"))
    model, ref = load(files["classsr"]), load(files["reference"])
    rows = next(iter(make_card._eval(spec, str(run), model, str(tmp_path / "fp32"), reference=ref,
                                     reference_name="FSRCNN-O")["folders"].values()))["rows"]
    # the check's own measurement is the evaluation's, row for row
    alone = make_card.held_out_psnr(spec, str(run), model, ref)
    assert alone.keys() == {"ClassSR", "FSRCNN-O, whole image"}
    assert all(v == pytest.approx(rows[k]["psnr"], abs=1e-4) for k, v in alone.items()), (alone, rows)
    before = {k: os.path.getsize(p) for k, p in files.items()}
    monkeypatch.setattr(make_card, "HALF_TOLERANCE", -1.0)  # nothing can pass: the files stay
    facts = make_card.store_half(spec, str(run), model, ref, rows)
    assert not facts["fp16"] and {k: os.path.getsize(p) for k, p in files.items()} == before
    assert not any(f.endswith(".fp16") for f in os.listdir(tmp_path))
    monkeypatch.setattr(make_card, "HALF_TOLERANCE", 0.005)
    facts = make_card.store_half(spec, str(run), model, ref, rows)
    assert facts["fp16"] and all(abs(d) <= 0.005 for d in facts["psnr_change"].values()), facts
    assert all(os.path.getsize(p) < 0.75 * before[k] for k, p in files.items())
    assert load(files["classsr"]).branches[-1].last.weight.dtype == torch.float32
