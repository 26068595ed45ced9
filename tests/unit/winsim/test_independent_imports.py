"""winsim must not import the engine (plugins/): it is what the engine is checked against (issue 14.1).

Two checks: a static scan of every winsim module's imports, and an import-time check that imports
every winsim module in a fresh interpreter where `plugins/` cannot be imported at all.

What winsim still imports is listed in STILL_IMPORTED; the list may only shrink. A new import of
plugins/ fails the scan; removing one fails it too until the list says so, so that the list stays true.
"""
import ast
import os
import subprocess
import sys

WINSIM = os.path.join(os.path.dirname(__file__), "..", "..", "..", "winsim")
ENGINE = "ansible_collections.winsec.ipsec.plugins"

# module (path under winsim/) -> engine modules it imports. Shrinks to {} as issue 14.1 proceeds.
STILL_IMPORTED = {}


def _modules():
    for folder, _dirs, files in os.walk(WINSIM):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                yield os.path.relpath(path, WINSIM).replace(os.sep, "/"), path


def _engine_imports(path):
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read(), path)
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module + "." + alias.name for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            if name.startswith(ENGINE + ".") or name.startswith("plugins."):
                rest = name.split(".ipsec.plugins.module_utils.ipsec.", 1)[-1]
                found.add(rest.split(".")[0])
    return found


def test_winsim_imports_from_plugins_only_what_the_list_admits():
    actual = {rel: imports for rel, path in _modules() for imports in [_engine_imports(path)] if imports}
    assert actual == STILL_IMPORTED


def test_winsim_names_the_collection_nowhere():
    """Not even by name: SimHost.state() once handed its objects over as the collection's model classes
    (host.py's as_loaded_model); the engine's tests now read a host through the engine's own readers."""
    named = {rel for rel, path in _modules() if "ansible_collections" in open(path, encoding="utf-8").read()}
    assert named == set()


def _fresh(code):
    root = os.path.abspath(os.path.join(WINSIM, ".."))
    env = dict(os.environ, PYTHONPATH=root)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                          cwd=root).stdout.strip()


def test_the_tools_do_not_import_the_host():
    """No host <-> tools cycle (issue 14.3): the tools take the SPD entries from winsim/state/spd.py."""
    assert _fresh("import sys, winsim.tools; print('winsim.host' in sys.modules)") == "False"


def test_importing_winsim_changes_nothing_on_disk(tmp_path):
    """winsim/__init__.py used to link build/collections on import (issue 14.3)."""
    probe = tmp_path / "copy"
    import shutil
    shutil.copytree(WINSIM, probe / "winsim")
    code = "import sys; sys.path.insert(0, %r); import winsim.host, winsim.estate" % str(probe)
    subprocess.run([sys.executable, "-c", code], check=True, env={"PATH": os.environ.get("PATH", "")})
    assert sorted(p.name for p in probe.iterdir()) == ["winsim"]


def test_the_scan_sees_an_engine_import(tmp_path):
    """The scan itself catches the import forms winsim could use."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from %s.module_utils.ipsec.model import HostState\n"
                     "import %s.module_utils.ipsec.registry\n" % (ENGINE, ENGINE))
    assert _engine_imports(str(probe)) == {"model", "registry"}


def test_engine_free_modules_import_where_plugins_cannot_be_imported():
    """In a fresh interpreter whose import system refuses plugins/, every winsim module not on
    STILL_IMPORTED's list imports, and every module on it fails (so the list is honest)."""
    script = r"""
import importlib, sys
class Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.startswith(%r):
            raise ImportError("winsim imported the engine: " + name)
sys.meta_path.insert(0, Refuse())
bad = []
for mod in sys.argv[1:]:
    try:
        importlib.import_module(mod)
    except ImportError as exc:
        bad.append(mod)
print(",".join(bad))
""" % ENGINE
    def module(rel):
        return "winsim." + rel[:-3].replace("/", ".").replace(".__init__", "").replace("__init__", "")
    listed = [module(rel) for rel in STILL_IMPORTED]
    free = sorted(module(rel).rstrip(".") for rel, _ in _modules() if rel not in STILL_IMPORTED)
    assert len(free) > 40
    root = os.path.abspath(os.path.join(WINSIM, ".."))
    env = dict(os.environ, PYTHONPATH=root + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-c", script] + free, env=env,
                         capture_output=True, text=True, check=True, cwd=root).stdout.strip()
    assert out == ""
    for module in listed:
        out = subprocess.run([sys.executable, "-c", script, module], env=env, capture_output=True, text=True,
                             check=True, cwd=root).stdout.strip()
        assert out == module, module
