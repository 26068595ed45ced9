"""winsim's object model of IPsec policy: what netsh and ipseccmd create and the registry holds.

The objects are the netsh concepts ([H] `netsh ipsec static add ...` help; [MS-GPIPSEC] 2.2.1):
a policy holds rules; a rule (ipsecNFA) binds a filter list to a filter action with its
authentication methods; filter lists and actions are shared by name. Dynamic rules live in the
PolicyAgent's memory (`netsh ipsec dynamic`, ipseccmd without -w; KB 813878).

Value semantics: two objects are equal when their class and their compared fields are equal; a
GUID or a description does not make a filter another filter, and a dynamic rule's main-mode policy
names who added it, not what it does. Equality and hashing go by the class *name* and the field
values, so a winsim object equals an object of the same name and fields from another
implementation (the tests compare what winsim holds with what the collection plans, each side
built by its own code).
"""
from dataclasses import dataclass, field, fields
from typing import Optional, Tuple

PROTOCOL_NUMBERS = {"ANY": 0, "ICMP": 1, "TCP": 6, "UDP": 17, "RAW": 255}   # [H] netsh add filter
PORT_PROTOCOLS = (6, 17)                 # ports mean something only for TCP and UDP ([H] add filter)
SERVER_TYPES = ("DNS", "WINS", "DHCP", "GATEWAY")                           # [H] add filter remark 3
DEFAULT_POLLING_MINUTES = 180            # [H] add policy pollinginterval default; 10800 s in both captures


def name_key(name: str) -> str:
    """netsh finds objects by name without regard to case ([I])."""
    return name.casefold()


def _compared(obj) -> tuple:
    return tuple(getattr(obj, f.name) for f in fields(obj) if f.compare)


class _Value:
    def __eq__(self, other):
        if type(other).__name__ != type(self).__name__ or not hasattr(other, "__dataclass_fields__"):
            return NotImplemented
        return _compared(self) == _compared(other)

    def __hash__(self):
        return hash(_compared(self))


@dataclass(frozen=True, eq=False)
class Address(_Value):
    """One side of a filter. kind: 'any', 'me', 'ip' (address with mask: dotted IPv4 mask or IPv6
    prefix, '' for one IPv6 host), 'range' (value-end), 'dns', 'server' (DNS|WINS|DHCP|GATEWAY)."""
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


@dataclass(frozen=True, eq=False)
class Filter(_Value):
    src: Address
    dst: Address
    protocol: int = 0
    src_port: int = 0
    dst_port: int = 0
    mirrored: bool = True
    description: str = field(default="", compare=False)
    guid: str = field(default="", compare=False)

    def key(self) -> tuple:
        return (self.src, self.dst, self.protocol, self.src_port, self.dst_port, self.mirrored)


@dataclass(frozen=True, eq=False)
class FilterList(_Value):
    name: str
    filters: Tuple[Filter, ...] = ()
    description: str = ""
    guid: str = field(default="", compare=False)


@dataclass(frozen=True, eq=False)
class QmOffer(_Value):
    """One quick-mode offer: ah '' | MD5 | SHA1; esp_conf '' | None | DES | 3DES; esp_auth '' | None |
    MD5 | SHA1 ([H] qmsecmethods)."""
    ah: str = ""
    esp_conf: str = ""
    esp_auth: str = ""
    lifetime_kb: int = 0
    lifetime_s: int = 0


@dataclass(frozen=True, eq=False)
class FilterAction(_Value):
    name: str
    action: str = "block"
    description: str = ""
    inpass: bool = False
    soft: bool = False
    qmpfs: bool = False
    offers: Tuple[QmOffer, ...] = ()
    guid: str = field(default="", compare=False)


@dataclass(frozen=True, eq=False)
class AuthMethod(_Value):
    """kind: kerberos | psk | cert. A pre-shared key never shows in repr."""
    kind: str
    value: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return "AuthMethod(kind=%r, value=%r)" % (self.kind, "********" if self.kind == "psk" else self.value)


KERBEROS = AuthMethod("kerberos")


@dataclass(frozen=True, eq=False)
class Rule(_Value):
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


@dataclass(frozen=True, eq=False)
class Policy(_Value):
    name: str
    description: str = ""
    polling_interval: int = DEFAULT_POLLING_MINUTES
    rules: Tuple[Rule, ...] = ()
    guid: str = field(default="", compare=False)

    def rule(self, name: str) -> Optional[Rule]:
        return _find(self.rules, name)


@dataclass(frozen=True, eq=False)
class DynamicRule(_Value):
    filter: Filter
    inbound: str = "block"
    outbound: str = "block"
    conntype: str = "all"
    mmpolicy: str = field(default="", compare=False)


@dataclass(frozen=True, eq=False)
class DomainAssignment(_Value):
    name: str
    path: str


@dataclass(frozen=True, eq=False)
class OsInfo(_Value):
    generation: str
    version: str = ""
    dialect: str = "netsh"
    caption: str = ""


@dataclass(frozen=True, eq=False)
class HostState(_Value):
    policies: Tuple[Policy, ...] = ()
    filterlists: Tuple[FilterList, ...] = ()
    filteractions: Tuple[FilterAction, ...] = ()
    assigned: str = ""
    domain: Optional[DomainAssignment] = None
    dynamic: Tuple[DynamicRule, ...] = ()
    policyagent: str = ""
    no_default_exempt: Optional[int] = None
    os: Optional[OsInfo] = None
    mmpolicies: Tuple[str, ...] = field(default=(), compare=False)

    def policy(self, name: str) -> Optional[Policy]:
        return _find(self.policies, name)

    def filterlist(self, name: str) -> Optional[FilterList]:
        return _find(self.filterlists, name)

    def filteraction(self, name: str) -> Optional[FilterAction]:
        return _find(self.filteractions, name)

    def users_of(self, filterlist: str = "", filteraction: str = "") -> Tuple[Tuple[str, str], ...]:
        found = []
        for pol in self.policies:
            for rule in pol.rules:
                if (filterlist and name_key(rule.filterlist) == name_key(filterlist)) or \
                        (filteraction and name_key(rule.filteraction) == name_key(filteraction)):
                    found.append((pol.name, rule.name))
        return tuple(found)


def _find(items, name):
    key = name_key(name)
    return next((item for item in items if name_key(item.name) == key), None)
