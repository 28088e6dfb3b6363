# palisade.ebpf — developer and CI entry points.
#
#   make setup             install what is missing (root; idempotent, seconds when done)
#   make test              setup, then unit, integration, molecule, sanity, lint (fail fast)
#   make test-unit         unit tests (no root needed)
#   make test-integration  integration tests against the real kernel (root), one at a time
#   make molecule          molecule scenarios under extensions/molecule (root)
#   make sanity            ansible-test sanity on a copy of the collection
#   make lint              ansible-lint, production profile, offline
#   make demo              Star Wars demo (setup first)
#   make bench             benchmarks, bench/run.sh (setup first; P2-P5 need root;
#                          BENCH_ARGS=--quick for the smoke configuration)
#   make clean | distclean
#
# Every recipe sees the venv's tools first on PATH and the in-repo collection
# tree; `. scripts/env.sh` gives an interactive shell the same environment.
# docs/testing.md describes the test suite and how to run part of it.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.NOTPARALLEL:

VENV := $(CURDIR)/.venv
BIN := $(VENV)/bin
COLLECTIONS := $(CURDIR)/collections

export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg

PYTEST_UNIT_ARGS ?= -n 2
MOLECULE_ARGS ?= --all
# Base config first so prerun stays off (no galaxy-installed copy of the
# collection); the shared extensions/molecule/config.yml and each scenario's
# molecule.yml are merged on top, as molecule does by default.
MOLECULE_BASE := -c $(CURDIR)/scripts/molecule-base.yml -c $(CURDIR)/extensions/molecule/config.yml

.PHONY: help setup test test-unit test-integration molecule sanity lint demo bench clean distclean

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

setup:
	@bash $(CURDIR)/scripts/setup.sh

# Stages run in this order and stop at the first failure; each reports its time.
test: setup
	@for t in test-unit test-integration molecule sanity lint; do \
	  start=$$(date +%s); echo "==> make $$t"; \
	  if ! $(MAKE) --no-print-directory $$t; then \
	    echo "==> make $$t FAILED after $$(( $$(date +%s) - start ))s"; exit 1; \
	  fi; \
	  echo "==> make $$t passed in $$(( $$(date +%s) - start ))s"; \
	done

# pytest fails when it collects nothing (exit 5), and tests/integration's
# conftest fails the run when, as root, every test of a module skipped.
test-unit:
	$(BIN)/pytest -q tests/unit $(PYTEST_UNIT_ARGS)

# Serial on purpose: the tests share the kernel (bpffs, netns, links).
test-integration:
	$(BIN)/pytest -q -p no:cacheprovider tests/integration

molecule:
	cd $(CURDIR) && $(BIN)/molecule $(MOLECULE_BASE) test $(MOLECULE_ARGS)

sanity:
	@bash $(CURDIR)/scripts/ansible-test-sanity.sh $(SANITY_ARGS)

lint:
	cd $(CURDIR) && $(BIN)/ansible-lint --offline

demo: setup
	@bash $(CURDIR)/scripts/demo.sh

bench: setup
	@bash $(CURDIR)/bench/run.sh $(BENCH_ARGS)

# Generated state only; the venv survives (distclean removes it too).
clean:
	rm -rf collections tests/output .pytest_cache .hypothesis .ansible .cache
	find . -path ./.venv -prune -o -path ./.git -prune -o -name __pycache__ -type d -print0 | xargs -0r rm -rf

distclean: clean
	rm -rf .venv
