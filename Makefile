# The only way kran's tools get installed: every target that needs a tool
# depends on the step that installs it.
#
#   make up      install, start a one-host cluster in the background, import images
#   make down    stop what `make up` started (data in /var/lib/kran survives)
#   make lab-up  a multi-host lab on this machine (HOSTS=3 namespaces, 3 etcd, 3 controllers)
#   make lab-down  remove every trace of the lab
#   make test    unit + integration tests (real etcd, controller and agent processes)
#   make unit    unit tests only
#   make images  build the busybox and hello-world rootfs tarballs into out/images
#   make proto   regenerate kran/api/v1 from proto/
#   make bench   start-latency and memory figures against runc and docker (BENCHMARKS.md)
#   make bench-pull  pull and push of a 220 MB image against docker (BENCHMARKS.md)
#   make bench-build  a multi-stage build, cold and warm, against docker build (BENCHMARKS.md)
#   make clean   remove out/ and the install stamps
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
APT_PACKAGES := python3 python3-venv etcd-server etcd-client busybox-static gcc libc6-dev \
	make iproute2 kmod runc docker-registry openssl
PROTOS := $(wildcard proto/kran/api/v1/*.proto)
IMAGES_DIR := out/images
IMAGES := $(IMAGES_DIR)/busybox.tar $(IMAGES_DIR)/hello-world.tar
PYTEST := $(VENV)/bin/pytest -q -p no:cacheprovider

.PHONY: deps apt venv proto images test unit integration up down lab-up lab-down bench bench-pull bench-build bench-deps compat clean

deps: apt venv

# apt: Debian packages, installed once (a stamp file records it).
apt: .stamps/apt
# Depends on the Makefile so a package added to APT_PACKAGES gets installed.
# kran runs etcd and docker-registry as its own processes: on a host with an
# init system a policy-rc.d keeps their system services from starting while
# they install (docker-registry's would listen on every address, port 5000).
.stamps/apt: Makefile
	@mkdir -p .stamps
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  policy=/usr/sbin/policy-rc.d; \
	  if [ ! -e $$policy ]; then \
	    printf '#!/bin/sh\nexit 101\n' >$$policy && chmod 0755 $$policy && trap "rm -f $$policy" EXIT; \
	  fi; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@touch $@

# The editable install maps each top-level package when it runs, so a new
# package (a new __init__.py) installs again.
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml $(wildcard $(addsuffix /__init__.py,kran controller agent cli)) | .stamps/apt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --disable-pip-version-check --upgrade pip
	$(PIP) install -q --disable-pip-version-check -e '.[dev]'
	@touch $@

proto: venv
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. --pyi_out=. $(PROTOS)

# Reproducible tarballs: the same sources give the same image ids.
images: $(IMAGES)
$(IMAGES) &: deploy/images/build.sh deploy/images/hello.c | .stamps/apt
	deploy/images/build.sh $(IMAGES_DIR)

# The integration tests take the tarballs built here (KRAN_IMAGES_DIR).
test: deps images
	KRAN_IMAGES_DIR=$(CURDIR)/$(IMAGES_DIR) $(PYTEST) tests

unit: deps
	$(PYTEST) tests/unit

integration: deps images
	KRAN_IMAGES_DIR=$(CURDIR)/$(IMAGES_DIR) $(PYTEST) tests/integration

# The bench compares with docker: docker.io is installed for it alone (never for make test),
# and bench/install_docker.sh keeps its system service from starting.
bench-deps: .stamps/docker
.stamps/docker: bench/install_docker.sh | .stamps/apt
	bench/install_docker.sh
	@touch $@

# Images saved by kran load into a private dockerd and back, with the same id.
compat: deps images bench-deps
	$(PY) -m bench.docker_roundtrip

# BENCH_ARGS passes options, e.g. make bench BENCH_ARGS="--phases agent --runs 20".
bench: deps images bench-deps
	$(PY) -m bench.start_latency $(BENCH_ARGS)

# A private docker-registry on loopback serves both sides, e.g. make bench-pull BENCH_ARGS="--runs 9".
bench-pull: deps images bench-deps
	$(PY) -m bench.pull $(BENCH_ARGS)

# docker build runs with the classic builder (DOCKER_BUILDKIT=0), e.g. make bench-build BENCH_ARGS="--runs 10".
bench-build: deps images bench-deps
	$(PY) -m bench.build $(BENCH_ARGS)

up: deps images
	@KRAN_VENV=$(CURDIR)/$(VENV) KRAN_IMAGES_DIR=$(CURDIR)/$(IMAGES_DIR) deploy/up.sh

down:
	@KRAN_VENV=$(CURDIR)/$(VENV) deploy/down.sh

# The multi-host lab (deploy/lab.py): its state in /var/lib/kran-lab/kranlab.
HOSTS ?= 3
lab-up: deps images
	KRAN_IMAGES_DIR=$(CURDIR)/$(IMAGES_DIR) $(PY) -m deploy.lab up --hosts $(HOSTS)

lab-down: deps
	$(PY) -m deploy.lab down

clean:
	rm -rf out .stamps $(VENV)/.installed
