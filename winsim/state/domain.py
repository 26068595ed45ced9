"""The emulated Active Directory IPsec store that the hosts of one domain share.

Real domains keep IPsec objects under `CN=IP Security,CN=System,<domain NC>` and link the assigned
policy from a GPO ([MS-GPIPSEC] 2.2.1, 2.2.2). winsim keeps the same objects, written by its own
[MS-GPIPSEC] writer (state/store.py), in a registry tree under a private root in `<directory>/ipsec-store.json`; the store's
`ActivePolicy` plays the GPO link (one GPO, linked to the whole domain). Writers are
`netsh ipsec static set store location=domain` and `ipseccmd -w DS`; members pick the assignment up
on `gpupdate /target:computer` or at the Group Policy refresh interval (KB 813878).

Several hosts (threads, or processes) share the directory: every access takes an exclusive lock on
`<directory>/.lock` and re-reads the file.
"""
import datetime
import fcntl
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Dict, Iterator, List, Optional, Tuple, Union

from .hive import write_json_atomically
from .model import HostState, Policy, name_key
from .registry import RegTree
from .store import CLASSES, read_store, write_store

STORE_ROOT = r"HKEY_LOCAL_MACHINE\WinsimDomainStore"     # private: not a real Windows key
DEFAULT_DOMAIN = "winsim.test"
DOMAIN_CONTROLLER = "dc1"           # host label of the domain's one DC (ldifde -s dc1.<domain>)

# The Default Domain Policy has the same fixed GUID in every domain (Microsoft's well-known GPO GUID;
# dcgpofix re-creates the GPO under it). It is the GPO that winsim's assignment goes through.
DEFAULT_DOMAIN_POLICY = "Default Domain Policy"
DEFAULT_DOMAIN_POLICY_GUID = "{31B2F340-016D-11D2-945F-00C04FB984F9}"

# Attributes whose stored registry value is a key path but an LDAP DN in the directory ([MS-GPIPSEC]
# 2.2.1 "Object Attribute Details").
REFERENCE_ATTRIBUTES = ("ipsecOwnersReference", "ipsecISAKMPReference", "ipsecNFAReference",
                        "ipsecFilterReference", "ipsecNegotiationPolicyReference")
_TEXT_ATTRIBUTES = ("ipsecName", "description", "ipsecID")
_NEGPOL_ATTRIBUTES = ("ipsecNegotiationPolicyAction", "ipsecNegotiationPolicyType")

Value = Union[str, bytes]


@dataclass(frozen=True)
class DirectoryEntry:
    """One directory object: its DN and its attributes in order, each with its values."""
    dn: str
    attributes: Tuple[Tuple[str, Tuple[Value, ...]], ...]

    def values(self, name: str) -> Tuple[Value, ...]:
        """An attribute's values; LDAP attribute names are case-insensitive."""
        return next((vals for attr, vals in self.attributes if attr.casefold() == name.casefold()), ())


def generalized_time(unix_seconds: int) -> str:
    """whenChanged as AD writes it: GeneralizedTime, UTC, `YYYYMMDDHHMMSS.0Z` ([MS-GPIPSEC] 2.2.1;
    docs/policy-store.md 2.2)."""
    moment = datetime.datetime.fromtimestamp(unix_seconds, datetime.timezone.utc)
    return moment.strftime("%Y%m%d%H%M%S") + ".0Z"


def _entry(dn: str, *pairs: Tuple[str, object]) -> DirectoryEntry:
    attributes = []
    for name, values in pairs:
        values = tuple(values) if isinstance(values, (tuple, list)) else (values,)
        values = tuple(v for v in values if v not in ("", None))
        if values:
            attributes.append((name, values))
    return DirectoryEntry(dn, tuple(attributes))


def _container(dn: str) -> DirectoryEntry:
    return _entry(dn, ("objectClass", ("top", "container")), ("cn", dn.split(",", 1)[0][3:]))


