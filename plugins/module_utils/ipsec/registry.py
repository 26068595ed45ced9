# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Registry text <-> RegTree <-> HostState for the static IPsec policy store.

- `RegTree`: an ordered, case-insensitive registry snapshot (keys -> values).
- `parse_reg_query`: the text of `reg query <key> [/s] [/v name]`.
- `parse_reg_file`: a regedit export (.reg, REGEDIT4 or version 5.00).
- `decode_store`: the [MS-GPIPSEC] object store under ...\\IPSec\\Policy\\Local (docs/policy-store.md
  sections 2 and 6), with the blobs decoded in `blobs.py`. The engine writes the store only through
  Windows' own tools (netsh, ipseccmd, ipsecpol), never as registry values.

Standard library only: this ships to controllers.
"""
from __future__ import annotations

import re
from typing import Dict, List, NamedTuple, Optional, Tuple

from .blobs import decode_filter_blob, decode_negpol_blob, decode_nfa_blob, decode_policy_blob
from .model import (DomainAssignment, FilterAction, FilterList, HostState, IPsecError, Policy, Rule,
                    name_key)

LOCAL_ROOT = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\IPSec\Policy\Local"
GPT_ROOT = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\IPSec\GPTIPSECPolicy"

REG_TYPES = ("REG_SZ", "REG_EXPAND_SZ", "REG_MULTI_SZ", "REG_DWORD", "REG_QWORD", "REG_BINARY", "REG_NONE")
_HIVES = {"HKLM": "HKEY_LOCAL_MACHINE", "HKCU": "HKEY_CURRENT_USER", "HKCR": "HKEY_CLASSES_ROOT",
          "HKU": "HKEY_USERS", "HKCC": "HKEY_CURRENT_CONFIG"}
_HIVE_NAMES = {h.casefold(): h for h in _HIVES.values()}


class RegistryError(IPsecError):
    """Registry text that cannot be read, or a key/value that does not exist."""


class RegValue(NamedTuple):
    type: str
    data: object            # str | tuple[str, ...] | int | bytes


def normalize_key(key: str) -> str:
    """'HKLM\\x\\y\\' -> 'HKEY_LOCAL_MACHINE\\x\\y' (hive spelled out, as reg.exe prints it)."""
    parts = key.strip().strip("\\").split("\\")
    hive = parts[0]
    full = _HIVES.get(hive.upper()) or _HIVE_NAMES.get(hive.casefold())
    if full is None:
        raise RegistryError("registry key %r: unknown hive %r; expected one of %s"
                            % (key, hive, ", ".join(sorted(_HIVES) + sorted(_HIVES.values()))))
    parts[0] = full
    return "\\".join(parts)


def _check_value(name: str, value: RegValue) -> RegValue:
    kind, data = value
    ok = {"REG_SZ": str, "REG_EXPAND_SZ": str, "REG_MULTI_SZ": tuple, "REG_DWORD": int,
          "REG_QWORD": int, "REG_BINARY": bytes, "REG_NONE": bytes}.get(kind)
    if ok is None:
        raise RegistryError("value %r: type %r is not valid; expected one of %s" % (name, kind, ", ".join(REG_TYPES)))
    if isinstance(data, list) and ok is tuple:
        data = tuple(data)
    if isinstance(data, bytearray):
        data = bytes(data)
    if not isinstance(data, ok) or (ok is int and isinstance(data, bool)):
        raise RegistryError("value %r: %s data must be %s, got %r" % (name, kind, ok.__name__, type(data).__name__))
    if kind == "REG_DWORD" and not 0 <= data <= 0xFFFFFFFF or kind == "REG_QWORD" and not 0 <= data < 2 ** 64:
        raise RegistryError("value %r: %s %r is out of range" % (name, kind, data))
    return RegValue(kind, data)


class RegTree:
    """Ordered, case-insensitive map: full key path -> (value name -> RegValue).

    Keys keep their first spelling; setting a value or adding a key creates its ancestors, as the
    registry would. The default value has the name ''. `subkeys` lists children in insertion
    order (after `parse_reg_query`: as reg.exe listed them).
    """

    def __init__(self):
        self._keys: Dict[str, Tuple[str, Dict[str, Tuple[str, RegValue]]]] = {}
        self._children: Dict[str, Dict[str, str]] = {}

    # -- keys
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
        return [entry[0] for entry in self._keys.values()]

    def subkeys(self, key: str) -> List[str]:
        return list(self._children.get(normalize_key(key).casefold(), {}).values())

    # -- values
    def values(self, key: str) -> Dict[str, RegValue]:
        """The values of `key` in order (a copy; names as first spelled). Empty if no such key."""
        entry = self._keys.get(normalize_key(key).casefold())
        return {} if entry is None else {name: value for name, value in entry[1].values()}

    def get(self, key: str, name: str) -> Optional[RegValue]:
        entry = self._keys.get(normalize_key(key).casefold())
        if entry is None:
            return None
        found = entry[1].get(name.casefold())
        return None if found is None else found[1]

    def set(self, key: str, name: str, value: RegValue) -> None:
        value = _check_value(name, value)
        key = self.add_key(key)
        values = self._keys[key.casefold()][1]
        folded = name.casefold()
        shown = values[folded][0] if folded in values else name
        values[folded] = (shown, value)

    def _comparable(self) -> dict:
        # Key order means nothing in the registry (it enumerates subkeys sorted); value order does.
        return {folded: [(n.casefold(), v) for n, v in vals.values()] for folded, (_, vals) in self._keys.items()}

    def __eq__(self, other) -> bool:
        return isinstance(other, RegTree) and self._comparable() == other._comparable()

    def __repr__(self) -> str:
        return "RegTree(%d keys)" % len(self._keys)


# ------------------------------------------------------------------------------ reg query text

# What reg.exe prints for the default value's name. Vista+ English prints "(Default)"; XP's
# reg.exe 3.0 prints "<NO NAME>". The translated labels are [I]: not verified on real Windows.
DEFAULT_VALUE_LABELS = frozenset(s.casefold() for s in (
    "(Default)", "<NO NAME>", "(Standard)", "(par défaut)", "(Predeterminado)", "(Predefinito)",
    "(Padrão)", "(Domyślna)", "(Výchozí)", "(Alapértelmezett)", "(Varsayılan)", "(По умолчанию)",
    "(既定)", "(默认)", "(預設)", "(기본값)", "(Standaard)", "(Oletus)"))

# Separators are four spaces (Vista+) or a tab (XP's reg.exe 3.0); copies of XP output found in
# documentation have the tabs expanded to 2-3 spaces, so those are accepted too.
_VALUE_LINE = re.compile(r"^(?:    |\t)(.*?)(?:\t| {2,})(REG_[A-Z_]+)(?:(?:\t|    | {2,3}|$)(.*))?$")
_END_OF_SEARCH = re.compile(r"^End of search: \d+ match\(es\) found\.$")     # printed with /f [I]


def _data_from_text(kind: str, text: str, line: str):
    try:
        if kind in ("REG_SZ", "REG_EXPAND_SZ"):
            return text
        if kind == "REG_MULTI_SZ":
            # reg.exe joins the strings with a literal "\0"; XP's 3.0 also ends with "\0\0" [I].
            items = text.split("\\0") if text else []
            while items and items[-1] == "":
                items.pop()
            return tuple(items)
        if kind in ("REG_DWORD", "REG_QWORD"):
            return int(text.strip(), 16) if text.strip().lower().startswith("0x") else int(text.strip())
        if kind in ("REG_BINARY", "REG_NONE"):
            return bytes.fromhex(text.strip())
    except ValueError:
        raise RegistryError("reg query output: bad %s data in line %r" % (kind, line))
    raise RegistryError("reg query output: value type %s is not supported (line %r); expected one of %s"
                        % (kind, line, ", ".join(REG_TYPES)))


def parse_reg_query(text: str) -> RegTree:
    """The stdout of `reg query <key> [/s] [/v name|/ve] [/f ...]` -> RegTree.

    Every line must be a key header, a value line, a blank line, the XP banner
    `! REG.EXE VERSION 3.0` or the `End of search` footer; anything else raises an error
    naming the line (an unknown line is never skipped)."""
    tree = RegTree()
    current = None
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip("\r")
        if not line.strip():
            continue
        if line.startswith((" ", "\t")):
            match = _VALUE_LINE.match(line)
            if match is None or current is None:
                raise RegistryError("reg query output: cannot read line %r%s"
                                    % (line, "" if current else " (value before any key)"))
            name, kind, data = match.group(1), match.group(2), match.group(3) or ""
            if name.casefold() in DEFAULT_VALUE_LABELS:
                name = ""
            tree.set(current, name, RegValue(kind, _data_from_text(kind, data, line)))
            continue
        if line.strip() == "! REG.EXE VERSION 3.0" or _END_OF_SEARCH.match(line.strip()):
            continue
        head = line.strip().split("\\", 1)[0]
        if head.upper() in _HIVES or head.casefold() in _HIVE_NAMES:
            current = tree.add_key(line.strip())
            continue
        raise RegistryError("reg query output: unexpected line %r" % line)
    return tree


# ------------------------------------------------------------------------------- .reg exports

_REG_HEADERS = {"windows registry editor version 5.00": "utf-16", "regedit4": "ansi"}
_HEX_TYPES = {"": "REG_BINARY", "0": "REG_NONE", "1": "REG_SZ", "2": "REG_EXPAND_SZ", "3": "REG_BINARY",
              "4": "REG_DWORD", "7": "REG_MULTI_SZ", "b": "REG_QWORD"}
_HEX_VALUE = re.compile(r"^hex(?:\(([0-9a-fA-F]+)\))?:", re.I)


def _decode_reg_bytes(data) -> str:
    if isinstance(data, str):
        return data.lstrip("\ufeff")
    if data.startswith(b"\xff\xfe"):
        return data[2:].decode("utf-16-le", errors="replace")
    if len(data) > 1 and data[1:2] == b"\x00":
        return data.decode("utf-16-le", errors="replace")      # UTF-16 that lost its BOM
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")      # REGEDIT4 is ANSI [I] code page unknown


def _unquote(text: str, line: str) -> Tuple[str, str]:
    """'"a\\"b"=rest' -> ('a"b', '=rest'); regedit escapes only \\\\ and \\" in names and strings."""
    if not text.startswith('"'):
        raise RegistryError(".reg file: expected a quoted string in line %r" % line)
    out, i = [], 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            out.append(text[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), text[i + 1:]
        out.append(ch)
        i += 1
    raise RegistryError(".reg file: unterminated string in line %r" % line)


def _reg_file_value(data: str, unicode_file: bool, line: str) -> Optional[RegValue]:
    data = data.strip()
    if data == "-":
        return None
    if data.startswith('"'):
        text, rest = _unquote(data, line)
        if rest.strip():
            raise RegistryError(".reg file: text after the string in line %r" % line)
        return RegValue("REG_SZ", text)
    if data.lower().startswith("dword:"):
        try:
            return RegValue("REG_DWORD", int(data[6:], 16))
        except ValueError:
            raise RegistryError(".reg file: bad dword in line %r" % line)
    match = _HEX_VALUE.match(data)
    if match is None:
        raise RegistryError(".reg file: cannot read value data in line %r" % line)
    code = (match.group(1) or "").lower().lstrip("0") or ("0" if match.group(1) else "")
    kind = _HEX_TYPES.get(code)
    if kind is None:
        raise RegistryError(".reg file: value type hex(%s) is not supported in line %r" % (code, line))
    body = data[match.end():].replace("\\", "").replace(" ", "").replace("\t", "")
    try:
        raw = bytes(int(part, 16) for part in body.split(",") if part)
    except ValueError:
        raise RegistryError(".reg file: bad hex bytes in line %r" % line)
    if kind in ("REG_BINARY", "REG_NONE"):
        return RegValue(kind, raw)
    if kind in ("REG_DWORD", "REG_QWORD"):
        return RegValue(kind, int.from_bytes(raw, "little"))
    text = raw.decode("utf-16-le" if unicode_file else "cp1252", errors="replace")
    if kind == "REG_MULTI_SZ":
        items = text.split("\x00")
        while items and items[-1] == "":
            items.pop()
        return RegValue(kind, tuple(items))
    return RegValue(kind, text.split("\x00", 1)[0])


def parse_reg_file(data, deletions: Optional[list] = None) -> RegTree:
    """A regedit export -> RegTree. `[-key]` and `"name"=-` lines are not applied; when a list
    is given as `deletions` they are appended to it as (key, value-name-or-None)."""
    text = _decode_reg_bytes(data)
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if first is None or lines[first].strip().lower() not in _REG_HEADERS:
        raise RegistryError(".reg file: first line must be 'Windows Registry Editor Version 5.00' or "
                            "'REGEDIT4'; got %r" % (lines[first] if first is not None else ""))
    unicode_file = _REG_HEADERS[lines[first].strip().lower()] == "utf-16"
    tree, current, deleted, i = RegTree(), None, False, first + 1
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        while line.endswith("\\") and not line.startswith(";") and i < len(lines):
            line = line[:-1] + lines[i].strip()      # regedit wraps long hex data with "\\"
            i += 1
        if not line or line.startswith(";"):
            continue
        if line.startswith("[") and line.endswith("]"):
            deleted = line.startswith("[-")
            if deleted:
                current = None
                if deletions is not None:
                    deletions.append((normalize_key(line[2:-1]), None))
                continue
            current = tree.add_key(line[1:-1])
            continue
        if current is None:
            if deleted:
                continue            # values under a deleted key are not applied either
            raise RegistryError(".reg file: value outside any key in line %r" % line)
        if line.startswith("@"):
            name, rest = "", line[1:]
        else:
            name, rest = _unquote(line, line)
        if not rest.lstrip().startswith("="):
            raise RegistryError(".reg file: expected '=' in line %r" % line)
        value = _reg_file_value(rest.lstrip()[1:], unicode_file, line)
        if value is None:
            if deletions is not None:
                deletions.append((current, name))
            continue
        tree.set(current, name, value)
    return tree


# ------------------------------------------------------------------------------- the IPsec store

POLICY, ISAKMP, NFA, NEGPOL, FILTER = ("ipsecPolicy", "ipsecISAKMPPolicy", "ipsecNFA",
                                       "ipsecNegotiationPolicy", "ipsecFilter")
CLASSES = (POLICY, ISAKMP, NFA, NEGPOL, FILTER)

# ipsecNegotiationPolicyAction / Type GUIDs (docs/policy-store.md 5.4)
ACTION_BLOCK = "{3f91a819-7647-11d1-864d-d46a00000000}"
ACTION_PERMIT = "{8a171dd2-77e3-11d1-8659-a04f00000000}"
ACTION_NEGOTIATE = "{8a171dd3-77e3-11d1-8659-a04f00000000}"
ACTION_INPASS = "{3f91a81a-7647-11d1-864d-d46a00000000}"
_ACTIONS = {ACTION_BLOCK: ("block", False), ACTION_PERMIT: ("permit", False),
            ACTION_NEGOTIATE: ("negotiate", False), ACTION_INPASS: ("negotiate", True)}

_CLASS_NAMES = {c.casefold(): c for c in CLASSES}


def _class_of(tree: RegTree, key: str) -> Optional[str]:
    """className (ipsec2k and VPNease write ClassName: names are case-insensitive), else the prefix."""
    value = tree.get(key, "className")
    if value is not None and isinstance(value.data, str) and value.data.strip().casefold() in _CLASS_NAMES:
        return _CLASS_NAMES[value.data.strip().casefold()]
    return _CLASS_NAMES.get(key.rsplit("\\", 1)[-1].split("{", 1)[0].casefold())


def _text(tree: RegTree, key: str, name: str) -> str:
    value = tree.get(key, name)
    if value is None:
        return ""
    if isinstance(value.data, tuple):
        return value.data[0] if value.data else ""
    return value.data if isinstance(value.data, str) else ""


def _refs(tree: RegTree, key: str, name: str) -> Tuple[str, ...]:
    """A reference value as a list; REG_SZ accepted where REG_MULTI_SZ is expected (docs/policy-store.md 2.1)."""
    value = tree.get(key, name)
    if value is None:
        return ()
    items = value.data if isinstance(value.data, tuple) else (value.data,) if isinstance(value.data, str) else ()
    return tuple(i for i in items if i.strip())


def _last(path: str) -> str:
    """Final component of a reference: a registry path or an LDAP DN (CN=ipsecX{guid},...)."""
    path = path.strip()
    if path.upper().startswith("LDAP://"):
        path = path[7:]
    if path.upper().startswith("CN="):
        return path.split(",", 1)[0][3:].casefold()
    return path.rstrip("\\").rsplit("\\", 1)[-1].casefold()


def _guid_of(tree: RegTree, key: str) -> str:
    ident = _text(tree, key, "ipsecID") or "{" + key.rsplit("{", 1)[-1]
    return ident.strip().lower()


def _blob(tree: RegTree, key: str) -> bytes:
    value = tree.get(key, "ipsecData")
    if value is None or not isinstance(value.data, bytes):
        raise IPsecError("%s: no REG_BINARY ipsecData value" % key)
    return value.data


def decode_store(tree: RegTree, root: str = LOCAL_ROOT) -> HostState:
    """The policy store under `root` -> HostState (docs/policy-store.md 6). Objects without an ipsecName are
    named by their GUID ('{...}', lower case), which is stable; rules without one keep ''.
    Objects come in the tree's key order (after `parse_reg_query`: the order reg.exe lists
    them, i.e. by key name), rules in their policy's ipsecNFAReference order."""
    root = normalize_key(root)
    objects: Dict[str, Dict[str, str]] = {c: {} for c in CLASSES}      # class -> last component -> key
    for key in tree.subkeys(root):
        leaf = key.rsplit("\\", 1)[-1]
        cls = _class_of(tree, key)
        if cls is not None:
            objects[cls][leaf.casefold()] = key

    taken: Dict[str, set] = {c: set() for c in CLASSES}

    def display_name(key: str, cls: str) -> str:
        # The model names objects uniquely per class (rules point at lists and actions by name).
        # A name already taken in this store (the MMC allows duplicates [I]) gets its GUID
        # appended, so every reference still resolves to the right object.
        guid = _guid_of(tree, key)
        name = _text(tree, key, "ipsecName") or guid
        if name_key(name) in taken[cls]:
            name = "%s %s" % (name, guid)
        taken[cls].add(name_key(name))
        return name

    filterlists, fl_names = [], {}
    for leaf, key in objects[FILTER].items():
        name = display_name(key, FILTER)
        fl_names[leaf] = name
        filterlists.append(FilterList(name, decode_filter_blob(_blob(tree, key), key),
                                      _text(tree, key, "description"), _guid_of(tree, key)))

    filteractions, fa_names = [], {}
    for leaf, key in objects[NEGPOL].items():
        action_guid = _text(tree, key, "ipsecNegotiationPolicyAction").strip().lower()
        if action_guid not in _ACTIONS:
            raise IPsecError("%s: unknown ipsecNegotiationPolicyAction %r; expected one of %s"
                             % (key, action_guid, ", ".join(_ACTIONS)))
        action, inpass = _ACTIONS[action_guid]
        neg = decode_negpol_blob(_blob(tree, key), key)
        name = display_name(key, NEGPOL)
        fa_names[leaf] = name
        negotiate = action == "negotiate"       # block/permit blobs carry no offers (docs/policy-store.md 5.4)
        filteractions.append(FilterAction(name, action, _text(tree, key, "description"), inpass,
                                          negotiate and neg.soft, negotiate and neg.qmpfs,
                                          neg.offers if negotiate else (),
                                          _guid_of(tree, key)))

    policies, policy_names = [], {}
    for leaf, key in objects[POLICY].items():
        rules = []
        for ref in _refs(tree, key, "ipsecNFAReference"):
            nfa_key = objects[NFA].get(_last(ref))
            if nfa_key is None:
                raise IPsecError("%s: ipsecNFAReference %r points to no ipsecNFA under %s" % (key, ref, root))
            rules.append(_decode_rule(tree, nfa_key, fl_names, fa_names, root))
        name = display_name(key, POLICY)
        policy_names[leaf] = name
        policies.append(Policy(name, _text(tree, key, "description"),
                               decode_policy_blob(_blob(tree, key), key), tuple(rules), _guid_of(tree, key)))

    # ActivePolicy names a policy key; absent, empty or dangling means none (docs/policy-store.md 2.3 [?]).
    active = _text(tree, root, "ActivePolicy")
    assigned = policy_names.get(_last(active), "") if active.strip() else ""
    domain = None
    ds_path = _text(tree, GPT_ROOT, "DSIPSECPolicyPath")
    if ds_path.strip():
        domain = DomainAssignment(_text(tree, GPT_ROOT, "DSIPSECPolicyName"), ds_path)
    return HostState(tuple(policies), tuple(filterlists), tuple(filteractions), assigned, domain)


def _resolve(key: str, ref: str, names: Dict[str, str], cls: str, root: str) -> str:
    """A reference -> the referenced object's model name (matched on the last path component)."""
    found = names.get(_last(ref))
    if found is None:
        raise IPsecError("%s: reference %r points to no %s object under %s" % (key, ref, cls, root))
    return found


def _decode_rule(tree: RegTree, key: str, fl_names: Dict[str, str], fa_names: Dict[str, str], root: str) -> Rule:
    nfa = decode_nfa_blob(_blob(tree, key), key)
    filter_refs = _refs(tree, key, "ipsecFilterReference")
    if len(filter_refs) > 1:
        raise IPsecError("%s: %d filter lists on one rule; the model holds one per rule"
                         % (key, len(filter_refs)))
    filterlist = _resolve(key, filter_refs[0], fl_names, FILTER, root) if filter_refs else ""
    negpol_ref = _text(tree, key, "ipsecNegotiationPolicyReference")
    filteraction = _resolve(key, negpol_ref, fa_names, NEGPOL, root) if negpol_ref.strip() else ""
    return Rule(_text(tree, key, "ipsecName"), filterlist, filteraction, _text(tree, key, "description"),
                nfa.active, nfa.conntype, nfa.auth, nfa.tunnel, not filter_refs, _guid_of(tree, key))


__all__ = [
    "LOCAL_ROOT", "GPT_ROOT", "REG_TYPES", "RegistryError", "RegValue", "RegTree",
    "normalize_key", "parse_reg_query", "parse_reg_file", "decode_store", "DEFAULT_VALUE_LABELS",
    "CLASSES", "ACTION_BLOCK", "ACTION_PERMIT", "ACTION_NEGOTIATE", "ACTION_INPASS",
]
