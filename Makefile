# Two set-up commands on a fresh Debian/Ubuntu machine: `make demo` and `make test`.
# Both install what is missing (Debian packages via apt, Python packages in .venv).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := snapd squashfs-tools dosfstools mtools fdisk e2fsprogs qemu-system-x86 \
	qemu-utils ovmf zstd bmap-tools grub-pc-bin grub-efi-amd64-bin grub-common busybox-static \
	cpio xz-utils gnupg util-linux dpkg-dev
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps apt-deps venv test test-unit test-integration test-e2e lint demo bench clean

all: test

apt-deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

venv: $(VENV)/.installed

deps: apt-deps venv

test: deps
	$(PY) -m pytest tests -q

test-unit: venv
	$(PY) -m pytest tests/unit -q

test-integration: deps
	$(PY) -m pytest tests/integration -q

test-e2e: deps
	$(PY) -m pytest tests/e2e -q

lint: venv
	$(PY) -m ruff check src tests bench
	$(PY) -m ruff format --check src tests bench
	$(PY) -m mypy

demo: deps
	$(PY) -m ucimage.reference.demo

bench: deps
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache
