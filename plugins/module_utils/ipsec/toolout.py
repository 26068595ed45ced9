# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Parsers for the few tool outputs the engine must read as text.

Static state is read from the registry (language independent); text is parsed only where no other
source exists: netsh's error lines and the volatile dynamic filters.

No verbatim capture of `netsh ipsec dynamic show rule|all` or `ipseccmd show filters` is public
(docs/windows-tools.md "netsh ipsec dynamic", "ipseccmd and ipsecpol"). The layouts read here are therefore *assumed* ([I], not verified on
real Windows) and written down as fixtures, `tests/fixtures/toolout/netsh_dynamic_show_rule.txt` and
`ipseccmd_show_filters.txt`; winsim prints exactly those. The parsers are strict on purpose: a label
or heading they do not know is an error, never a guess. Windows translates these labels and prints
them in the console code page (docs/windows-tools.md "netsh general rules"), so every such error says the display language may not
be English.

Standard library only.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from .model import (ANY, ME, PROTOCOL_NUMBERS, Address, DynamicRule, Filter, IPsecError, ValidationError,
                    parse_address, parse_mask)

# "ERR IPsec[05072]" -- the prefix and the 5-digit number are attested by several independent parsers
# of real output; what follows the bracket is not ([E] netsh_static_errors_EVIDENCE.txt). The casing
# "IPSec[" appears in one of them, so the match ignores case.
_NETSH_ERROR = re.compile(r"ERR\s+IPsec\[(\d{1,5})\]\s*:?\s*(.*)", re.IGNORECASE)

_LANGUAGE_HINT = ("the tool's display language may not be English; only English labels are "
                  "understood")


# A line that mentions a key is never shown: [I] whether netsh lists an authentication method's
# pre-shared key among the dynamic rules or policies.
_MAY_HOLD_KEY = re.compile(r"pre-?shared|\bkey\b|\bpsk\b|secret", re.IGNORECASE)


class ToolOutputError(IPsecError):
    """Tool output that does not match the layout this parser knows: the message names the line by
    its number, says what was expected there (`problem`, which does not repeat the line) and shows
    the line once ('' for none), unless it mentions a key."""

    def __init__(self, tool: str, lineno: int, line: str, problem: str):
        self.tool = tool
        self.lineno = lineno
        shown = ""
        if _MAY_HOLD_KEY.search(line):
            shown = " (the line is not shown: it mentions a key)"
        elif line.strip():
            shown = ", in %r" % line.strip()
        super().__init__("%s output, line %d: %s%s; %s" % (tool, lineno, problem, shown, _LANGUAGE_HINT))


def parse_netsh_error(text: str) -> Optional[Tuple[int, str]]:
    """(code, message) of the first `ERR IPsec[NNNNN]` line in netsh output, or None.

    The message is the rest of that line (an optional ':' dropped) or, when the line ends at the
    bracket, the next non-blank line ([I] layout after the bracket not attested).
    """
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = _NETSH_ERROR.search(line)
        if not match:
            continue
        message = match.group(2).strip()
        if not message:
            message = next((rest.strip() for rest in lines[index + 1:] if rest.strip()), "")
        return int(match.group(1)), message
    return None


# --- the shared "Label : value" block reader ---------------------------------------------------------

class _Layout:
    """One tool's assumed layout: section headings, and per section the labels a block may carry."""

    def __init__(self, tool: str, sections: Dict[str, Tuple[str, ...]], required: Dict[str, Tuple[str, ...]]):
        self.tool = tool
        self.sections = sections        # heading -> allowed labels
        self.required = required        # heading -> labels every block of that section must carry


