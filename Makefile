# Two commands on a fresh clone: `make demo` (train + register + score on M4 Hourly) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# torch first: the CPU build. A local wheel (find-links) or PyTorch's CPU index; an
# unconstrained `pip install torch` would pull the CUDA build (several GB).
TORCH_SPEC ?= torch>=2.6,<2.14
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: setup demo serve bench-serve bench-train test test-container lint ui clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "torch==2.13.0+cpu" 2>/dev/null \
	  || $(PY) -m pip install --quiet "$(TORCH_SPEC)" --index-url $(TORCH_CPU_INDEX)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	$(VENV)/bin/stackcast train --config configs/m4_hourly.yaml
	$(VENV)/bin/stackcast evaluate --model models:/stackcast@champion

serve: setup
	$(VENV)/bin/stackcast serve --model-uri models:/stackcast@champion --port 8000

bench-serve: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) bench/serve.py

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The training benchmark's own environment: the project plus the peer (neuralforecast), kept
# out of the project's venv.
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed: pyproject.toml
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet "torch==2.13.0+cpu" 2>/dev/null \
	  || $(BENCH_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)" --index-url $(TORCH_CPU_INDEX)
	$(BENCH_VENV)/bin/python -m pip install --quiet -e ".[bench]"
	touch $@

bench-train: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python bench/train.py $(BENCH_ARGS)

test: lint
	$(VENV)/bin/pytest

# Only the container tests (tests/container, part of `make test`): builds the image and runs the
# compose stack for real; needs a Docker engine (README, "Deployment").
test-container: setup
	$(VENV)/bin/pytest -m container

UI_PORT ?= 5000
ui: setup
	$(VENV)/bin/mlflow ui --backend-store-uri sqlite:///mlflow.db --port $(UI_PORT)

clean:
	rm -rf mlflow.db mlartifacts checkpoints
