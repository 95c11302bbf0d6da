# Razmetka. `make run` starts the app; `make test` runs the whole suite. Both install first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
REQS := $(wildcard requirements/*.txt)
STAMP := $(VENV)/.installed-$(shell cat $(REQS) | sha256sum | cut -c1-16)
FRONTEND_STAMP := frontend/dist/.built

.PHONY: install run test test-backend test-ml test-e2e frontend stop tiny-models models bench-api clean

install: $(STAMP)

$(STAMP): $(REQS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	# torch first and alone: this spec is the local CPU build; anything else pulls CUDA wheels.
	$(PIP) install -q -r requirements/torch.txt
	$(PIP) install -q -c requirements/constraints.txt -r requirements/web.txt -r requirements/ml.txt -r requirements/dev.txt
	# sam2 builds against the torch already installed (no CUDA extension, no fresh torch).
	SAM2_BUILD_CUDA=0 $(PIP) install -q --no-build-isolation -c requirements/constraints.txt -r requirements/sam2.txt
	rm -f $(VENV)/.installed-*
	touch $@

frontend:
	@if [ -f frontend/package.json ]; then cd frontend && npm ci --no-audit --no-fund && npm run build; else echo "no frontend yet"; fi

run: install frontend
	$(PY) manage.py serve

test: install frontend
	$(PY) -m pytest

stop:
	$(PY) -m backend.config.embedded stop

tiny-models: install
	$(PY) -m ml tiny-models --out var/tiny-models

# Real weights from the Hugging Face hub into var/models + var/models/config.json, which `make run`
# then uses. ENGINE=sam3 adds SAM 3 (gated: accept its licence, export HF_TOKEN). Offline: exit 2.
ENGINE ?= gdino-sam2
models: install
	$(PY) -m ml models --out var/models --engine $(ENGINE)

clean:
	rm -rf frontend/dist
