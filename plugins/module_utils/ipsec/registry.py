# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Registry text <-> RegTree <-> HostState for the static IPsec policy store.

- `RegTree`: an ordered, case-insensitive registry snapshot (keys -> values).
- `parse_reg_query` / `render_reg_query`: the text of `reg query <key> [/s] [/v name]`.
- `parse_reg_file`: a regedit export (.reg, REGEDIT4 or version 5.00).
- `decode_store` / `encode_store`: the [MS-GPIPSEC] object store under ...\\IPSec\\Policy\\Local
  (docs/policy-store.md sections 2 and 6), with the blobs handled in `blobs.py`.

Standard library only: this ships to controllers.
"""
from __future__ import annotations

import re
import time
import uuid
from typing import Callable, Dict, Iterable, List, NamedTuple, Optional, Tuple

from .blobs import (decode_filter_blob, decode_negpol_blob,  # noqa: F401 (re-exported)
                    decode_nfa_blob, decode_policy_blob, encode_filter_blob, encode_isakmp_blob,
                    encode_negpol_blob, encode_nfa_blob, encode_policy_blob, decode_isakmp_blob, default_isakmp,
                    new_guid)
from .model import (DomainAssignment, FilterAction, FilterList, HostState, IPsecError, Policy, Rule,
                    name_key)

LOCAL_ROOT = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\IPSec\Policy\Local"
GPT_ROOT = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\IPSec\GPTIPSECPolicy"
CACHE_ROOT = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\IPSec\Policy\Cache"

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
    order; `render_reg_query` sorts them as reg.exe enumerates them.
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

    def walk(self, key: str) -> Iterable[str]:
        """`key` and everything below it, depth first, parents before children."""
        folded = normalize_key(key).casefold()
        if folded not in self._keys:
            return
        stack = [folded]
        while stack:
            current = stack.pop()
            yield self._keys[current][0]
            stack.extend(reversed(list(self._children[current])))

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


def _data_to_text(value: RegValue, style: str) -> str:
    kind, data = value
    if kind in ("REG_SZ", "REG_EXPAND_SZ"):
        return data
    if kind == "REG_MULTI_SZ":
        return "\\0".join(data) + ("\\0\\0" if style == "xp" else "")     # XP's trailing \0\0 [I]
    if kind in ("REG_DWORD", "REG_QWORD"):
        return "0x%x" % data
    return data.hex().upper()


def _value_line(name: str, value: RegValue, style: str) -> str:
    # Vista+ layout: four spaces, name, four spaces, type, four spaces, data; DWORDs as 0x%x,
    # binary as upper-case hex, multi-strings joined by a literal \0. Microsoft's `reg query`
    # page shows no sample output; this matches public Windows 10/11 transcripts (e.g. a
    # `reg query HKLM\...\Lsa` listing and `reg query ... /v` samples in other projects' tests).
    # XP/2003 (reg.exe 3.0) separates with tabs and names the default value <NO NAME>, as in
    # Microsoft's PowerShell doc "Working with registry entries" (its sample shows reg.exe 3.0).
    if style == "xp":
        return "    %s\t%s\t%s" % (name or "<NO NAME>", value.type, _data_to_text(value, style))
    return "    %s    %s    %s" % (name or "(Default)", value.type, _data_to_text(value, style))


RENDER_STYLES = ("modern", "xp")


def render_reg_query(tree: RegTree, key: str, recursive: bool = True, value: Optional[str] = None,
                     style: str = "modern") -> str:
    """What `reg query <key> [/s] [/v value]` prints (CRLF line ends).

    Layout: each key block is a blank line, the key, then its values; without /s the direct
    subkeys follow as bare key lines after a blank line (as in public transcripts). With /s a
    final blank line ends the output ([I] not verified on real Windows). Subkeys come in
    case-insensitive alphabetical order (the order the registry enumerates them in).
    style='xp' is reg.exe 3.0 of XP/2003: a `! REG.EXE VERSION 3.0` banner and tab separators
    ([I] beyond the single-value sample Microsoft shows). A missing key or value raises
    RegistryError with reg.exe's message."""
    if style not in RENDER_STYLES:
        raise RegistryError("style: %r is not valid; expected modern or xp" % (style,))
    missing = "ERROR: The system was unable to find the specified registry key or value."
    if key not in tree:
        raise RegistryError(missing)
    key = normalize_key(key)
    lines: List[str] = ["", "! REG.EXE VERSION 3.0"] if style == "xp" else []
    if value is not None:
        found = tree.get(key, value)
        if found is None:
            raise RegistryError(missing)
        shown = next(n for n in tree.values(key) if n.casefold() == value.casefold())
        lines += ["", _shown_key(tree, key), _value_line(shown, found, style), ""]
        return "\r\n".join(lines) + "\r\n"

    def block(current: str) -> None:
        lines.append("")
        lines.append(current)
        for name, val in tree.values(current).items():
            lines.append(_value_line(name, val, style))
        children = sorted(tree.subkeys(current), key=str.casefold)
        if recursive:
            for child in children:
                block(child)
        else:
            lines.append("")
            lines.extend(children)

    block(_shown_key(tree, key))
    if recursive:
        lines.append("")
    return "\r\n".join(lines) + "\r\n"


