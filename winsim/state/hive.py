"""A host's registry (the HKLM subset winsim knows), persisted on disk as JSON.

The tree is winsim's own (state/registry.py), and the IPsec policy store inside it holds
[MS-GPIPSEC] blobs written by winsim's own writer (state/blobs.py, state/store.py), so the engine's
reader is checked against an independent writer. The file survives a winsim restart and a host
reboot, as the registry does.
"""
import json
import os
import tempfile
import threading

from .registry import RegTree
from .store import read_store, write_store


def write_json_atomically(path: str, doc) -> None:
    """Write-then-rename, so that a crash never leaves half a file behind."""
    folder = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(json.dumps(doc, separators=(",", ":")))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


class Hive:
    """A RegTree bound to a file: every `save` writes the whole tree."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.RLock()
        self.existed = os.path.exists(path)
        if self.existed:
            with open(path, encoding="utf-8") as handle:
                self.tree = RegTree.from_json(json.load(handle))
        else:
            self.tree = RegTree()

    def save(self) -> None:
        with self._lock:
            write_json_atomically(self.path, self.tree.to_json())

    def load_store(self, root: str):
        """The policy store under `root` as a HostState (policies, lists, actions, assignment)."""
        with self._lock:
            return read_store(self.tree, root)

    def save_store(self, root: str, state, flavor: str, now: int) -> None:
        with self._lock:
            self.tree.delete_key(root)
            write_store(state, root, flavor, now, self.tree)
            self.save()
