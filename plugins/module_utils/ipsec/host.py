# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The one flow every action plugin shares, in named steps: read -> guards -> transact -> verify.

Costs, per task and host, in WinRM commands: one to read; only when something changes, one more:
the write script, which holds the host-side lock, checks that the host is still as read (guard.py),
runs the whole batch (stopping at the first failure and undoing what it did) and reads the new
state back, whatever the batch's size. A task given the state fact of an earlier task plans from
it and sends only the write script; when the host is no longer as the fact says, that script
writes nothing and prints the state to plan from (2 commands, as without a fact). A write that
finds the host changed after a fresh read plans again once, then fails saying so.

The caller passes `execute(script) -> (rc, stdout, stderr)` (the action plugin's connection) and a
`planner(actual) -> Plan`; nothing here imports Ansible. Standard library only.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from . import dialects, directory, guard, lockout, netdiag, registry, remote, toolout
from .dialects import listings
from .model import (AuthMethod, Change, DynamicRule, HostState, IPsecError, Rule, ValidationError,
                    name_key, unknown_as_empty)
from .plan import state_key
from .report import SECRET_MASK, state_to_dict

Execute = Callable[[str], Tuple[int, str, str]]
_DYNAMIC_SECTIONS = ("dynamic-netsh", remote.MMPOLICY_SECTION, "dynamic-ipseccmd")
Planner = Callable[[HostState], object]

# KB 813878: dynamic policy is discarded when PolicyAgent stops or the host reboots (docs/windows-tools.md,
# "Dynamic policy lifetime").
DYNAMIC_WARNING = ("dynamic filters are volatile: they vanish when the IPsec Policy Agent service "
                   "(PolicyAgent) restarts or the host reboots")


class HostError(IPsecError):
    """A task failure; `result` holds what is known so far (commands, before, ...)."""

    def __init__(self, msg: str, **result):
        super().__init__(msg)
        self.result = result


class UnreadableListing(HostError):
    """A task that changes dynamic filters plans from the host's dynamic rules, and their listing could
    not be read: it plans and writes nothing. `problem` says why (never the listing's own lines)."""

    def __init__(self, problem: str, warning: str, **result):
        super().__init__("%s; this task changes dynamic filters and plans from the ones the host has, so it "
                         "planned and wrote nothing" % warning, **result)
        self.problem = problem


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------

def decode_registry(text: str, **kwargs) -> HostState:
    """`reg query /s` text of the IPsec key -> HostState (empty text: empty store)."""
    if not text.strip():
        return HostState()
    return registry.decode_store(registry.parse_reg_query(text), **kwargs)


def directory_view(transcript: remote.Transcript, gpo: str = "") -> directory.DirectoryView:
    """The domain store from the transcript's ldifde sections (remote.directory_lines)."""
    texts = []
    for name in ("directory", "directory-gpos"):
        section = transcript.sections.get(name)
        if section is None:
            raise HostError("the script printed no %s section: the domain store was not read" % name)
        if remote.tool_missing(section):
            raise HostError("store=domain reads the domain's IPsec objects with ldifde.exe, which this host "
                            "lacks: run the task on a domain controller or a server with the AD DS tools "
                            "(Install-WindowsFeature RSAT-ADDS-Tools; on Windows Server 2003 ldifde is built in)")
        if section.rc not in (0, None):
            raise HostError("ldifde could not export the domain's IPsec objects (rc=%s): %s; check the `domain` "
                            "option, that the host is a domain member, and that the connecting account may "
                            "read CN=System in the directory" % (section.rc, section.text.strip()[:300]))
        texts.append(section.text)
    try:
        return directory.decode(texts[0], texts[1], gpo)
    except IPsecError as err:
        raise HostError(str(err)) from None


def state_from_transcript(transcript: remote.Transcript, dialect: str = "",
                          need_dynamic: bool = False, store: str = "local", gpo: str = "") -> HostState:
    """The read sections of a transcript -> HostState with os, policyagent, dynamic and exemptions.

    `dialect` overrides the detected one. The dynamic-filter section also proves the dialect's
    tool exists: when it is missing, the read fails. Dynamic rules or main-mode policies whose listing
    could not be read are None (read_dynamic; state_and_unread also says why); a task that changes
    dynamic filters (`need_dynamic`) fails then instead (UnreadableListing). With store='domain' the
    policies are the domain store's (its `assigned` is the policy GPO `gpo` assigns) and `domain` is
    still this member's GPO pointer.
    """
    return state_and_unread(transcript, dialect, need_dynamic, store, gpo)[0]


def state_and_unread(transcript: remote.Transcript, dialect: str = "", need_dynamic: bool = False,
                     store: str = "local", gpo: str = "") -> Tuple[HostState, Tuple[str, ...]]:
    """state_from_transcript, and why its None parts could not be read: the task's warnings."""
    local, unread = _local_state(transcript, dialect, need_dynamic)
    if store != "domain":
        return local, unread
    view = directory_view(transcript, gpo)
    return replace(view.state, domain=local.domain, os=local.os, policyagent=local.policyagent,
                   dynamic=local.dynamic, mmpolicies=local.mmpolicies,
                   no_default_exempt=local.no_default_exempt), unread


def _local_state(transcript: remote.Transcript, dialect: str, need_dynamic: bool
                 ) -> Tuple[HostState, Tuple[str, ...]]:
    sections = transcript.sections
    os = remote.os_info(sections.get("os"))
    if dialect:
        os = replace(os, dialect=dialect)
    state = decode_registry(remote.store_text(sections.get("store")))
    section = remote.dynamic_section(transcript)
    if remote.tool_missing(section):
        tool = "ipseccmd" if section.name == "dynamic-ipseccmd" else "netsh ipsec dynamic"
        raise HostError(
            "%s is not available on this host (%s, dialect %s): %s" % (
                tool, os.caption or os.generation, os.dialect,
                "install the Windows XP SP2 / Server 2003 Support Tools (ipseccmd.exe) or set the "
                "`dialect` option to a tool this host has" if tool == "ipseccmd" else
                "this Windows has no `netsh ipsec` context; set the `dialect` option to ipseccmd"),
            os=_os_dict(os))
    dynamic, mmpolicies, problem = read_dynamic(transcript)
    unread: Tuple[str, ...] = ()
    if problem:
        unread = ((listings.UNREADABLE if dynamic is None else listings.MMPOLICY_UNREADABLE) % problem,)
        if need_dynamic:
            raise UnreadableListing(problem, unread[0])
    return replace(state, os=os, policyagent=remote.policyagent_state(sections.get("policyagent")), dynamic=dynamic,
                   mmpolicies=mmpolicies, no_default_exempt=remote.no_default_exempt(sections.get("exempt"))), unread


def read_dynamic(transcript: remote.Transcript) -> Tuple[Optional[Tuple[DynamicRule, ...]],
                                                         Optional[Tuple[str, ...]], str]:
    """The dynamic rules and main-mode policies a read printed, each None when unknown, and why ('' when
    both were read): a listing the strict readers of dialects/listings do not understand (another display
    language, say) is unknown, never none. The rules name main-mode policies: unknown rules make both so.

    Not read, so none: no dynamic section, or PolicyAgent not running (it holds dynamic rules only
    while it runs, KB 813878). A PolicyAgent state line the engine does not read leaves them unknown.
    """
    section = remote.dynamic_section(transcript)
    agent_section = transcript.sections.get("policyagent")
    agent = remote.policyagent_state(agent_section)
    if section is None or remote.tool_missing(section):
        return (), (), ""
    if agent_section is not None and not agent:
        return None, None, listings.AGENT_UNREAD
    if agent != "running":
        return (), (), ""
    rules, problem = _parse_dynamic(section)
    if rules is None:
        return None, None, problem
    names, problem = _mmpolicies(remote.mmpolicy_section(transcript), rules)
    return rules, names, problem


def _parse_dynamic(section: remote.Section) -> Tuple[Optional[Tuple[DynamicRule, ...]], str]:
    """The rules of the dynamic section, or None and why they could not be read."""
    netsh = section.name == "dynamic-netsh"
    tool = "netsh ipsec dynamic show rule" if netsh else "ipseccmd show filters"
    error = toolout.parse_netsh_error(section.text)
    if section.rc not in (0, None) or error:
        # the tool's own error line, not the rest of its output (a listing may hold a key)
        said = ("ERR IPsec[%05d] %s" % error if error else
                next((line.strip() for line in section.text.splitlines() if line.strip()), ""))
        return None, "%s failed (rc=%s)%s" % (tool, section.rc, ": " + said[:200] if said else "")
    try:
        return (listings.parse_dynamic_rules if netsh else toolout.parse_ipseccmd_show_filters)(section.text), ""
    except IPsecError as err:
        return None, listings.problem(err)


def _mmpolicies(section: Optional[remote.Section], rules: Sequence[DynamicRule]
                ) -> Tuple[Optional[Tuple[str, ...]], str]:
    """The main-mode policies listed and those the rules name, sorted; or None and why the listing
    could not be read. A listing that failed or answered with an `ERR IPsec[` line counts as listing
    none: real netsh may answer so when there is no policy ([I]), and the rules' own still show."""
    listed: Tuple[str, ...] = ()
    if section is not None and section.rc in (0, None) and not toolout.parse_netsh_error(section.text):
        try:
            listed = listings.parse_mmpolicy_names(section.text)
        except IPsecError as err:
            return None, listings.problem(err)
    names: Dict[str, str] = {}
    for name in listed + tuple(d.mmpolicy for d in rules if d.mmpolicy):
        names.setdefault(name_key(name), name)
    return tuple(sorted(names.values(), key=name_key)), ""


def read(execute: Execute, dialect: str = "", need_dynamic: bool = False, store: str = "local",
         domain: str = "", gpo: str = "") -> Tuple[HostState, str]:
    """One round trip: the read script, parsed. Returns the state and the raw transcript.
    With store='domain' the state is the domain store's (state_from_transcript)."""
    state, out, _fact, _unread = read_state(execute, dialect, need_dynamic, store, domain, gpo)
    return state, out


def read_state(execute: Execute, dialect: str = "", need_dynamic: bool = False, store: str = "local",
               domain: str = "", gpo: str = "", host_name: str = "") -> Tuple[HostState, str, dict, Tuple[str, ...]]:
    """`read`, the state fact of what was read (guard.state_fact) for inventory host `host_name`, and why
    the state's None parts could not be read (the task's warnings)."""
    flow = Flow(execute, True, dialect=dialect, store=store, domain=domain, gpo=gpo, dynamic=need_dynamic,
                host_name=host_name)
    outputs = []

    def keep(script):
        rc, out, err = execute(script)
        outputs.append(out)
        return rc, out, err
    flow.execute = keep
    try:
        snap = flow.read()
    except HostError as error:
        error.result.setdefault("round_trips", 1)
        raise
    return snap.state, outputs[-1], flow.fact(), snap.unread


# --------------------------------------------------------------------------------------------
# Comparing and reporting
# --------------------------------------------------------------------------------------------

def canonical(state: HostState) -> HostState:
    """The same state with every collection in a fixed order (names compare case-insensitively).

    The registry returns objects in key order, the planner in creation order; neither order means
    anything to the policy agent, so comparisons and reports use this one.
    """
    def by_name(items):
        return tuple(sorted(items, key=lambda o: name_key(o.name)))

    policies = tuple(replace(p, rules=tuple(sorted(p.rules, key=lambda r: (name_key(r.name), r.filterlist))))
                     for p in by_name(state.policies))
    lists = tuple(replace(fl, filters=tuple(sorted(fl.filters, key=lambda f: repr(f.key()))))
                  for fl in by_name(state.filterlists))
    return replace(state, policies=policies, filterlists=lists,
                   filteractions=by_name(state.filteractions),
                   dynamic=None if state.dynamic is None else tuple(sorted(state.dynamic, key=repr)))


def managed_view(state: HostState) -> HostState:
    """The state without what Windows makes on its own: each policy's default response rule and
    the unnamed filter action only that rule uses.

    `netsh ipsec static add policy` (and ipseccmd -p) always store a default response rule with
    its own negotiation policy, active or not ([D] netsh add policy `activatedefaultrule`;
    docs/policy-store.md 5.2); the planner does not model it, so results and verification leave it out.
    ipsec_info reports it.
    """
    default_actions = {name_key(r.filteraction) for p in state.policies for r in p.rules
                       if r.default_response}
    used = {name_key(r.filteraction) for p in state.policies for r in p.rules if not r.default_response}
    policies = tuple(replace(p, rules=tuple(r for r in p.rules if not r.default_response))
                     for p in state.policies)
    actions = tuple(a for a in state.filteractions
                    if name_key(a.name) in used or name_key(a.name) not in default_actions
                    and not (a.guid and name_key(a.name) == name_key(a.guid)))
    return replace(state, policies=policies, filteractions=actions)


def same_store(a: HostState, b: HostState, dynamic: bool, static: bool = True) -> bool:
    """Whether two states agree on everything a task can change (the planner's own comparison):
    the static store unless not `static`, the dynamic filters when `dynamic` (a task that changes them
    never has them unknown: UnreadableListing)."""
    a_shape, b_shape = (state_key(managed_view(unknown_as_empty(s))) for s in (a, b))
    if static and a_shape[:4] != b_shape[:4]:
        return False
    return not dynamic or a_shape[5] == b_shape[5]


def secrets_of(changes: Iterable[Change]) -> List[str]:
    """Pre-shared keys carried by planned changes (to be masked in anything shown)."""
    found = []
    for change in changes:
        for obj in (change.obj, change.old):
            if isinstance(obj, Rule):
                found += [a.value for a in obj.auth
                          if isinstance(a, AuthMethod) and a.kind == "psk" and a.value]
    return found


def redact(text: str, secrets: Sequence[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, SECRET_MASK)
    return text


def _os_dict(os) -> Optional[Dict[str, str]]:
    if os is None:
        return None
    return {"generation": os.generation, "version": os.version, "dialect": os.dialect,
            "caption": os.caption}


def state_report(state: HostState, guids: bool = False, everything: bool = False) -> dict:
    """A state as plain data, in canonical order; without Windows' own default response objects
    unless `everything` (ipsec_info)."""
    return state_to_dict(canonical(state if everything else managed_view(state)), guids)


def netdiag_diff(before: HostState, after: HostState, local_address: str = "", **domain) -> Dict[str, str]:
    """Ansible's diff: both states as `netdiag /test:ipsec /debug` would show them. For the domain
    store, `domain` holds netdiag.diff's directory, assigned_before and assigned_after. Unknown dynamic
    rules (None) show as unknown, not as none."""
    kw = {"local_address": local_address} if local_address else {}
    return netdiag.diff(netdiag_view(before), netdiag_view(after), **kw, **domain)


def netdiag_view(state: HostState) -> HostState:
    """The state netdiag's rendering is given: Windows' own default response objects left out."""
    return canonical(managed_view(state))


# --------------------------------------------------------------------------------------------
# The connection's own traffic: a block that would cut the connection Ansible is using is refused
# unless the user allows it (allow_lockout)
# --------------------------------------------------------------------------------------------

# The rules live in lockout.py (controller address, mirrored filters, subnets).
MANAGEMENT_PORTS = lockout.MANAGEMENT_PORTS
connection_blocks = lockout.connection_blocks


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

def shown(command) -> str:
    """One display line per command, secrets masked (a domain-store script on the same line)."""
    return command.redacted_display


def hidden(command) -> Tuple[str, ...]:
    """The argv elements and script lines of a command that carry a secret (where its shown twin
    differs): remote.py sends them through stdin, never in the script."""
    args = [a for a, s in zip(command.argv, command.shown_argv) if a != s]
    lines = [a for a, s in zip(command.script.splitlines(), command.shown_script.splitlines()) if a != s]
    if command.shown_script and len(command.script.splitlines()) != len(command.shown_script.splitlines()):
        raise IPsecError("internal: a command's masked script has other lines than the script")
    return tuple(args + lines)


def render_commands(plan, before: HostState, dialect: str, store: str = "local", domain: str = "",
                    gpo: str = ""):
    # Unknown dynamic rules reach no renderer: a plan that changes them is never made from them
    # (UnreadableListing), and a static plan's commands do not depend on them.
    return dialects.render(list(plan.changes), dialect, before=unknown_as_empty(before),
                           after=unknown_as_empty(plan.after),
                           store=store, domain=domain, gpo=gpo)


def render_steps(plan, before: HostState, dialect: str, store: str = "local",
                 domain: str = "", gpo: str = "") -> List[remote.Step]:
    """A plan's changes -> the dialect's commands as write steps, each with the commands that undo it."""
    def step(command, undo=()):
        return remote.Step(tuple(command.argv), command.script or "", tuple(undo), shown(command), hidden(command))

    return [step(c, [step(u) for u in c.undo])
            for c in render_commands(plan, before, dialect, store, domain, gpo)]


# --------------------------------------------------------------------------------------------
# The flow: read -> guards -> transact -> verify
# --------------------------------------------------------------------------------------------

@dataclass
class SideChange:
    """A change beside the IPsec policy that the task's one write command makes with it (Flow, `sides`):
    `steps` run after the policy's, `sections` join the precheck, `verify(transcript)` names what the
    read-back shows other than planned (None: as planned); `report` goes into the result as `key`."""
    key: str
    report: dict
    steps: List[remote.Step]
    sections: Tuple[str, ...]
    diff: Tuple[str, str]
    verify: Callable[[remote.Transcript], Optional[str]]
    notes: List[str] = field(default_factory=list)
    secrets: List[str] = field(default_factory=list)
    warnings: List[str] = field(default_factory=list)


@dataclass
class Snapshot:
    """A state to plan from: decoded, the transcript that printed it, and whether this task read it
    from the host (`fresh`) or took it from the state fact of an earlier task."""
    state: HostState
    transcript: remote.Transcript
    fresh: bool
    unread: Tuple[str, ...] = ()        # why the state's None parts could not be read (warnings)


@dataclass
class Prepared:
    """A plan that passed every guard: its result so far, its write steps, the predicted state."""
    plan: object
    result: dict
    steps: List[remote.Step]
    predicted: HostState
    secrets: List[str]
    shown: Dict[str, object]
    sides: List[SideChange] = field(default_factory=list)      # the side changes as planned


def holds_secret(state: HostState, transcript: Optional[remote.Transcript] = None) -> bool:
    """Whether a state holds a pre-shared key (its read sections must not become a fact): a rule of
    the store with one, or a dynamic listing that mentions one (other tools' dynamic rules are not
    decoded to that depth; [I] whether netsh prints a key there, so any mention counts), or a startup
    file whose commands pass one (netsh psk=, ipseccmd -a p:)."""
    if any(isinstance(a, AuthMethod) and a.kind == "psk" and a.value
           for p in state.policies for r in p.rules for a in r.auth):
        return True
    sections = transcript.sections.values() if transcript is not None else ()
    for section in sections:
        if section.name.startswith(("dynamic-", "mmpolicies-")) and re.search(r"pre-?shared", section.text, re.I):
            return True
        if section.name == "startup-file" and re.search(r"psk=|\bp:", section.text, re.I):   # startup.py's file
            return True
    return False


def busy_message() -> str:
    return ("another task held this host's winsec.ipsec lock (the named mutex %s) for %d seconds, so this task "
            "did nothing on the host; run it again once the other task has finished"
            % (remote.LOCK_NAME, remote.LOCK_WAIT_MS // 1000))


class Flow:
    """One task on one host. Costs, in WinRM commands: a read (1) and, when something changes, one
    write script that checks the state is still the one planned from, writes, undoes on failure
    and reads back (2). Planned from a state fact that still matches: the write alone (1).

    `sides`: changes beside the IPsec policy made in the same transaction (startup.Startup,
    exemptions.Exemption): each names the read sections it needs and plans a SideChange from the
    state read and the predicted one."""

    def __init__(self, execute: Execute, check_mode: bool, dialect: str = "", store: str = "local",
                 domain: str = "", gpo: str = "", dynamic: bool = False, local_address: str = "",
                 guard_ports: Sequence[int] = MANAGEMENT_PORTS, allow_lockout: bool = False, controller: str = "",
                 confirm=None, when_domain_policy: str = "warn", host_name: str = "", sides: Sequence = ()):
        self.execute, self.check_mode, self.dialect, self.store = execute, check_mode, dialect, store
        self.domain, self.gpo, self.dynamic, self.local_address = domain, gpo, dynamic, local_address
        self.guard_ports, self.allow_lockout, self.controller = guard_ports, allow_lockout, controller
        self.confirm, self.when_domain_policy, self.host_name = confirm, when_domain_policy, host_name
        self.directory = domain if store == "domain" else None
        self.sides = tuple(sides)
        self.side_sections = {n for side in self.sides for n in side.sections}
        self.startup = bool(self.side_sections & set(remote.STARTUP_SECTIONS))
        self.trips = 0
        self.last: Optional[Snapshot] = None       # the latest state read from the host (for the fact)
        self.notes: List[str] = []

    # -- talking to the host ---------------------------------------------------------------------
    def send(self, script) -> Tuple[int, str, str, remote.Transcript]:
        self.trips += 1
        rc, out, err = self.execute(script)
        transcript = remote.parse_transcript(out)
        if transcript.busy:
            raise HostError(busy_message(), changed=False)
        return rc, out, err, transcript

    def snapshot(self, transcript: remote.Transcript, fresh: bool = True) -> Snapshot:
        try:
            state, unread = state_and_unread(transcript, self.dialect, self.dynamic, self.store, self.gpo)
        except HostError:
            raise
        except IPsecError as error:
            raise HostError(str(error)) from None
        snap = Snapshot(state, transcript, fresh, unread)
        if fresh:
            self.last = snap
        return snap

    def fact(self) -> Optional[dict]:
        """The state fact of the latest state read from the host."""
        if self.last is None:
            return None
        state = self.last.state
        keep = self.store == "local" and not holds_secret(state, self.last.transcript)
        return guard.state_fact(self.last.transcript, _os_dict(state.os), self.dialect or state.os.dialect,
                                self.host_name, keep)

    # -- 1. read ---------------------------------------------------------------------------------
    def read(self) -> Snapshot:
        """One round trip: the read script, parsed."""
        rc, out, err, transcript = self.send(remote.read_script(dialect=self.dialect, directory=self.directory,
                                                                startup=self.startup))
        if "os" not in transcript.sections or "store" not in transcript.sections:
            raise HostError("the read script did not complete (rc=%s): %s" % (rc, (err or out).strip()[:500]))
        return self.snapshot(transcript)

    def from_fact(self, fact) -> Optional[Snapshot]:
        """The state an earlier task left as a fact, when this task may plan from it (never in check
        mode, which always reads, nor for the domain store)."""
        if self.check_mode or self.store != "local":
            return None
        transcript = guard.usable_fact(fact, self.host_name, self.dialect)
        if transcript is None or not self.side_sections <= set(transcript.sections) | set(_DYNAMIC_SECTIONS):
            return None
        try:
            state, unread = state_and_unread(transcript, self.dialect, self.dynamic)
            return Snapshot(state, transcript, False, unread)
        except IPsecError:
            return None

    # -- 2. guards -------------------------------------------------------------------------------
    def guards(self, planner: Planner, snap: Snapshot) -> Prepared:
        """Plan from `snap` and apply every check a plan must pass before it is written: the
        domain store's, when_domain_policy, the lockout guard, PolicyAgent for dynamic filters."""
        before, os = snap.state, snap.state.os
        effective = self.dialect or os.dialect
        try:
            plan = planner(before)
        except HostError:
            raise
        except IPsecError as err:       # the plan needed the host's state to find the problem
            raise HostError(str(err), changed=False, dialect=effective, os=_os_dict(os),
                            before=state_report(before)) from None
        secrets = secrets_of(plan.changes)
        result = {
            "changed": False,               # until the host says otherwise (check mode: a prediction)
            "dialect": effective,
            "os": _os_dict(os),
            "before": state_report(before),
            # dynamic rules or main-mode policies that could not be read: null in the states, and why
            "warnings": list(plan.warnings) + list(snap.unread),
            "notes": list(getattr(plan, "notes", ()) or ()),
        }
        in_effect: Sequence[str] = ()
        shown: Dict[str, object] = {}           # how the diff shows the domain store (netdiag.diff)
        if self.store == "domain":
            view = _check_directory(snap.transcript, self.gpo, plan, result)
            result["domain_assignments"] = view.assignments_after(self.gpo, plan.after.assigned)
            shown = {"directory": view.naming_context or directory.naming_context(self.domain) or "DC=...",
                     "assigned_before": dict(view.assignments), "assigned_after": result["domain_assignments"]}
            # Members run whatever a GPO assigns: the lockout guard looks at every such policy.
            in_effect = sorted(set(view.assignments.values()) | {plan.after.assigned} - {""}, key=name_key)
        self._domain_policy(before, result)
        predicted = replace(plan.after, os=os, policyagent=before.policyagent,
                            no_default_exempt=before.no_default_exempt)
        sides = self._plan_sides(snap, predicted, effective, result)
        side_steps = [step for side in sides for step in side.steps]
        secrets += [secret for side in sides for secret in side.secrets]
        if not plan.changes:
            if side_steps:
                result["planned"] = state_report(predicted)
                result["commands"] = [redact(s.display, secrets) for s in side_steps]
                result["diff"] = _side_diff({"before": "", "after": ""}, sides)
            return Prepared(plan, result, side_steps, predicted, secrets, shown, sides)

        def blocks(state):
            variants = [replace(state, assigned=name) for name in in_effect] or [state]
            return [c for v in variants for c in connection_blocks(v, ports=self.guard_ports,
                                                                   controller=self.controller,
                                                                   host=self.local_address)]
        cut = [c for c in blocks(predicted) if c not in blocks(before)]
        result["planned"] = state_report(predicted)
        if cut and not self.allow_lockout:
            raise HostError(lockout.refusal(cut), **result)
        result["warnings"] += ["the management connection may be cut: %s" % c for c in cut]
        try:
            steps = render_steps(plan, before, effective, self.store, self.domain, self.gpo) + side_steps
            if self.confirm is not None:
                steps = self.confirm.steps(steps, os.generation)
        except IPsecError as err:       # e.g. a value this dialect cannot express
            raise HostError(str(err), **result) from None
        result["commands"] = [redact(s.display, secrets) for s in steps]
        result["diff"] = _side_diff(_diff(before, predicted, self.local_address, secrets, **shown), sides)
        if self.dynamic:
            if any(c.op == "add_dynamic" for c in plan.changes):     # removing filters leaves nothing to vanish
                result["warnings"].append(DYNAMIC_WARNING)
            if before.policyagent != "running":
                raise HostError("the IPsec Policy Agent service (PolicyAgent) is %s: dynamic filters need it "
                                "running; start it with `sc start PolicyAgent` (or `net start policyagent`)"
                                % (before.policyagent or "in an unknown state"), **result)
        return Prepared(plan, result, steps, predicted, secrets, shown, sides)

    def _plan_sides(self, snap: Snapshot, predicted: HostState, dialect: str, result: dict) -> list:
        """Each side change, planned from the sections read and the predicted state; its report
        goes into the result (in check mode too)."""
        sides = []
        for side in self.sides:
            try:
                planned = side.plan(snap.transcript, predicted, dialect)
            except IPsecError as err:
                raise HostError(str(err), **result) from None
            result[planned.key] = planned.report
            result["notes"] += planned.notes
            result["warnings"] += planned.warnings
            sides.append(planned)
        return sides

    def _domain_policy(self, before: HostState, result: dict) -> None:
        """when_domain_policy: a GPO-assigned domain policy overrides the local store (KB 813878)."""
        if before.domain is None or self.store != "local":
            return
        name = before.domain.name
        if self.when_domain_policy == "fail":
            raise HostError("a domain (GPO) IPsec policy %r is assigned to this host and overrides the local "
                            "store, so a local change would take no effect (KB 813878); when_domain_policy=fail "
                            "refuses it: change the policy in the domain (store: domain), or set "
                            "when_domain_policy to warn or ignore" % name, **result)
        if self.when_domain_policy == "ignore":     # the plan's warning too
            result["warnings"] = [w for w in result["warnings"] if name not in w]
        elif not any(name in w for w in result["warnings"]):
            result["warnings"].append(
                "a domain (GPO) IPsec policy %r is assigned to this host and overrides the local store; "
                "the local policy takes no effect while it is assigned (KB 813878)" % name)

    # -- 3. transact -----------------------------------------------------------------------------
    def transact(self, prepared: Prepared, snap: Snapshot) -> remote.Transcript:
        """The one write command: lock, precheck against `snap`'s fingerprints, the steps (undone on
        a failure), the read-back. Returns its transcript (stale when the precheck failed)."""
        names = set(guard.scope(prepared.plan.changes, self.store, from_fact=not snap.fresh))
        names |= {n for side in prepared.sides if side.steps for n in side.sections}
        names = [n for n in remote.SECTIONS if n in names]
        precheck = guard.precheck_lines(snap.transcript.fingerprint, names, self.dialect, self.directory)
        script = remote.write_script(prepared.steps, dialect=self.dialect, directory=self.directory,
                                     precheck=precheck, startup=self.startup,
                                     prelude=(lambda stdin: [self.confirm.preamble(stdin)]) if self.confirm else None)
        rc, out, err, transcript = self.send(script)
        if guard.stale(transcript) is not None:
            return transcript
        if transcript.failed:
            self.fail_batch(prepared, snap, transcript)
        if "os" not in transcript.sections:
            prepared.result["changed"] = bool(transcript.done)
            raise HostError("the write script did not complete (rc=%s); the host state is unknown: %s"
                            % (rc, redact((err or out).strip()[:500], prepared.secrets)), **prepared.result)
        return transcript

    def fail_batch(self, prepared: Prepared, snap: Snapshot, transcript: remote.Transcript):
        """A step failed: the script undid the steps done before it, newest first, and read back."""
        number, rc, output = transcript.failed
        steps, secrets, result = prepared.steps, prepared.secrets, prepared.result
        failed_step = redact(steps[number - 1].display, secrets)
        message = "step %d of %d failed (rc=%s): %s\n%s" % (
            number, len(steps), rc, failed_step, redact(output.strip(), secrets))
        undo_failed = bool(transcript.undo_failed)
        result["changed"] = undo_failed
        try:
            read_back = self.snapshot(transcript)
            now = read_back.state
            result["after"] = state_report(now)
            result["warnings"] = result["warnings"] + [w for w in read_back.unread if w not in result["warnings"]]
            static = not self.dynamic or any(not c.op.endswith("_dynamic") for c in prepared.plan.changes)
            result["changed"] = not same_store(snap.state, now, self.dynamic, static)
        except IPsecError:
            now = None
        if undo_failed:
            message += ("\nundoing the earlier steps failed too; the host is left partly changed: "
                        "compare `after` with `before`")
        elif result["changed"]:
            message += ("\nthe steps done before it were undone, but the state read back differs from `before`: "
                        "compare `after` with `before`")
        else:
            message += "\nthe steps done before it were undone; the host is as it was before the task"
        raise HostError(message, **result)

    # -- 4. verify -------------------------------------------------------------------------------
    def verify(self, prepared: Prepared, snap: Snapshot, transcript: remote.Transcript) -> dict:
        """The read-back must be the planned state; `after` is what was read back."""
        result = prepared.result
        read_back = self.snapshot(transcript)
        verified = read_back.state
        result["after"] = state_report(verified)
        result["warnings"] += [w for w in read_back.unread if w not in result["warnings"]]
        result["changed"] = True
        if self.store == "domain":
            result["domain_assignments"] = dict(sorted(directory_view(transcript, self.gpo).assignments.items()))
            prepared.shown["assigned_after"] = result["domain_assignments"]
        # What the plan covers: a dynamic task's plan was not made to predict the static store, which
        # another writer may have changed between the read and the write (outside the precheck's scope).
        static = not self.dynamic or any(not c.op.endswith("_dynamic") for c in prepared.plan.changes)
        for side in prepared.sides:
            wrong = side.verify(transcript)
            if wrong is not None:
                raise HostError("%s; every command reported success: run the task again to plan from the state now"
                                % wrong, **result)
        if same_store(verified, prepared.predicted, self.dynamic, static):
            return result
        result["changed"] = not same_store(snap.state, verified, self.dynamic, static)
        result["diff"] = _diff(snap.state, verified, self.local_address, prepared.secrets, **prepared.shown)
        differences = (netdiag.summary(netdiag_view(prepared.predicted), netdiag_view(verified))
                       or ["(settings not shown by netdiag)"])
        raise HostError(
            "the host's state read back after the change differs from the planned one (%s). Every command reported "
            "success, and this task held the host's lock (%s) from its check to its read-back, so no other "
            "winsec.ipsec task wrote meanwhile: either a tool or person that does not take that lock changed the host "
            "during this task, or a tool did something other than its command says (a defect in winsec.ipsec). Run "
            "the task again to plan from the state now on the host; compare `after` (read back) with `planned`"
            % (redact("; ".join(differences), prepared.secrets), remote.LOCK_NAME), **result)

    # -- the whole -------------------------------------------------------------------------------
    def run(self, planner: Planner, fact=None) -> dict:
        snap = self.from_fact(fact)
        races = 0
        while True:
            if snap is None:
                snap = self.read()
            try:
                prepared = self.guards(planner, snap)
            except HostError:
                if snap.fresh:
                    raise
                snap = None         # found on a fact: say it only from the host's own state
                continue
            if not prepared.steps:
                if not snap.fresh:
                    snap = None     # a fact says there is nothing to do: one read confirms it
                    continue
                # Said, so that a run after a lost connection tells whether the earlier write had landed.
                prepared.result["notes"].append("the host already has the requested state: nothing was sent")
                prepared.result.update(commands=[], after=state_report(snap.state))
                return self.finish(prepared.result)
            if self.check_mode:
                prepared.result["changed"] = True
                prepared.result["after"] = prepared.result["planned"]     # check mode: the prediction
                return self.finish(prepared.result)
            transcript = self.transact(prepared, snap)
            found = guard.stale(transcript)
            if found is None:
                return self.finish(self.verify(prepared, snap, transcript))
            changed = ", ".join(guard.differing(snap.transcript.fingerprint, found)) or "?"
            fresh = self.snapshot(transcript)
            if not snap.fresh:
                self.notes.append("the host was no longer as its state fact said (%s changed): planned again from "
                                  "the state the write command read instead, and nothing was written on the old plan"
                                  % changed)
            elif races == 0:
                races = 1
                self.notes.append("another writer changed the host between this task's read and its write (%s): "
                                  "nothing was written then; planned again from the new state" % changed)
            else:
                result = prepared.result
                result.update(changed=False, before=state_report(snap.state), after=state_report(fresh.state))
                raise HostError("another writer changed the host's IPsec state between this task's read and its write "
                                "twice in a row (%s), so nothing was written by this task; `after` is the state now: "
                                "run the task again" % changed, **result)
            snap = fresh

    def finish(self, result: dict) -> dict:
        result["round_trips"] = self.trips
        result["notes"] = self.notes + result["notes"]
        fact = self.fact()
        if fact is not None:
            result["ansible_facts"] = {guard.FACT: fact}
        return _finish(result)


def run(execute: Execute, planner: Planner, check_mode: bool, dialect: str = "",
        store: str = "local", domain: str = "", dynamic: bool = False, local_address: str = "",
        guard_ports: Sequence[int] = MANAGEMENT_PORTS, allow_lockout: bool = False, controller: str = "",
        confirm=None, when_domain_policy: str = "warn", gpo: str = "", fact=None, host_name: str = "",
        sides: Sequence = ()) -> dict:
    """Read, plan and (unless check mode) write and verify. Returns the task result.

    dynamic: the task manages dynamic filters (they must be read strictly, PolicyAgent must run,
             and results carry the volatility warning).
    guard_ports: TCP ports of the connection; a plan that newly blocks one is refused unless
             allow_lockout (then it is a warning); `controller` is the controller's address as the
             host sees it ('' when unknown: only filters from any address count).
    confirm: a confirm.Confirm (commit-confirmed): its undo task goes first into the write trip.
    when_domain_policy: fail | warn | ignore, when a GPO-assigned domain policy overrides the
             local store this task writes (KB 813878).
    store, domain, gpo: store='domain' plans against and writes the domain's store (read with
             ldifde, directory.py), `domain` naming it ('' for the host's own) and `gpo` the Group
             Policy object whose assignment `assigned` means.
    fact, host_name: the state fact an earlier task left for inventory host `host_name`
             (guard.usable_fact); a plan made from it is written only if the host still matches it.
    sides:   changes beside the policy that the same write command makes (Flow).
    Every result, failed or not, holds `ansible_facts.winsec_ipsec_state` when the host was read.
    """
    if dialect == "ipsecpol":
        # ipsecpol.exe is the Windows 2000 Resource Kit's tool, and Windows 2000 has no WinRM.
        raise ValidationError("dialect", dialect, "netsh or ipseccmd for a host reached over a connection",
                              "ipsecpol serves Windows 2000, which has no WinRM: get its commands with "
                              "winsec.ipsec.ipsec_policy state=rendered dialect=ipsecpol")
    flow = Flow(execute, check_mode, dialect=dialect, store=store, domain=domain, gpo=gpo, dynamic=dynamic,
                local_address=local_address, guard_ports=guard_ports, allow_lockout=allow_lockout,
                controller=controller, confirm=confirm, when_domain_policy=when_domain_policy, host_name=host_name,
                sides=sides)
    try:
        return flow.run(planner, fact)
    except HostError as error:
        error.result.setdefault("changed", False)
        error.result["round_trips"] = flow.trips
        if flow.notes:
            error.result["notes"] = flow.notes + list(error.result.get("notes") or ())
        fact = flow.fact()
        if fact is not None:
            error.result["ansible_facts"] = {guard.FACT: fact}
        raise


def _check_directory(transcript, gpo, plan, result):
    """Domain-store plans: the GPO named must exist, and no policy a GPO assigns may be deleted
    (members would keep running their cached copy: docs/windows-tools.md, "Group Policy refresh and
    the cache")."""
    view = directory_view(transcript, gpo)
    if gpo and not view.has_gpo(gpo):
        raise HostError("gpo %r: the domain has no Group Policy object of that name; it has: %s"
                        % (gpo, ", ".join(view.gpo_names) or "none"), **result)
    unassigned = {name_key(c.obj.name) for c in plan.changes if c.op == "unassign"}
    for change in plan.changes:
        if change.op != "delete_policy":
            continue
        holders = [g for g in view.gpos_assigning(change.obj.name)
                   if not (gpo and name_key(g) == name_key(gpo) and name_key(change.obj.name) in unassigned)]
        if holders:
            raise HostError("policy %r is assigned through the GPO(s) %s; deleting it would leave members "
                            "running their cached copy: unassign it first (assigned: false with "
                            "gpo: %s)" % (change.obj.name, ", ".join(holders), holders[0]), **result)
    result["notes"].append("domain store: members apply a new assignment at their next Group Policy refresh "
                           "(gpupdate /target:computer), and changes inside an assigned policy at its polling "
                           "interval (KB 813878)")
    return view


def _diff(before, after, local_address, secrets, **domain):
    return {k: redact(v, secrets) for k, v in netdiag_diff(before, after, local_address, **domain).items()}


def _side_diff(diff: Dict[str, str], sides) -> Dict[str, str]:
    """The diff with each side change that has steps (its own text is masked already)."""
    changing = [side for side in sides if side.steps]
    if not changing:
        return diff
    return {"before": diff.get("before", "") + "".join(side.diff[0] for side in changing),
            "after": diff.get("after", "") + "".join(side.diff[1] for side in changing)}


def _finish(result: dict) -> dict:
    result["warnings"] = list(dict.fromkeys(result["warnings"]))
    if not result["notes"]:
        del result["notes"]
    return result


def state_from_saved(text: str) -> HostState:
    """Saved output -> HostState: `reg query /s` text, a regedit .reg export, or netdiag text."""
    exported = ("windows registry editor", "regedit4")
    if isinstance(text, bytes) or text.lstrip("\ufeff \r\n").lower().startswith(exported):
        return registry.decode_store(registry.parse_reg_file(text))
    if "IP Security test" in text or "IPSec policy" in text.replace("IPsec", "IPSec"):
        return netdiag.parse(text).host_state()
    if "HKEY_LOCAL_MACHINE" in text or "HKLM\\" in text:
        return decode_registry(text)
    raise HostError("running_config: not recognised; expected the text of `reg query \"%s\" /s`, a "
                    "regedit .reg export of that key, or `netdiag /test:ipsec /debug` output"
                    % remote.IPSEC_KEY)


__all__ = ["HostError", "UnreadableListing", "DYNAMIC_WARNING", "decode_registry", "state_from_transcript",
           "state_and_unread", "read_dynamic", "netdiag_view", "read", "read_state", "Flow",
           "Snapshot", "SideChange", "holds_secret",
           "canonical", "managed_view", "same_store", "secrets_of", "redact", "state_report", "netdiag_diff",
           "render_steps", "render_commands", "MANAGEMENT_PORTS", "connection_blocks", "shown", "run", "state_from_saved"]
