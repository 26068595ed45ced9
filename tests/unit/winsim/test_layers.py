"""winsim's layers (issue 14.3), checked on a static graph of every import in winsim, those inside
functions too (a lazy import hides a cycle from the interpreter, not from this graph):

- no import cycle between any two winsim modules (so none between the host and its tools; imports
  under `if TYPE_CHECKING:` are type hints and do not count);
- each layer imports only the layers below it: state/ (registry, blobs, hive, domain, firewall,
  scheduler, SPD) nothing; shell/ (command line, cmd.exe, PowerShell) and tools/ the state and the
  shared leaves; transport/ (WS-Man, auth, server, WinRS) the shell and the state; the host all but
  the transport; estate.py and __main__ everything.
"""
import ast
import os

WINSIM = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", "winsim"))

LEAVES = {"result", "personalities"}            # small modules every layer may use
ALLOWED = {
    "state": {"state"},
    "shell": {"shell", "result", "personalities"},
    "tools": {"tools", "state", "result", "personalities"},
    "transport": {"transport", "shell", "state", "result"},
    "host": {"shell", "state", "tools", "result", "personalities"},
    "result": set(),
    "personalities": set(),
}


def modules(root=WINSIM):
    """Dotted module name -> file path, for every module under `root` (a package named winsim)."""
    found = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                rel = os.path.relpath(os.path.join(folder, name), root)[:-3].replace(os.sep, ".")
                dotted = "winsim" if rel == "__init__" else "winsim." + rel.replace(".__init__", "")
                found[dotted] = os.path.join(folder, name)
    return found


def _runtime_nodes(tree):
    """Every node except those under `if TYPE_CHECKING:` (type hints only, never imported)."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = getattr(child, "test", None)
            if isinstance(child, ast.If) and getattr(test, "id", getattr(test, "attr", "")) == "TYPE_CHECKING":
                todo.extend(child.orelse)
            else:
                todo.append(child)


def graph(found):
    """Module -> the winsim modules it imports (a `from pkg import name` that names a submodule
    counts as that submodule; importing pkg.mod also imports pkg)."""
    edges = {}
    for module, path in found.items():
        package = module if path.endswith("__init__.py") else module.rsplit(".", 1)[0]
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), path)
        targets = set()
        for node in _runtime_nodes(tree):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([node.module] if node.module else []))
                targets.add(base)
                targets.update(base + "." + alias.name for alias in node.names)
        resolved = set()
        for target in targets:
            while target and target not in found:
                target = target.rpartition(".")[0]
            parts = target.split(".")
            resolved.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
        edges[module] = {t for t in resolved if t in found and t != module and not module.startswith(t + ".")}
    return edges


def cycles(edges):
    """Every module that lies on an import cycle, with one cycle through it (depth-first search)."""
    found, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = "done"
    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    return found


def layer(module):
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "winsim"


def test_no_import_cycle_in_winsim():
    edges = graph(modules())
    assert len(edges) > 40 and edges["winsim.host"] >= {"winsim.tools", "winsim.shell.machine"}
    assert cycles(edges) == []


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for module, targets in graph(modules()).items():
        allowed = ALLOWED.get(layer(module))
        if allowed is None:                     # winsim, estate, __main__: the top
            continue
        wrong += ["%s -> %s" % (module, t) for t in sorted(targets)
                  if layer(t) != layer(module) and layer(t) not in allowed]
    assert wrong == []


def test_the_graph_sees_a_lazy_cycle_and_a_layer_breach(tmp_path):
    """The checks can fail: a tool that imports the host inside a function is a cycle, and the
    state importing the shell is a breach."""
    root = tmp_path / "winsim"
    for rel, text in {"__init__.py": "", "host.py": "from .tools import netsh\n",
                      "tools/__init__.py": "", "tools/netsh.py": "def f():\n    from ..host import SimHost\n",
                      "tools/reg.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ..host import X\n",
                      "state/__init__.py": "", "state/hive.py": "from ..shell import cmdexe\n",
                      "shell/__init__.py": "", "shell/cmdexe.py": ""}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    edges = graph(modules(str(root)))
    assert cycles(edges) == [["winsim.host", "winsim.tools.netsh", "winsim.host"]]
    assert edges["winsim.state.hive"] == {"winsim.shell", "winsim.shell.cmdexe"}
    assert edges["winsim.tools.reg"] == set()
