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
	@echo "make site     build the course site into site/_build/html (needs npm; lectures run once, then cached)"
	@echo "make lab      open the student's JupyterLab on exercises/\$$A (nbgrader Validate, no formgrader)"
	@echo "make browser  install Debian's chromium for the browser tests (root; they skip without it)"

# Grading contains each submission best with bubblewrap (Debian package `bubblewrap`, see README "Sandbox").
# Installed when missing and possible (root with apt-get); otherwise grading still works, with weaker containment
# that the grader's log names.
SANDBOX := $(VENV)/.sandbox-tools
$(SANDBOX):
	@if command -v bwrap >/dev/null 2>&1; then echo "sandbox: bubblewrap found"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap >/dev/null 2>&1; }; } \
	  && echo "sandbox: installed bubblewrap" \
	  || echo "sandbox: could not install bubblewrap; grading runs without file system isolation (see README)"; \
	else echo "sandbox: bubblewrap is missing and cannot be installed here (needs root and apt-get); grading runs without file system isolation (see README)"; fi
	@mkdir -p $(VENV) && touch $@

# The browser tests drive Debian's chromium (never a downloaded browser). Installed when missing and possible;
# without it tests/test_site.py and tests/test_lab.py skip and say why.
BROWSER := $(VENV)/.browser
$(BROWSER):
	@if command -v chromium >/dev/null 2>&1; then echo "browser: $$(chromium --version 2>/dev/null)"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1; } \
	  && echo "browser: installed $$(chromium --version 2>/dev/null)" \
	  || echo "browser: could not install chromium; the browser tests will skip"; \
	else echo "browser: chromium is missing and cannot be installed here; the browser tests will skip"; fi
	@mkdir -p $(VENV) && touch $@

# The scale-out tests (tests/test_scale.py) start Debian's PostgreSQL server from a temporary folder; a Dask
# cluster comes from PyPI with the venv. Installed when missing and possible; without it those tests skip.
POSTGRES := $(VENV)/.postgresql
$(POSTGRES):
	@if command -v pg_ctl >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then \
	  echo "postgresql: found"; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null 2>&1; } \
	  && echo "postgresql: installed" \
	  || echo "postgresql: could not install it; the PostgreSQL tests will skip"; \
	else echo "postgresql: missing and cannot be installed here; the PostgreSQL tests will skip"; fi
	@mkdir -p $(VENV) && touch $@

$(STAMP): pyproject.toml requirements.lock
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev,site,scale]'
	@touch $@

demo: $(STAMP) $(SANDBOX)
	$(PY) -m autograder demo --jobs $(JOBS)

test: $(STAMP) $(SANDBOX) $(BROWSER) $(POSTGRES)
	@command -v npm >/dev/null 2>&1 && $(MAKE) --no-print-directory $(MATHJAX) || echo "site: npm missing, the site tests will skip"
	$(PY) -m pytest -n $(JOBS) --dist loadscope --durations=20

test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow"

release: $(STAMP)
	$(PY) -m autograder release --all

grade: $(STAMP) $(SANDBOX)
	$(PY) -m autograder autograde $(A) --jobs $(JOBS)

clean:
	rm -rf var _build .pytest_cache .hypothesis

# The course site and the student's JupyterLab (tests/test_site.py, tests/test_lab.py test both in Chromium).
.PHONY: site lab browser clean-site
MATHJAX := node_modules/mathjax/es5/tex-mml-chtml.js

$(MATHJAX): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# Lectures not in the cache yet run $(JOBS) at a time before Sphinx reads them (site/_ext/parallel_execution.py);
# `make site JOBS=1` is myst-nb's serial execution.
site: $(STAMP) $(MATHJAX)
	$(VENV)/bin/sphinx-build -W --keep-going -b html -D parallel_execution_jobs=$(JOBS) site site/_build/html
	@echo "site: file://$(CURDIR)/site/_build/html/index.html"

# lab/ holds the student-side Jupyter config: nbgrader's assignment list and Validate (one line per question,
# autograder.lab), not the formgrader. JupyterLab starts at the course root (lectures and exercises one click
# away; nbgrader_config.py is read), every released exercise is put in the exchange, and the Assignment List
# fetches into var/student/ (lab/nbgrader_config.py) and submits back through the exchange, where
# `python -m autograder collect <assignment> --exchange` collects (student id: NBGRADER_STUDENT_ID or login).
lab: $(STAMP)
	@mkdir -p var/exchange var/student
	@for a in $$(ls exercises); do $(VENV)/bin/nbgrader release_assignment --force --log-level=WARN $$a; done
	JUPYTER_CONFIG_PATH=$(CURDIR)/lab $(VENV)/bin/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) \
		--ServerApp.root_dir=$(CURDIR) exercises/$(A)/$(A).ipynb

browser:
	@command -v chromium >/dev/null || { apt-get update && apt-get install -y chromium; }
	@chromium --version

clean-site:
	rm -rf site/_build site/lectures site/assignments tests/screenshots
