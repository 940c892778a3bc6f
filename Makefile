# Two commands do everything on a fresh machine (Python 3.10+):
#   make book   set up .venv, execute every chapter with papermill, build _build/html
#   make test   set up .venv, run the whole test suite (which also executes and builds the book)
#   make check  the unit tests alone (everything but the executed book and the browsers), about a minute
# PROFILE picks how much `make book` computes: auto (default), smoke, book or full.
# CONSTRAINTS pins the exact versions CI used; `make book CONSTRAINTS=` takes the newest allowed.

PYTHON ?= python3
VENV ?= .venv
PROFILE ?= auto
CONSTRAINTS ?= ci/constraints.txt
BIN := $(VENV)/bin

.PHONY: book test check bench setup clean lock

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml $(CONSTRAINTS)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt $(if $(CONSTRAINTS),-c $(CONSTRAINTS)) -e .
	touch $@

book: setup
	$(BIN)/python ci/book.py --profile $(PROFILE)

test: setup
	$(BIN)/python -m pytest

check: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/python ci/bench_fit.py
	$(BIN)/python ci/bench_recipe.py

# Record the versions of this environment as the new constraints (after a deliberate upgrade).
lock: setup
	{ echo "# Exact versions CI used (pip freeze of .venv; regenerate with 'make lock')."; \
	  $(BIN)/python -m pip freeze --exclude-editable | grep -v '^-e'; } > ci/constraints.txt

clean:
	rm -rf _build
