# Developer entry points; see the Development section of README.md.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Written after a successful install; pip runs again only when pyproject.toml is newer.
INSTALLED := $(VENV)/.installed

.PHONY: test demo

test: $(INSTALLED)
	$(BIN)/regcred cluster build
	$(BIN)/lint-imports
	$(BIN)/pytest

demo: $(INSTALLED)
	$(BIN)/regcred cluster up

$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -e '.[test]'
	touch $@
