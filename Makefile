# make run: start the whole loop (local control plane, autoscaler, gateway) in the foreground.
# make test: install, then run the whole test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# The tritonclient wheel drops a bare perf_analyzer into .venv/bin that lacks its libraries;
# the shared installer replaces it with a wrapper and puts the binary here.
PERF_ANALYZER := $(VENV)/lib/perf_analyzer/perf_analyzer.bin
# Debian's chromium, which the status page's browser test drives headless through playwright
# (`playwright install` cannot download a browser here); that test skips without it.
CHROMIUM_STAMP := $(VENV)/.chromium
# A real Triton for tests/compat/test_triton.py: the nvidia-pytriton wheel bundles tritonserver
# and its Python backend (CPU-only here). Its own venv, from the same interpreter as $(VENV):
# pytriton needs numpy < 2 and tritonclient ~= 2.50, which clash with the project's pins.
# Not fatal: when the install fails the Triton tests skip (loadtest/stack/triton.py).
TRITON_VENV := .venv-triton
TRITON_STAMP := $(TRITON_VENV)/.installed
SHARED_TOOLS ?= ../shared/tools

.PHONY: install run test test-unit test-compat fuzz lint bench protos clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

$(PERF_ANALYZER): | $(STAMP)
	$(SHARED_TOOLS)/install-perf-analyzer $(VENV) $(PY)

$(CHROMIUM_STAMP): | $(STAMP)
	@if ! command -v chromium >/dev/null; then \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  { $$sudo apt-get update -q && \
	    $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } || \
	  echo "WARNING: chromium could not be installed; the browser test will skip" >&2; \
	fi
	touch $@

$(TRITON_STAMP): | $(STAMP)
	@{ test -x $(TRITON_VENV)/bin/python || $(PY) -m venv $(TRITON_VENV); } && \
	  $(TRITON_VENV)/bin/python -m pip install -q 'nvidia-pytriton==0.7.0' 'numpy<2' || \
	  echo "WARNING: nvidia-pytriton could not be installed; the Triton tests will skip" >&2
	mkdir -p $(TRITON_VENV) && touch $@

run: $(STAMP)
	$(VENV)/bin/loadtest stack

# Two pytest runs: tests/compat drives the system with tritonclient, whose protobuf
# registrations clash with the project's own in one process (see tests/compat/README.md).
test: $(STAMP) $(PERF_ANALYZER) $(CHROMIUM_STAMP) $(TRITON_STAMP)
	$(PY) -m pytest -q tests
	$(PY) -m pytest -q -p no:cacheprovider tests/compat

test-unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

test-compat: $(STAMP) $(PERF_ANALYZER) $(TRITON_STAMP)
	$(PY) -m pytest -q -p no:cacheprovider tests/compat

# The property-based tests of tests/fuzz (in `make test` too, derandomized, about a minute) with
# FUZZ_SCALE (tests/fuzz/budget.py) times the examples, random each run: tens of minutes.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(PY) -m pytest -q -o timeout=3600 tests/fuzz

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# The standard set (data path, goodput, discovery, autoscaling, generator ceiling), one report:
# reports/bench.json and reports/bench.md.
bench: $(STAMP)
	$(VENV)/bin/loadtest bench-all

protos: $(STAMP)
	$(PY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. \
	  protos/model_config.proto protos/grpc_service.proto protos/autoscaler.proto \
	  protos/externalscaler.proto

clean:
	rm -rf $(VENV) $(TRITON_VENV) build *.egg-info
