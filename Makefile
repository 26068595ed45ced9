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

.PHONY: setup browser test demo bench clean

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

test: setup browser
	$(PY) -m pytest -n 2 tests

demo: setup
	$(PY) tools/demo.py

bench: setup
	$(PY) bench/run.py

clean:
	rm -rf build $(VENV)
