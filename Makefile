# One command sets everything up on a fresh machine and runs the tests: `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# torch 2.13.0 is the CPU wheel; any other torch requirement pulls gigabytes of CUDA.
TORCH_SPEC ?= torch==2.13.0

.PHONY: install lint test test-slow search clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

lint: install
	$(VENV)/bin/ruff check autodistill tests scripts
	$(VENV)/bin/mypy

test: lint
	$(PY) -m pytest -q -m "not slow"

# The built-in example: fine-tune (once) the MiniLM teacher on BBC News, search students.
search: install
	HF_HUB_OFFLINE=1 $(VENV)/bin/autodistill search configs/quickstart.yaml

test-slow: install
	$(PY) -m pytest -q -m slow

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
