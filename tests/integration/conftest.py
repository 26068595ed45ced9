"""Fixtures that serve winsim hosts in-process for integration tests (and anything else that wants them).

- `estate_factory(count=1, personalities=("modern",), host_factory=None, **Estate kwargs)` starts an
  Estate in a fresh state directory and returns it; every estate it made is stopped at teardown.
  `estate.inventory_path` is a ready Ansible inventory; `estate.hosts[i].host` is the SimHost.
- `estate`: one started estate; configure it with `@pytest.mark.winsim(count=2, personalities=[...])`.
- `ansible_env`: environment for running .venv/bin/ansible* against such an inventory.

Addresses are collision-safe across pytest-xdist workers: worker gwN serves from 127.(64+N).x.y,
and every listener binds port 0 (a free port chosen by the kernel), so parallel workers, parallel
pytest runs and a `python -m winsim serve` on 127.0.0.2:5985 never meet.
"""
from __future__ import annotations

import ipaddress
import itertools
import os
import sys

import pytest

from winsim.estate import Estate, default_host_factory

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.dirname(sys.executable)
_allocated = itertools.count()  # hosts handed out by this worker so far


def _worker_block() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    digits = "".join(ch for ch in worker if ch.isdigit())
    return 64 + (int(digits or 0) % 128)


def allocate_addresses(count: int) -> str:
    """First address of `count` consecutive loopback addresses reserved for this worker."""
    first = next(_allocated)
    for _ in range(count - 1):
        next(_allocated)
    base = ipaddress.IPv4Address("127.%d.0.2" % _worker_block()) + first
    return str(base)


def pytest_configure(config):
    config.addinivalue_line("markers", "winsim(**kwargs): arguments for the `estate` fixture "
                                       "(count, personalities, host_factory, transport, ...)")


@pytest.fixture
def estate_factory(tmp_path):
    made = []

    def make(count: int = 1, personalities=("modern",), host_factory=None, **kwargs) -> Estate:
        state = tmp_path / ("estate%d" % len(made))
        estate = Estate(str(state), count, personalities, base_address=allocate_addresses(count),
                        http_port=0, https_port=0, host_factory=host_factory or default_host_factory,
                        **kwargs)
        made.append(estate)
        estate.start()
        estate.inventory_path = estate.write_inventory(str(state / "inventory.yml"))
        return estate

    yield make
    for estate in made:
        estate.stop()


@pytest.fixture
def estate(request, estate_factory):
    marker = request.node.get_closest_marker("winsim")
    return estate_factory(**(marker.kwargs if marker else {}))


@pytest.fixture
def ansible_env(tmp_path):
    """Environment for subprocess runs of ansible/ansible-playbook from the repo's .venv."""
    env = dict(os.environ)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": os.path.join(REPO, "build", "collections"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
        "ANSIBLE_HOME": str(tmp_path / "ansible-home"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
    })
    env.pop("ANSIBLE_CONFIG", None)
    return env