def _shown_key(tree: RegTree, key: str) -> str:
    folded = key.casefold()
    return next((k for k in tree.walk(key) if k.casefold() == folded), key)


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
TYPE_STANDARD = "{62f49e10-6c37-11d1-864c-14a300000000}"
TYPE_DEFAULT_RESPONSE = "{62f49e13-6c37-11d1-864c-14a300000000}"
_ACTIONS = {ACTION_BLOCK: ("block", False), ACTION_PERMIT: ("permit", False),
            ACTION_NEGOTIATE: ("negotiate", False), ACTION_INPASS: ("negotiate", True)}

# ISAKMP GUIDs are not in the model; derive them from the policy GUID so that re-encoding the
# same state gives the same keys (Windows itself picks random ones).
_ISAKMP_NS = uuid.UUID("5d0c36c1-31c4-4d4c-9d4f-6e3b3f1b2a10")


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


def _relative(root: str) -> str:
    """HKLM-relative reference prefix, with the IPSEC segment in capitals as Windows writes it."""
    parts = root.split("\\")[1:]
    return "\\".join("IPSEC" if p.casefold() == "ipsec" else p for p in parts)


def encode_store(state: HostState, root: str = LOCAL_ROOT, flavor: str = "modern", now: Optional[int] = None,
                 guid_factory: Optional[Callable[[], str]] = None) -> RegTree:
    """The whole store under `root` for `state`: policies (each with one ISAKMP object carrying
    Windows' default main-mode methods), rules (NFAs), filter actions (negotiation policies),
    filter lists, owners back-references and ActivePolicy; plus the GPTIPSECPolicy pointer
    values when `state.domain` is set. Objects keep their `guid` when set, else get
    `guid_factory()` (default: a fresh uuid4). `now` is the whenChanged stamp (Unix seconds)."""
    root = normalize_key(root)
    make = guid_factory or new_guid
    stamp = int(time.time()) if now is None else int(now)
    rel = _relative(root)
    tree = RegTree()
    tree.add_key(root)

    seen_guids = set()

    def guid(obj) -> str:
        value = (obj.guid or make()).strip().lower()
        if not value.startswith("{"):
            value = "{%s}" % value
        if value in seen_guids:
            raise IPsecError("%s %r: guid %s is used by another object" % (type(obj).__name__, obj.name, value))
        seen_guids.add(value)
        return value

    for kind, items in (("policy", state.policies), ("filterlist", state.filterlists),
                        ("filteraction", state.filteractions)):
        names = [name_key(item.name) for item in items]
        if len(set(names)) != len(names) or "" in names:
            raise IPsecError("%ss: names must be unique and non-empty; got %r" % (kind, [i.name for i in items]))

    fl_guids = {name_key(fl.name): guid(fl) for fl in state.filterlists}
    fa_guids = {name_key(fa.name): guid(fa) for fa in state.filteractions}
    owners: Dict[str, List[str]] = {}
    default_response_actions = set()
    plans = []
    for pol in state.policies:
        pol_guid = guid(pol)
        rule_guids = []
        for rule in pol.rules:
            rule_guid = guid(rule)
            rule_guids.append(rule_guid)
            where = "policy %r rule %r" % (pol.name, rule.name)
            fa_guid = fa_guids.get(name_key(rule.filteraction))
            if fa_guid is None:
                raise IPsecError("%s: filteraction %r does not exist" % (where, rule.filteraction))
            owners.setdefault(fa_guid, []).append(rule_guid)
            if rule.default_response:
                default_response_actions.add(fa_guid)
            elif name_key(rule.filterlist) not in fl_guids:
                raise IPsecError("%s: filterlist %r does not exist" % (where, rule.filterlist))
            else:
                owners.setdefault(fl_guids[name_key(rule.filterlist)], []).append(rule_guid)
        plans.append((pol, pol_guid, rule_guids))

    def ref(cls: str, g: str) -> str:
        return "%s\\%s%s" % (rel, cls, g)

    def common(cls: str, g: str, name: str, description: str) -> str:
        key = "%s\\%s%s" % (root, cls, g)
        tree.set(key, "className", RegValue("REG_SZ", cls))
        tree.set(key, "name", RegValue("REG_SZ", cls + g))
        if name and name.casefold() != g:          # GUID-named objects had no ipsecName
            tree.set(key, "ipsecName", RegValue("REG_SZ", name))
        if description:
            tree.set(key, "description", RegValue("REG_SZ", description))
        tree.set(key, "ipsecID", RegValue("REG_SZ", g))
        tree.set(key, "ipsecDataType", RegValue("REG_DWORD", 0x100))
        return key

    def finish(key: str, owner_refs: List[str]) -> None:
        tree.set(key, "whenChanged", RegValue("REG_DWORD", stamp))
        if owner_refs:      # an unused list or action has no owners value ([I] never captured)
            tree.set(key, "ipsecOwnersReference", RegValue("REG_MULTI_SZ", tuple(owner_refs)))

    for fl in state.filterlists:
        g = fl_guids[name_key(fl.name)]
        key = common(FILTER, g, fl.name, fl.description)
        tree.set(key, "ipsecData", RegValue("REG_BINARY", encode_filter_blob(fl.filters, flavor, make)))
        finish(key, [ref(NFA, o) for o in owners.get(g, [])])

    for fa in state.filteractions:
        g = fa_guids[name_key(fa.name)]
        key = common(NEGPOL, g, fa.name, fa.description)
        action = {"block": ACTION_BLOCK, "permit": ACTION_PERMIT}.get(fa.action)
        if action is None:
            if fa.action != "negotiate":
                raise IPsecError("filteraction %r: action %r is not valid; expected permit, block or negotiate"
                                 % (fa.name, fa.action))
            action = ACTION_INPASS if fa.inpass else ACTION_NEGOTIATE
        tree.set(key, "ipsecNegotiationPolicyAction", RegValue("REG_SZ", action))
        kind = TYPE_DEFAULT_RESPONSE if g in default_response_actions else TYPE_STANDARD
        tree.set(key, "ipsecNegotiationPolicyType", RegValue("REG_SZ", kind))
        if fa.action == "negotiate":
            blob = encode_negpol_blob(fa.offers, fa.qmpfs, fa.soft, flavor)
        else:
            blob = encode_negpol_blob((), flavor=flavor)        # the 25-byte block/permit blob [C]
        tree.set(key, "ipsecData", RegValue("REG_BINARY", blob))
        finish(key, [ref(NFA, o) for o in owners.get(g, [])])

    for pol, pol_guid, rule_guids in plans:
        isakmp_guid = "{%s}" % uuid.uuid5(_ISAKMP_NS, pol_guid)
        key = common(ISAKMP, isakmp_guid, "", "")
        tree.set(key, "ipsecData", RegValue("REG_BINARY", encode_isakmp_blob(default_isakmp(flavor), flavor)))
        finish(key, [ref(POLICY, pol_guid)])
        for rule, rule_guid in zip(pol.rules, rule_guids):
            key = common(NFA, rule_guid, rule.name, rule.description)
            tree.set(key, "ipsecData", RegValue("REG_BINARY", encode_nfa_blob(rule, flavor)))
            tree.set(key, "ipsecNegotiationPolicyReference",
                     RegValue("REG_SZ", ref(NEGPOL, fa_guids[name_key(rule.filteraction)])))
            if not rule.default_response:
                tree.set(key, "ipsecFilterReference",
                         RegValue("REG_MULTI_SZ", (ref(FILTER, fl_guids[name_key(rule.filterlist)]),)))
            finish(key, [ref(POLICY, pol_guid)])
        key = common(POLICY, pol_guid, pol.name, pol.description)
        tree.set(key, "ipsecData", RegValue("REG_BINARY", encode_policy_blob(pol.polling_interval, flavor)))
        tree.set(key, "ipsecISAKMPReference", RegValue("REG_SZ", ref(ISAKMP, isakmp_guid)))
        finish(key, [])
        tree.set(key, "ipsecNFAReference", RegValue("REG_MULTI_SZ", tuple(ref(NFA, g) for g in rule_guids)))

    if state.domain is not None:
        # Written by the Group Policy extension on real hosts (docs/policy-store.md 2.4); kept here so that a
        # stand-in host can carry a domain assignment and decode_store(encode_store(s)) == s.
        tree.set(GPT_ROOT, "DSIPSECPolicyPath", RegValue("REG_SZ", state.domain.path))
        tree.set(GPT_ROOT, "DSIPSECPolicyName", RegValue("REG_SZ", state.domain.name))
    if state.assigned:
        target = next(((p, g) for p, g, _ in plans if name_key(p.name) == name_key(state.assigned)), None)
        if target is None:
            raise IPsecError("assigned: policy %r does not exist" % state.assigned)
        tree.set(root, "ActivePolicy", RegValue("REG_SZ", ref(POLICY, target[1])))
    return tree


__all__ = [
    "LOCAL_ROOT", "GPT_ROOT", "CACHE_ROOT", "REG_TYPES", "RegistryError", "RegValue", "RegTree",
    "normalize_key",
    "parse_reg_query", "render_reg_query", "RENDER_STYLES", "parse_reg_file",
    "decode_store", "encode_store",
    "decode_filter_blob", "encode_filter_blob", "decode_policy_blob", "encode_policy_blob",
    "decode_nfa_blob", "encode_nfa_blob", "decode_negpol_blob", "encode_negpol_blob",
    "decode_isakmp_blob", "encode_isakmp_blob", "DEFAULT_VALUE_LABELS",
    "ACTION_BLOCK", "ACTION_PERMIT", "ACTION_NEGOTIATE", "ACTION_INPASS", "TYPE_STANDARD",
    "TYPE_DEFAULT_RESPONSE",
]
