# PokeWatch developer commands. `make serve` and `make test` work on a fresh machine
# with Python 3.11+ (they create .venv and install what they need).
PYTHON ?= python3
VENV := .venv
BIN := $(abspath $(VENV))/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 3000

# bentoml build needs uv on PATH; the venv's tools come first.
export PATH := $(BIN):$(PATH)
export OTEL_SDK_DISABLED ?= true

SOAK_MINUTES ?= 30

.PHONY: install serve train test lint format typecheck hygiene bench faults clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "PokeWatch needs Python 3.11 or newer (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv==0.13.9
	$(VENV)/bin/uv pip install --quiet --python $(VENV)/bin/python -e ".[train,pipelines,dev]"
	rm -f $(VENV)/.installed-*
	touch $@

train: install
	pokewatch train

serve: install
	pokewatch train --skip-if-present
	pokewatch keys ensure-dev --port $(PORT)
	bentoml serve service:PokeWatch --host $(HOST) --port $(PORT)

lint: install
	ruff check .
	ruff format --check .

format: install
	ruff format .
	ruff check --fix .

typecheck: install
	mypy

# Hygiene hooks of .pre-commit-config.yaml on every file (lint and types run above).
hygiene: install
	SKIP=ruff-check,ruff-format,mypy pre-commit run --all-files

# Coverage of model/, service/ and pipelines/ with the threshold of [tool.coverage.report].
test: lint typecheck hygiene
	pytest --cov --cov-report=term

# The delivery checks alone (make test runs them too): actionlint on every workflow, hadolint
# on the Bento's generated Dockerfile, the Kubernetes overlays against the schemas,
# scripts/version.sh, compose.yaml. The export-and-serve test of the Bento is e2e (make test).
.PHONY: deploy-check
deploy-check: install
	pytest tests/deploy -m "not e2e"

# Not part of `make test` (about 15 minutes; .ci/run runs both): the real images built and
# run with podman (Debian's podman, runc and debootstrap: no registry needed), the API
# image read-only as the Deployment runs it, a daily run of the pipelines image served by
# the API container, compose.yaml with podman-compose, podman kube play of the dev overlay.
# Skipped with the reason where no container engine can start.
.PHONY: container-check
container-check: install
	pytest -m container tests/containers

# The whole fault suite (tests/faults): `make test` runs its fast part, this adds the slow
# probes marked `faults` (Redis faults across replicas, every model-store corruption, the
# damaged keys file, clock jumps, the full disk in collect and score), 100 random SIGKILLs (50 of the daily job while collecting
# or scoring, 50 of a promotion saving and publishing a model), 300,000 inputs per fuzz
# target and 200 schemathesis examples per operation (25 in make test). .ci/run runs it too.
.PHONY: faults
faults: install
	POKEWATCH_FUZZ_RUNS=300000 POKEWATCH_KILL_TRIALS=50 POKEWATCH_SCHEMATHESIS_EXAMPLES=200 \
	  pytest -rP tests/faults tests/pipelines/test_daily_kill.py tests/e2e/test_schemathesis.py \
	  -m "not container"

# Not part of `make test` or CI (30 minutes; SOAK_MINUTES to change): tests/faults/soak.py.
.PHONY: soak
soak: install
	python -m tests.faults.soak --minutes $(SOAK_MINUTES)

# Not part of `make test`: PokeWatch vs a FastAPI peer and a bare Starlette ceiling, on
# loopback with wrk (installed from Debian if missing) and the shared Redis on 6379
# (one database per app from 9 on, flushed); prints the table and the targets it met
# (docs/performance.md).
bench: install
	uv pip install --quiet --python $(BIN)/python -e ".[bench]"
	python -m benchmarks.run $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
