# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""`netdiag /test:ipsec [/debug]` text: rendered from a HostState (for diffs and reports), and parsed
back (to serve Windows 2000 hosts from saved output). Standard library only.

What is known, and from where (KB 813878's samples in tests/fixtures/netdiag/; docs/windows-tools.md "netdiag"):
- [V] the lines `IP Security test . . . . . . . . . : Passed`, `IPSec policy service is active, but no
  policy is assigned.`, `Local IPSec Policy Active: 'NAME'`, `IP Security Policy Path:
  SOFTWARE\\Policies\\Microsoft\\Windows\\IPSec\\Policy\\Local\\ipsecPolicy{GUID}`, `There are N filters`,
  and per filter `No Name`, `Filter Id`, `Policy Id`, `Src Addr`/`Src Mask`, `Dest Addr`/`Dest Mask`,
  `Tunnel Addr`, `Src Port`, `Dest Port`, numeric `Protocol`, `TunnelFilter: No`, `Flags : Inbound Block`
  / `Outbound Block`, with "me" shown as the host's address and "any" as 0.0.0.0/0.0.0.0.
- The KB's copy lost its line breaks. We print one line per label or per label pair, the pairs
  the KB keeps together on one line ("Src Addr : 0.0.0.0 Src Mask : 0.0.0.0"), and indent details
  under the test line as netdiag does for its other tests: [I] the real spacing is not verified.
- [I] not verified on real Windows: `Directory IPSec Policy Active:` with an LDAP path (domain
  policy), the wording when the PolicyAgent is stopped, `Permit`/`Negotiate` in Flags, the name line
  of a named filter, whether both halves of a mirrored filter share one Filter Id (we print them so;
  the parser folds a pair only when they do), and which direction a filter without "me" on either
  side gets (we print it Outbound, its mirror Inbound), how ranges, DNS names and server types
  look (Windows resolves them; we print the range, the name, or `<DNS>`), and what netdiag prints
  with /debug when no policy is assigned (we print the filter section only if dynamic filters exist).
- The parser is strict inside the IP Security test: labels in the order above, known values only.
  A filter name containing ": " reads as an unknown label and is refused rather than guessed at.
  Text before the test (netdiag's other sections) is skipped; after it only netdiag's closing
  "The command completed successfully" [I] may follow.
"""
from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Dict, List, NamedTuple, Optional, Tuple

from .model import (
    ANY, ME, Address, DomainAssignment, DynamicRule, Filter, FilterAction, FilterList, HostState, IPsecError,
    Policy, Rule, filter_text, name_key,
)

LOCAL_STORE_PATH = "SOFTWARE\\Policies\\Microsoft\\Windows\\IPSec\\Policy\\Local\\ipsecPolicy"  # [V] KB 813878
TEST_LINE = "IP Security test . . . . . . . . . : "                                               # [V]
NO_POLICY = "IPSec policy service is active, but no policy is assigned."                          # [V]
# The collection's own lines, not netdiag's: a host whose dynamic rules could not be read (a listing in
# a display language the engine does not read) has unknown dynamic filters, which is not none.
DYNAMIC_UNKNOWN = ("[winsec] The dynamic filters are unknown: the host's listing of them could not be "
                   "read, so the count above leaves them out.")
SUMMARY_DYNAMIC_UNKNOWN = "? dynamic rules: unknown (the host's listing of them could not be read)"
NOT_RUNNING = "IPSec policy service is not active."                                               # [I]
DIRECTIONS = ("Inbound", "Outbound")
ACTION_FLAGS = {"block": "Block", "permit": "Permit", "negotiate": "Negotiate"}   # Block [V]; others [I]
HOST_MASK = "255.255.255.255"
UNKNOWN_GUID = "{00000000-0000-0000-%s-%s}"     # an object the store has not given a GUID yet


class FoldedFilter(NamedTuple):
    """A model filter read back from netdiag entries, with the actions its directions showed."""
    filter: Filter
    inbound: str
    outbound: str
    policy_id: str


class NetdiagParseError(IPsecError, ValueError):
    """netdiag text that does not read as the layout we know; names the place and what was expected."""


@dataclass(frozen=True)
class NetdiagFilter:
    """One filter as netdiag prints it: a single direction, "me" already replaced by an address."""
    name: str                   # '' where netdiag prints "No Name"
    filter_id: str
    policy_id: str
    src_addr: str
    src_mask: str
    dst_addr: str
    dst_mask: str
    tunnel_addr: str
    src_port: int
    dst_port: int
    protocol: int
    tunnel: bool
    direction: str              # Inbound | Outbound
    action: str                 # block | permit | negotiate


@dataclass(frozen=True)
class NetdiagReport:
    """What `netdiag /test:ipsec [/debug]` says."""
    status: str                             # Passed | Failed | Skipped
    service_active: bool
    store: str = ""                         # local | domain | '' (no policy assigned)
    policy: str = ""
    path: str = ""
    policy_guid: str = ""
    filter_count: Optional[int] = None      # None without /debug
    filters: Tuple[NetdiagFilter, ...] = ()

    def host_state(self, local_address: str = "192.168.1.1") -> HostState:
        """A HostState rebuilt from the report.

        netdiag shows no rule, filter list or filter action names, so each group of filters sharing
        a Policy Id and an action becomes one unnamed rule whose filter list and filter action are
        named after that Policy Id. Static and dynamic filters look alike; with no policy assigned
        every filter must be dynamic. A domain policy is reported in `domain`, its filters dropped.
        """
        entries = fold(self.filters, local_address)
        if self.store == "domain":
            return HostState(domain=DomainAssignment(self.policy, self.path), policyagent=self._agent())
        if not self.policy:
            return HostState(dynamic=tuple(DynamicRule(f, inbound, outbound) for f, inbound, outbound, _ in entries),
                             policyagent=self._agent())
        groups: Dict[tuple, List[Filter]] = {}
        for f, inbound, _, policy_id in entries:
            groups.setdefault((policy_id, inbound), []).append(f)
        ids = [pid for pid, _ in groups]
        lists, actions, rules = [], [], []
        for (policy_id, action), filters in groups.items():
            name = policy_id if ids.count(policy_id) == 1 else "%s %s" % (policy_id, ACTION_FLAGS[action])
            lists.append(FilterList(name, tuple(filters)))
            actions.append(FilterAction(name, action, guid=policy_id))
            rules.append(Rule("", name, name))
        policy = Policy(self.policy, rules=tuple(rules), guid=self.policy_guid)
        return HostState(policies=(policy,), filterlists=tuple(lists), filteractions=tuple(actions),
                         assigned=self.policy, policyagent=self._agent())

    def _agent(self) -> str:
        return "running" if self.service_active else "stopped"


# ---------------------------------------------------------------------------------------------
# HostState -> netdiag entries and text

def _guid(guid: str, *key) -> str:
    """The object's GUID as netdiag prints it; for an object the store has not given one yet (a
    planned state), a placeholder with eight leading zero groups, derived from `key` so that every
    render of the same state prints the same one."""
    if guid:
        return (guid if guid.startswith("{") else "{%s}" % guid).upper()
    digest = hashlib.sha1(repr(key).encode("utf-8")).hexdigest().upper()
    return UNKNOWN_GUID % (digest[:4], digest[4:16])


def _show_address(address: Address, local_address: str) -> Tuple[str, str]:
    if address.kind == "any":
        return "0.0.0.0", "0.0.0.0"
    if address.kind == "me":
        return local_address, HOST_MASK
    if address.kind == "ip":
        v6 = ":" in address.value
        mask = address.mask or ("128" if v6 else HOST_MASK)
        if not v6 and mask.isdigit():
            mask = str(ipaddress.IPv4Network((0, int(mask))).netmask)
        return address.value, mask
    # [I] Windows resolves these when it builds its filters; the controller only knows the name.
    if address.kind == "range":
        return "%s-%s" % (address.value, address.end), HOST_MASK
    if address.kind == "server":
        return "<%s>" % address.value, HOST_MASK
    return address.value, HOST_MASK


def _direction(f: Filter) -> str:
    # [V] KB 813878: *=0 (any -> me) shows Inbound, 0=* (me -> any) Outbound. [I] neither side "me": Outbound.
    return "Inbound" if f.dst == ME and f.src != ME else "Outbound"


def _expand(f: Filter, name: str, filter_id: str, policy_id: str, tunnel: str, local_address: str,
            actions: Dict[str, str]) -> List[NetdiagFilter]:
    """The netdiag entries of one filter: itself, and its mirror when mirrored ([V] KB 813878, tests/fixtures/netdiag/)."""
    first = _direction(f)
    halves = [(f.src, f.dst, f.src_port, f.dst_port, first)]
    if f.mirrored:
        halves.append((f.dst, f.src, f.dst_port, f.src_port, "Inbound" if first == "Outbound" else "Outbound"))
    out = []
    for src, dst, sport, dport, direction in halves:
        src_addr, src_mask = _show_address(src, local_address)
        dst_addr, dst_mask = _show_address(dst, local_address)
        out.append(NetdiagFilter(name, filter_id, policy_id, src_addr, src_mask, dst_addr, dst_mask,
                                 tunnel or "0.0.0.0", sport, dport, f.protocol, bool(tunnel), direction,
                                 actions[direction]))
    return out


def entries(state: HostState, local_address: str = "192.168.1.1") -> Tuple[NetdiagFilter, ...]:
    """The filters netdiag lists for `state`, in its order: the assigned local policy's active rules
    in rule order, each filter then its mirror, then the dynamic rules. Nothing under a domain
    policy: the engine does not know its filters."""
    if state.domain is not None:
        return ()
    policy = state.policy(state.assigned) if state.assigned else None
    out = list(_policy_entries(state, policy, local_address))
    for index, d in enumerate(state.dynamic or ()):        # None: unknown, render() says so
        filter_id = _guid(d.filter.guid, "dynamic", index)
        policy_id = _guid("", "dynamic policy", d.inbound, d.outbound)
        action = {"Inbound": d.inbound, "Outbound": d.outbound}
        out += _expand(d.filter, d.filter.description, filter_id, policy_id, "", local_address, action)
    return tuple(out)


def _policy_entries(state: HostState, policy: Optional[Policy], local_address: str) -> List[NetdiagFilter]:
    """The netdiag filter entries of one static policy's active rules, in rule order."""
    out: List[NetdiagFilter] = []
    for rule in (policy.rules if policy else ()):
        flist = state.filterlist(rule.filterlist)
        faction = state.filteraction(rule.filteraction)
        if rule.default_response or not rule.active or flist is None or faction is None:
            continue
        policy_id = _guid(faction.guid, "action", name_key(faction.name))
        action = {d: faction.action for d in DIRECTIONS}
        for index, f in enumerate(flist.filters):
            filter_id = _guid(f.guid, "filter", name_key(flist.name), index)
            out += _expand(f, f.description, filter_id, policy_id, rule.tunnel, local_address, action)
    return out


def render(state: HostState, *, local_address: str = "192.168.1.1", debug: bool = True,
           service_running: Optional[bool] = None, directory: Optional[str] = None) -> str:
    """`netdiag /test:ipsec [/debug]` as it would read on the host in `state`.

    service_running: None takes it from state.policyagent (running unless 'stopped').
    directory: the domain's naming context when `state` is the domain store: its assigned policy then
    shows as a member under that GPO would show it, a directory policy with its LDAP path ([I] the
    domain variant's layout is not published, docs/windows-tools.md "netdiag"), with its filters.
    """
    if service_running is None:
        service_running = state.policyagent != "stopped"
    lines: List[str] = []
    if not service_running:
        return TEST_LINE + "Skipped\n    " + NOT_RUNNING + "\n"
    lines.append(TEST_LINE + "Passed")
    if directory is not None and state.assigned:
        policy = state.policy(state.assigned)
        lines.append("    Directory IPSec Policy Active: '%s'" % (policy.name if policy else state.assigned))
        path = "LDAP://CN=ipsecPolicy%s,CN=IP Security,CN=System,%s" % (
            _guid(policy.guid if policy else "", "policy", name_key(state.assigned)), directory)
    elif directory is not None:
        lines.append("    " + NO_POLICY)
        path = ""
    elif state.domain is not None:
        lines.append("    Directory IPSec Policy Active: '%s'" % state.domain.name)      # [I]
        path = state.domain.path
    elif state.assigned:
        policy = state.policy(state.assigned)
        lines.append("    Local IPSec Policy Active: '%s'" % (policy.name if policy else state.assigned))
        path = LOCAL_STORE_PATH + _guid(policy.guid if policy else "", "policy", name_key(state.assigned))
    else:
        lines.append("    " + NO_POLICY)
        path = ""
    if debug:
        if path:
            lines.append("    IP Security Policy Path: " + path)
        listed = entries(state, local_address)
        if (state.domain is None or directory is not None) and (path or listed or state.dynamic is None):
            lines += ["", "    There are %d filters" % len(listed)]
            for e in listed:
                lines += _filter_lines(e)
            if state.dynamic is None and directory is None:
                lines += ["", "    " + DYNAMIC_UNKNOWN]
    return "\n".join(lines) + "\n"


def _filter_lines(e: NetdiagFilter) -> List[str]:
    pad = "        "
    return [
        "    " + (e.name or "No Name"),
        pad + "Filter Id: " + e.filter_id,
        pad + "Policy Id: " + e.policy_id,
        pad + "Src Addr : %-15s  Src Mask : %s" % (e.src_addr, e.src_mask),
        pad + "Dest Addr : %-15s Dest Mask : %s" % (e.dst_addr, e.dst_mask),
        pad + "Tunnel Addr : %-15s Src Port : %-5d  Dest Port : %d" % (e.tunnel_addr, e.src_port, e.dst_port),
        pad + "Protocol : %-3d TunnelFilter: %s" % (e.protocol, "Yes" if e.tunnel else "No"),
        pad + "Flags : %s %s" % (e.direction, ACTION_FLAGS[e.action]),
    ]


# ---------------------------------------------------------------------------------------------
# netdiag text -> NetdiagReport

_WS = r"\s*"
_GUID = r"\{[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}"
_HEADER = re.compile(r"IP Security test[ .]*:" + _WS + r"(?P<status>Passed|Failed|Skipped)\b")
_STATUS_LINES = (
    (re.compile(re.escape(NO_POLICY)), ""),
    (re.compile(re.escape(NOT_RUNNING)), "stopped"),
    (re.compile(r"Local IPSec Policy Active:" + _WS + r"'(?P<name>[^\r\n]*?)'(?=\s|$)"), "local"),
    (re.compile(r"Directory IPSec Policy Active:" + _WS + r"'(?P<name>[^\r\n]*?)'(?=\s|$)"), "domain"),  # [I]
)
_PATH = re.compile(r"IP Security Policy Path:[ \t]*(?P<path>[^\r\n]+)")
_COUNT = re.compile(r"There (?:are|is) (?P<count>\d+) filters?\b")
_NAME = re.compile(r"(?P<name>[^\r\n]+?)[ \t]*(?=\s*Filter Id\s*:)")
_FIELDS = (     # label, value pattern, in the order netdiag prints them ([V] KB 813878)
    ("filter_id", "Filter Id", _GUID),
    ("policy_id", "Policy Id", _GUID),
    ("src_addr", "Src Addr", r"\S+"),
    ("src_mask", "Src Mask", r"\S+"),
    ("dst_addr", "Dest Addr", r"\S+"),
    ("dst_mask", "Dest Mask", r"\S+"),
    ("tunnel_addr", "Tunnel Addr", r"\S+"),
    ("src_port", "Src Port", r"\d+"),
    ("dst_port", "Dest Port", r"\d+"),
    ("protocol", "Protocol", r"\d+"),
    ("tunnel", "TunnelFilter", r"Yes|No"),
    ("flags", "Flags", r"(?:Inbound|Outbound) (?:Block|Permit|Negotiate)"),
)
_FIELD_RES = [(attr, label, re.compile(re.escape(label) + r"[ \t]*:[ \t]*(?P<v>" + value + r")(?=\s|$)"))
              for attr, label, value in _FIELDS]
_TRAILER = re.compile(r"The command completed successfully\.?")     # [I] netdiag's closing line
_LABEL_LIKE = re.compile(r"\w[\w ]*\s:|:\s")


class _Reader:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def skip_ws(self):
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def take(self, pattern: "re.Pattern") -> Optional["re.Match"]:
        self.skip_ws()
        m = pattern.match(self.text, self.pos)
        if m:
            self.pos = m.end()
        return m

    def expect(self, pattern, what: str) -> "re.Match":
        m = self.take(pattern)
        if m is None:
            self.fail(what)
        return m

    def fail(self, what: str):
        line = self.text.count("\n", 0, self.pos) + 1
        found = self.text[self.pos:].split("\n", 1)[0][:60]
        raise NetdiagParseError("netdiag output, line %d: expected %s, found %r" % (line, what, found))

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)


