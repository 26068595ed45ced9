# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""LDIF (RFC 2849) content records -> entries: what `ldifde -f FILE` exports.

Only what an export holds is read: `version:`, comments, `dn:` records with `attr: value`,
`attr:: base64` and folded lines (a line starting with one space continues the previous one),
records separated by blank lines. A real ldifde export (tests/fixtures/captures/
ldifde_export_deleted_objects_ws2019.ldf, [V]) shows what this must take: `changetype: add` in
every record (dropped here), `#` comment lines before the first record, its dn line kept whole
(another Microsoft writer folds dn lines too: both are read), and a value too long for 79
columns starting on the next line (`distinguishedName:` then ` CN=...`). A URL value
(`attr:< url`) or any other change type is an error: an export never holds one.

Values are kept as bytes when they came base64-encoded (binary attributes such as ipsecData, and
strings that are not RFC 2849 SAFE-STRINGs: ldifde's default ANSI file carries non-ASCII values as
base64, [D] learn.microsoft.com "LDIF Scripts"); `text()` turns one into a string (UTF-8, which RFC
2849 prescribes for base64 strings). Standard library only.
"""
from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from typing import Dict, List, Union

from .model import IPsecError

Value = Union[str, bytes]
_LINE = re.compile(r"^([A-Za-z][A-Za-z0-9-]*(?:;[A-Za-z0-9-]+)*)(:<|::|:)\s*(.*)$")


class LdifError(IPsecError):
    pass


@dataclass
class Entry:
    dn: str
    attributes: Dict[str, List[Value]] = field(default_factory=dict)    # names in lower case

    def values(self, name: str) -> List[Value]:
        return self.attributes.get(name.lower(), [])

    def first(self, name: str) -> str:
        found = self.values(name)
        return text(found[0]) if found else ""


def text(value: Value) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            raise LdifError("a base64 string value is not UTF-8 (RFC 2849)") from None
    return value


def _unfolded(data: str) -> List[str]:
    lines: List[str] = []
    for raw in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if raw.startswith(" ") and lines and lines[-1] not in ("",):
            lines[-1] += raw[1:]
        else:
            lines.append(raw)
    return lines


def parse(data: str) -> List[Entry]:
    """The records of an LDIF export, in file order."""
    entries: List[Entry] = []
    current = None
    for number, line in enumerate(_unfolded(data.lstrip("\ufeff")), 1):
        if not line.strip():
            current = None
            continue
        if line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise LdifError("line %d is not LDIF (`name: value`): %r" % (number, line[:120]))
        name, kind, raw = match.group(1).lower(), match.group(2), match.group(3)
        if kind == ":<":
            raise LdifError("line %d: a URL value (%s:<) has no place in an export" % (number, name))
        if kind == "::":
            try:
                value: Value = base64.b64decode(raw.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise LdifError("line %d: %s:: holds no valid base64" % (number, name)) from None
        else:
            value = raw.rstrip() if name != "dn" else raw.strip()
        if current is None:
            if name == "version":
                continue
            if name != "dn":
                raise LdifError("line %d: a record starts with `dn:`, not %r" % (number, name))
            current = Entry(text(value))
            entries.append(current)
            continue
        if name == "changetype":
            if text(value).strip().lower() != "add":
                raise LdifError("line %d: changetype %r in an export" % (number, text(value)))
            continue
        current.attributes.setdefault(name.split(";", 1)[0], []).append(value)
    return entries


__all__ = ["Entry", "LdifError", "parse", "text"]