def _read_blocks(text: str, layout: _Layout) -> List[Tuple[str, int, Dict[str, Tuple[int, str]]]]:
    """[(section, first line number, {label: (line number, value)})] in output order."""
    blocks = []
    section = None
    current = None
    lines = text.splitlines()
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip()
        if not line.strip():
            current = None
            continue
        if _NETSH_ERROR.search(line):
            raise ToolOutputError(layout.tool, lineno, line, "the tool reported an error instead of a listing")
        heading = line.strip().rstrip(":")
        if ":" not in line.rstrip().rstrip(":") and heading in layout.sections:
            section, current = heading, None
            continue
        if set(line.strip()) <= set("-=") and lineno > 1 and lines[lineno - 2].strip().rstrip(":") == section:
            continue                                    # the heading's underline
        label, colon, value = line.partition(":")
        label = label.strip()
        if not colon or (not value.strip() and (section is None or label not in layout.sections[section])):
            raise ToolOutputError(layout.tool, lineno, line, "neither a known heading nor a `Label : value` line (known headings: %s)"
                                  % ", ".join(layout.sections))
        if section is None:
            raise ToolOutputError(layout.tool, lineno, line, "a field before any section heading")
        if label not in layout.sections[section]:
            raise ToolOutputError(layout.tool, lineno, line, "a label the %r section does not have (known: %s)"
                                  % (section, ", ".join(layout.sections[section])))
        if current is None:
            current = {}
            blocks.append((section, lineno, current))
        if label in current:
            raise ToolOutputError(layout.tool, lineno, line, "a label repeated within one block")
        current[label] = (lineno, value.strip())
    for section, lineno, fields in blocks:
        missing = [label for label in layout.required.get(section, ()) if label not in fields]
        if missing:
            raise ToolOutputError(layout.tool, lineno, "", "block in section %r lacks %s"
                                  % (section, ", ".join(missing)))
    return blocks


class _Field:
    """Value converters that name the offending line when a value is not understood."""

    def __init__(self, tool: str, fields: Dict[str, Tuple[int, str]]):
        self.tool = tool
        self.fields = fields

    def fail(self, label: str, problem: str):
        lineno, value = self.fields[label]
        raise ToolOutputError(self.tool, lineno, "%s : %s" % (label, value), problem)

    def choice(self, label: str, mapping: Dict[str, object]):
        value = self.fields[label][1]
        try:
            return mapping[value.upper()]
        except KeyError:
            self.fail(label, "unknown value (known: %s)" % ", ".join(sorted(mapping)))

    def number(self, label: str, upper: int, any_word: str = "") -> int:
        value = self.fields[label][1]
        if any_word and value.upper() == any_word:
            return 0
        if value.isdigit() and int(value) <= upper:
            return int(value)
        self.fail(label, "expected a number 0-%d%s" % (upper, " or %s" % any_word if any_word else ""))

    def protocol(self, label: str) -> int:
        value = self.fields[label][1].upper()
        if value in PROTOCOL_NUMBERS:
            return PROTOCOL_NUMBERS[value]
        return self.number(label, 255)

    def address(self, label: str, mask_label: str) -> Address:
        """An address and its mask, normalised as model.parse_address/parse_mask normalise input."""
        value = self.fields[label][1]
        mask = self.fields[mask_label][1]
        special = _SPECIAL_ADDRESSES.get(value.lower())
        if special is not None:
            return special
        if value.startswith("<"):
            self.fail(label, "unknown special address (known: <Any IP Address>, <My IP Address>)")
        if mask.upper() == "NONE":
            mask = ""
        try:
            address = parse_address(label, value)
        except ValidationError:
            self.fail(label, "expected an IPv4 or IPv6 address or a range a-b")
        if address.kind not in ("ip", "range"):
            self.fail(label, "expected an IPv4 or IPv6 address or a range a-b")
        try:
            return Address(address.kind, address.value, parse_mask(mask_label, mask, address), address.end)
        except ValidationError:
            self.fail(mask_label, "expected the address's mask (dotted, or a prefix length), or NONE for a range")


# Special values of the one real netsh capture ([V] tests/fixtures/captures/netsh_static_show_all_filterlist_win10.txt); ipseccmd's are assumed the same [I].
_SPECIAL_ADDRESSES = {"<any ip address>": ANY, "<my ip address>": ME}


# --- netsh ipsec dynamic show rule | show all ([I] layout, see the fixture) -----------------------------

_NETSH_RULE_LABELS = (
    "Rule Type", "Connection Type", "Source Address", "Source Mask", "Destination Address",
    "Destination Mask", "Protocol", "Source Port", "Destination Port", "Mirrored", "Main Mode Policy",
    "Quick Mode Policy", "Inbound Action", "Outbound Action",
)
_NETSH_DYNAMIC = _Layout(
    "netsh ipsec dynamic show",
    sections={
        "Main Mode Policies": ("Policy Name", "Soft SA Expiration Time", "Main Mode Life Time", "QM Per MM"),
        "Rules": _NETSH_RULE_LABELS,
    },
    required={"Rules": tuple(label for label in _NETSH_RULE_LABELS if "Mode Policy" not in label)},
)
_NETSH_ACTIONS = {"PERMIT": "permit", "BLOCK": "block", "NEGOTIATE": "negotiate"}
_CONNTYPES = {"ALL": "all", "LAN": "lan", "DIALUP": "dialup"}
_YES_NO = {"YES": True, "NO": False}


