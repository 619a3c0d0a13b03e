# KeepDesk — the repository's user interface.
#   make run    install, local MariaDB (when MYSQL_HOST is unset), schema, doors + workers
#   make test   install, throwaway MariaDB, full test suite
#   make demo   the whole flow against the sandbox, no credentials
#   make bench  benchmarks (see bench/)
#   make reliability  the long crash, fault and hostile-input suite (a fast subset runs in make test)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=
# The suite mostly waits on real processes and sandboxes: three sessions side by side, each
# with its own MariaDB and sandboxes (pytest-xdist), take about half the time of one.
TEST_WORKERS ?= 3

.PHONY: install mariadb chromium run polling worker migrate test reliability demo bench clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

# MariaDB from Debian's packages when mariadbd is missing (as root; otherwise a clear message).
mariadb: install
	$(PY) -c "from models.mariadb import ensure_installed; ensure_installed()"

# Debian's chromium and chromium-driver for the browser tests (as root; otherwise a clear message).
chromium: install
	$(PY) -c "from sandbox.browser import ensure_installed; ensure_installed()"

run: install mariadb
	$(PY) -m bot run

polling: install mariadb
	$(PY) -m bot polling

worker: install
	$(PY) -m bot worker

migrate: install mariadb
	$(PY) -m bot migrate

# The test session starts its own MariaDB in a temporary directory and stops it at the end.
test: install mariadb chromium
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup $(PYTEST_ARGS)

# The same scenarios as the fast subset in `make test`, at full size: more processes,
# trials, kills and faults. Prints its figures and writes them into docs/guarantees.md.
reliability: install mariadb
	KEEPDESK_RELIABILITY=full $(PY) -m pytest -q -s -p no:cacheprovider tests/reliability tests/test_hostile_input.py tests/test_fuzz.py tests/test_secrets.py

demo: install mariadb
	$(PY) -m bot demo

bench: install mariadb
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache
