"""One emulated Windows host: its registry, its PolicyAgent, its tools, its clock and its audit log.

State and where it lives:
- the registry (HKLM subset: version values, services, the IPsec stores) on disk under
  `state_dir` (state/hive.py), so it survives a winsim restart and a reboot;
- dynamic rules and main-mode policies in memory, as in the PolicyAgent's SPD: gone when the
  service stops or the host reboots (KB 813878; netsh ipsec dynamic, cc739550);
- `fs`, a small virtual file system for scripts (`netsh -f`), in memory;
- the domain's shared store (state/domain.py) when the host is a domain member.
"""
import datetime
import json
import os
import threading
import time
from dataclasses import replace
from typing import Callable, Dict, List, Optional

from . import personalities
from .result import Result
from .shell import cmdexe
from .shell.machine import Machine, execute
from .state.domain import DomainStore
from .state.hive import Hive
from .state.model import DomainAssignment, HostState, OsInfo
from .state.registry import CACHE_ROOT, GPT_ROOT, LOCAL_ROOT, RegValue
from .state.scheduler import Scheduler
from .state.spd import DynamicEntry, MmPolicy
from .tools import resolve

VERSION_KEY = r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Windows NT\CurrentVersion"
AGENT_KEY = r"HKEY_LOCAL_MACHINE\SYSTEM\CurrentControlSet\Services\PolicyAgent"
GP_REFRESH_SECONDS = 90 * 60        # computer policy background refresh, [D] ms813077 (no random offset here)
TRANSPORT_SETTINGS = ("latency_ms", "drop_command", "drop_request", "drop_reply")    # the transport's (winsim/transport/server.py); ignored here

NOT_RECOGNIZED = ("The term '%s' is not recognized as the name of a cmdlet, function, script file, or "
                  "operable program. Check the spelling of the name, or if a path was included, verify "
                  "that the path is correct and try again.\n")


class LocalStore:
    kind = "local"

    def __init__(self, host: "SimHost"):
        self.host = host
        self.label = "Local Store <%s>" % host.name.upper()     # [V] "Local Store <NCIRMLT001>"

    def load(self) -> HostState:
        return self.host.hive.load_store(LOCAL_ROOT)

    def save(self, state: HostState) -> None:
        self.host.hive.save_store(LOCAL_ROOT, state, self.host.profile.blob_flavor, int(self.host.now()))
        self.host.mark_changed()


class DomainView:
    """The domain store as one host's netsh/ipseccmd sees it."""
    kind = "domain"

    def __init__(self, host: "SimHost", store: DomainStore):
        self.host = host
        self.store = store
        self.label = store.label

    def load(self) -> HostState:
        return self.store.load()

    def save(self, state: HostState) -> None:
        self.store.save(state, int(self.host.now()))
        self.host.mark_changed()


class InjectedFault(Exception):
    pass


