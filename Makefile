# `make demo` and `make test` set themselves up on first use: a virtualenv in .venv with torch
# and the project installed (editable, with the test extra).
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision come first, as a pair basicsr 1.4.2 can import (with our alias);
# on the project's machines pip takes these from local wheels.
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
# MMagic gets a virtualenv of its own: its pins (mmcv 2.1.0, numpy<2, old transformers) must not
# bind BasicSR users. mmagic itself goes in with --no-deps (see setup.cfg, extra "mmagic"); mmcv
# 2.1.0 with its compiled ops is built for the installed torch by scripts/build_mmcv.sh (about
# 15 minutes on 2 cores the first time, then taken from ~/.cache/classsr-plugin/wheels).
MMVENV ?= .venv-mmagic
MMPY := $(MMVENV)/bin/python
MMSTAMP := $(MMVENV)/.installed
INPUT ?=
MODEL ?=
TASK ?=
DEMO_MODEL = $(or $(MODEL),$(if $(filter denoise,$(TASK)),dncnn-s25))

.PHONY: demo test mmagic-env bench weights photo-packages clean

$(STAMP): setup.cfg setup.py pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install $(TORCH)
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

$(MMSTAMP): setup.cfg setup.py pyproject.toml scripts/build_mmcv.sh
	test -x $(MMPY) || python3 -m venv $(MMVENV)
	$(MMPY) -m pip install $(TORCH)
	$(MMPY) -m pip install -e '.[test,mmagic]'
	$(MMPY) -m pip install --no-deps mmagic==1.2.0
	MAX_JOBS=$${MAX_JOBS:-2} scripts/build_mmcv.sh $(MMPY)
	touch $(MMSTAMP)

mmagic-env: $(MMSTAMP)

# MODEL=<shipped model> (classsr infer --help lists them); TASK=denoise: the shipped denoiser (dncnn-s25)
demo: $(STAMP)
	$(if $(filter-out denoise,$(TASK)),$(error TASK=$(TASK): no shipped model for it (TASK=denoise, or MODEL=<shipped model>)))
	$(VENV)/bin/classsr demo $(if $(INPUT),--input $(INPUT)) $(if $(DEMO_MODEL),--model $(DEMO_MODEL))

# everything in .venv (BasicSR, mmengine without MMagic), then the MMagic tests in .venv-mmagic
test: $(STAMP) $(MMSTAMP)
	$(PY) -m pytest --ignore=tests/test_mmagic.py
	$(MMPY) -m pytest tests/test_mmagic.py

# Reproduce the shipped weights (scripts/recipe_fsrcnn_x4.sh, resumable steps; about 3 h of training on 2
# cores), then measure them, pick the router and regenerate the model card and README's results
# (scripts/make_card.py). The photos come from Debian packages: `make photo-packages` (root).
WEIGHTS_RUN ?= $(CURDIR)/results/weights_run
PHOTO_PACKAGES := opencv-doc libjxl-testdata lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 \
	plasma-workspace-wallpapers mate-backgrounds
photo-packages:
	apt-get install -y --no-install-recommends $(PHOTO_PACKAGES)

# MODEL=msrresnet: scripts/recipe_msrresnet_x4.sh (hours of CPU: resumable), then its card; MODEL=dncnn:
# scripts/recipe_dncnn_x1.sh (TASK=denoise, the shipped dncnn-s25 and its card; or TASK=deblur, up to
# the held-out table)
weights: $(STAMP)
ifeq ($(MODEL),msrresnet)
	RUN=$(WEIGHTS_RUN) scripts/recipe_msrresnet_x4.sh
	$(PY) scripts/make_card.py --model msrresnet --run $(WEIGHTS_RUN)
else ifeq ($(MODEL),dncnn)
	RUN=$(WEIGHTS_RUN) TASK=$(or $(TASK),denoise) scripts/recipe_dncnn_x1.sh
	$(if $(filter-out denoise,$(or $(TASK),denoise)),,$(PY) scripts/make_card.py --model dncnn-s25 --run $(WEIGHTS_RUN))
else
	RUN=$(WEIGHTS_RUN) scripts/recipe_fsrcnn_x4.sh
	$(PY) scripts/make_card.py --run $(WEIGHTS_RUN)
endif

bench: $(STAMP)
	$(PY) benchmarks/core_speed.py

clean:
	rm -rf $(VENV) $(MMVENV) results build *.egg-info
