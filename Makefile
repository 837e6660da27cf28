# Every target works from a fresh clone: the virtualenv is created and filled on first use.
# The interpreter the virtualenv is made from: the distribution's Python 3 when there is one, as
# Debian builds it with profile-guided optimisation and LTO (so is the image's python:3.12); a
# default source build, such as pyenv's, is not, and ran the same code 5-14 % slower
# (docs/benchmarks.md). Else python3 on PATH; PYTHON=... picks another.
PYTHON ?= $(or $(wildcard /usr/bin/python3),python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install browser dev test lint format bench clean

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

# Debian's Chromium and ChromeDriver drive the browser test (tests/e2e/test_browser.py); a test
# tool's own browser download cannot work offline. Installed with apt-get when missing and running
# as root; otherwise one line says what to install. The variables are overridable for tests.
CHROMIUM ?= /usr/bin/chromium
CHROMEDRIVER ?= /usr/bin/chromedriver
APT_GET ?= apt-get
RUN_AS_UID ?= $(shell id -u)
BROWSER_PACKAGES := chromium chromium-driver
BROWSER_MISSING = $(strip $(foreach path,$(CHROMIUM) $(CHROMEDRIVER),$(if $(wildcard $(path)),,$(path))))
browser:
ifneq ($(BROWSER_MISSING),)
ifneq ($(RUN_AS_UID),0)
	$(error make test needs Debian's $(BROWSER_PACKAGES) ($(BROWSER_MISSING) missing): run 'sudo apt-get install -y $(BROWSER_PACKAGES)')
endif
	DEBIAN_FRONTEND=noninteractive $(APT_GET) update -qq
	DEBIAN_FRONTEND=noninteractive $(APT_GET) install -y -qq $(BROWSER_PACKAGES)
	@test -x $(CHROMIUM) && test -x $(CHROMEDRIVER) || { \
	  echo "make test: $(BROWSER_PACKAGES) installed, but $(BROWSER_MISSING) is still missing" >&2; \
	  exit 1; }
else
	@:
endif

dev: $(STAMP)
	$(PY) scripts/dev.py

test: $(STAMP) $(NEWMAN) browser
	CHROMIUM=$(CHROMIUM) CHROMEDRIVER=$(CHROMEDRIVER) $(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) .dev .pytest_cache .mypy_cache .ruff_cache