def parse_netsh_dynamic_show(text: str) -> Tuple[DynamicRule, ...]:
    """The dynamic rules in `netsh ipsec dynamic show rule` or `show all` output ([I] layout).

    Main-mode policy blocks are read (so their labels are checked) but not returned. Each rule
    carries the name of its main-mode policy (`DynamicRule.mmpolicy`; '' for NONE or when the line
    is missing, [I]): it tells winsec's own rules from other tools'. Empty output means no dynamic
    rules ([I]).
    """
    rules = []
    for section, _lineno, fields in _read_blocks(text, _NETSH_DYNAMIC):
        if section != "Rules":
            continue
        get = _Field(_NETSH_DYNAMIC.tool, fields)
        get.choice("Rule Type", {"TRANSPORT": "transport"})    # tunnel rules are not modelled
        filt = Filter(
            src=get.address("Source Address", "Source Mask"),
            dst=get.address("Destination Address", "Destination Mask"),
            protocol=get.protocol("Protocol"),
            src_port=get.number("Source Port", 65535, "ANY"),
            dst_port=get.number("Destination Port", 65535, "ANY"),
            mirrored=get.choice("Mirrored", _YES_NO),
        )
        rules.append(DynamicRule(filter=filt, inbound=get.choice("Inbound Action", _NETSH_ACTIONS),
                                 outbound=get.choice("Outbound Action", _NETSH_ACTIONS),
                                 conntype=get.choice("Connection Type", _CONNTYPES),
                                 mmpolicy=_policy_name(fields, "Main Mode Policy")))
    return tuple(rules)


def _policy_name(fields: Dict[str, Tuple[int, str]], label: str) -> str:
    """A policy name field: NONE (upper case, like the layout's other keywords, [I]) means none."""
    value = fields.get(label, (0, ""))[1]
    return "" if value == "NONE" else value


# --- ipseccmd show filters ([I] layout, see the fixture) -----------------------------------------------

_IPSECCMD_LABELS = (
    "Filter Type", "Src Addr", "Src Mask", "Dest Addr", "Dest Mask", "Src Port", "Dest Port", "Protocol",
    "Mirrored", "Connection Type", "Inbound Action", "Outbound Action",
)
_IPSECCMD = _Layout("ipseccmd show filters", sections={"Quick Mode Filters": _IPSECCMD_LABELS},
                    required={"Quick Mode Filters": _IPSECCMD_LABELS})
# ipseccmd's own words for the filter actions: -n BLOCK / -n PASS ([D] KB 813878, [E] SEC505); negotiate [I].
_IPSECCMD_ACTIONS = {"BLOCK": "block", "PASS": "permit", "NEGOTIATE": "negotiate"}


def parse_ipseccmd_show_filters(text: str) -> Tuple[DynamicRule, ...]:
    """The quick-mode filters in `ipseccmd show filters` output ([I] layout), as dynamic rules.

    Protocol is numeric here, as in netdiag's filter blocks of the same era ([V] KB 813878). The
    assumed layout names no main-mode policy ([I]), so these rules carry none (`mmpolicy` '').
    """
    rules = []
    for _section, _lineno, fields in _read_blocks(text, _IPSECCMD):
        get = _Field(_IPSECCMD.tool, fields)
        get.choice("Filter Type", {"TRANSPORT": "transport"})
        filt = Filter(
            src=get.address("Src Addr", "Src Mask"),
            dst=get.address("Dest Addr", "Dest Mask"),
            protocol=get.number("Protocol", 255),
            src_port=get.number("Src Port", 65535),
            dst_port=get.number("Dest Port", 65535),
            mirrored=get.choice("Mirrored", _YES_NO),
        )
        rules.append(DynamicRule(filter=filt, inbound=get.choice("Inbound Action", _IPSECCMD_ACTIONS),
                                 outbound=get.choice("Outbound Action", _IPSECCMD_ACTIONS),
                                 conntype=get.choice("Connection Type", _CONNTYPES)))
    return tuple(rules)


__all__ = ["ToolOutputError", "parse_netsh_error", "parse_netsh_dynamic_show",
           "parse_ipseccmd_show_filters"]
