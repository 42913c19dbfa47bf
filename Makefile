# Quick start: `make demo` and `make test` each install what they need into .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The board's environment for `edge run --sim`: pynq 3.1 as on PYNQ 3.1 images (it pins numpy<2, pycparser 2.x),
# so it cannot share edge's environment.
PYNQ_VENV := .venv-pynq
PYNQ_STAMP := $(PYNQ_VENV)/.installed
DEMO_OUT ?= demo-build

.PHONY: install demo test lint clean

install: $(STAMP) $(PYNQ_STAMP)

# torch goes first, pinned to the local CPU wheel: installed later as a dependency it would pull GBs of CUDA.
# torchvision 0.28.0 is the release built for torch 2.13 (tests build its models; onnx2torch needs it).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0 torchvision==0.28.0
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,onnx,open-fpga]"
	touch $(STAMP)

$(PYNQ_STAMP):
	test -x $(PYNQ_VENV)/bin/python || $(PYTHON) -m venv $(PYNQ_VENV)
	$(PYNQ_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PYNQ_VENV)/bin/python -m pip install --quiet "pynq==3.1.2" "pycparser<3"
	touch $(PYNQ_STAMP)

demo: $(STAMP)
	$(BIN)/edge inspect
	$(BIN)/edge build --board pynq-z2 -o $(DEMO_OUT)

# Two pytest-xdist workers on the two cores, one compute thread each (tests/conftest.py): a module's tests stay on
# one worker (its module fixtures are built once), zoo models are trained once and shared through a lock.
test: install
	OMP_NUM_THREADS=1 EDGE_PYNQ_PYTHON=$(abspath $(PYNQ_VENV))/bin/python $(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=30

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) $(PYNQ_VENV) $(DEMO_OUT) .pytest_cache .ruff_cache *.egg-info