def parse(text: str) -> NetdiagReport:
    """Read `netdiag /test:ipsec [/debug]` output: the KB's collapsed copies as well as one label
    (pair) per line. Output of netdiag's other tests before the IP Security test is skipped; inside
    it every label must be one we know, in the order netdiag prints them."""
    start = re.search(r"IP Security test[ .]*:", text)
    if start is None:
        raise NetdiagParseError("netdiag output: no 'IP Security test' line; expected the output of "
                                "netdiag /test:ipsec")
    r = _Reader(text[start.start():])
    status = r.expect(_HEADER, "'IP Security test . . . : Passed'").group("status")
    store = policy = None
    for pattern, kind in _STATUS_LINES:
        m = r.take(pattern)
        if m:
            store, policy = kind, m.groupdict().get("name") or ""
            break
    if store is None:
        r.fail("%r, %r or \"Local IPSec Policy Active: 'NAME'\"" % (NO_POLICY, NOT_RUNNING))
    service_active = store != "stopped"
    store = "" if store == "stopped" else store
    path = guid = ""
    m = r.take(_PATH)
    if m:
        # The KB's 2003/XP copy doubles the backslashes (markdown escaping, see the fixture's note).
        path = re.sub(r"\\\\+", r"\\", m.group("path").strip())
        g = re.search(r"ipsecPolicy(" + _GUID + ")", path)
        guid = g.group(1).upper() if g else ""
    count = None
    filters: List[NetdiagFilter] = []
    m = r.take(_COUNT)
    if m:
        count = int(m.group("count"))
        while not r.at_end() and not _TRAILER.match(r.text, r.pos):
            filters.append(_parse_filter(r))
        if len(filters) != count:
            raise NetdiagParseError("netdiag output says there are %d filters but lists %d" % (count, len(filters)))
    r.take(_TRAILER)
    if not r.at_end():
        r.fail("the end of the IP Security test")
    return NetdiagReport(status, service_active, store, policy, path, guid, count, tuple(filters))


