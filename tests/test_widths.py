"""Latency-aware widths: the choice rule on known latencies, and real measurements end to end."""
import re

import pytest
import yaml

from classsr_plugin import ClassSR
from classsr_plugin.cli import main
from classsr_plugin.derive import candidate_widths, latency_widths

# ms per tile of MSRResNet-like nets on this CPU (REFERENCE.md): 48 runs faster than 40.
LATENCY = {16: 4.9, 24: 11.7, 32: 16.2, 36: 28.7, 40: 31.5, 48: 28.0, 52: 41.1, 56: 38.4, 64: 43.0}


def test_rule_takes_the_widest_width_within_each_time_step():
    assert latency_widths(LATENCY, 3) == [24, 48, 64]       # within 1/3 and 2/3 of 43.0 ms
    assert latency_widths(LATENCY, 2) == [32, 64]           # within 21.5 ms
    assert latency_widths(LATENCY, 4) == [16, 32, 48, 64]
    # fixed costs dominate (FSRCNN on CPU): nothing is 3x faster, take the narrowest ones
    flat = {14: 1.0, 18: 1.05, 22: 1.1, 56: 1.2}
    assert latency_widths(flat, 3) == [14, 18, 56]


def test_candidates_respect_the_multiple():
    cands = candidate_widths(60, 6)
    assert cands[-1] == 60 and all(c % 6 == 0 for c in cands) and cands == sorted(set(cands))


def test_widths_latency_at_build_is_recorded_in_the_weights(tmp_path):
    base = {"type": "SRVGGNetCompact", "num_feat": 32, "num_conv": 2, "upscale": 4}
    model = ClassSR(base=base, widths="latency")
    w = model.widths
    assert len(w) == 3 and w == sorted(set(w)) and w[-1] == 32
    assert model.widths_record.tolist() == w
    model.save(tmp_path / "m.pth")
    assert ClassSR.from_checkpoint(str(tmp_path / "m.pth")).widths == w
    other = [8, 16, 32] if w != [8, 16, 32] else [12, 20, 32]
    with pytest.raises(ValueError, match=re.escape(f"widths: the checkpoint's branches have widths {w}")):
        ClassSR(base=base, widths=other).load_state_dict(model.state_dict())


def test_widths_cli(tmp_path, capsys):
    opt = {"network_g": {"type": "ClassSR", "base": {"type": "SRVGGNetCompact", "num_feat": 24,
                                                      "num_conv": 2, "upscale": 4}}}
    (tmp_path / "o.yml").write_text(yaml.safe_dump(opt))
    assert main(["widths", "-opt", str(tmp_path / "o.yml"), "--classes", "3"]) == 0
    out = capsys.readouterr().out
    line = [l for l in out.splitlines() if l.startswith("proposed widths:")][0]
    widths = [int(x) for x in line.split("[")[1].split("]")[0].split(",")]
    assert len(widths) == 3 and widths == sorted(set(widths)) and widths[-1] == 24
    ClassSR(base=opt["network_g"]["base"], widths=widths)  # the arch accepts them
    assert "| num_feat | ms / tile |" in out


def test_checkpoint_without_record_still_loads_strictly():
    model = ClassSR(base={"type": "FSRCNN", "d": 24})
    state = {k: v for k, v in model.state_dict().items() if k != "widths_record"}
    ClassSR(base={"type": "FSRCNN", "d": 24}).load_state_dict(state)  # strict by default
