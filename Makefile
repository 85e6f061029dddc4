# Developer entry points; see CONTRIBUTING.md.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Written after a successful install; pip runs again only when a pyproject.toml is newer
# (the operator's, or the workshop's in dev/).
INSTALLED := $(VENV)/.installed

# `make bench` settings: namespaces per run (the largest also runs the steady-state
# scenarios and sizes the many-credentials one; `N=` runs only that), the idle window in
# seconds, a kubeconfig to benchmark instead of a local control plane, and further
# `python -m bench` options (`python -m bench --help`).
N ?= 100 1000
IDLE ?= 60
BENCH_KUBECONFIG ?=
ARGS ?=
BENCH_INSTALLED := $(VENV)/.installed-bench

# `make soak` settings: the fault trials at full size (`make test` runs them small).
# SEED replays a run (every trial prints its seed).
SOAK_TRIALS ?= 10
SOAK_NAMESPACES ?= 500
SEED ?=

.PHONY: test demo demo-kind bench soak release

# The Go tools, and with a Docker engine the kind tier's images, are built before pytest,
# one at a time, so a cold build (a new machine, a new pin) is not counted against a
# test's timeout. Without an engine the kind tier is left to its tests, which skip it.
test: $(INSTALLED)
	$(BIN)/regcred-dev cluster build
	$(BIN)/regcred-dev release tools
	if docker info >/dev/null 2>&1; then \
		$(BIN)/regcred-dev kind python-base && $(BIN)/regcred-dev kind build; fi
	$(BIN)/lint-imports
	$(BIN)/pytest

soak: $(INSTALLED)
	$(BIN)/regcred-dev cluster build
	REGCRED_SOAK_TRIALS=$(SOAK_TRIALS) REGCRED_SOAK_NAMESPACES=$(SOAK_NAMESPACES) \
		REGCRED_SOAK_SEED=$(SEED) $(BIN)/pytest -m soak -s tests/reliability

demo: $(INSTALLED)
	$(BIN)/regcred-dev cluster build
	$(BIN)/regcred-dev demo

# A kind cluster (regcred-demo) running the operator's image; a tenant Pod pulls a private
# image once a RegistryCredential selects its namespace. KIND_ARGS: e.g. --keep.
KIND_ARGS ?=
demo-kind: $(INSTALLED)
	$(BIN)/regcred-dev kind demo $(KIND_ARGS)

# `make release VERSION=X.Y.Z`: the image, the Helm chart, the wheel and sdist, an SBOM
# and cosign signatures, into dist/release/X.Y.Z (docs/releases.md). Settings:
#   REGISTRY=host[:port]/path   push the image and chart there (default: none; a registry
#                               on 127.0.0.1 lives for the run and its contents are saved)
#   REGISTRY_CA=ca.pem          trust this CA for REGISTRY
#   COSIGN_KEY=cosign.key       sign with it (password in COSIGN_PASSWORD); or KEYLESS=true
#   PYTHON_IMAGE=image          the Dockerfile's base (default: its own); LOCAL_BASE=true
#                               builds one here with debootstrap instead
#   PLATFORMS=linux/amd64,...   build with buildx for these platforms
#   RELEASE_DIR=folder          where the files go (default: dist/release/VERSION)
VERSION ?=
REGISTRY ?=
REGISTRY_CA ?=
COSIGN_KEY ?=
KEYLESS ?=
PYTHON_IMAGE ?=
LOCAL_BASE ?=
PLATFORMS ?=
RELEASE_DIR ?=
release: $(INSTALLED)
	$(if $(VERSION),,$(error give VERSION=X.Y.Z))
	$(BIN)/regcred-dev release build --version $(VERSION) \
		$(if $(REGISTRY),--registry $(REGISTRY)) $(if $(REGISTRY_CA),--registry-ca $(REGISTRY_CA)) \
		$(if $(COSIGN_KEY),--cosign-key $(COSIGN_KEY)) $(if $(filter true,$(KEYLESS)),--keyless) \
		$(if $(PYTHON_IMAGE),--python-image $(PYTHON_IMAGE)) \
		$(if $(filter true,$(LOCAL_BASE)),--local-python-base) \
		$(if $(PLATFORMS),--platforms $(PLATFORMS)) $(if $(RELEASE_DIR),--output $(RELEASE_DIR))

bench: $(BENCH_INSTALLED)
	$(if $(BENCH_KUBECONFIG),,$(BIN)/regcred-dev cluster build)
	$(BIN)/python -m bench --sizes $(N) --idle-seconds $(IDLE) \
		$(if $(BENCH_KUBECONFIG),--kubeconfig $(BENCH_KUBECONFIG)) $(ARGS)

$(BENCH_INSTALLED): $(INSTALLED)
	$(BIN)/python -m pip install -e '.[test,bench]' -e ./dev
	touch $@

$(INSTALLED): pyproject.toml dev/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[test]' -e ./dev
	touch $@