def _parse_filter(r: _Reader) -> NetdiagFilter:
    m = r.expect(_NAME, "a filter's name (or 'No Name') followed by 'Filter Id:'")
    name = m.group("name").strip()
    if _LABEL_LIKE.search(name + " "):
        raise NetdiagParseError("netdiag output: unknown label in %r; expected a filter name or 'No Name'" % name)
    values = {}
    for attr, label, pattern in _FIELD_RES:
        values[attr] = r.expect(pattern, "'%s : <value>'" % label).group("v")
    direction, flag = values.pop("flags").split()
    action = {v: k for k, v in ACTION_FLAGS.items()}[flag]
    return NetdiagFilter(
        name="" if name == "No Name" else name,
        filter_id=values["filter_id"].upper(), policy_id=values["policy_id"].upper(),
        src_addr=values["src_addr"], src_mask=values["src_mask"],
        dst_addr=values["dst_addr"], dst_mask=values["dst_mask"], tunnel_addr=values["tunnel_addr"],
        src_port=int(values["src_port"]), dst_port=int(values["dst_port"]), protocol=int(values["protocol"]),
        tunnel=values["tunnel"] == "Yes", direction=direction, action=action)


# ---------------------------------------------------------------------------------------------
# netdiag entries -> model filters

def _address(addr: str, mask: str, local_address: str) -> Address:
    if addr == "0.0.0.0" and mask == "0.0.0.0":
        return ANY
    if addr == local_address and mask == HOST_MASK:
        return ME
    if addr.startswith("<") and addr.endswith(">"):
        return Address("server", addr[1:-1])
    first, dash, last = addr.partition("-")
    if dash and _is_ip(first) and _is_ip(last):
        return Address("range", first, end=last)
    if _is_ip(addr):
        return Address("ip", addr, mask)
    return Address("dns", addr)


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
        return True
    except ValueError:
        return False


