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

import ipaddress
import re
import unicodedata
from dataclasses import dataclass, field, replace
from typing import Optional, Tuple

# IP protocol numbers; netsh accepts these names ("netsh ipsec", learn.microsoft.com: protocol=ANY|ICMP|TCP|UDP|RAW).
PROTOCOL_NUMBERS = {"ANY": 0, "ICMP": 1, "TCP": 6, "UDP": 17, "RAW": 255}
PORT_PROTOCOLS = (6, 17)            # ports mean something only for TCP and UDP ([H] dynamic help)
SERVER_TYPES = ("DNS", "WINS", "DHCP", "GATEWAY")   # netsh srcaddr/dstaddr server types ([H] add filter)
ACTIONS = ("permit", "block", "negotiate")
CONNTYPES = ("all", "lan", "dialup")
STORES = ("local", "domain")
DIALECTS = ("netsh", "ipseccmd", "ipsecpol")
DEFAULT_POLLING_MINUTES = 180       # netsh default; the blob stores 10800 seconds (docs/policy-store.md 4.1)


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
    registry often does not (docs/policy-store.md 6), so a decoded rule may have an empty name.
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
    # The main-mode policy the rule was added with, as `netsh ipsec dynamic show rule` reports it
    # ('' when unknown or none: ipseccmd shows none, and desired rules name none). It says who
    # made the rule (winsec's own or another tool's), not what the rule does: equality, the planner's
    # comparisons and a rule's identity leave it out, so desired rules match the rules read back.
    mmpolicy: str = field(default="", compare=False)


@dataclass(frozen=True)
class DomainAssignment:
    """A GPO-assigned policy found under ...\\IPSec\\GPTIPSECPolicy (docs/policy-store.md 2.4)."""
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
    # None: unknown, the tool's listing could not be read (another display language, say), never "none".
    dynamic: Optional[Tuple[DynamicRule, ...]] = ()
    policyagent: str = ""                       # 'running' | 'stopped' | '' when unknown
    no_default_exempt: Optional[int] = None     # NoDefaultExempt value, None when absent
    os: Optional[OsInfo] = None
    # Names of the dynamic main-mode policies the PolicyAgent holds (netsh hosts; sorted; those the
    # rules name included). A rule-less one of winsec's own must not be added again. None: unknown
    # (its listing, or the rules', could not be read). Not part of equality: who holds it says nothing
    # a comparison of stores needs, and the planner predicts it for dynamic plans only.
    mmpolicies: Optional[Tuple[str, ...]] = field(default=(), compare=False)

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


def unknown_as_empty(state: HostState) -> HostState:
    """`state` with its unknown dynamic rules and main-mode policies (None) as none, for the code that
    compares only what was read (the planner's comparison key, the dialects' renderers of a static
    plan, drift's convergence check); results, reports and netdiag's view keep the unknown."""
    if state.dynamic is not None and state.mmpolicies is not None:
        return state
    return replace(state, dynamic=state.dynamic or (), mmpolicies=state.mmpolicies or ())


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


# --------------------------------------------------------------------------------------------
# Validation and normalisation of user input. Every function takes the option path it reports
# (`filters[0].dst_port`) and raises ValidationError naming that option, the value and what
# would be accepted.
# --------------------------------------------------------------------------------------------

# Our own limit on object names and descriptions: Windows' own limit is not documented [I].
MAX_NAME_LENGTH = 255
MAX_DESCRIPTION_LENGTH = 1024

NAME_ACCEPTED = "a non-empty name of at most %d characters without control characters"


def parse_name(option: str, value, max_len: int = MAX_NAME_LENGTH) -> str:
    """A policy, rule, filter list or filter action name."""
    accepted = NAME_ACCEPTED % max_len
    text = _text(option, value, accepted, max_len)
    if not text.strip():
        raise ValidationError(option, value, accepted, "it is empty or only spaces")
    if text != text.strip():
        # [I] not verified: netsh may trim the value, and the name read back would then differ.
        raise ValidationError(option, value, accepted, "it starts or ends with whitespace")
    return text


