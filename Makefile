# Two commands do everything on a fresh machine with Python 3.11+:
#   make demo   compose/render with the bundled data and model, results in out/
#   make test   unit tests + every notebook (fast mode) under nbval
# Both build .venv from the pinned requirements when it is missing or older than them.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FAST_ENV := MUSICUTILS_FAST=1 TF_CPP_MIN_LOG_LEVEL=3

.PHONY: demo test test-browser lab lint bench venv clean

venv: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed; found " + sys.version.split()[0])'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

demo: $(STAMP)
	$(PY) -m musicutils demo --out out

test: $(STAMP)
	$(PY) -m ruff check musicutils tests scripts benchmarks
	$(FAST_ENV) $(PY) -m pytest -q -p no:cacheprovider --nbval-lax --nbval-current-env -m "not browser" tests notebooks

# The five notebooks run from JupyterLab's menus in headless Chromium (Debian's `chromium`
# package), with checks on the page and screenshots in out/browser/ (scripts/browser_check.py).
test-browser: $(STAMP)
	$(FAST_ENV) $(PY) -m pytest -q -p no:cacheprovider -m browser tests/test_browser_check.py
	$(PY) scripts/browser_check.py

# JupyterLab on notebooks/ (also as root); prints the URL to open. Same command as test-browser.
lab: $(STAMP)
	$(PY) scripts/lab.py

lint: $(STAMP)
	$(PY) -m ruff check musicutils tests scripts benchmarks
	$(PY) -m ruff format --check musicutils tests scripts benchmarks

bench: $(STAMP)
	$(PY) benchmarks/bench_midi.py
	$(PY) benchmarks/bench_audio.py
	$(PY) benchmarks/bench_train_step.py
	$(PY) benchmarks/bench_generate.py
	$(PY) benchmarks/bench_music.py
	$(PY) benchmarks/bench_corpus.py --counts 2000

clean:
	rm -rf out .pytest_cache .ruff_cache