def _is_mirror(a: NetdiagFilter, b: NetdiagFilter) -> bool:
    return (a.filter_id == b.filter_id and a.direction != b.direction and a.protocol == b.protocol
            and (a.src_addr, a.src_mask, a.src_port) == (b.dst_addr, b.dst_mask, b.dst_port)
            and (a.dst_addr, a.dst_mask, a.dst_port) == (b.src_addr, b.src_mask, b.src_port)
            and a.policy_id == b.policy_id and a.name == b.name)


def fold(listed, local_address: str = "192.168.1.1") -> Tuple[FoldedFilter, ...]:
    """Model filters from netdiag entries.

    An entry directly followed by its mirror image with the same Filter Id is one mirrored filter;
    every other entry is a one-way filter. `local_address` is read back as "me".
    """
    out = []
    listed = list(listed)
    i = 0
    while i < len(listed):
        e = listed[i]
        mirrored = i + 1 < len(listed) and _is_mirror(e, listed[i + 1])
        f = Filter(_address(e.src_addr, e.src_mask, local_address), _address(e.dst_addr, e.dst_mask, local_address),
                   e.protocol, e.src_port, e.dst_port, mirrored, description=e.name,
                   guid=e.filter_id)
        actions = {e.direction: e.action}
        if mirrored:
            actions[listed[i + 1].direction] = listed[i + 1].action
        out.append(FoldedFilter(f, actions.get("Inbound", e.action), actions.get("Outbound", e.action),
                                e.policy_id))
        i += 2 if mirrored else 1
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Diff mode and human summaries