class DomainStore:
    kind = "domain"

    def __init__(self, directory: str, domain: Optional[str] = None):
        self.directory = directory
        os.makedirs(directory, exist_ok=True)
        self.file = os.path.join(directory, "ipsec-store.json")
        meta = os.path.join(directory, "domain.json")
        with self._locked():
            if os.path.exists(meta):
                with open(meta, encoding="utf-8") as handle:
                    self.name = json.load(handle)["name"]
            else:
                self.name = domain or DEFAULT_DOMAIN
                write_json_atomically(meta, {"name": self.name})

    @property
    def label(self) -> str:
        return "Domain Store <%s>" % self.name      # [I] modelled on "Local Store <HOST>" ([V] show all)

    def matches(self, domain: Optional[str]) -> bool:
        return not domain or domain.casefold() == self.name.casefold()

    def naming_context(self) -> str:
        return ",".join("DC=%s" % part for part in self.name.split("."))

    def serves(self, server: str) -> bool:
        """Whether `ldifde -s <server>` reaches this domain: its DNS name or its DC's name."""
        wanted = server.strip().casefold()
        return wanted in (self.name.casefold(), "%s.%s" % (DOMAIN_CONTROLLER, self.name.casefold()))

    @property
    def controller(self) -> str:
        return "%s.%s" % (DOMAIN_CONTROLLER, self.name)

    def gpo_guid(self, name: str) -> Optional[str]:
        """The GUID of the domain's GPO called `name` (case-insensitive), or None."""
        return DEFAULT_DOMAIN_POLICY_GUID if name.strip().casefold() == DEFAULT_DOMAIN_POLICY.casefold() else None

    def policy_path(self, policy: Policy) -> str:
        """DSIPSECPolicyPath as the GP extension writes it ([3P] OpenVAS GSHB_WMI_IPSec_Policy.nasl,
        docs/policy-store.md 2.4)."""
        return "LDAP://CN=ipsecPolicy%s,CN=IP Security,CN=System,%s" % (policy.guid, self.naming_context())

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(os.path.join(self.directory, ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _tree(self) -> RegTree:
        if not os.path.exists(self.file):
            return RegTree()
        with open(self.file, encoding="utf-8") as handle:
            return RegTree.from_json(json.load(handle))

    def load(self) -> HostState:
        with self._locked():
            tree = self._tree()
            return read_store(tree, STORE_ROOT) if STORE_ROOT in tree else HostState()

    def save(self, state: HostState, now: Optional[int] = None) -> None:
        # Directory objects carry no Windows-version flavour; 'legacy' is what every client reads [I].
        tree = RegTree()
        write_store(state, STORE_ROOT, "legacy", int(time.time()) if now is None else now, tree)
        with self._locked():
            write_json_atomically(self.file, tree.to_json())

    def assigned_subset(self) -> Optional[HostState]:
        """The assigned policy with the lists and actions its rules use (what a member caches),
        or None when the domain assigns no policy."""
        state = self.load()
        policy = state.policy(state.assigned) if state.assigned else None
        if policy is None:
            return None
        lists = {name_key(r.filterlist) for r in policy.rules if r.filterlist}
        actions = {name_key(r.filteraction) for r in policy.rules if r.filteraction}
        return HostState(policies=(policy,),
                         filterlists=tuple(f for f in state.filterlists if name_key(f.name) in lists),
                         filteractions=tuple(f for f in state.filteractions if name_key(f.name) in actions))

    # -- the directory as LDAP sees it ------------------------------------------------------------
    def ldap_entries(self) -> List[DirectoryEntry]:
        """Every object below the domain NC that winsim models, parents before children: the
        System, IP Security and Policies containers, the IPsec objects ([MS-GPIPSEC] 2.2.1), the
        Default Domain Policy GPO and, while a policy is assigned, the GPO's IPSEC object whose
        ipsecOwnersReference names the policy ([MS-GPIPSEC] 2.2.1/2.2.2).
        Attribute sets are the IPsec ones ([MS-GPIPSEC] 2.2.1.1 to 2.2.1.5) plus cn; real AD has more [I]."""
        with self._locked():
            tree = self._tree()
        nc = self.naming_context()
        system = "CN=System," + nc
        ipsec_container = "CN=IP Security," + system
        gpo = "CN=%s,CN=Policies,%s" % (DEFAULT_DOMAIN_POLICY_GUID, system)
        keys = tree.subkeys(STORE_ROOT) if STORE_ROOT in tree else []
        leaves = {key.rsplit("\\", 1)[-1].casefold(): key.rsplit("\\", 1)[-1] for key in keys}

        def dn_of(reference: str) -> str:
            # Registry references are key paths; the directory's are DNs. Both end in the object's
            # `ipsecX{guid}` name (docs/policy-store.md 2.1, 2.4).
            leaf = reference.strip().rstrip("\\").rsplit("\\", 1)[-1]
            return "CN=%s,%s" % (leaves.get(leaf.casefold(), leaf), ipsec_container)

        entries = [_entry(nc, ("objectClass", ("top", "domain", "domainDNS")),
                          ("dc", self.name.split(".")[0])),
                   _container(system), _container(ipsec_container)]
        stamps: Dict[str, int] = {}
        for key in keys:
            entry, stamp = self._ipsec_entry(tree, key, ipsec_container, dn_of)
            if entry is not None:
                entries.append(entry)
                stamps[entry.dn.casefold()] = stamp
        entries += [_container("CN=Policies," + system),
                    _entry(gpo, ("objectClass", ("top", "container", "groupPolicyContainer")),
                           ("cn", DEFAULT_DOMAIN_POLICY_GUID), ("displayName", DEFAULT_DOMAIN_POLICY)),
                    _container("CN=Machine," + gpo)]
        active = tree.get(STORE_ROOT, "ActivePolicy") if STORE_ROOT in tree else None
        policy_dn = dn_of(active.data) if active is not None and str(active.data).strip() else ""
        policy = next((e for e in entries if e.dn.casefold() == policy_dn.casefold()), None)
        if policy is not None:
            windows = "CN=Windows,CN=Microsoft,CN=Machine," + gpo
            entries += [_container("CN=Microsoft,CN=Machine," + gpo), _container(windows),
                        _entry("CN=IPSEC," + windows, ("objectClass", ("top", "ipsecBase", "ipsecPolicy")),
                               ("cn", "IPSEC"), ("description", policy.values("description")),
                               ("ipsecName", policy.values("ipsecName")),
                               ("ipsecOwnersReference", policy.dn),
                               ("whenChanged", generalized_time(stamps[policy.dn.casefold()])))]
        return entries + [_container("CN=User," + gpo)]

    @staticmethod
    def _ipsec_entry(tree: RegTree, key: str, container: str, dn_of) -> Tuple[Optional[DirectoryEntry], int]:
        values = tree.values(key)
        folded = {name.casefold(): value for name, value in values.items()}

        def data(name: str):
            value = folded.get(name.casefold())
            return None if value is None else value.data

        class_name = next((c for c in CLASSES if c.casefold() == str(data("className") or "").casefold()), None)
        if class_name is None:
            return None, 0
        leaf = key.rsplit("\\", 1)[-1]
        stamp = data("whenChanged") if isinstance(data("whenChanged"), int) else 0
        pairs = [("objectClass", ("top", "ipsecBase", class_name)), ("cn", leaf)]
        pairs += [(name, data(name)) for name in _TEXT_ATTRIBUTES if isinstance(data(name), str)]
        data_type = data("ipsecDataType")
        if isinstance(data_type, int):
            pairs.append(("ipsecDataType", str(data_type)))         # an Integer in AD: "256"
        if isinstance(data("ipsecData"), bytes):
            pairs.append(("ipsecData", data("ipsecData")))
        for name in REFERENCE_ATTRIBUTES:
            refs = data(name)
            refs = refs if isinstance(refs, tuple) else (refs,) if isinstance(refs, str) else ()
            pairs.append((name, tuple(dn_of(r) for r in refs if r.strip())))
        pairs += [(name, data(name)) for name in _NEGPOL_ATTRIBUTES if isinstance(data(name), str)]
        pairs.append(("whenChanged", generalized_time(stamp)))
        return _entry("CN=%s,%s" % (leaf, container), *pairs), stamp
