# Two commands on a fresh machine: `make run` and `make test`.
# Everything is installed into .venv by uv, which is itself bootstrapped from PyPI into .tools.
PYTHON ?= python3
UV_VERSION ?= 0.13.8
UV := .tools/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: run test unit demo migrate lint fmt schemas model bench chaos clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

$(VENV)/.synced: $(UV) uv.lock pyproject.toml */pyproject.toml
	$(UV) sync --all-packages --frozen
	@touch $@

run: $(VENV)/.synced  ## Start embedded NATS + PostgreSQL, migrate, run all four services
	$(VENV)/bin/lapor run

demo: $(VENV)/.synced  ## Submit a realistic batch to a running system and print the completion report
	$(VENV)/bin/lapor demo

migrate: $(VENV)/.synced
	$(VENV)/bin/lapor migrate

test: $(VENV)/.synced  ## The whole suite, against real NATS JetStream and PostgreSQL
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

unit: $(VENV)/.synced
	$(VENV)/bin/pytest -m "not connected"

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

fmt: $(VENV)/.synced
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

schemas: $(VENV)/.synced  ## Regenerate the committed JSON Schemas of every event
	$(VENV)/bin/python -m lapor.shared.schemas shared/schemas

model: $(VENV)/.synced  ## Retrain the routing model shipped with the router (development corpus)
	$(VENV)/bin/python -m lapor.router.training

bench: $(VENV)/.synced  ## Benchmarks; each prints a table and writes JSON beside it
	$(VENV)/bin/python -m lapor.devtools.routing_bench --json bench-routing.json
	$(VENV)/bin/python tests/bench/run.py --json bench-results.json --py-spy $(VENV)/bin/py-spy

chaos: $(VENV)/.synced  ## A longer soak of tests/chaos: LAPOR_CHAOS_SECONDS of faults at LAPOR_CHAOS_RATE/s
	LAPOR_CHAOS_SECONDS=$${LAPOR_CHAOS_SECONDS:-300} LAPOR_CHAOS_RATE=$${LAPOR_CHAOS_RATE:-30} \
		$(VENV)/bin/pytest tests/chaos -q -s

clean:
	rm -rf .venv .tools .lapor .pytest_cache .ruff_cache
