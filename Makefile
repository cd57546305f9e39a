# Two entry points: `make demo` and `make test`. Both create/refresh .venv themselves.
# `make test` runs as any user: without chromium (installed by tools/ensure_browser.sh only as
# root) the browser tests are skipped with the reason; HTE_MRT_REQUIRE_BROWSER=1 (.ci/run)
# makes them required. `make dist` builds the sdist and wheel into dist/.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON_FOR_VENV = $(shell ./tools/find_python.sh)

.PHONY: demo test lint bench clean venv dist docs

$(VENV)/.created:
	@py="$$(./tools/find_python.sh)" || exit 1; \
	echo "Creating $(VENV) with $$py"; \
	"$$py" -m venv $(VENV) && $(PY) -m pip install -q --upgrade pip && touch $@

# Reinstall whenever pyproject.toml changes.
$(VENV)/.installed-test: pyproject.toml $(VENV)/.created
	$(PY) -m pip install -q -e '.[test,all]'
	@touch $@ $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(VENV)/.created
	$(PY) -m pip install -q -e '.[all]'
	@touch $@

venv: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(VENV)/bin/hte-mrt run models/heartsteps_v1_primary.toml

test: $(VENV)/.installed-test
	./tools/ensure_browser.sh
	$(VENV)/bin/ruff check src tests benchmarks notebooks
	$(PY) -m pytest -q $(PYTEST_ARGS)

# The documentation site -> docs/_build/html (warnings are errors). HTE_MRT_QUICK=1 runs the
# notebooks with small draws; executed notebooks are cached per mode under docs/_build.
docs: $(VENV)/.installed-test
	PYTHONPATH=$(CURDIR)/src $(PY) -m sphinx -b html -W --keep-going docs docs/_build/html

bench: $(VENV)/.installed-test
	$(PY) benchmarks/wcls.py

dist: $(VENV)/.installed-test
	$(PY) -m build --outdir dist .
	$(PY) -m twine check --strict dist/*

clean:
	rm -rf $(VENV) build dist *.egg-info src/*.egg-info .pytest_cache reports