def render_store(state: HostState, *, local_address: str = "192.168.1.1",
                 assigned_by: Optional[Dict[str, str]] = None, **render_kw) -> str:
    """What netdiag shows, then every policy it does not show (not assigned, or overridden by a
    domain policy) in the same filter layout, so a change to an unassigned policy is visible too.
    The extra sections are winsec's own, not netdiag output: their heading lines say so.
    For the domain store (`directory` given), `assigned_by` ({GPO: policy}) names the GPOs that
    assign each of the other policies."""
    domain_store = render_kw.get("directory") is not None
    assigned = {name_key(p): p for p in (assigned_by or {}).values()}
    if domain_store and not state.assigned and len(assigned) == 1:
        # no GPO named, but every GPO that assigns one assigns the same: that is what members run
        state = replace(state, assigned=next(iter(assigned.values())))
    lines = [render(state, local_address=local_address, **render_kw)]
    effective = "" if state.domain is not None and not domain_store else name_key(state.assigned)
    for policy in state.policies:
        if name_key(policy.name) == effective:
            continue
        listed = _policy_entries(state, policy, local_address)
        gpos = sorted(g for g, p in (assigned_by or {}).items() if name_key(p) == name_key(policy.name))
        if domain_store and gpos:
            lines.append("    [winsec] Domain policy assigned by GPO %s: '%s'"
                         % (", ".join("'%s'" % g for g in gpos), policy.name))
        elif domain_store:
            lines.append("    [winsec] Domain policy no GPO assigns: '%s'" % policy.name)
        else:
            lines.append("    [winsec] Policy not in effect: '%s'" % policy.name)
        lines.append("    [winsec] There are %d filters" % len(listed))
        for e in listed:
            lines += _filter_lines(e)
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def diff(before: HostState, after: HostState, assigned_before: Optional[Dict[str, str]] = None,
         assigned_after: Optional[Dict[str, str]] = None, **render_kw) -> dict:
    """Ansible's diff for a change: both states as netdiag would show them (KB 813878's verification),
    with the policies netdiag leaves out appended (render_store). The domain store's GPO
    assignments before and after, when it is the store shown."""
    return {
        "before": render_store(before, assigned_by=assigned_before, **render_kw),
        "after": render_store(after, assigned_by=assigned_after, **render_kw),
        "before_header": "netdiag /test:ipsec /debug (before)",
        "after_header": "netdiag /test:ipsec /debug (after)",
    }


