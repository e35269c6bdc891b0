# The only way kran's tools get installed: every target that needs a tool
# depends on the step that installs it.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
APT_PACKAGES := etcd-server etcd-client busybox-static gcc libc6-dev make iproute2 kmod
PROTOS := $(wildcard proto/kran/api/v1/*.proto)

.PHONY: deps apt venv proto test unit integration up down clean

deps: apt venv

# apt: Debian packages, installed once (a stamp file records it).
apt: .stamps/apt
.stamps/apt:
	@mkdir -p .stamps
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e '.[dev]' --config-settings editable_mode=compat
	@touch $@

proto: venv
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. --pyi_out=. $(PROTOS)

test: deps
	$(VENV)/bin/pytest -q -p no:cacheprovider tests

unit: deps
	$(VENV)/bin/pytest -q -p no:cacheprovider tests/unit
