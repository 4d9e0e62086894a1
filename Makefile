# Two commands on a fresh machine: `make run` and `make test`.
# Everything is installed into .venv by uv, which is itself bootstrapped from PyPI into .tools.
PYTHON ?= python3
UV_VERSION ?= 0.13.8
UV := .tools/bin/uv
VENV := .venv
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)

.PHONY: run test unit demo migrate lint fmt schemas model bench bench-scale chaos clean

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

# tests/browser drives Debian's Chromium (Playwright never downloads a browser): installed
# when missing, as root or through sudo without a password.
APT_GET = $(if $(filter 0,$(shell id -u)),,sudo -n) env DEBIAN_FRONTEND=noninteractive apt-get
.PHONY: chromium
chromium:
	@command -v chromium >/dev/null 2>&1 || $(APT_GET) install -y -q chromium \
		|| { $(APT_GET) update -q && $(APT_GET) install -y -q chromium; }

test: $(VENV)/.synced chromium  ## The whole suite, against real NATS JetStream and PostgreSQL
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
	$(VENV)/bin/python tests/bench/run.py --curve 100000,1000000 --json bench-results.json \
		--py-spy $(VENV)/bin/py-spy

# The replay curve up to 10 million events: 1 h to 1 h 20 min on 2 cores, ~27 GB free in
# TMPDIR (tests/bench/README.md); it refuses, saying so, when the disk is too small.
bench-scale: $(VENV)/.synced  ## The replay phase at 100k, 1M and 10M events (long: see tests/bench)
	$(VENV)/bin/python tests/bench/run.py --phases replay --curve 100000,1000000,10000000 \
		--each-until 1000000 --json bench-scale.json --py-spy $(VENV)/bin/py-spy

chaos: $(VENV)/.synced  ## A longer soak of tests/chaos: LAPOR_CHAOS_SECONDS of faults at LAPOR_CHAOS_RATE/s
	LAPOR_CHAOS_SECONDS=$${LAPOR_CHAOS_SECONDS:-300} LAPOR_CHAOS_RATE=$${LAPOR_CHAOS_RATE:-30} \
		$(VENV)/bin/pytest tests/chaos -q -s

clean:
	rm -rf .venv .tools .lapor .pytest_cache .ruff_cache

# --- the container image ---------------------------------------------------------------
# `make images` builds deploy/Dockerfile for every platform in IMAGE_PLATFORMS with docker
# buildx, into IMAGE_OUTPUT: by default an OCI archive in dist/ (a multi-platform image
# cannot be loaded into a local docker); IMAGE_OUTPUT=type=registry pushes IMAGE instead.
# Where no container engine or no builder for those platforms answers, it stops with one
# line saying what is missing. deploy/docs/operations.md: building and pushing.
IMAGE ?= lapor:dev
IMAGE_PLATFORMS ?= linux/amd64,linux/arm64
IMAGE_OUTPUT ?= type=oci,dest=dist/lapor-image.oci.tar
image_comma := ,
# The platforms the builder has: asked only when `make images` runs, and only once.
image_builder_platforms = $(eval image_builder_platforms := $(subst *,,$(subst $(image_comma), ,$(shell docker buildx inspect --bootstrap 2>/dev/null | sed -n 's/^Platforms: *//p'))))$(image_builder_platforms)

.PHONY: images
images:  ## The runtime image for IMAGE_PLATFORMS (docker buildx); one line if it cannot be built here
	$(if $(shell command -v docker 2>/dev/null),,$(error make images: no container engine here (docker not found); build where Docker with buildx runs))
	$(if $(strip $(image_builder_platforms)),,$(error make images: no buildx builder answers (docker buildx inspect --bootstrap failed): start Docker, or docker buildx create --use))
	$(foreach p,$(subst $(image_comma), ,$(IMAGE_PLATFORMS)),$(if $(filter $(p),$(image_builder_platforms)),,$(error make images: the buildx builder cannot build $(p) (it builds $(strip $(image_builder_platforms))): docker buildx create --use --driver docker-container, with QEMU for other architectures)))
	@mkdir -p dist
	docker buildx build --platform $(IMAGE_PLATFORMS) -f deploy/Dockerfile -t $(IMAGE) --output $(IMAGE_OUTPUT) .