def summary(before: HostState, after: HostState) -> List[str]:
    """One line per difference: `+ rule 'R' in policy 'P'`, `- filter list 'L'`, `~ ...`."""
    lines: List[str] = []
    _diff_named(lines, before.policies, after.policies, "policy", _policy_settings)
    for pol in after.policies:
        old = before.policy(pol.name)
        _diff_named(lines, old.rules if old else (), pol.rules, "rule", _rule_settings,
                    " in policy %r" % pol.name)
    for pol in before.policies:
        if after.policy(pol.name) is None:
            lines += ["- rule %r in policy %r" % (r.name, pol.name) for r in pol.rules if not r.default_response]
    _diff_named(lines, before.filterlists, after.filterlists, "filter list", lambda fl: (fl.description,),
                detail=lambda fl: "; ".join(filter_text(f) for f in fl.filters))
    for fl in after.filterlists:
        old = before.filterlist(fl.name)
        if old is not None:
            had = {f.key() for f in old.filters}
            has = {f.key() for f in fl.filters}
            lines += ["+ filter %s in filter list %r" % (filter_text(f), fl.name) for f in fl.filters
                      if f.key() not in had]
            lines += ["- filter %s in filter list %r" % (filter_text(f), fl.name) for f in old.filters
                      if f.key() not in has]
    _diff_named(lines, before.filteractions, after.filteractions, "filter action", _action_settings)
    if name_key(before.assigned) != name_key(after.assigned):
        lines.append("assigned policy: %s -> %s" % (repr(before.assigned) if before.assigned else "none",
                                                   repr(after.assigned) if after.assigned else "none"))
    if before.dynamic is None or after.dynamic is None:
        lines.append(SUMMARY_DYNAMIC_UNKNOWN)
        return lines
    old_dyn = {(d.filter.key(), d.conntype): d for d in before.dynamic}
    new_dyn = {(d.filter.key(), d.conntype): d for d in after.dynamic}
    for key, d in new_dyn.items():
        if old_dyn.get(key) != d:
            lines.append("+ dynamic rule %s (inbound %s, outbound %s)" % (filter_text(d.filter), d.inbound, d.outbound))
    for key, d in old_dyn.items():
        if new_dyn.get(key) != d:
            lines.append("- dynamic rule %s (inbound %s, outbound %s)" % (filter_text(d.filter), d.inbound, d.outbound))
    return lines


