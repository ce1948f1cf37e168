# Set-up and checks. `make demo` and `make test` work on a fresh machine: they create
# the virtualenv and install what they need (Debian packages too, when run as root).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench install clean system-deps bytecode lock serve

# Development and test installs come from the lock file: exact versions with their hashes,
# the build backend included, so a fresh machine gets what the suite was written against
# and a registry publishing something new changes nothing until `make lock` is run.
LOCK := requirements/dev.lock
PIP  := $(BIN)/python -m pip --quiet --disable-pip-version-check

$(STAMP): pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --require-hashes --no-deps -r $(LOCK)
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

# Refresh the lock on purpose: newest releases within pyproject.toml's ranges (pip-tools,
# itself pinned, in a virtualenv of its own), for every extra (dev, test, server). Commit the
# result after `make test` passes. `make lock UPGRADE=` only adds what pyproject.toml gained,
# keeping every other pin.
LOCK_VENV := .venv-lock
UPGRADE   ?= --upgrade

lock:
	[ -x $(LOCK_VENV)/bin/pip-compile ] || { $(PYTHON) -m venv $(LOCK_VENV) && \
		$(LOCK_VENV)/bin/pip install --quiet --disable-pip-version-check pip-tools==7.7.0; }
	$(LOCK_VENV)/bin/pip-compile --quiet $(UPGRADE) --generate-hashes --all-build-deps --allow-unsafe \
		--all-extras --strip-extras --no-emit-find-links --no-emit-index-url -o $(LOCK) pyproject.toml

install: $(STAMP) bytecode

# Compile engine/ to bytecode: Python reads .pyc files even where PYTHONDONTWRITEBYTECODE
# is set (as on these machines), but never writes them, so an editable install would
# otherwise compile every module at every `runbook` start. Only changed files recompile.
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q engine

DEMO_HOME := $(CURDIR)/.runbook/demo

demo: $(STAMP) bytecode
	@echo "== 1. validate every shipped runbook and scenario"
	$(BIN)/runbook validate runbooks/ scenarios/
	@echo "== 2. the dry-run plan of a runbook (nothing is executed)"
	$(BIN)/runbook run --dry-run runbooks/disk-full.yaml -i host=db-1
	@echo "== 3. a game-day drill, end to end: the scenario's scripted team works the runbook"
	@echo "==    against a simulated log storm (nothing real is touched), 60x faster than real time"
	RUNBOOK_HOME=$(DEMO_HOME) $(BIN)/runbook drill scenarios/disk-full-log-storm.yaml --scripted --speed 60
	@echo "== 4. every scenario unattended on the virtual clock, as CI runs them"
	$(BIN)/runbook test scenarios/
	@echo "== 5. the service: an Alertmanager webhook starts a run, a worker resolves it (demo/service.py)"
	$(BIN)/python demo/service.py

# The service, embedded: one process, the store in SQLite under $(DEMO_HOME), workers
# in-process, http://127.0.0.1:8080 (/healthz, /readyz, /metrics). Ctrl-C stops it.
serve: $(STAMP) bytecode
	RUNBOOK_HOME=$(DEMO_HOME) $(BIN)/runbook serve

# Debian packages the tests need: openssh-server, a real sshd for tests/integration/test_ssh*;
# postgresql, a real PostgreSQL for the service's store and workers (tests/integration/postgres.py
# makes a throwaway cluster; the package's own cluster is not used). Installed when missing and
# we are root; otherwise those tests fail (they never skip).
system-deps:
	@[ -x /usr/sbin/sshd ] || [ "$$(id -u)" != 0 ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || [ "$$(id -u)" != 0 ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
	@{ [ -x /usr/bin/prometheus ] && [ -x /usr/bin/prometheus-alertmanager ]; } || [ "$$(id -u)" != 0 ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus prometheus-alertmanager; }

test: $(STAMP) bytecode system-deps
	@[ -x /usr/bin/chromium ] || [ "$$(id -u)" != 0 ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }
	$(BIN)/ruff check engine tests bench demo
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check engine tests bench demo
	$(BIN)/mypy

# Benchmarks (BENCHMARKS.md). The baseline tools live in their own virtualenv, created
# once: they are never dependencies of the project. `make bench BENCH=validate` runs one.
BENCH_VENV := .venv-bench

$(BENCH_VENV)/bin/check-jsonschema:
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check check-jsonschema

# The fan-out benchmark compares with Ansible (paramiko and OpenSSH connection plugins).
$(BENCH_VENV)/bin/ansible: $(BENCH_VENV)/bin/check-jsonschema
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check ansible-core paramiko

# The live-run benchmark compares with Chaos Toolkit.
$(BENCH_VENV)/bin/chaos: $(BENCH_VENV)/bin/check-jsonschema
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check chaostoolkit

bench: $(STAMP) bytecode system-deps $(BENCH_VENV)/bin/check-jsonschema $(BENCH_VENV)/bin/ansible $(BENCH_VENV)/bin/chaos
	$(BIN)/python bench/run.py $(BENCH)

clean:
	rm -rf $(VENV) .venv-bench $(LOCK_VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
