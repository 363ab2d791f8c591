# arc-zfs-cache: the two commands a newcomer needs are `make up` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

STACK ?= local
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Local file:// state backend by default; teams point PULUMI_BACKEND_URL at an object store.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.state
export PULUMI_SKIP_UPDATE_CHECK := true
LOCAL_CLUSTER_DIR := $(CURDIR)/.local-cluster
# The local stack's secrets are throwaway test values; real stacks need the team's passphrase.
ifeq ($(STACK),local)
export PULUMI_CONFIG_PASSPHRASE ?= local-stack-not-a-secret
export KUBECONFIG := $(LOCAL_CLUSTER_DIR)/kubeconfig
endif
TOOLCHAIN_ENV = eval "$$(scripts/toolchain.sh env)"
# The local stack's `up` skips the preview (half its time); other stacks keep it, so a
# provider's dry-run refusal stops the update before anything changes on a real cluster.
UP_FLAGS := $(if $(filter local,$(STACK)),--skip-preview)

.PHONY: help deps toolchain node-packages check lint unit e2e test up preview destroy down bench

help: ## List the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.deps: pyproject.toml scripts/deps.py
	$(PYTHON) -m venv $(VENV)
	$(PY) scripts/deps.py test | $(PY) -m pip install --quiet -r /dev/stdin
	touch $@

deps: $(VENV)/.deps ## Create .venv with the pinned Python packages

toolchain: ## Build or reuse the Pulumi CLI, plugins, kube-apiserver, etcd (cached, keyed by version)
	scripts/toolchain.sh

node-packages: ## Install the local node's Debian packages (containerd, runc, CNI plugins; as root)
	scripts/node-packages.sh

check: deps ## Check every stack's config offline (no cluster, no engine)
	$(PY) -m components.config Pulumi.*.yaml

lint: deps ## ruff, mypy (strict) and the layer contracts of .importlinter
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

unit: deps ## Fast unit tier (Pulumi mocks, policies called directly; actionlint on the workflows)
	eval "$$(scripts/toolchain.sh env actionlint)"; $(PY) -m pytest -q -m "not e2e" --ignore=tests/e2e

e2e: deps ## e2e and oracle tiers: real Pulumi engine against a local kube-apiserver (and node)
	scripts/node-packages.sh
	$(TOOLCHAIN_ENV); $(PY) -m pytest -q tests/e2e

test: deps ## Every test tier: config check, lint, unit, e2e, oracle
	$(MAKE) --no-print-directory check lint
	scripts/node-packages.sh
	$(TOOLCHAIN_ENV); $(PY) -m pytest -q

up: deps ## Deploy STACK (default: local, which starts a local control plane first)
	$(TOOLCHAIN_ENV); \
	if [ "$(STACK)" = local ]; then \
	  scripts/node-packages.sh; \
	  $(PY) -m localcluster --state-dir "$(LOCAL_CLUSTER_DIR)" up; \
	fi; \
	mkdir -p .state; \
	pulumi stack select --create "$(STACK)" --non-interactive; \
	pulumi up --yes --non-interactive --stack "$(STACK)" $(UP_FLAGS); \
	if [ "$(STACK)" = local ]; then \
	  $(PY) -m localcluster --state-dir "$(LOCAL_CLUSTER_DIR)" status --wait 60; \
	fi

preview: deps ## pulumi preview of STACK with the policy pack
	$(TOOLCHAIN_ENV); mkdir -p .state; \
	pulumi stack select --create "$(STACK)" --non-interactive; \
	pulumi preview --non-interactive --stack "$(STACK)" --policy-pack policy \
	  --policy-pack-config policy/policy-config.json

destroy: deps ## pulumi destroy of STACK
	$(TOOLCHAIN_ENV); pulumi destroy --yes --non-interactive --stack "$(STACK)"

down: deps ## Destroy the local stack and stop the local control plane
	$(TOOLCHAIN_ENV); \
	if $(PY) -m localcluster --state-dir "$(LOCAL_CLUSTER_DIR)" status >/dev/null 2>&1; then \
	  pulumi destroy --yes --non-interactive --stack local || true; \
	fi; \
	$(PY) -m localcluster --state-dir "$(LOCAL_CLUSTER_DIR)" down

bench: deps ## Benchmarks (ratios, one run): see docs in README
	$(TOOLCHAIN_ENV); $(PY) scripts/bench.py
