"""Read a regedit export (.reg, "Windows Registry Editor Version 5.00") into {key: {name: (type, data)}}.

Only what the captures under tests/fixtures/registry/ use: quoted strings, `dword:`, `hex:`
(REG_BINARY) and `hex(7):` (REG_MULTI_SZ, UTF-16LE strings each ending in NUL, then an empty one),
`@` for the default value, `;` comments and `\\` line continuations (regedit's own export format).
"""
from typing import Dict, List, Tuple


def _unquote(text: str) -> str:
    if not (text.startswith('"') and text.endswith('"')):
        raise ValueError("not a quoted .reg string: %r" % text)
    return text[1:-1].replace('\\"', '"').replace("\\\\", "\\")


def _multi_sz(raw: bytes) -> List[str]:
    items = raw.decode("utf-16-le").split("\0")
    while items and items[-1] == "":
        items.pop()
    return items


def parse(text: str) -> Dict[str, Dict[str, Tuple[str, object]]]:
    tree: Dict[str, Dict[str, Tuple[str, object]]] = {}
    key = None
    lines: List[str] = []
    pending = ""
    for line in text.splitlines():
        line = pending + line.strip() if pending else line.rstrip()
        pending = ""
        if line.endswith("\\") and "=hex" in line:
            pending = line[:-1]
            continue
        lines.append(line)
    for line in lines:
        if not line or line.startswith(";") or line.startswith("Windows Registry Editor"):
            continue
        if line.startswith("[") and line.endswith("]"):
            key = line[1:-1]
            tree.setdefault(key, {})
            continue
        if key is None:
            raise ValueError("a value outside any key: %r" % line)
        if line.startswith("@="):
            name, data = "", line[2:]
        else:
            end = line.index('"=', 1)
            name, data = _unquote(line[:end + 1]), line[end + 2:]
        if data.startswith('"'):
            tree[key][name] = ("REG_SZ", _unquote(data))
        elif data.startswith("dword:"):
            tree[key][name] = ("REG_DWORD", int(data[6:], 16))
        elif data.startswith("hex:") or data.startswith("hex(7):"):
            raw = bytes(int(b, 16) for b in data.split(":", 1)[1].replace(" ", "").split(",") if b)
            tree[key][name] = ("REG_BINARY", raw) if data.startswith("hex:") else ("REG_MULTI_SZ", _multi_sz(raw))
        else:
            raise ValueError("a .reg value type winsim does not read: %r" % line)
    return tree
