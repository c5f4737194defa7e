"""The BasicSR options files are written from one table per network
(configs/basicsr/make_configs.py): the committed files must be exactly what it writes."""
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = os.path.join(ROOT, "configs", "basicsr")
sys.path.insert(0, FOLDER)
import make_configs  # noqa: E402


def test_committed_options_files_are_the_generated_ones():
    made = make_configs.all_files()
    committed = sorted(f for f in os.listdir(FOLDER) if f.endswith(".yml"))
    assert committed == sorted(made), "run: python configs/basicsr/make_configs.py"
    for name, text in made.items():
        with open(os.path.join(FOLDER, name)) as f:
            assert f.read() == text, f"{name} differs from make_configs.py's; edit the table, then run it"
        opt = yaml.safe_load(text)
        assert opt["name"] == name[:-4] and opt["network_g"]["type"] in ("ClassSR", "FSRCNN", "MSRResNet", "DnCNN")