class SimHost:
    """A Windows host. Public: `run(command, arguments, stdin)` (through the shell), `run_tool(argv,
    stdin)`, `configure(fail_step=, stop_service=, reboot=)`, `advance_time(seconds)`, `state()`,
    `fs`, `audit_path` / `audit_entries()`, `name`, `address`, `personality`, `users`, `domain`."""

    def __init__(self, name: str, address: str, personality: str, state_dir: str,
                 users: Optional[Dict[str, str]] = None, domain_store: Optional[str] = None):
        self.name = name
        self.address = address
        # The Personality compares equal to its name; `profile` is the same object.
        self.personality = self.profile = personalities.get(str(personality))
        self.users = dict(users or {})
        self.state_dir = state_dir
        os.makedirs(state_dir, exist_ok=True)
        self.audit_path = os.path.join(state_dir, "audit.jsonl")
        self.fs: Dict[str, str] = {}
        self.domain = DomainStore(domain_store) if domain_store else None
        self.hive = Hive(os.path.join(state_dir, "registry.json"))
        self._lock = threading.RLock()
        self._clock_offset = 0.0
        self._generation = 0
        self._fail_countdown: Optional[int] = None
        self._poll_minutes: Optional[int] = None        # the cached domain policy's polling interval
        self.agent_running = True
        self.dynamic: List[DynamicEntry] = []
        self.mmpolicies: Dict[str, MmPolicy] = {}
        self.scheduler = Scheduler(self, os.path.join(state_dir, "tasks.json"), self._console)
        self.exempt_in_effect: Optional[int] = None
        if not self.hive.existed:
            self._install()
        else:
            installed = self.hive.tree.get(VERSION_KEY, "CurrentVersion")
            if installed is None or installed.data != self.profile.current_version:
                raise ValueError("%s: the registry in %s belongs to another Windows version (%s), not %s"
                                 % (name, state_dir, installed.data if installed else "none", self.profile.name))
        self._last_gp = self._last_ipsec_poll = self.now()
        self._boot()

    # -- setup ----------------------------------------------------------------------------------
    def _install(self) -> None:
        """A fresh installation: version values (OS detection reads them), the PolicyAgent service
        key, an empty local IPsec store."""
        p = self.profile
        tree = self.hive.tree
        values = {"ProductName": p.product_name, "CurrentVersion": p.current_version,
                  "CurrentBuildNumber": p.build, "CurrentBuild": p.build, "SystemRoot": p.system_root}
        if p.csd_version:
            values["CSDVersion"] = p.csd_version
        for value_name, data in values.items():
            tree.set(VERSION_KEY, value_name, RegValue("REG_SZ", data))
        if p.major:
            tree.set(VERSION_KEY, "CurrentMajorVersionNumber", RegValue("REG_DWORD", p.major))
            tree.set(VERSION_KEY, "CurrentMinorVersionNumber", RegValue("REG_DWORD", 0))
        tree.set(AGENT_KEY, "DisplayName", RegValue("REG_SZ", p.service_display))
        # PolicyAgent starts at boot on 2000/XP/2003 (2), on demand from Vista on (3) [E]
        tree.set(AGENT_KEY, "Start", RegValue("REG_DWORD", 3 if p.blob_flavor == "modern" else 2))
        tree.add_key("HKEY_LOCAL_MACHINE\\" + p.exempt_key)
        self.hive.save_store(LOCAL_ROOT, HostState(), p.blob_flavor, int(self.now()))

    def _boot(self) -> None:
        """What a start of the machine does: an empty SPD, PolicyAgent running, computer Group
        Policy applied (KB 813878 "IPSec filtering rules and Group Policy")."""
        self.dynamic = []
        self.mmpolicies = {}
        self.agent_running = True
        self._last_ipsec_poll = self.now()
        # NoDefaultExempt is read when the system starts ([D] cc756041, KB 810207: a restart is
        # needed on 2003) or, from Vista on, when PolicyAgent starts [E] (docs/windows-tools.md,
        # "Default exemptions").
        self.exempt_in_effect = self.no_default_exempt()
        self.refresh_group_policy(force=False)
        self.scheduler.boot()

    # -- clock ----------------------------------------------------------------------------------
    def now(self) -> float:
        return time.time() + self._clock_offset

    def advance_time(self, seconds: float) -> None:
        """Let emulated time pass: Group Policy and IPsec polling happen when due."""
        with self._lock:
            self._clock_offset += seconds
            self._poll()

    def _poll(self) -> None:
        self.scheduler.run_due()
        now = self.now()
        if self.domain is None:
            return
        if now - self._last_gp >= GP_REFRESH_SECONDS:
            self.refresh_group_policy(force=False)
        if self.agent_running and self.domain_assignment() is not None:
            if self._poll_minutes is None:
                cached = self.hive.load_store(CACHE_ROOT)
                self._poll_minutes = cached.policies[0].polling_interval if cached.policies else 0
            if self._poll_minutes and now - self._last_ipsec_poll >= self._poll_minutes * 60:
                self._ipsec_poll()

    # -- Group Policy and the domain store -----------------------------------------------------
    def refresh_group_policy(self, force: bool) -> None:
        """The IPsec client-side extension: write the GPO-assigned policy's pointers
        (GPTIPSECPolicy) and its cached objects (Policy\\Cache), or remove them when the domain no
        longer assigns one ([3P] OpenVAS GSHB_WMI_IPSec_Policy.nasl, docs/policy-store.md 2.4;
        KB 813878 "IPSec filtering rules and Group Policy").
        Without force an unchanged assignment is left alone: changes inside an already assigned
        policy arrive at the policy's own polling interval (KB 813878)."""
        self._last_gp = self.now()
        if self.domain is None:
            return
        subset = self.domain.assigned_subset()
        tree = self.hive.tree
        if subset is None:
            if GPT_ROOT in tree or CACHE_ROOT in tree:
                tree.delete_key(GPT_ROOT)
                tree.delete_key(CACHE_ROOT)
                self.hive.save()
                self.mark_changed()
            return
        policy = subset.policies[0]
        path = self.domain.policy_path(policy)
        current = tree.get(GPT_ROOT, "DSIPSECPolicyPath")
        if not force and current is not None and current.data == path:
            return
        if current is None or current.data != path:
            tree.set(GPT_ROOT, "DSIPSECPolicyPath", RegValue("REG_SZ", path))
            tree.set(GPT_ROOT, "DSIPSECPolicyName", RegValue("REG_SZ", policy.name))
            self.hive.save()
            self.mark_changed()
        self._write_cache(subset)

    def _ipsec_poll(self) -> None:
        """PolicyAgent's own poll of the directory: refreshes the cached copy of the assigned
        policy; assignment changes wait for Group Policy (KB 813878)."""
        self._last_ipsec_poll = self.now()
        assignment = self.domain_assignment()
        subset = self.domain.assigned_subset() if self.domain else None
        if assignment is None or subset is None:
            return          # a deleted GPO policy stays in effect from the cache [E]
        if self.domain.policy_path(subset.policies[0]).casefold() == assignment.path.casefold():
            self._write_cache(subset)

    def _write_cache(self, subset: HostState) -> None:
        if CACHE_ROOT in self.hive.tree:
            cached = self.hive.load_store(CACHE_ROOT)
            if (cached.policies, cached.filterlists, cached.filteractions) == \
                    (subset.policies, subset.filterlists, subset.filteractions):
                return
        self.hive.save_store(CACHE_ROOT, subset, self.profile.blob_flavor, int(self.now()))
        self._poll_minutes = subset.policies[0].polling_interval
        self.mark_changed()

    def domain_assignment(self) -> Optional[DomainAssignment]:
        """The GPO-assigned policy the GP extension recorded (GPTIPSECPolicy), or None."""
        path = self.hive.tree.get(GPT_ROOT, "DSIPSECPolicyPath")
        if path is None or not str(path.data).strip():
            return None
        name = self.hive.tree.get(GPT_ROOT, "DSIPSECPolicyName")
        return DomainAssignment(name.data if name is not None else "", path.data)

    def local_store(self) -> LocalStore:
        return LocalStore(self)

    def domain_store(self, domain: Optional[str] = None) -> Optional[DomainView]:
        if self.domain is None or not self.domain.matches(domain):
            return None
        return DomainView(self, self.domain)

    # -- PolicyAgent ---------------------------------------------------------------------------
    def stop_agent(self) -> None:
        """Stopping the service discards dynamic policy (KB 813878; cc739550)."""
        self.agent_running = False
        self.dynamic = []
        self.mmpolicies = {}
        self.mark_changed()

    def start_agent(self) -> None:
        """A starting PolicyAgent reads its policy afresh: restarting it is the KB's way to make a
        member see changes inside an already assigned domain policy (KB 813878)."""
        self.agent_running = True
        if self.profile.blob_flavor == "modern":
            self.exempt_in_effect = self.no_default_exempt()
        self.mark_changed()
        if self.domain is not None:
            self._ipsec_poll()
        self._last_ipsec_poll = self.now()

    def run_due_tasks(self) -> None:
        """Let scheduled tasks that are due run (the transport calls this: a host cut off by its
        own filters still keeps time)."""
        with self._lock:
            self.scheduler.run_due()

    def reboot(self) -> None:
        self._boot()
        self.mark_changed()

    # -- the whole picture ---------------------------------------------------------------------
    def no_default_exempt(self) -> Optional[int]:
        value = self.hive.tree.get("HKEY_LOCAL_MACHINE\\" + self.profile.exempt_key, "NoDefaultExempt")
        return value.data if value is not None and isinstance(value.data, int) else None

    def os_info(self) -> OsInfo:
        p = self.profile
        dialect = "netsh" if p.netsh_ipsec else ("ipsecpol" if "ipsecpol" in p.tools else "ipseccmd")
        return OsInfo(generation=p.name, version=personalities.version_string(p), dialect=dialect,
                      caption=p.product_name)

    def running_state(self) -> HostState:
        """Local store, assignment, domain pointer, SPD and settings: what the host runs with."""
        local = self.hive.load_store(LOCAL_ROOT)
        return replace(local, domain=self.domain_assignment(), dynamic=tuple(e.rule for e in self.dynamic),
                       policyagent="running" if self.agent_running else "stopped",
                       no_default_exempt=self.no_default_exempt(), os=self.os_info())

    def state(self) -> HostState:
        """`running_state()`, winsim's own objects: the engine reads a host through its own readers."""
        return self.running_state()

    def cached_domain_state(self) -> HostState:
        """The cached copy of the GPO-assigned policy (Policy\\Cache)."""
        return self.hive.load_store(CACHE_ROOT)

    # -- faults and bookkeeping ----------------------------------------------------------------
    def mark_changed(self) -> None:
        self._generation += 1

    def check_fault(self, make_error: Callable[[], Exception]) -> None:
        """Called by every state-changing command before it changes anything: the k-th one
        after `configure(fail_step=k)` raises the tool's own plausible error instead."""
        if self._fail_countdown is None:
            return
        self._fail_countdown -= 1
        if self._fail_countdown <= 0:
            self._fail_countdown = None
            raise make_error()

    def configure(self, **settings) -> None:
        with self._lock:
            for key, value in settings.items():
                if key == "fail_step":
                    if value is not None and (isinstance(value, bool) or not str(value).isdigit()):
                        raise ValueError("configure: fail_step must be k >= 1 (the k-th state-changing "
                                         "command from now) or null, got %r" % (value,))
                    self._fail_countdown = int(value) if value else None
                elif key == "stop_service":
                    if _flag(key, value) and self.agent_running:
                        self.stop_agent()
                    elif not _flag(key, value) and not self.agent_running:
                        self.start_agent()
                elif key == "reboot":
                    if _flag(key, value):
                        self.reboot()
                elif key not in TRANSPORT_SETTINGS:
                    raise ValueError("configure: unknown setting %r; expected fail_step, stop_service, reboot "
                                     "or the transport's %s" % (key, ", ".join(TRANSPORT_SETTINGS)))

    def _audit(self, argv: List[str], changed: bool, rc: int) -> None:
        stamp = datetime.datetime.fromtimestamp(self.now(), datetime.timezone.utc).isoformat()
        line = json.dumps({"host": self.name, "time": stamp, "argv": list(argv), "changed": changed, "rc": rc})
        with open(self.audit_path, "a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def audit_entries(self) -> List[dict]:
        if not os.path.exists(self.audit_path):
            return []
        with open(self.audit_path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle if line.strip()]

    # -- running things ------------------------------------------------------------------------
    def run(self, command: str, arguments: List[str], stdin: bytes = b"") -> Result:
        """What WinRM's Command action runs: the shell (winsim/shell/machine.py) takes the command line."""
        command_line = " ".join([command] + list(arguments))
        return execute(self, command_line, stdin)

    def _console(self):
        """A cmd.exe for the Task Scheduler's batch lines: (run a line, read a file by its %VAR% path)."""
        machine = Machine(self)
        return (lambda line: cmdexe.run_line(machine, line),
                lambda path: machine.read_file(cmdexe.expand_percent(machine, path)))

    def resolve_tool(self, program: str):
        return resolve(self.profile, program)

    def run_tool(self, argv: List[str], stdin: str = "") -> Result:
        """Run one native tool of this personality. argv[0] resolves case-insensitively, with or
        without `.exe`, bare or with the folder the tool is installed in."""
        with self._lock:
            self._poll()
            before = self._generation
            result = Result(stderr="internal winsim error\n", rc=1)
            try:
                tool = self.resolve_tool(argv[0]) if argv else None
                if tool is None:
                    result = Result(stderr=NOT_RECOGNIZED % (argv[0] if argv else ""), rc=1)
                else:
                    result = tool(self, list(argv), stdin)
                return result
            finally:
                self._audit(argv, self._generation != before, result.rc)


def _flag(key: str, value) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", "", "none", "null"):
        return False
    raise ValueError("configure: %s must be true or false, got %r" % (key, value))
