# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The domain (Active Directory) IPsec store, read from a member with `ldifde`, as a HostState.

Why ldifde: the directory holds the same objects as the registry store, attribute for attribute,
with the same ipsecData blobs ([MS-GPIPSEC] 2.2.1; docs/policy-store.md 2.2), so the registry codec decodes
them; and an LDIF export is the same in every display language, which `netsh ipsec static show`
in the domain store is not (docs/windows-tools.md "netsh general rules"). ldifde ships with Windows Server 2003 and, from
2008 on, with the AD DS role and the RSAT AD DS tools ([D] learn.microsoft.com "ldifde"); a host
without it fails the task with that advice.

Two exports, both subtree searches of `CN=System,<domain NC>` (or of the domain's naming context
when no domain is named: ldifde's default base, [D]):
- `(objectClass=ipsecBase)`: the policy objects under `CN=IP Security,CN=System` and each GPO's
  assignment object `CN=IPSEC,CN=Windows,CN=Microsoft,CN=Machine,CN={GPO},CN=Policies,CN=System`,
  whose ipsecOwnersReference is the assigned policy's DN ([MS-GPIPSEC] 2.2.2; docs/policy-store.md 2.2 [S]);
- `(objectClass=groupPolicyContainer)`: the GPOs' display names, to find the one named by `gpo`.
Standard library only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Dict, List, Tuple

from . import ldif, registry
from .model import HostState, IPsecError, name_key
from .registry import RegTree, RegValue

# Attributes of ipsecBase objects that the codec reads (docs/policy-store.md 2.1: the registry value names).
ATTRIBUTES = ("objectClass", "ipsecName", "description", "ipsecID", "ipsecDataType", "ipsecData",
              "ipsecOwnersReference", "ipsecISAKMPReference", "ipsecNFAReference", "ipsecFilterReference",
              "ipsecNegotiationPolicyReference", "ipsecNegotiationPolicyAction",
              "ipsecNegotiationPolicyType", "whenChanged")
_REFERENCES = {"ipsecownersreference", "ipsecisakmpreference", "ipsecnfareference", "ipsecfilterreference",
               "ipsecnegotiationpolicyreference"}
# A synthetic registry root the directory's objects are decoded under (never written anywhere).
ROOT = r"HKEY_LOCAL_MACHINE\SOFTWARE\Policies\Microsoft\Windows\IPSec\Policy\Directory"
_GPO_IPSEC = re.compile(r"^CN=IPSEC,CN=Windows,CN=Microsoft,CN=Machine,CN=(\{[0-9A-Fa-f-]+\}),CN=Policies,CN=System,",
                        re.IGNORECASE)
_IN_CONTAINER = re.compile(r"^CN=[^,]+,CN=IP Security,CN=System,", re.IGNORECASE)


class DirectoryError(IPsecError):
    pass


def naming_context(domain: str) -> str:
    """corp.example -> DC=corp,DC=example (the domain's naming context, RFC 2247)."""
    return ",".join("DC=" + part for part in domain.split("."))


def export_args(domain: str, what: str) -> List[str]:
    """ldifde's arguments after `-f FILE`: `what` is 'objects' or 'gpos'."""
    args: List[str] = []
    if domain:
        args += ["-s", domain, "-d", "CN=System," + naming_context(domain)]
    if what == "objects":
        return args + ["-p", "subtree", "-r", "(objectClass=ipsecBase)", "-l", ",".join(ATTRIBUTES)]
    return args + ["-p", "subtree", "-r", "(objectClass=groupPolicyContainer)", "-l", "displayName"]


@dataclass(frozen=True)
class DirectoryView:
    """The domain store and what each GPO assigns ({GPO display name: policy name})."""
    state: HostState
    assignments: Dict[str, str] = field(default_factory=dict)
    gpo_names: Tuple[str, ...] = ()
    naming_context: str = ""        # DC=corp,DC=example, from the exported DNs ('' when none came)

    def gpos_assigning(self, policy: str) -> List[str]:
        return sorted(g for g, p in self.assignments.items() if name_key(p) == name_key(policy))

    def assigned_by(self, gpo: str) -> str:
        return next((p for g, p in self.assignments.items() if name_key(g) == name_key(gpo)), "")

    def has_gpo(self, gpo: str) -> bool:
        return any(name_key(g) == name_key(gpo) for g in self.gpo_names)

    def assignments_after(self, gpo: str, assigned: str) -> Dict[str, str]:
        """What each GPO assigns once GPO `gpo` assigns `assigned` ('' for none); no gpo: as now."""
        found = dict(self.assignments)
        if gpo:
            name = next((g for g in self.gpo_names if name_key(g) == name_key(gpo)), gpo)
            found.pop(name, None)
            if assigned:
                found[name] = assigned
        return dict(sorted(found.items()))


def _leaf(dn: str) -> str:
    return dn.split(",", 1)[0][3:] if dn.upper().startswith("CN=") else dn


def _class(entry: ldif.Entry) -> str:
    classes = {ldif.text(v).strip().casefold() for v in entry.values("objectClass")}
    for cls in registry.CLASSES:
        if cls.casefold() in classes:
            return cls
    return ""


def _tree(entries: List[ldif.Entry]) -> RegTree:
    """The container's objects as registry keys under ROOT, attribute for attribute (docs/policy-store.md 2.2)."""
    tree = RegTree()
    tree.add_key(ROOT)
    for entry in entries:
        if not _IN_CONTAINER.match(entry.dn) or not _class(entry):
            continue
        key = ROOT + "\\" + _leaf(entry.dn)
        tree.add_key(key)
        tree.set(key, "className", RegValue("REG_SZ", _class(entry)))
        for name, values in entry.attributes.items():
            if name == "ipsecdata":
                if not isinstance(values[0], bytes):
                    raise DirectoryError("%s: ipsecData is not base64 (`ipsecData::`) in the export" % entry.dn)
                tree.set(key, "ipsecData", RegValue("REG_BINARY", values[0]))
            elif name in _REFERENCES:
                tree.set(key, name, RegValue("REG_MULTI_SZ", tuple(ldif.text(v) for v in values)))
            elif name in ("ipsecname", "description", "ipsecid", "ipsecnegotiationpolicyaction",
                          "ipsecnegotiationpolicytype"):
                tree.set(key, _CASED[name], RegValue("REG_SZ", ldif.text(values[0])))
    return tree


_CASED = {a.lower(): a for a in ATTRIBUTES}


def decode(objects_ldif: str, gpos_ldif: str, gpo: str = "") -> DirectoryView:
    """The two exports -> the domain store; `assigned` is the policy GPO `gpo` assigns ('' if none)."""
    try:
        entries = ldif.parse(objects_ldif)
        gpo_entries = ldif.parse(gpos_ldif)
    except ldif.LdifError as err:
        raise DirectoryError("ldifde's export of the domain's IPsec objects could not be read: %s" % err) from None
    state = registry.decode_store(_tree(entries), ROOT)
    by_leaf = {("ipsecPolicy" + p.guid).casefold(): p.name for p in state.policies}
    gpo_names = {_leaf(e.dn).casefold(): e.first("displayName") or _leaf(e.dn) for e in gpo_entries}
    assignments: Dict[str, str] = {}
    for entry in entries:
        match = _GPO_IPSEC.match(entry.dn)
        if not match:
            continue
        owners = [ldif.text(v) for v in entry.values("ipsecOwnersReference")]
        policy = next((by_leaf.get(_leaf(o).casefold()) for o in owners), None)
        gpo_name = gpo_names.get(match.group(1).casefold(), match.group(1))
        assignments[gpo_name] = policy or entry.first("ipsecName")
    contexts = [m.group(1) for e in entries + gpo_entries
                for m in [re.search(r",CN=System,(DC=.*)$", e.dn, re.IGNORECASE)] if m]
    view = DirectoryView(state, assignments, tuple(sorted(gpo_names.values())), contexts[0] if contexts else "")
    return replace(view, state=replace(state, assigned=view.assigned_by(gpo) if gpo else ""))


__all__ = ["ATTRIBUTES", "DirectoryError", "DirectoryView", "ROOT", "decode", "export_args", "naming_context"]
