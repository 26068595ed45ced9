"""winsim: a Windows host stand-in that speaks real WinRM. See winsim/README.md."""
import os
import sys

# winsim stores real [MS-GPIPSEC] blobs with the collection's own registry codec (one truth for the
# layout), so make the repo importable as ansible_collections.winsec.ipsec, as tests/conftest.py does.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_COLLECTIONS = os.path.join(_ROOT, "build", "collections")
_LINK = os.path.join(_COLLECTIONS, "ansible_collections", "winsec", "ipsec")
if not os.path.lexists(_LINK):
    os.makedirs(os.path.dirname(_LINK), exist_ok=True)
    try:
        os.symlink(os.path.join("..", "..", "..", ".."), _LINK)
    except FileExistsError:
        pass
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
