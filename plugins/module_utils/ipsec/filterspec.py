# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The filter grammar of ipseccmd.exe and ipsecpol.exe, both ways, and pasted KB command lines.

A filterspec is `A.B.C.D/mask:port=A.B.C.D/mask:port:protocol` (W2K Resource Kit "IPSecPol
Syntax"; docs/windows-tools.md "Filterspecs"): source on the left, destination on the right; `=`
one direction, `+` mirrored ([E] `0+*`); `*` any address, `0` my addresses, a DNS name allowed
(KB 813878 `*=0:1434:UDP`); mask and ports optional; a protocol must follow a port field, even an
empty one (`0+*::ICMP`, [E]).
In brackets it is a block filter `[...]` (KB 813878), in parentheses a pass filter `(...)` ([I]).

Standard library only: this ships to controllers as module_utils.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional, Tuple

from .model import (
    ANY, ME, Address, Filter, ValidationError, filter_from_dict, parse_name, protocol_name,
)
from .quoting import split_command_line

FILTERSPEC_ACCEPTED = ("a filterspec SRC[/MASK][:PORT]=DST[/MASK][:PORT[:PROTOCOL]] ('+' for mirrored, "
                       "'*' any, '0' me), e.g. *=0:1434:UDP, 0+*::ICMP or [*=0:445:TCP]")
KINDS = ("", "block", "pass")
_BRACKETS = {"block": "[]", "pass": "()"}
HOST_MASK = "255.255.255.255"
# Placeholders KB 813878 writes in names ("Block ProtocolPortNumber Filter").
_NAME_PLACEHOLDERS = ("ProtocolPortNumber", "Existing_IPSec_Policy_Name")
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"      # hyphen-like characters Word and web pages print


@dataclass(frozen=True)
class FilterSpec:
    """One filterspec: the filter, and '' (plain), 'block' ([...]) or 'pass' ((...))."""
    filter: Filter
    kind: str = ""


def parse_filterspec(text, option: str = "filters") -> FilterSpec:
    """A FilterSpec from ipseccmd/ipsecpol text; ValidationError with a hint when it is malformed."""
    if not isinstance(text, str):
        raise ValidationError(option, text, FILTERSPEC_ACCEPTED)
    spec = text.strip()
    _check_pasted_command(option, text, spec)
    kind = ""
    for name, (opening, closing) in _BRACKETS.items():
        if spec[:1] == opening or spec[-1:] == closing:
            if not (spec[:1] == opening and spec[-1:] == closing):
                raise ValidationError(option, text, FILTERSPEC_ACCEPTED, "unbalanced %s" % (opening + closing))
            kind, spec = name, spec[1:-1].strip()
    _check_typo(option, text, spec)
    if any(c in spec for c in '"\u201c\u201d'):
        raise ValidationError(option, text, FILTERSPEC_ACCEPTED, "remove the double quotes")
    separators = [c for c in spec if c in "=+"]
    if len(separators) != 1:
        raise ValidationError(option, text, FILTERSPEC_ACCEPTED,
                              "needs exactly one '=' or '+' between source and destination")
    left, separator, right = spec.partition(separators[0])
    src_parts, dst_parts = left.split(":"), right.split(":")
    if len(src_parts) > 2 or len(dst_parts) > 3:
        raise ValidationError(option, text, FILTERSPEC_ACCEPTED, "too many ':' fields (IPv6 addresses "
                              "cannot be written in a filterspec)")
    src_port = (src_parts + [""])[1]
    dst_port, protocol = (dst_parts + ["", ""])[1:3]
    _check_placeholders(option, text, (src_port, dst_port), protocol)
    fields = {"src_port": src_port or 0, "dst_port": dst_port or 0, "protocol": protocol or "ANY",
              "mirrored": separator == "+"}
    fields["src"], fields["src_mask"] = _address(option, text, "source", src_parts[0])
    fields["dst"], fields["dst_mask"] = _address(option, text, "destination", dst_parts[0])
    try:
        flt = filter_from_dict(option, fields)
    except ValidationError as err:
        part = err.option[len(option) + 1:].replace("src", "source").replace("dst", "destination")
        raise ValidationError(option, text, FILTERSPEC_ACCEPTED, "%s %r: %s" % (
            part.replace("_", " "), err.value, err.reason or "expected " + err.accepted)) from None
    return FilterSpec(flt, kind)


def _check_pasted_command(option, text, spec):
    """A KB 813878 command line, or its `-f` flag, pasted where one filterspec goes: name the
    filterspecs it holds, or the en dash or other trap parse_kb_command finds in it."""
    first = spec.split(None, 1)[0] if spec else ""
    tool = re.sub(r"\.exe$", "", first.strip('"').replace("/", "\\").rsplit("\\", 1)[-1].lower())
    if tool in TOOLS:
        try:
            command = parse_kb_command(spec, option)
        except ValidationError as err:
            raise ValidationError(option, _redact(text), err.accepted, _redact(err.reason)) from None
        found = [format_filterspec(s.filter, s.kind) for rule in command.rules for s in rule.filters]
        raise ValidationError(option, _redact(text), FILTERSPEC_ACCEPTED, "this is a whole %s command line; give "
                              "each filterspec after its -f as one item: %s" % (tool, ", ".join(found) or "it has none"))
    if first[:1] in "-" + _DASHES and first[1:].lower() == "f":
        dash = ("%r starts with %s (U+%04X), as KB 813878 prints it; " % (first, "an en dash" if first[0] == "\u2013"
                else "a dash-like character", ord(first[0]))) if first[0] in _DASHES else ""
        raise ValidationError(option, text, FILTERSPEC_ACCEPTED,
                              "%sgive the filterspec without -f: %s" % (dash, spec[len(first):].strip()))


def _redact(text):
    # -a P:"key" (or PRESHARE:"key") holds a pre-shared key, which no error may show.
    return re.sub(r'(?i)((?:^|\s)(?:p|preshare):)("[^"]*"|\S+)', r"\1********", text) if text else text


def _check_typo(option, text, spec):
    # The KB's outbound example reads `-f *0=:PortNumber:Protocol`, a typo for `0=*:...`.
    typo = re.match(r"^(\*0|0\*)\s*([=+]):([^:]*):?(.*)$", spec)
    if typo:
        port, proto = typo.group(3), typo.group(4)
        port = port if port.isdigit() else "PORT"
        proto = proto if proto and proto.lower() != "protocol" else "PROTOCOL"
        raise ValidationError(option, text, FILTERSPEC_ACCEPTED,
                              "KB 813878 misprints the outbound filter as *0=:PortNumber:Protocol; this "
                              "probably means 0%s*:%s:%s, from me to any address" % (typo.group(2), port, proto))


def _check_placeholders(option, text, ports, protocol):
    # The KB writes its variables as words ("Protocol and PortNumber are variables").
    for port in ports:
        if port.strip().lower() in ("portnumber", "port"):
            raise ValidationError(option, text, FILTERSPEC_ACCEPTED,
                                  "%s is a placeholder from KB 813878; put the port number there" % port)
    if protocol.strip().lower() in ("protocol", "proto"):
        raise ValidationError(option, text, FILTERSPEC_ACCEPTED,
                              "%s is a placeholder from KB 813878; put TCP, UDP or another protocol there"
                              % protocol)


def _address(option, text, side, field):
    """(address text for filter_from_dict, mask or None) from one side of a filterspec."""
    address, _, mask = field.strip().partition("/")
    if address in ("*", "0"):
        if mask:
            raise ValidationError(option, text, FILTERSPEC_ACCEPTED,
                                  "the %s %r takes no mask" % (side, address))
        return ("any" if address == "*" else "me"), None
    if not address:
        raise ValidationError(option, text, FILTERSPEC_ACCEPTED, "the %s address is missing" % side)
    if address.lower() in ("me", "any", "dns", "wins", "dhcp", "gateway"):
        raise ValidationError(option, text, FILTERSPEC_ACCEPTED,
                              "%r is netsh syntax; a filterspec writes 0 for me and * for any, and has no "
                              "server types" % address)
    if "-" in address and re.match(r"^[0-9.]+-[0-9.]+$", address):
        raise ValidationError(option, text, FILTERSPEC_ACCEPTED, "address ranges cannot be written in a filterspec")
    return address, (mask or None)


def format_filterspec(flt: Filter, kind: str = "") -> str:
    """The filterspec text of a filter; ValidationError when the grammar cannot express it
    (ranges, server types, IPv6). The description has no place in the grammar and is dropped."""
    if kind not in KINDS:
        raise ValidationError("kind", kind, "one of '', 'block', 'pass'")
    src = _format_side("src", flt.src) + (":%d" % flt.src_port if flt.src_port else "")
    dst = _format_side("dst", flt.dst)
    if flt.protocol:
        dst += ":%s:%s" % (flt.dst_port or "", protocol_name(flt.protocol))
    elif flt.dst_port:
        dst += ":%d" % flt.dst_port
    text = src + ("+" if flt.mirrored else "=") + dst
    if kind:
        opening, closing = _BRACKETS[kind]
        text = opening + text + closing
    return text


def _format_side(option, address: Address) -> str:
    if address == ANY:
        return "*"
    if address == ME:
        return "0"
    if address.kind == "dns":
        return address.value
    if address.kind == "ip" and ":" not in address.value:
        mask = address.mask or HOST_MASK
        return address.value if mask == HOST_MASK else "%s/%s" % (address.value, mask)
    raise ValidationError(option, str(address), "me, any, an IPv4 address or subnet, or a DNS name",
                          "ipseccmd and ipsecpol filterspecs cannot express a %s address" %
                          ("IPv6" if address.kind == "ip" else address.kind))


# --------------------------------------------------------------------------------------------
# Pasted KB command lines
# --------------------------------------------------------------------------------------------

TOOLS = ("ipseccmd", "ipsecpol")
# Flags with a value and flags without one (W2K Resource Kit "IPSecPol Syntax"; docs/windows-tools.md "ipseccmd and
# ipsecpol"; -1f and -1e exist in ipseccmd only [I]).
_VALUE_FLAGS = ("-w", "-p", "-r", "-n", "-t", "-a", "-1s", "-1k", "-1f", "-1e")
_SWITCHES = ("-x", "-y", "-o", "-u", "-soft", "-lan", "-dialup", "-confirm", "-1p")
_LIST_FLAGS = ("-n", "-a", "-1s")
_STATIC_ONLY = ("-p", "-r", "-x", "-y", "-o")
_ACTIONS = {"BLOCK": "block", "PASS": "permit"}


@dataclass(frozen=True)
class KbRule:
    """One -r rule of a command, with the filters and action it creates (none when deleting)."""
    name: str
    filters: Tuple[FilterSpec, ...] = ()


@dataclass(frozen=True)
class KbCommand:
    """What one ipseccmd/ipsecpol command line asks for.

    store: '' (dynamic mode, no -w), 'REG' (local registry) or 'DS' (directory, with `domain`).
    action: 'block' (-n BLOCK), 'permit' (-n PASS), 'negotiate' (-n with security offers, kept raw
    in `negotiation`) or '' when -n is absent. `options` keeps the other flags as (flag, value).
    """
    tool: str
    store: str = ""
    domain: str = ""
    computer: str = ""
    policy: str = ""
    poll_interval: Optional[int] = None
    rules: Tuple[KbRule, ...] = ()
    action: str = ""
    negotiation: str = ""
    assign: bool = False
    unassign: bool = False
    delete: bool = False
    delete_dynamic: bool = False
    options: Tuple[Tuple[str, str], ...] = ()

    @property
    def dynamic(self) -> bool:
        return not self.store


def parse_kb_command(line: str, option: str = "command") -> KbCommand:
    """Parse a pasted ipseccmd/ipsecpol command line (as in KB 813878) into a KbCommand."""
    if not isinstance(line, str) or not line.strip():
        raise ValidationError(option, line, "an ipseccmd or ipsecpol command line")
    curly = [c for c in line if c in "\u201c\u201d\u201e"]
    if curly:
        raise ValidationError(option, line, "straight double quotes (\")",
                              "it contains the typographic quote %r" % curly[0])
    argv = split_command_line(line.strip())
    tool = re.sub(r"\.exe$", "", argv[0].replace("/", "\\").rsplit("\\", 1)[-1].lower())
    if tool not in TOOLS:
        raise ValidationError(option, line, "a command line starting with ipseccmd or ipsecpol",
                              "it starts with %r" % argv[0])
    args = argv[1:]
    fields = {"tool": tool}
    if args and args[0].startswith("\\\\"):
        fields["computer"] = args.pop(0)
    if args and args[0].lower() == "show":
        raise ValidationError(option, line, "a command that changes policy", "show is query mode")
    rule_names, specs, options, seen = [], [], [], []
    i = 0
    while i < len(args):
        flag = args[i].lower()
        seen.append(flag)
        if flag == "-f":
            i += 1
            start = i
            while i < len(args) and args[i][:1] not in "-" + _DASHES:
                specs.append(parse_filterspec(args[i], "%s -f" % option))
                i += 1
            if i == start:
                raise ValidationError(option, line, FILTERSPEC_ACCEPTED, "-f has no filterspec after it")
            continue
        if flag in _SWITCHES:
            key = {"-x": "assign", "-y": "unassign", "-o": "delete", "-u": "delete_dynamic"}.get(flag)
            if key:
                fields[key] = True
            else:
                options.append((flag, ""))
            i += 1
            continue
        if flag[:1] in _DASHES:
            raise ValidationError(option, line, "flags written with the ASCII hyphen-minus",
                                  "%r starts with %s (U+%04X), as KB 813878 prints it; type -%s" % (
                                      args[i], "an en dash" if flag[0] == "\u2013" else "a dash-like character",
                                      ord(flag[0]), args[i][1:]))
        if flag not in _VALUE_FLAGS:
            raise ValidationError(option, line, "flags " + " ".join(("-f",) + _VALUE_FLAGS + _SWITCHES),
                                  "unknown flag %r" % args[i])
        if i + 1 >= len(args):
            raise ValidationError(option, line, "a value after %s" % flag, "%s is the last word" % flag)
        if flag in _LIST_FLAGS:
            # "one or more ... separated by spaces" ([D] XP command-line reference, Ipseccmd): the items
            # run to the next flag, and are kept space-joined
            end = i + 1
            while end < len(args) and args[end][:1] not in "-" + _DASHES:
                end += 1
            if end == i + 1:
                raise ValidationError(option, line, "a value after %s" % flag, "%s has no item after it" % flag)
            value = " ".join(args[i + 1:end])
            i = end
        else:
            value = args[i + 1]
            i += 2
        if flag == "-w":
            _store(option, line, value, fields)
        elif flag == "-p":
            _policy(option, line, value, fields)
        elif flag == "-r":
            rule_names.append(_name(option + " -r", value))
        elif flag == "-n":
            fields["action"] = _ACTIONS.get(value.strip().upper(), "negotiate")
            fields["negotiation"] = "" if value.strip().upper() in _ACTIONS else value
        else:
            options.append((flag, value))
    if "store" not in fields:
        static = [f for f in seen if f in _STATIC_ONLY]
        if static:
            raise ValidationError(option, line, "-w REG (or -w DS) with the static-mode flag %s" % static[0],
                                  "%s works only on a stored policy" % static[0])
    if specs and len(rule_names) > 1:
        raise ValidationError(option, line, "one -r rule name when -f is given",
                              "the filters cannot belong to %d rules" % len(rule_names))
    if specs:
        rules = (KbRule(rule_names[0] if rule_names else "", tuple(specs)),)
    else:
        rules = tuple(KbRule(name) for name in rule_names)
    return KbCommand(rules=rules, options=tuple(options), **fields)


def _store(option, line, value, fields):
    kind, _, domain = value.partition(":")
    store = kind.strip().upper()
    if store not in ("REG", "DS") or (store == "REG" and domain):
        raise ValidationError(option + " -w", value, "REG (local registry) or DS[:domain] (directory)")
    fields["store"], fields["domain"] = store, domain.strip()


def _policy(option, line, value, fields):
    # -p Name[:PollInterval] (minutes); a name may itself hold ':' when no number follows it.
    name, colon, poll = value.rpartition(":")
    if colon and re.match(r"^[0-9]+$", poll.strip()):
        fields["poll_interval"] = int(poll)
        value = name
    fields["policy"] = _name(option + " -p", value)


def _name(option, value):
    for placeholder in _NAME_PLACEHOLDERS:
        if placeholder.lower() in value.lower():
            raise ValidationError(option, value, "a real name",
                                  "%s is a placeholder from KB 813878" % placeholder)
    return parse_name(option, value)


__all__ = ["FILTERSPEC_ACCEPTED", "KINDS", "TOOLS", "FilterSpec", "KbRule", "KbCommand", "parse_filterspec",
           "format_filterspec", "parse_kb_command"]
