"""Make the repository importable as ansible_collections.winsec.ipsec for every test.

`make test` already links build/collections/ansible_collections/winsec/ipsec to the repo and puts
build/collections on PYTHONPATH; this keeps a bare `pytest` run working the same way.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, "build", "collections")
LINK = os.path.join(COLLECTIONS, "ansible_collections", "winsec", "ipsec")

if not os.path.lexists(LINK):
    os.makedirs(os.path.dirname(LINK), exist_ok=True)
    try:
        os.symlink(os.path.join("..", "..", "..", ".."), LINK)
    except FileExistsError:  # another xdist worker made it first
        pass
for path in (COLLECTIONS, ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS)