def _diff_named(lines, old_items, new_items, kind, settings, where="", detail=None):
    old = {name_key(i.name): i for i in old_items if not getattr(i, "default_response", False)}
    new = {name_key(i.name): i for i in new_items if not getattr(i, "default_response", False)}
    for key, item in new.items():
        if key not in old:
            shown = detail(item) if detail else ""
            lines.append("+ %s %r%s%s" % (kind, item.name, where, " (%s)" % shown if shown else ""))
        elif settings(old[key]) != settings(item):
            changed = [k for k, a, b in zip(_SETTING_NAMES[kind], settings(old[key]), settings(item)) if a != b]
            lines.append("~ %s %r%s (%s)" % (kind, item.name, where, ", ".join(changed)))
    for key, item in old.items():
        if key not in new:
            lines.append("- %s %r%s" % (kind, item.name, where))


def _policy_settings(p: Policy) -> tuple:
    return (p.description, p.polling_interval)


def _rule_settings(r: Rule) -> tuple:
    return (name_key(r.filterlist), name_key(r.filteraction), r.description, r.active, r.conntype, r.auth,
            r.tunnel)


def _action_settings(a: FilterAction) -> tuple:
    return (a.action, a.inpass, a.soft, a.qmpfs, a.offers, a.description)


_SETTING_NAMES = {
    "policy": ("description", "polling interval"),
    "rule": ("filter list", "filter action", "description", "active", "connection type", "authentication",
             "tunnel"),
    "filter list": ("description",),
    "filter action": ("action", "inpass", "soft", "qmpfs", "security methods", "description"),
}


__all__ = ["NetdiagFilter", "NetdiagReport", "NetdiagParseError", "FoldedFilter", "entries", "render", "parse",
           "fold", "diff", "summary", "LOCAL_STORE_PATH"]
