# Every target works from a fresh clone: the virtualenv is created and filled on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install dev test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# newman runs the Postman collection in the suite; installed beside the repo, never committed.
NEWMAN := node_modules/.bin/newman
$(NEWMAN):
	npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error newman@6

dev: $(STAMP)
	$(PY) scripts/dev.py

test: $(STAMP) $(NEWMAN)
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .dev .pytest_cache .mypy_cache .ruff_cache
