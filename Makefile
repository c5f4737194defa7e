# `make demo` and `make test` set themselves up on first use: a virtualenv in .venv with torch
# and the project installed (editable, with the test extra).
VENV ?= .venv
PY := $(VENV)/bin/python
# torch and torchvision come first, as a pair basicsr 1.4.2 can import (with our alias);
# on the project's machines pip takes these from local wheels.
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed
INPUT ?=

.PHONY: demo test bench clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install $(TORCH)
	$(PY) -m pip install -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/classsr demo $(if $(INPUT),--input $(INPUT))

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/core_speed.py

clean:
	rm -rf $(VENV) results build *.egg-info
