# Two entry points for a newcomer: `make test` and `make demo`.
# Both create (or reuse) .venv inside the repo, install the pinned requirements, and make the
# collection importable as winsec.ipsec through build/collections/ansible_collections/winsec/ipsec.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
COLLECTIONS := build/collections
LINK := $(COLLECTIONS)/ansible_collections/winsec/ipsec
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/$(COLLECTIONS)
export PYTHONPATH := $(CURDIR)/$(COLLECTIONS):$(CURDIR)
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: setup browser services lint sanity ee test demo bench clean

setup: $(VENV)/.installed $(LINK)

$(VENV)/.installed: requirements/runtime.txt requirements/test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements/test.txt
	touch $@

$(LINK):
	mkdir -p $(dir $@)
	ln -sfn ../../../.. $@

# The drift report test renders its HTML page in a real headless browser: Debian's chromium.
browser:
	command -v chromium >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y chromium)

# The shared fact cache test starts its own Redis server: Debian's redis-server.
services:
	command -v redis-server >/dev/null || ($(SUDO) apt-get update && $(SUDO) apt-get install -y redis-server)

# ruff on every Python file of the repository (ruff.toml says which rules and why).
lint: setup
	$(VENV)/bin/ruff check --no-cache .

# The whole `ansible-test sanity` set on what users install: the Galaxy tarball, built and installed
# (Galaxy and Automation Hub run sanity on the tarball too). The installed tree lies outside this
# repository, where ansible-test would list only the files git tracks, and none under build/.
# ansible-test keeps a virtual environment per test under HOME (~/.ansible/test); SANITY_HOME keeps
# them apart from the user's own and across clones (about 8 minutes to build them on 2 cores, then
# about 2.5 minutes a run). It bootstraps pip into them with a get-pip script it downloads from a host
# outside the package registries unless its cache holds one: tests/sanity/get_pip.py stands in for it
# (ensurepip, then pip from the package index).
SANITY_HOME ?= $(HOME)/.cache/winsec.ipsec/ansible-test-home
SANITY_ROOT := $(or $(TMPDIR),/tmp)/winsec-ipsec-sanity-$(shell echo '$(CURDIR)' | cksum | cut -d' ' -f1)
SANITY_TREE := $(SANITY_ROOT)/collections/ansible_collections/winsec/ipsec
sanity: setup
	rm -rf $(SANITY_ROOT)
	$(VENV)/bin/ansible-galaxy collection build --output-path $(SANITY_ROOT)/dist . >/dev/null
	ANSIBLE_COLLECTIONS_PATH=$(SANITY_ROOT)/collections $(VENV)/bin/ansible-galaxy collection install --force \
		-p $(SANITY_ROOT)/collections $(SANITY_ROOT)/dist/winsec-ipsec-*.tar.gz >/dev/null
	mkdir -p $(SANITY_HOME)/.ansible/test/cache
	cp tests/sanity/get_pip.py $(SANITY_HOME)/.ansible/test/cache/$$($(PY) tests/sanity/get_pip.py --cache-name)
	cd $(SANITY_TREE) && HOME=$(SANITY_HOME) $(CURDIR)/$(VENV)/bin/ansible-test sanity --color no \
		--python $$($(CURDIR)/$(PY) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
	rm -rf $(SANITY_ROOT)

# The execution environment's build context (execution-environment.yml): the Galaxy tarball where the
# definition names it, then `ansible-builder create`, which needs no container runtime. Build the image
# from build/ee/context with podman or docker (README.md, "Running on AWX / Automation Platform").
# `make test` checks this context and that what it installs runs (tests/integration/test_execution_environment.py).
ee: setup
	rm -rf build/ee
	$(VENV)/bin/ansible-galaxy collection build --output-path build/ee . >/dev/null
	$(VENV)/bin/ansible-builder create -f execution-environment.yml -c build/ee/context --output-filename Containerfile

test: setup browser services lint sanity
	$(PY) -m pytest -n 2 tests

demo: setup
	$(PY) tools/demo.py

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf build $(VENV)
