# `make demo` and `make test` set themselves up on first use: a virtualenv in .venv with torch
# and the project installed (editable, with the test extra).
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision come first, as a pair basicsr 1.4.2 can import (with our alias);
# on the project's machines pip takes these from local wheels.
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
# MMagic gets a virtualenv of its own: its pins (mmcv-lite, numpy<2, old transformers) must not
# bind BasicSR users. mmagic itself goes in with --no-deps (see setup.cfg, extra "mmagic").
MMVENV ?= .venv-mmagic
MMPY := $(MMVENV)/bin/python
MMSTAMP := $(MMVENV)/.installed
INPUT ?=

.PHONY: demo test mmagic-env bench weights clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install $(TORCH)
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

$(MMSTAMP): setup.cfg pyproject.toml
	test -x $(MMPY) || python3 -m venv $(MMVENV)
	$(MMPY) -m pip install $(TORCH)
	$(MMPY) -m pip install -e '.[test,mmagic]'
	$(MMPY) -m pip install --no-deps mmagic==1.2.0
	touch $(MMSTAMP)

mmagic-env: $(MMSTAMP)

demo: $(STAMP)
	$(VENV)/bin/classsr demo $(if $(INPUT),--input $(INPUT))

# everything in .venv (BasicSR, mmengine without MMagic), then the MMagic tests in .venv-mmagic
test: $(STAMP) $(MMSTAMP)
	$(PY) -m pytest --ignore=tests/test_mmagic.py
	$(MMPY) -m pytest tests/test_mmagic.py

# Reproduce the shipped weights: photos from Debian's opencv-doc and scikit-image, FSRCNN, the
# three ClassSR phases and FSRCNN-O on CPU (scripts/cpu_run_fsrcnn.sh), export into the package,
# then measure and write the model card (scripts/make_card.py). About 1.5 h on 2 cores.
# The phase-2 model ships: at this length phase 3 lowers PSNR (MODEL_CARD.md has both).
# On a GPU with DIV2K: pass HR folders to the script and raise N0..N3 (see its header).
WEIGHTS_RUN ?= $(CURDIR)/results/weights_run
WEIGHTS_DIR := classsr_plugin/weights
weights: $(STAMP)
	RUN=$(WEIGHTS_RUN) scripts/cpu_run_fsrcnn.sh
	$(VENV)/bin/classsr export -opt configs/basicsr/ClassSR_FSRCNN_x4_2_classifier.yml \
	  -w $(WEIGHTS_RUN)/experiments/ClassSR_FSRCNN_x4_2_classifier/models/net_g_latest.pth \
	  -o $(WEIGHTS_DIR)/classsr_fsrcnn_x4.pth
	$(VENV)/bin/classsr export -opt configs/basicsr/FSRCNN_x4_baseline.yml \
	  -w $(WEIGHTS_RUN)/experiments/FSRCNN_x4_O/models/net_g_latest.pth \
	  -o $(WEIGHTS_DIR)/fsrcnn_o_x4.pth
	$(PY) scripts/make_card.py --run $(WEIGHTS_RUN) --eval-out results/weights_eval

bench: $(STAMP)
	$(PY) benchmarks/core_speed.py

clean:
	rm -rf $(VENV) $(MMVENV) results build *.egg-info
