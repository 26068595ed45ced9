"""plugin_utils/action.py: what the shared action-plugin module does on import, in the main process,
for the workers Ansible forks from it."""
import os
import subprocess
import sys

# In a fresh interpreter (this test process may have loaded test plugins already): import the module as
# the strategy does, then look a test up as a worker's Jinja environment does (`x is defined` in a task
# argument); it must import no test plugin module of its own.
_WORKER = """
import sys
from ansible_collections.winsec.ipsec.plugins.plugin_utils import action  # noqa: F401
from ansible.plugins.loader import test_loader
before = {m for m in sys.modules if m.startswith("ansible.plugins.test.")}
assert test_loader.get("ansible.builtin.match") is not None
loaded = sorted(m for m in sys.modules if m.startswith("ansible.plugins.test.") and m not in before)
print("loaded in the worker:", loaded)
sys.exit(1 if loaded or not before else 0)
"""


def test_importing_it_loads_the_jinja_test_plugins_so_a_forked_worker_does_not():
    done = subprocess.run([sys.executable, "-c", _WORKER], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ))
    assert done.returncode == 0, done.stdout + done.stderr
