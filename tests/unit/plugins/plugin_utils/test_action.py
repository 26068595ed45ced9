"""plugin_utils/action.py: what the shared action-plugin module does on import, in the main process,
for the workers Ansible forks from it."""
import os
import subprocess
import sys

import pytest

# In a fresh interpreter (this test process may have loaded the plugins already): import the module as
# the strategy does, then look a test or filter up as a worker's Jinja environment does (`x is defined`,
# `x | default(...)` in a task argument); it must import no plugin module of its own.
_WORKER = """
import sys
from ansible_collections.winsec.ipsec.plugins.plugin_utils import action  # noqa: F401
from ansible.plugins.loader import filter_loader, test_loader
kind, name = sys.argv[1], sys.argv[2]
prefix = "ansible.plugins.%s." % kind
before = {m for m in sys.modules if m.startswith(prefix)}
assert (test_loader if kind == "test" else filter_loader).get(name) is not None
loaded = sorted(m for m in sys.modules if m.startswith(prefix) and m not in before)
print("loaded in the worker:", loaded)
sys.exit(1 if loaded or not before else 0)
"""


@pytest.mark.parametrize("kind, name", [("test", "ansible.builtin.match"), ("filter", "ansible.builtin.to_json")])
def test_importing_it_loads_the_jinja_plugins_so_a_forked_worker_does_not(kind, name):
    done = subprocess.run([sys.executable, "-c", _WORKER, kind, name], capture_output=True, text=True,
                          timeout=120, env=dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr
