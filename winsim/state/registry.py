"""winsim's registry: keys and values per host, as the Windows registry holds them.

Key names compare case-insensitively and keep their first spelling; setting a value creates the
key and its parents; the default value is named ''. Value types and data: REG_SZ / REG_EXPAND_SZ
text, REG_MULTI_SZ a tuple of texts, REG_DWORD / REG_QWORD an int, REG_BINARY / REG_NONE bytes
("Registry value types", Microsoft Learn). A host's tree is kept on disk as JSON (hive.py).
"""
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

# Where the IPsec policy stores live ([MS-GPIPSEC] 2.2.1 and 3.2: the local store; the Group
# Policy pointer GPTIPSECPolicy and the cached copy Policy\Cache of the domain policy).
IPSEC_ROOT = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\IPSec"
LOCAL_ROOT = IPSEC_ROOT + r"\Policy\Local"
CACHE_ROOT = IPSEC_ROOT + r"\Policy\Cache"
GPT_ROOT = IPSEC_ROOT + r"\GPTIPSECPolicy"

REG_TYPES = {"REG_SZ": str, "REG_EXPAND_SZ": str, "REG_MULTI_SZ": tuple, "REG_DWORD": int, "REG_QWORD": int,
             "REG_BINARY": bytes, "REG_NONE": bytes}
HIVES = {"HKLM": "HKEY_LOCAL_MACHINE", "HKCU": "HKEY_CURRENT_USER", "HKCR": "HKEY_CLASSES_ROOT",
         "HKU": "HKEY_USERS", "HKCC": "HKEY_CURRENT_CONFIG"}
JSON_FORMAT = "winsec.regtree/1"       # the on-disk format of STATE/hosts/<name>/registry.json


class RegistryError(ValueError):
    pass


class RegValue(NamedTuple):
    type: str
    data: object


def normalize_key(key: str) -> str:
    """'HKLM\\a\\b\\' -> 'HKEY_LOCAL_MACHINE\\a\\b' (reg.exe prints the hive spelled out)."""
    parts = key.strip().strip("\\").split("\\")
    hive = parts[0].upper()
    full = HIVES.get(hive) or next((h for h in HIVES.values() if h == hive), None)
    if full is None:
        raise RegistryError("registry key %r: unknown hive %r; expected one of %s"
                            % (key, parts[0], ", ".join(sorted(HIVES) + sorted(HIVES.values()))))
    return "\\".join([full] + [p for p in parts[1:] if p])


def _checked(name: str, value) -> RegValue:
    kind, data = value
    wanted = REG_TYPES.get(kind)
    if wanted is None:
        raise RegistryError("value %r: type %r is not valid; expected one of %s" % (name, kind, ", ".join(REG_TYPES)))
    if isinstance(data, list) and wanted is tuple:
        data = tuple(data)
    if not isinstance(data, wanted) or (wanted is int and isinstance(data, bool)):
        raise RegistryError("value %r: %s data must be %s, got %r" % (name, kind, wanted.__name__, data))
    return RegValue(kind, data)


class RegTree:
    """Full key path -> ordered values; children in the order they were created."""

    def __init__(self):
        self._keys: Dict[str, Tuple[str, Dict[str, Tuple[str, RegValue]]]] = {}
        self._children: Dict[str, Dict[str, str]] = {}

    def add_key(self, key: str) -> str:
        key = normalize_key(key)
        folded = key.casefold()
        if folded in self._keys:
            return self._keys[folded][0]
        parent = key.rpartition("\\")[0]
        if parent:
            parent = self.add_key(parent)
            self._children[parent.casefold()][folded] = key
        self._keys[folded] = (key, {})
        self._children[folded] = {}
        return key

    def has_key(self, key: str) -> bool:
        return normalize_key(key).casefold() in self._keys

    __contains__ = has_key

    def keys(self) -> List[str]:
        return [shown for shown, _ in self._keys.values()]

    def subkeys(self, key: str) -> List[str]:
        return list(self._children.get(normalize_key(key).casefold(), {}).values())

    def walk(self, key: str) -> Iterable[str]:
        """`key` and all below it, parents first."""
        folded = normalize_key(key).casefold()
        if folded not in self._keys:
            return
        yield self._keys[folded][0]
        for child in list(self._children[folded].values()):
            yield from self.walk(child)

    def delete_key(self, key: str, recursive: bool = True) -> bool:
        folded = normalize_key(key).casefold()
        if folded not in self._keys:
            return False
        if self._children[folded] and not recursive:
            raise RegistryError("registry key %s has subkeys" % self._keys[folded][0])
        for child in list(self._children[folded].values()):
            self.delete_key(child)
        parent = self._keys[folded][0].rpartition("\\")[0].casefold()
        self._children.get(parent, {}).pop(folded, None)
        del self._keys[folded], self._children[folded]
        return True

    def values(self, key: str) -> Dict[str, RegValue]:
        entry = self._keys.get(normalize_key(key).casefold())
        return {} if entry is None else {shown: value for shown, value in entry[1].values()}

    def get(self, key: str, name: str) -> Optional[RegValue]:
        entry = self._keys.get(normalize_key(key).casefold())
        found = None if entry is None else entry[1].get(name.casefold())
        return None if found is None else found[1]

    def set(self, key: str, name: str, value) -> None:
        value = _checked(name, value)
        values = self._keys[self.add_key(key).casefold()][1]
        shown = values[name.casefold()][0] if name.casefold() in values else name
        values[name.casefold()] = (shown, value)

    def delete_value(self, key: str, name: str) -> bool:
        entry = self._keys.get(normalize_key(key).casefold())
        return entry is not None and entry[1].pop(name.casefold(), None) is not None

    def replace_subtree(self, root: str, other: "RegTree") -> None:
        """Make `root` and everything below it what `other` holds there."""
        self.delete_key(root)
        for key in other.walk(root):
            self.add_key(key)
            for name, value in other.values(key).items():
                self.set(key, name, value)

    def to_json(self) -> dict:
        def dump(value: RegValue):
            data = value.data
            if isinstance(data, bytes):
                data = data.hex()
            elif isinstance(data, tuple):
                data = list(data)
            return [value.type, data]
        return {"format": JSON_FORMAT,
                "keys": [{"key": shown, "values": [[name] + dump(v) for name, v in vals.values()]}
                         for shown, vals in self._keys.values()]}

    @classmethod
    def from_json(cls, doc: dict) -> "RegTree":
        if not isinstance(doc, dict) or doc.get("format") != JSON_FORMAT:
            raise RegistryError("not a winsim registry file (expected format %s)" % JSON_FORMAT)
        tree = cls()
        for entry in doc["keys"]:
            tree.add_key(entry["key"])
            for name, kind, data in entry["values"]:
                if kind in ("REG_BINARY", "REG_NONE"):
                    data = bytes.fromhex(data)
                tree.set(entry["key"], name, RegValue(kind, data))
        return tree

    def __eq__(self, other) -> bool:
        def comparable(tree):
            return {k: [(n.casefold(), tuple(v)) for n, v in vals.values()] for k, (_, vals) in tree._keys.items()}
        return isinstance(other, RegTree) and comparable(self) == comparable(other)

    def __repr__(self) -> str:
        return "RegTree(%d keys)" % len(self._keys)