def parse_description(option: str, value) -> str:
    """Free text; may be empty. None means empty."""
    if value is None:
        return ""
    return _text(option, value, "text of at most %d characters without control characters"
                 % MAX_DESCRIPTION_LENGTH, MAX_DESCRIPTION_LENGTH)


def _text(option, value, accepted, max_len):
    if not isinstance(value, str):
        raise ValidationError(option, value, accepted, "it is not a string")
    if len(value) > max_len:
        raise ValidationError(option, value, accepted, "it is %d characters long" % len(value))
    for c in value:
        # Cc: NUL, TAB, CR, LF and the other C0/C1 controls; Zl/Zp end a line in some tools;
        # Cs: a lone surrogate cannot be encoded as UTF-16.
        if unicodedata.category(c) in ("Cc", "Zl", "Zp", "Cs"):
            raise ValidationError(option, value, accepted, "it contains the control character %r" % c)
    return value


_KEYWORD_ADDRESSES = {"me": ME, "any": ANY}
ADDRESS_ACCEPTED = ("me, any, an IPv4 or IPv6 address (optionally /mask or /prefix), a range a-b of "
                    "one family, a DNS name, or a server type (DNS, WINS, DHCP, GATEWAY)")
# RFC 1123 section 2.1 host name labels; RFC 3696 section 2: a top-level label is not all-numeric,
# which keeps a mistyped IPv4 address (10.0.0.256) from being taken as a name.
_DNS_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def parse_address(option: str, value) -> Address:
    """One side of a filter, normalised: keywords lower-case, IP addresses in canonical form,
    server types upper-case, DNS names lower-case without a trailing dot."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(option, value, ADDRESS_ACCEPTED)
    text = value.strip()
    key = text.lower()
    if key in _KEYWORD_ADDRESSES:
        return _KEYWORD_ADDRESSES[key]
    if text.upper() in SERVER_TYPES:
        return Address("server", text.upper())
    if "/" in text:
        addr, _, mask = text.partition("/")
        ip = _ip(option, value, addr)
        return Address("ip", str(ip), _mask_for(option, value, ip, mask))
    first, dash, last = text.partition("-")
    if dash and _looks_like_ip(first) and _looks_like_ip(last):
        start, end = _ip(option, value, first), _ip(option, value, last)
        if start.version != end.version:
            raise ValidationError(option, value, ADDRESS_ACCEPTED, "the range mixes IPv4 and IPv6")
        if int(start) > int(end):
            raise ValidationError(option, value, ADDRESS_ACCEPTED, "the range starts after it ends")
        return Address("range", str(start), end=str(end))
    if _looks_like_ip(text):
        return Address("ip", str(_ip(option, value, text)))
    return Address("dns", _dns_name(option, value, text))


def _looks_like_ip(text):
    return ":" in text or bool(re.match(r"^[0-9.]+$", text.strip()))


def _ip(option, value, text):
    text = text.strip()
    if "%" in text:
        raise ValidationError(option, value, ADDRESS_ACCEPTED, "IPv6 zone indexes are not supported")
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        raise ValidationError(option, value, ADDRESS_ACCEPTED, "%r is not an IP address" % text) from None
    embedded = ipv4_inside(ip)
    if embedded is not None:
        # [I] whether the IPsec driver matches IPv4 packets against an IPv4-mapped (RFC 4291 2.5.5)
        # IPv6 filter is not documented: refused rather than guessed, with the form that is certain.
        raise ValidationError(option, value, "the IPv4 address itself (%s)" % embedded,
                              "%s is an IPv4 address written as IPv6, which Windows IPsec filters are not "
                              "documented to match" % ip)
    return ip


def ipv4_inside(ip):
    """The IPv4 address an IPv6 address carries (IPv4-mapped ::ffff:a.b.c.d, or the deprecated
    IPv4-compatible ::a.b.c.d, RFC 4291 2.5.5), else None."""
    if ip.version != 6:
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if 1 << 24 <= int(ip) < 1 << 32:                 # ::a.b.c.d with a != 0 (not ::, ::1, ::2 ...)
        return ipaddress.IPv4Address(int(ip))
    return None


# A label inet_aton would read as a number: decimal, octal (leading 0) or hex (0x...). Windows'
# resolver takes such a name as an IPv4 address ("127.1", "0x7f.1", "2130706433"; inet_addr).
_NUMERIC_LABEL = re.compile(r"^(0[xX][0-9A-Fa-f]*|[0-9]+)$")


def _dns_name(option, value, text):
    name = text[:-1] if text.endswith(".") else text
    labels = name.split(".")
    if (len(name) > 253 or not all(_DNS_LABEL.match(label) for label in labels)
            or labels[-1].isdigit()):
        raise ValidationError(option, value, ADDRESS_ACCEPTED, "not an address, keyword or RFC 1123 host name")
    if len(labels) <= 4 and all(_NUMERIC_LABEL.match(label) for label in labels):
        raise ValidationError(option, value, "an IPv4 address in dotted decimal (a.b.c.d)",
                              "Windows reads this name as an IPv4 address in hex or octal notation")
    return name.lower()


MASK_ACCEPTED_V4 = "a contiguous dotted mask (255.255.255.0) or a prefix length 0-32"
MASK_ACCEPTED_V6 = "a prefix length 0-128"
DEFAULT_MASK_V4 = "255.255.255.255"     # a single host ([I] netsh default for a specific address)
DEFAULT_PREFIX_V6 = "128"


def parse_mask(option: str, value, address: Address) -> str:
    """The mask of `address`: dotted for IPv4 (a prefix is converted), a prefix length for IPv6.

    None or "" gives the mask `address` already carries, else a single host. A mask is refused for
    me, any, ranges, DNS names and server types ([H] add filter: "Not applicable if srcaddr is set
    to a range"; the others have no mask of their own).
    """
    empty = value is None or value == ""
    if address.kind != "ip":
        if empty:
            return ""
        raise ValidationError(option, value, "no mask", "a mask does not apply to %s address %s"
                              % (address.kind, address))
    if empty:
        if address.mask:
            return address.mask
        return DEFAULT_PREFIX_V6 if ":" in address.value else DEFAULT_MASK_V4
    if address.mask:
        raise ValidationError(option, value, "no mask", "the address %s already has one" % address)
    return _mask_for(option, value, ipaddress.ip_address(address.value), value)


def _mask_for(option, value, ip, mask):
    v6 = ip.version == 6
    accepted = MASK_ACCEPTED_V6 if v6 else MASK_ACCEPTED_V4
    limit = 128 if v6 else 32
    if isinstance(mask, bool):
        raise ValidationError(option, value, accepted)
    if isinstance(mask, int) or (isinstance(mask, str) and re.match(r"^\s*[0-9]{1,3}\s*$", mask)):
        prefix = int(mask)
        if prefix > limit:
            raise ValidationError(option, value, accepted, "prefix %d is longer than %d" % (prefix, limit))
        return str(prefix) if v6 else str(ipaddress.IPv4Network((0, prefix)).netmask)
    if v6 or not isinstance(mask, str):
        raise ValidationError(option, value, accepted)
    try:
        dotted = ipaddress.IPv4Address(mask.strip())
    except ValueError:
        raise ValidationError(option, value, accepted) from None
    bits = int(dotted)
    inverted = ~bits & 0xFFFFFFFF
    if inverted & (inverted + 1):
        raise ValidationError(option, value, accepted, "the mask is not contiguous")
    return str(dotted)


PROTOCOL_ACCEPTED = "ANY, ICMP, TCP, UDP, RAW or a protocol number 0-255"
PROTOCOL_NAMES = {number: name for name, number in PROTOCOL_NUMBERS.items()}


def parse_protocol(option: str, value) -> int:
    """An IP protocol number; names as netsh takes them, case-insensitively ([H] add filter)."""
    if isinstance(value, str) and value.strip().upper() in PROTOCOL_NUMBERS:
        return PROTOCOL_NUMBERS[value.strip().upper()]
    return parse_int(option, value, 0, 255, PROTOCOL_ACCEPTED)


def protocol_name(number: int) -> str:
    """netsh's name for a protocol number, or the number itself."""
    return PROTOCOL_NAMES.get(number, str(number))


def filter_text(f: Filter) -> str:
    """A filter for people: `any -> me:1434 UDP`, `me -> 10.0.0.0/255.0.0.0 ICMP mirrored`."""
    protocol = PROTOCOL_NAMES.get(f.protocol, "protocol %d" % f.protocol) if f.protocol else "any protocol"
    text = "%s%s -> %s%s %s" % (f.src, ":%d" % f.src_port if f.src_port else "",
                                f.dst, ":%d" % f.dst_port if f.dst_port else "", protocol)
    return text + (" mirrored" if f.mirrored else "")


PORT_ACCEPTED = "an integer 0-65535 (0 = any port)"


def parse_port(option: str, value, protocol: int) -> int:
    """A port; 0 means any. A specific port needs TCP or UDP ([H] dynamic add rule)."""
    port = parse_int(option, value, 0, 65535, PORT_ACCEPTED)
    if port and protocol not in PORT_PROTOCOLS:
        raise ValidationError(option, value, "0 (any port) unless the protocol is TCP or UDP",
                              "ports apply only to TCP and UDP, the protocol is %s" % protocol_name(protocol))
    return port


def parse_int(option: str, value, low: int, high: int, accepted: str = "") -> int:
    """An integer low..high from an int or a string of ASCII digits (not a bool, float or '1; x')."""
    accepted = accepted or "an integer %d-%d" % (low, high)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValidationError(option, value, accepted)
    if isinstance(value, str):
        if not re.match(r"^\s*[0-9]+\s*$", value):
            raise ValidationError(option, value, accepted)
        number = int(value)
    else:
        number = value
    if not low <= number <= high:
        raise ValidationError(option, value, accepted, "out of range")
    return number


_TRUE = ("yes", "y", "true", "on", "1")
_FALSE = ("no", "n", "false", "off", "0")
BOOL_ACCEPTED = "yes or no (also y/n, true/false, on/off, 1/0)"


def parse_bool(option: str, value) -> bool:
    """netsh takes yes/no and y/n ([H] examples); YAML gives real booleans."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        key = value.strip().lower()
        if key in _TRUE:
            return True
        if key in _FALSE:
            return False
    raise ValidationError(option, value, BOOL_ACCEPTED)


def parse_choice(option: str, value, choices) -> str:
    """One of `choices`, matched case-insensitively, returned as spelt in `choices`."""
    if isinstance(value, str):
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
    raise ValidationError(option, value, "one of " + ", ".join(choices))


# Quick-mode security methods, netsh grammar ([H] add filteraction; "netsh ipsec", learn.microsoft.com):
#   ESP[ConfAlg,AuthAlg]:k/s   AH[HashAlg]:k/s   AH[HashAlg]+ESP[ConfAlg,AuthAlg]:k/s
# ConfAlg DES|3DES|None, AuthAlg MD5|SHA1|None, HashAlg MD5|SHA1; k lifetime in kilobytes,
# s lifetime in seconds. The lifetime part is optional (0 = Windows' default); Windows' limits on
# the lifetimes are not documented here [I], so any positive number is accepted.
QMSEC_ACCEPTED = ("offers like ESP[3DES,SHA1]:100000k/3600s, AH[SHA1] or AH[MD5]+ESP[DES,MD5], "
                  "separated by spaces; ConfAlg DES|3DES|None, AuthAlg MD5|SHA1|None, HashAlg MD5|SHA1")
_CONF_ALGS = ("None", "DES", "3DES")
_AUTH_ALGS = ("None", "MD5", "SHA1")
_HASH_ALGS = ("MD5", "SHA1")
_QM_METHOD = re.compile(
    r"(?:AH\[(?P<ah>[^\],]+)\])?(?P<plus>\+)?(?:ESP\[(?P<conf>[^\],]+),(?P<auth>[^\],]+)\])?", re.IGNORECASE)
_QM_LIFETIME = re.compile(r"(?P<kb>[0-9]+)k/(?P<s>[0-9]+)s|(?P<kb_only>[0-9]+)k|(?P<s_only>[0-9]+)s",
                          re.IGNORECASE)


def parse_qmsecmethods(option: str, text) -> tuple:
    """Quick-mode offers from netsh text (space-separated) or a list of offer strings."""
    if isinstance(text, (list, tuple)):
        items = list(text)
    elif isinstance(text, str):
        items = text.split()
    else:
        raise ValidationError(option, text, QMSEC_ACCEPTED)
    if not items:
        raise ValidationError(option, text, QMSEC_ACCEPTED, "no offer given")
    return tuple(_qm_offer("%s[%d]" % (option, i), item) for i, item in enumerate(items))


def _qm_offer(option, item):
    if not isinstance(item, str):
        raise ValidationError(option, item, QMSEC_ACCEPTED)
    method_text, colon, lifetime_text = item.strip().partition(":")
    method = _QM_METHOD.fullmatch(method_text)
    lifetime = _QM_LIFETIME.fullmatch(lifetime_text) if colon else None
    if not method or (colon and not lifetime):
        raise ValidationError(option, item, QMSEC_ACCEPTED)
    ah, conf, auth = method.group("ah"), method.group("conf"), method.group("auth")
    if not (ah or conf) or bool(method.group("plus")) != bool(ah and conf):
        raise ValidationError(option, item, QMSEC_ACCEPTED)
    offer = QmOffer(
        ah=_alg(option, item, ah, _HASH_ALGS) if ah else "",
        esp_conf=_alg(option, item, conf, _CONF_ALGS) if conf else "",
        esp_auth=_alg(option, item, auth, _AUTH_ALGS) if conf else "",
        lifetime_kb=int(lifetime and (lifetime.group("kb") or lifetime.group("kb_only")) or 0),
        lifetime_s=int(lifetime and (lifetime.group("s") or lifetime.group("s_only")) or 0),
    )
    if conf and offer.esp_conf == "None" and offer.esp_auth == "None":
        raise ValidationError(option, item, QMSEC_ACCEPTED, "ESP[None,None] protects nothing")
    return offer


def _alg(option, item, name, allowed):
    for alg in allowed:
        if name.strip().upper() == alg.upper():
            return alg
    raise ValidationError(option, item, QMSEC_ACCEPTED, "%r is not one of %s" % (name, "|".join(allowed)))


def format_qmsecmethods(offers) -> str:
    """The netsh text of quick-mode offers (the inverse of parse_qmsecmethods)."""
    return " ".join(_format_offer(offer) for offer in offers)


def _format_offer(offer):
    parts = []
    if offer.ah:
        parts.append("AH[%s]" % offer.ah)
    if offer.esp_conf or offer.esp_auth:
        parts.append("ESP[%s,%s]" % (offer.esp_conf or "None", offer.esp_auth or "None"))
    text = "+".join(parts)
    lifetime = "/".join(part for part in (
        "%dk" % offer.lifetime_kb if offer.lifetime_kb else "",
        "%ds" % offer.lifetime_s if offer.lifetime_s else "") if part)
    return text + (":" + lifetime if lifetime else "")


FILTER_KEYS = ("src", "dst", "src_mask", "dst_mask", "protocol", "src_port", "dst_port", "mirrored",
               "description")
# Defaults chosen for the KB's case (traffic to this host): src any, dst me, any protocol and port,
# mirrored yes as netsh defaults it ([I]; "netsh ipsec" add filter, learn.microsoft.com).
FILTER_DEFAULTS = {"src": "any", "dst": "me", "protocol": "any", "src_port": 0, "dst_port": 0,
                   "mirrored": True, "description": ""}


def filter_from_dict(option: str, d) -> Filter:
    """A Filter from user keys (FILTER_KEYS; defaults in FILTER_DEFAULTS)."""
    return _filter(option, d, FILTER_KEYS)


def _filter(option, d, allowed):
    _check_keys(option, d, allowed)
    values = dict(FILTER_DEFAULTS)
    values.update({k: v for k, v in d.items() if v is not None})
    src = _side(option, "src", values)
    dst = _side(option, "dst", values)
    _check_sides(option, values, src, dst)
    protocol = parse_protocol(option + ".protocol", values["protocol"])
    return Filter(
        src=src, dst=dst, protocol=protocol,
        src_port=parse_port(option + ".src_port", values["src_port"], protocol),
        dst_port=parse_port(option + ".dst_port", values["dst_port"], protocol),
        mirrored=parse_bool(option + ".mirrored", values["mirrored"]),
        description=parse_description(option + ".description", values["description"]),
    )


def _check_keys(option, d, allowed):
    if not isinstance(d, dict):
        raise ValidationError(option, d, "a mapping with keys " + ", ".join(allowed))
    for key in d:
        if key not in allowed:
            raise ValidationError("%s.%s" % (option, key), d[key], "one of the keys " + ", ".join(allowed),
                                  "unknown key")


ZERO_ACCEPTED = ("me (this host's own addresses; 0 in a filterspec) or any (every address; * in a "
                 "filterspec)")


def _side(option, side, values):
    address = parse_address("%s.%s" % (option, side), values[side])
    mask = parse_mask("%s.%s_mask" % (option, side), values.get(side + "_mask"), address)
    if address.kind == "ip" and address.value == "0.0.0.0" and mask == "0.0.0.0":
        return ANY          # how the store writes "any" (0.0.0.0 / 0.0.0.0)
    if address.kind == "ip" and address.value == "0.0.0.0" and mask == DEFAULT_MASK_V4:
        # The policy store writes `me` as address 0.0.0.0 with mask 255.255.255.255 ([MS-GPIPSEC]
        # filter data; ipsecpol's IP_ADDRESS_ME is 0 with IP_ADDRESS_MASK_NONE): the single address
        # 0.0.0.0 has no encoding of its own and would be read back as me.
        raise ValidationError("%s.%s" % (option, side), values[side], ZERO_ACCEPTED,
                              "the policy store writes this host's own addresses (me) as 0.0.0.0 with mask "
                              "255.255.255.255, so Windows would read the filter back as me")
    return replace(address, mask=mask) if address.kind == "ip" else address


def _check_sides(option, values, src, dst):
    # [H] add filter remark 4: "If source is a server type, then dest is 'me' and vice-versa."
    for here, there, name in ((src, dst, "dst"), (dst, src, "src")):
        if here.kind == "server" and there != ME:
            raise ValidationError("%s.%s" % (option, name), values[name], "me",
                                  "the other side is the server type %s" % here.value)
    families = {_family(a) for a in (src, dst)} - {None}
    if len(families) > 1:
        raise ValidationError(option + ".dst", values["dst"], "an address of the same IP version as src",
                              "src is IPv%s" % _family(src))


def _family(address):
    if address.kind in ("ip", "range"):
        return 6 if ":" in address.value else 4
    return None


__all__ = [
    "PROTOCOL_NUMBERS", "PORT_PROTOCOLS", "SERVER_TYPES", "ACTIONS", "CONNTYPES", "STORES", "DIALECTS",
    "IPsecError", "ValidationError", "name_key", "Address", "ANY", "ME", "Filter", "FilterList",
    "QmOffer", "FilterAction", "AuthMethod", "KERBEROS", "Rule", "Policy", "DynamicRule",
    "DomainAssignment", "OsInfo", "HostState", "unknown_as_empty", "Change", "CHANGE_OPS", "replace",
    "MAX_NAME_LENGTH", "MAX_DESCRIPTION_LENGTH", "PROTOCOL_NAMES", "FILTER_KEYS", "FILTER_DEFAULTS",
    "DEFAULT_MASK_V4", "DEFAULT_PREFIX_V6", "ipv4_inside",
    "parse_name", "parse_description", "parse_address", "parse_mask", "parse_protocol", "protocol_name", "filter_text",
    "parse_port", "parse_int", "parse_bool", "parse_choice", "parse_qmsecmethods",
    "format_qmsecmethods", "filter_from_dict",
]
