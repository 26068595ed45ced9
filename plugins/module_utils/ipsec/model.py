# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The Windows IPsec filtering policy store as plain immutable data.

One policy store (local registry or a domain) holds policies; a policy holds rules; each rule
points by name at one filter list and one filter action, which several rules may share. Dynamic
(volatile) rules live beside the store, in the PolicyAgent's memory.

Everything here is frozen: the planner derives new states, never edits them in place. Names
compare case-insensitively, as netsh looks them up (`name_key`). Object GUIDs are carried for
reporting (netdiag shows them) but are never part of an object's identity.

Standard library only: this ships to controllers as module_utils.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

# IP protocol numbers; netsh accepts these names (SYNTAX.md 1.3 "protocol", [H]).
PROTOCOL_NUMBERS = {"ANY": 0, "ICMP": 1, "TCP": 6, "UDP": 17, "RAW": 255}
PORT_PROTOCOLS = (6, 17)            # ports mean something only for TCP and UDP ([H] dynamic help)
SERVER_TYPES = ("DNS", "WINS", "DHCP", "GATEWAY")   # netsh srcaddr/dstaddr server types ([H] add filter)
ACTIONS = ("permit", "block", "negotiate")
CONNTYPES = ("all", "lan", "dialup")
STORES = ("local", "domain")
DIALECTS = ("netsh", "ipseccmd", "ipsecpol")
DEFAULT_POLLING_MINUTES = 180       # netsh default; the blob stores 10800 seconds (factsheet 4.1)


class IPsecError(Exception):
    """Any error the engine reports to a user."""


class ValidationError(IPsecError, ValueError):
    """A user-supplied value was rejected. Names the option, the value and what is accepted."""

    def __init__(self, option: str, value, accepted: str, reason: str = ""):
        self.option = option
        self.value = value
        self.accepted = accepted
        self.reason = reason
        shown = value if isinstance(value, str) else repr(value)
        if isinstance(shown, str) and len(shown) > 80:
            shown = shown[:77] + "..."
        msg = "%s: %r is not valid" % (option, shown)
        if reason:
            msg += " (%s)" % reason
        msg += "; expected %s" % accepted
        super().__init__(msg)


def name_key(name: str) -> str:
    """How Windows tools compare object names: case-insensitively ([I] netsh lookups)."""
    return name.casefold()


@dataclass(frozen=True)
class Address:
    """One side of a filter.

    kind:  'any'    every address (0.0.0.0/0.0.0.0 in the blob)
           'me'     the host's own addresses (ipsecpol/ipseccmd "0", netsh "me")
           'ip'     an IPv4/IPv6 address or subnet; `mask` is a dotted IPv4 mask or an IPv6 prefix
           'range'  `value`-`end`, two specific addresses of one family (netsh a.b.c.d-e.f.g.h)
           'dns'    a DNS name, resolved by Windows when the filter is added
           'server' DNS | WINS | DHCP | GATEWAY; the other side of the filter is then 'me'
    """
    kind: str
    value: str = ""
    mask: str = ""
    end: str = ""

    def __str__(self) -> str:
        if self.kind in ("any", "me"):
            return self.kind
        if self.kind == "ip":
            return "%s/%s" % (self.value, self.mask) if self.mask else self.value
        if self.kind == "range":
            return "%s-%s" % (self.value, self.end)
        return self.value


ANY = Address("any")
ME = Address("me")


@dataclass(frozen=True)
class Filter:
    """One filter of a filter list. Mirrored means it also matches the reverse direction."""
    src: Address
    dst: Address
    protocol: int = 0
    src_port: int = 0
    dst_port: int = 0
    mirrored: bool = True
    description: str = field(default="", compare=False)
    guid: str = field(default="", compare=False)

    def key(self) -> tuple:
        """What makes two filters the same filter (real netsh would happily store both)."""
        return (self.src, self.dst, self.protocol, self.src_port, self.dst_port, self.mirrored)


@dataclass(frozen=True)
class FilterList:
    name: str
    filters: Tuple[Filter, ...] = ()
    description: str = ""
    guid: str = field(default="", compare=False)


@dataclass(frozen=True)
class QmOffer:
    """One quick-mode security method of a negotiate action (netsh qmsecmethods, [H]).

    ah: '' | 'MD5' | 'SHA1'; esp_conf: '' | 'None' | 'DES' | '3DES'; esp_auth: '' | 'None' | 'MD5' | 'SHA1'.
    An empty ah means no AH part; empty esp_conf and esp_auth mean no ESP part.
    """
    ah: str = ""
    esp_conf: str = ""
    esp_auth: str = ""
    lifetime_kb: int = 0
    lifetime_s: int = 0


@dataclass(frozen=True)
class FilterAction:
    name: str
    action: str = "block"
    description: str = ""
    inpass: bool = False
    soft: bool = False
    qmpfs: bool = False
    offers: Tuple[QmOffer, ...] = ()
    guid: str = field(default="", compare=False)


@dataclass(frozen=True)
class AuthMethod:
    """Main-mode authentication of a rule. A pre-shared key is a secret: repr hides it."""
    kind: str                       # 'kerberos' | 'psk' | 'cert'
    value: str = field(default="", repr=False)

    def __repr__(self) -> str:
        shown = "********" if self.kind == "psk" else self.value
        return "AuthMethod(kind=%r, value=%r)" % (self.kind, shown)


