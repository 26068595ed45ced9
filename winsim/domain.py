"""The emulated Active Directory IPsec store that the hosts of one domain share.

Real domains keep IPsec objects under `CN=IP Security,CN=System,<domain NC>` and link the assigned
policy from a GPO ([MS-GPIPSEC] 2.2.1, 2.2.2). winsim keeps the same objects, encoded by the engine's
codec, in a RegTree under a private root in `<directory>/ipsec-store.json`; the store's
`ActivePolicy` plays the GPO link (one GPO, linked to the whole domain). Writers are
`netsh ipsec static set store location=domain` and `ipseccmd -w DS`; members pick the assignment up
on `gpupdate /target:computer` or at the Group Policy refresh interval (KB 813878, SYNTAX.md 6).

Several hosts (threads, or processes) share the directory: every access takes an exclusive lock on
`<directory>/.lock` and re-reads the file.
"""
import fcntl
import json
import os
from contextlib import contextmanager
from typing import Iterator, Optional

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import HostState, Policy, name_key
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.registry import RegTree, decode_store, encode_store

from .hive import write_json_atomically

STORE_ROOT = r"HKEY_LOCAL_MACHINE\WinsimDomainStore"     # private: not a real Windows key
DEFAULT_DOMAIN = "winsim.test"


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

    def policy_path(self, policy: Policy) -> str:
        """DSIPSECPolicyPath as the GP extension writes it (factsheet 2.4 [3P])."""
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
            return decode_store(tree, STORE_ROOT) if STORE_ROOT in tree else HostState()

    def save(self, state: HostState, now: Optional[int] = None) -> None:
        # Directory objects carry no Windows-version flavour; 'legacy' is what every client reads [I].
        tree = encode_store(state, STORE_ROOT, "legacy", now=now)
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
