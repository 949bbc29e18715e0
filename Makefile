# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
JOBS   ?= $(shell nproc 2>/dev/null || echo 2)
A      ?= ch01_univariate

.PHONY: demo test test-fast release grade clean help
help:
	@echo "make demo     set up .venv, release the exercises and grade the bundled demo class"
	@echo "make test     set up .venv and run the whole test suite"
	@echo "make release  regenerate exercises/ from solutions/"
	@echo "make grade A=<assignment>  autograde var/submitted for one assignment"

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]'
	@touch $@

demo: $(STAMP)
	$(PY) -m autograder demo --jobs $(JOBS)

test: $(STAMP)
	$(PY) -m pytest -n $(JOBS) --dist loadgroup

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

release: $(STAMP)
	$(PY) -m autograder release --all

grade: $(STAMP)
	$(PY) -m autograder autograde $(A) --jobs $(JOBS)

clean:
	rm -rf var _build .pytest_cache .hypothesis
