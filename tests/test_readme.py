"""README's Python examples, run as written (its train.py: tests/test_own_arch.py)."""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(ROOT, "README.md")) as f:
    BLOCKS = re.findall(r"```python\n(.*?)```", f.read(), re.S)


def run(i) -> dict:
    namespace = {"__name__": "readme"}
    exec(compile(BLOCKS[i], f"README.md, Python example {i + 1}", "exec"), namespace)
    return namespace


def test_from_python():
    ns = run(0)
    lr, out = ns["lr"], ns["out"]
    assert out.image.shape == (3, 4 * lr.shape[1], 4 * lr.shape[2])
    assert sum(out.counts) == out.class_map.numel() == (400 // 32 + 1) * (640 // 32)  # 32 px cells
    assert ns["model"].branches[-1].last.weight.equal(ns["trained"].branches[-1].last.weight)  # FSRCNN-O both


def test_mmagic_config():
    ns = run(2)
    assert ns["model"]["generator"]["type"] == "ClassSR" and ns["model"]["phase"] == "branches"


def test_every_example_is_run():
    assert len(BLOCKS) == 3 and "train_pipeline" in BLOCKS[1]  # the own train.py, run by test_own_arch
