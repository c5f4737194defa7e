"""The model cards' verdicts (scripts/card_text.py): the targets are checked on the measured rows,
not typed, so a miss must read "not met"."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts"))
import card_text  # noqa: E402


def _row(psnr, flops):
    return {"psnr": psnr, "flops_percent": flops}


def _card(classsr_db, flops, narrow_db=30.0, budget_dbs=(30.0, 30.5, 31.0)):
    rows = {"input": _row(20.2, 0), "DnCNN-O": _row(31.0, 100), "DnCNN-O, whole image": _row(31.0, 56.0),
            "ClassSR": _row(classsr_db, flops), "ClassSR, regions (margin 4)": _row(classsr_db, 30.0)}
    rows.update({f"ClassSR budget {b:g}": _row(db, 100 * b) for b, db in zip((0.4, 0.7, 1.0), budget_dbs)})
    per_class = [{"class": 0, "name": "num_feat=36", "tiles": 10, "bicubic": 21.0, "branches": [narrow_db, 0, 0]},
                 {"class": 1, "name": "num_feat=50", "tiles": 0, "bicubic": 0.0, "branches": [0, 0, 0]},
                 {"class": 2, "name": "num_feat=64", "tiles": 5, "bicubic": 19.0, "branches": [0, 0, 28.0]}]
    return {"heldout": rows, "base_name": "DnCNN-O", "per_class": per_class}


def test_restoration_verdict_meets_and_misses():
    ok = card_text.restoration_verdict(_card(30.99, 65.0))
    assert "-0.010 dB against DnCNN-O on the same tiles, at 65.0% of its FLOPs" in ok
    assert ok.count("**met**") == 3 and "not met" not in ok
    assert "53.6% of DnCNN-O's FLOPs on the whole image" in ok  # 30 / 56
    # each target fails on its own: too costly, too lossy, a narrow branch below the input, a falling budget
    assert "**not met**" in card_text.restoration_verdict(_card(30.99, 75.0)).splitlines()[0]
    assert "**not met**" in card_text.restoration_verdict(_card(30.95, 65.0)).splitlines()[0]
    assert "**not met** (num_feat=36)" in card_text.restoration_verdict(_card(30.99, 65.0, narrow_db=20.5))
    assert "**not met** (0.7->1)" in card_text.restoration_verdict(_card(30.99, 65.0, budget_dbs=(30, 31.2, 31.0)))


def test_restoration_verdict_judges_the_knob_as_users_run_it():
    """With a ceiling sweep measured, monotone is judged on it; the forced (target) sweep's fall is
    reported, not hidden."""
    card = _card(30.99, 65.0, budget_dbs=(30, 31.2, 31.0))
    card["knob"] = {f"ClassSR budget <= {b:g}": _row(db, f) for b, db, f in ((0.4, 30.0, 40), (0.7, 30.99, 65),
                                                                              (1.0, 30.99, 65))}
    text = card_text.restoration_verdict(card)
    assert "runs it (ceiling" in text and "0.4: 30.00, 0.7: 30.99, 1: 30.99 dB): **met**" in text
    assert "falls 0.7->1" in text
    card["knob"]["ClassSR budget <= 1"] = _row(30.5, 65)
    assert "**not met** (0.7->1)" in card_text.restoration_verdict(card)


def test_msrresnet_card_names_its_own_base_everywhere():
    """The SR card text written for FSRCNN, rendered for MSRResNet from the same kind of facts: no
    FSRCNN word may leak into another model's card."""
    import json
    from classsr_plugin import weights
    card = json.load(open(weights.CATALOGUE["fsrcnn"].facts_path))
    card = json.loads(json.dumps(card).replace("FSRCNN-O", "MSRResNet-O"))
    card["base_name"] = "MSRResNet-O"
    card["candidates"].pop("shared")
    card["classsr"]["widths"] = [36, 52, 64]
    card["wall_seconds"] = {"MSRResNet_x4_O": 12392.0}
    card_md, block = card_text.CARDS["msrresnet"]
    for text in (card_md(card, "TABLE"), block(card, "TABLE")):
        assert "FSRCNN" not in text and "fsrcnn" not in text, [ln for ln in text.splitlines() if "FSRCNN" in ln]
        assert "MSRResNet-O" in text and "36,\n  52 features" in text or "features = [36, 52, 64]" in text
    assert "Separate branches against shared weights" not in block(card, "TABLE")


def test_storage_line_only_where_measured():
    import json
    from classsr_plugin import weights
    card = json.load(open(weights.CATALOGUE["fsrcnn"].facts_path))
    card_md = card_text.CARDS["fsrcnn"][0]
    assert "Storage:" not in card_md(card, "TABLE")
    card["storage"] = {"fp16": True, "psnr_change": {"ClassSR": -0.0012, "FSRCNN-O, whole image": 0.0003},
                       "bytes_fp32_fp16": {"c.pth": [2 * 2**20, 2**20]}, "tolerance_db": 0.005}
    text = card_md(card, "TABLE")
    assert "ClassSR -0.0012 dB, FSRCNN-O, whole image +0.0003 dB (tolerance 0.005 dB): shipped as fp16" in text
    assert "c.pth 2.0 -> 1.0 MiB" in text
