# Two entry points (see README.md): `make book` and `make test`.
# Both create .venv from requirements.txt on first use, so they work on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# TensorFlow's C++ log lines carry nothing for a reader; keep them out of outputs.
export TF_CPP_MIN_LOG_LEVEL ?= 3

.PHONY: setup book test check-html clean

$(VENV)/.installed: requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.txt -e .
	touch $@

setup: $(VENV)/.installed

# Executes every chapter and writes the HTML book to _build/html (index: _build/html/index.html).
# -W: warnings are errors; -n: nitpicky; --keep-going: report every warning, not just the first.
# A chapter that fails or times out stops the build (execute.raise_on_error in _config.yml);
# the per-cell timeout follows the profile (tools/book_kernels.py).
book: setup
	$(BIN)/jupyter-book build . -W -n --keep-going

# All tests: unit tests, then every chapter executed top to bottom (--durations prints per-notebook times).
# book/conftest.py sets the per-cell timeout from the profile, as for `make book`.
test: setup
	$(BIN)/python -m pytest tests
	$(BIN)/python -m pytest --nbmake --durations=0 book

# Opens every built chapter in headless Chromium (Debian's `chromium`); screenshots land in _build/screenshots.
check-html: setup
	$(BIN)/python tools/check_book_html.py --html _build/html --screenshots _build/screenshots

clean:
	rm -rf _build