KERBEROS = AuthMethod("kerberos")


@dataclass(frozen=True)
class Rule:
    """An NFA: a filter list bound to a filter action inside one policy.

    The default response rule has no filter list (`default_response`); netsh names rules, the
    registry often does not (factsheet 6.3), so a decoded rule may have an empty name.
    """
    name: str
    filterlist: str = ""
    filteraction: str = ""
    description: str = ""
    active: bool = True
    conntype: str = "all"
    auth: Tuple[AuthMethod, ...] = (KERBEROS,)
    tunnel: str = ""
    default_response: bool = False
    guid: str = field(default="", compare=False)


@dataclass(frozen=True)
class Policy:
    name: str
    description: str = ""
    polling_interval: int = DEFAULT_POLLING_MINUTES     # minutes, as netsh takes it
    rules: Tuple[Rule, ...] = ()
    guid: str = field(default="", compare=False)

    def rule(self, name: str) -> Optional[Rule]:
        return _find(self.rules, name)


@dataclass(frozen=True)
class DynamicRule:
    """A volatile filter in the PolicyAgent's memory (netsh ipsec dynamic / ipseccmd without -w)."""
    filter: Filter
    inbound: str = "block"          # action for inbound traffic: permit | block | negotiate
    outbound: str = "block"
    conntype: str = "all"


@dataclass(frozen=True)
class DomainAssignment:
    """A GPO-assigned policy found under ...\\IPSec\\GPTIPSECPolicy (factsheet 2.4)."""
    name: str
    path: str                       # DSIPSECPolicyPath, LDAP://CN=ipsecPolicy{...},...


@dataclass(frozen=True)
class OsInfo:
    """What the read trip learns about the host's Windows.

    generation: 'modern' (Vista/2008 and later), '2008r2', '2003', 'xp', '2000'
    dialect:    the writing tool this host offers: netsh | ipseccmd | ipsecpol
    """
    generation: str
    version: str = ""
    dialect: str = "netsh"
    caption: str = ""


@dataclass(frozen=True)
class HostState:
    """Everything read from one host (or parsed from saved output)."""
    policies: Tuple[Policy, ...] = ()
    filterlists: Tuple[FilterList, ...] = ()
    filteractions: Tuple[FilterAction, ...] = ()
    assigned: str = ""                          # name of the locally assigned policy, '' if none
    domain: Optional[DomainAssignment] = None   # GPO policy that overrides the local one
    dynamic: Tuple[DynamicRule, ...] = ()
    policyagent: str = ""                       # 'running' | 'stopped' | '' when unknown
    no_default_exempt: Optional[int] = None     # NoDefaultExempt value, None when absent
    os: Optional[OsInfo] = None

    def policy(self, name: str) -> Optional[Policy]:
        return _find(self.policies, name)

    def filterlist(self, name: str) -> Optional[FilterList]:
        return _find(self.filterlists, name)

    def filteraction(self, name: str) -> Optional[FilterAction]:
        return _find(self.filteractions, name)

    def users_of(self, filterlist: str = "", filteraction: str = "") -> Tuple[Tuple[str, str], ...]:
        """(policy, rule) pairs whose rule uses this filter list or filter action."""
        found = []
        for pol in self.policies:
            for rule in pol.rules:
                if filterlist and name_key(rule.filterlist) == name_key(filterlist):
                    found.append((pol.name, rule.name))
                elif filteraction and name_key(rule.filteraction) == name_key(filteraction):
                    found.append((pol.name, rule.name))
        return tuple(found)


def _find(items, name):
    key = name_key(name)
    for item in items:
        if name_key(item.name) == key:
            return item
    return None


# A planned change. `op` is one of CHANGE_OPS; `obj` is the model object the op creates, sets or
# deletes (for set_*: the new version, with `old` the version it replaces); `parent` names the
# containing object (policy for rules, filter list for filters). `inverse` undoes it.
CHANGE_OPS = (
    "add_policy", "set_policy", "delete_policy", "assign", "unassign",
    "add_filterlist", "set_filterlist", "delete_filterlist", "add_filter", "delete_filter",
    "add_filteraction", "set_filteraction", "delete_filteraction",
    "add_rule", "set_rule", "delete_rule",
    "add_dynamic", "delete_dynamic",
)


@dataclass(frozen=True)
class Change:
    op: str
    obj: object
    parent: str = ""
    old: object = None
    inverse: Optional["Change"] = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.op not in CHANGE_OPS:
            raise IPsecError("unknown change op %r" % self.op)


__all__ = [
    "PROTOCOL_NUMBERS", "PORT_PROTOCOLS", "SERVER_TYPES", "ACTIONS", "CONNTYPES", "STORES", "DIALECTS",
    "IPsecError", "ValidationError", "name_key", "Address", "ANY", "ME", "Filter", "FilterList",
    "QmOffer", "FilterAction", "AuthMethod", "KERBEROS", "Rule", "Policy", "DynamicRule",
    "DomainAssignment", "OsInfo", "HostState", "Change", "CHANGE_OPS", "replace",
]
