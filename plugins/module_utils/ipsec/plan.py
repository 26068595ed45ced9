# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""Desired state vs actual state -> a minimal, ordered list of changes, each with its inverse.

Pure functions over the model; standard library only (ships to controllers).

Conventions every module shares:
- a rule's filter list is named after the rule; its filter action after what it does ("Block",
  "Permit"), so all block rules share one "Block" action (`rule_objects`);
- filters are compared by `Filter.key()`: a filter the host already has is never added again
  (netsh itself would store a duplicate: docs/windows-tools.md "netsh behaviour");
- a filter list or filter action that another rule still uses is never deleted nor changed under
  that rule's feet (a change to it is a `ValidationError`);
- creation comes before reference (filter list and action, then rule, then assign) and deletion
  after unreferencing (unassign, then rule, then its list and action);
- default response rules belong to their policy's `activatedefaultrule` setting: the planner
  neither adds nor deletes them.

Change semantics (what `apply` does, and what a dialect must render):
  add_policy        creates `obj` (a Policy) with the rules it carries (the planner's own are empty;
                    an inverse of delete_policy carries the rules the policy still had)
  set_policy        sets name, description and polling interval of policy `old` to `obj`'s; rules stay
  delete_policy     deletes the policy and its rules, never filter lists or actions ([E] docs/windows-tools.md)
  assign            makes `obj` the assigned policy; `old` names the one this displaces ('' if none):
                    only one local policy is assigned at a time (KB 813878 on `-x`)
  unassign          leaves no policy assigned
  add_filterlist    creates `obj` with the filters it carries
  set_filterlist    sets the description (filters change one by one, by add/delete_filter)
  delete_filterlist deletes it; refused while a rule uses it
  add_filter        appends `obj` to filter list `parent`, creating the list if missing ([H] add filter)
  delete_filter     deletes the filters of `parent` whose key equals `obj.key()` (netsh matches
                    filters by their parameters, [E] docs/windows-tools.md)
  add/set/delete_filteraction   like the filter list ops; set replaces every setting
  add_rule          appends `obj` to policy `parent`; its filter list and action must exist
  set_rule          replaces rule `old` of policy `parent` by `obj`
  delete_rule       deletes rule `obj` from policy `parent`
  add/delete_dynamic            a volatile rule; identity is its filter and connection type, as for
                                `netsh ipsec dynamic set rule` ([H] "other fields are identifiers");
                                an added rule names the main-mode policy it gets (`mmpolicy`)
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Iterable, List, Optional, Sequence, Set, Tuple, Union

from .dialects import check_for_dialect
from .model import (
    ACTIONS, Change, DynamicRule, Filter, FilterAction, FilterList, HostState, IPsecError, Policy,
    Rule, ValidationError, filter_text, name_key,
)

RULE_STATES = ("present", "absent")
POLICY_STATES = ("merged", "replaced", "overridden", "deleted")
DYNAMIC_STATES = ("present", "absent", "cleared")
DYNAMIC_NOTE = ("dynamic rules live only in the PolicyAgent's memory: they are lost when the service "
                "restarts or the host reboots (KB 813878)")
# The main-mode policy winsec gives the dynamic rules it adds with netsh (`add rule` requires one, [H]);
# rules with another main-mode policy were made by another tool or by hand.
NETSH_MMPOLICY = "winsec-ipsec"


@dataclass(frozen=True)
class Plan:
    """What to do (`changes`, in order), the state it leads to, and what the user should know."""
    changes: Tuple[Change, ...]
    after: HostState
    warnings: Tuple[str, ...] = ()
    notes: Tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.changes)


# ---------------------------------------------------------------------------------------------
# apply: the state after a list of changes

def apply(state: HostState, changes: Iterable[Change]) -> HostState:
    """The state after `changes`. Raises IPsecError for a change that cannot apply (wrong order)."""
    for change in changes:
        state = _APPLY[change.op](state, change)
    return state


def undo(changes: Sequence[Change]) -> Tuple[Change, ...]:
    """The changes that undo `changes` (all of them, or the part that succeeded): inverses, reversed."""
    missing = [c for c in changes if c.inverse is None]
    if missing:
        raise IPsecError("change %s %r carries no inverse" % (missing[0].op, _label(missing[0].obj)))
    return tuple(c.inverse for c in reversed(changes))


def with_inverse(state: HostState, op: str, obj, parent: str = "", old=None) -> Change:
    """A Change carrying the Change that undoes it, given `state`, the state just before it.

    Deletions and settings are undone with the objects as `state` holds them (GUIDs, descriptions,
    the actions of a dynamic rule), whatever part of them `obj` and `old` spell out.
    """
    if op.startswith("set_") and old is None:
        old = _current(state, op, obj, parent)
    if op.startswith("delete_"):
        current = _current(state, op, obj, parent)
        inverse = Change(op.replace("delete_", "add_"), current, parent)
    elif op.startswith("add_"):
        inverse = Change(op.replace("add_", "delete_"), obj, parent)
    elif op.startswith("set_"):
        inverse = Change(op, old, parent, old=obj)
    elif op == "assign":
        previous = state.policy(state.assigned) if state.assigned else None
        inverse = Change("assign", previous, old=obj.name) if previous else Change("unassign", obj)
    else:   # unassign
        previous = state.policy(state.assigned) if state.assigned else None
        inverse = Change("assign", previous, old="") if previous else Change("unassign", obj)
    return Change(op, obj, parent, old, inverse=inverse)


def _current(state: HostState, op: str, obj, parent: str):
    """The object `op` acts on, as `state` holds it."""
    kind = op.split("_", 1)[1]
    if kind == "policy":
        return _must(state.policy(obj.name), "policy", obj.name)
    if kind == "filterlist":
        return _must(state.filterlist(obj.name), "filter list", obj.name)
    if kind == "filteraction":
        return _must(state.filteraction(obj.name), "filter action", obj.name)
    if kind == "rule":
        pol = _must(state.policy(parent), "policy", parent)
        return _must(_find_rule(pol, obj), "rule", obj.name)
    if kind == "filter":
        flist = _must(state.filterlist(parent), "filter list", parent)
        return _must(next((f for f in flist.filters if f.key() == obj.key()), None), "filter", filter_text(obj))
    key = dynamic_key(obj)
    return _must(next((d for d in state.dynamic if dynamic_key(d) == key), None), "dynamic rule",
                 filter_text(obj.filter))


def _must(item, kind, name):
    if item is None:
        raise IPsecError("%s %r does not exist" % (kind, name))
    return item


def _label(obj) -> str:
    if isinstance(obj, Filter):
        return filter_text(obj)
    if isinstance(obj, DynamicRule):
        return filter_text(obj.filter)
    return getattr(obj, "name", str(obj))


def _same_name(a: str, b: str) -> bool:
    return name_key(a) == name_key(b)


def _without(items, pred):
    return tuple(i for i in items if not pred(i))


def _apply_add_policy(state, c):
    if state.policy(c.obj.name):
        raise IPsecError("add_policy: policy %r already exists" % c.obj.name)
    return replace(state, policies=state.policies + (c.obj,))


def _apply_set_policy(state, c):
    cur = _must(state.policy((c.old or c.obj).name), "policy", (c.old or c.obj).name)
    new = replace(cur, name=c.obj.name, description=c.obj.description,
                  polling_interval=c.obj.polling_interval)
    assigned = c.obj.name if _same_name(state.assigned, cur.name) and state.assigned else state.assigned
    return replace(state, assigned=assigned,
                   policies=tuple(new if p is cur else p for p in state.policies))


def _apply_delete_policy(state, c):
    cur = _must(state.policy(c.obj.name), "policy", c.obj.name)
    if state.assigned and _same_name(state.assigned, cur.name):
        raise IPsecError("delete_policy: policy %r is assigned; unassign it first" % cur.name)
    return replace(state, policies=tuple(p for p in state.policies if p is not cur))


def _apply_assign(state, c):
    _must(state.policy(c.obj.name), "policy", c.obj.name)
    return replace(state, assigned=state.policy(c.obj.name).name)


def _apply_unassign(state, c):
    return replace(state, assigned="")


def _apply_add_filterlist(state, c):
    if state.filterlist(c.obj.name):
        raise IPsecError("add_filterlist: filter list %r already exists" % c.obj.name)
    return replace(state, filterlists=state.filterlists + (c.obj,))


def _apply_set_filterlist(state, c):
    cur = _must(state.filterlist((c.old or c.obj).name), "filter list", (c.old or c.obj).name)
    new = replace(cur, description=c.obj.description)
    return replace(state, filterlists=tuple(new if f is cur else f for f in state.filterlists))


def _apply_delete_filterlist(state, c):
    cur = _must(state.filterlist(c.obj.name), "filter list", c.obj.name)
    users = state.users_of(filterlist=cur.name)
    if users:
        raise IPsecError("delete_filterlist: filter list %r is used by rule %r of policy %r"
                         % (cur.name, users[0][1], users[0][0]))
    return replace(state, filterlists=tuple(f for f in state.filterlists if f is not cur))


def _apply_add_filter(state, c):
    cur = state.filterlist(c.parent)
    if cur is None:     # [H] add filter: "If the filter list does not exist it will be created"
        return replace(state, filterlists=state.filterlists + (FilterList(c.parent, (c.obj,)),))
    new = replace(cur, filters=cur.filters + (c.obj,))
    return replace(state, filterlists=tuple(new if f is cur else f for f in state.filterlists))


def _apply_delete_filter(state, c):
    cur = _must(state.filterlist(c.parent), "filter list", c.parent)
    key = c.obj.key()
    if not any(f.key() == key for f in cur.filters):
        raise IPsecError("delete_filter: filter list %r has no filter %s" % (cur.name, filter_text(c.obj)))
    new = replace(cur, filters=_without(cur.filters, lambda f: f.key() == key))
    return replace(state, filterlists=tuple(new if f is cur else f for f in state.filterlists))


def _apply_add_filteraction(state, c):
    if state.filteraction(c.obj.name):
        raise IPsecError("add_filteraction: filter action %r already exists" % c.obj.name)
    return replace(state, filteractions=state.filteractions + (c.obj,))


def _apply_set_filteraction(state, c):
    cur = _must(state.filteraction((c.old or c.obj).name), "filter action", (c.old or c.obj).name)
    new = replace(c.obj, guid=cur.guid)
    return replace(state, filteractions=tuple(new if a is cur else a for a in state.filteractions))


def _apply_delete_filteraction(state, c):
    cur = _must(state.filteraction(c.obj.name), "filter action", c.obj.name)
    users = state.users_of(filteraction=cur.name)
    if users:
        raise IPsecError("delete_filteraction: filter action %r is used by rule %r of policy %r"
                         % (cur.name, users[0][1], users[0][0]))
    return replace(state, filteractions=tuple(a for a in state.filteractions if a is not cur))


def _with_policy(state, name, edit):
    pol = _must(state.policy(name), "policy", name)
    return replace(state, policies=tuple(edit(p) if p is pol else p for p in state.policies))


def _find_rule(pol: Policy, rule: Rule) -> Optional[Rule]:
    """The policy's rule equal to `rule`, else the one of the same (non-empty) name."""
    for r in pol.rules:
        if r == rule:
            return r
    return pol.rule(rule.name) if rule.name else None


def _apply_add_rule(state, c):
    pol = _must(state.policy(c.parent), "policy", c.parent)
    if c.obj.name and pol.rule(c.obj.name):
        raise IPsecError("add_rule: policy %r already has rule %r" % (pol.name, c.obj.name))
    if not c.obj.default_response:
        _must(state.filterlist(c.obj.filterlist), "filter list", c.obj.filterlist)
        _must(state.filteraction(c.obj.filteraction), "filter action", c.obj.filteraction)
    return _with_policy(state, c.parent, lambda p: replace(p, rules=p.rules + (c.obj,)))


def _apply_set_rule(state, c):
    pol = _must(state.policy(c.parent), "policy", c.parent)
    cur = _must(_find_rule(pol, c.old or c.obj), "rule", (c.old or c.obj).name)
    if not c.obj.default_response:
        _must(state.filterlist(c.obj.filterlist), "filter list", c.obj.filterlist)
        _must(state.filteraction(c.obj.filteraction), "filter action", c.obj.filteraction)
    new = replace(c.obj, guid=c.obj.guid or cur.guid)
    return _with_policy(state, c.parent, lambda p: replace(p, rules=tuple(new if r is cur else r for r in p.rules)))


def _apply_delete_rule(state, c):
    pol = _must(state.policy(c.parent), "policy", c.parent)
    cur = _must(_find_rule(pol, c.obj), "rule", c.obj.name)
    return _with_policy(state, c.parent, lambda p: replace(p, rules=tuple(r for r in p.rules if r is not cur)))


def dynamic_key(rule: DynamicRule) -> tuple:
    """What identifies a dynamic rule: its filter and connection type ([H] dynamic set rule)."""
    return (rule.filter.key(), rule.conntype)


def _apply_add_dynamic(state, c):
    if any(dynamic_key(d) == dynamic_key(c.obj) for d in state.dynamic):
        raise IPsecError("add_dynamic: a dynamic rule for %s already exists" % filter_text(c.obj.filter))
    return _with_mmpolicies(replace(state, dynamic=state.dynamic + (c.obj,)), c.obj.mmpolicy)


def _apply_delete_dynamic(state, c):
    key = dynamic_key(c.obj)
    if not any(dynamic_key(d) == key for d in state.dynamic):
        raise IPsecError("delete_dynamic: no dynamic rule for %s" % filter_text(c.obj.filter))
    return _with_mmpolicies(replace(state, dynamic=_without(state.dynamic, lambda d: dynamic_key(d) == key)))


def _with_mmpolicies(state: HostState, added: str = "") -> HostState:
    """The main-mode policies after a dynamic change, as the netsh dialect leaves them (so the planned
    state equals the one read back): a rule's own exists, and winsec's is deleted once no rule uses
    it, an orphan included; other tools' are never deleted (dialects/netsh.py)."""
    names = {name_key(n): n for n in state.mmpolicies}
    if added:
        names.setdefault(name_key(added), added)
    if not any(name_key(d.mmpolicy) == name_key(NETSH_MMPOLICY) for d in state.dynamic):
        names.pop(name_key(NETSH_MMPOLICY), None)
    return replace(state, mmpolicies=tuple(sorted(names.values(), key=name_key)))


_APPLY = {
    "add_policy": _apply_add_policy, "set_policy": _apply_set_policy, "delete_policy": _apply_delete_policy,
    "assign": _apply_assign, "unassign": _apply_unassign,
    "add_filterlist": _apply_add_filterlist, "set_filterlist": _apply_set_filterlist,
    "delete_filterlist": _apply_delete_filterlist,
    "add_filter": _apply_add_filter, "delete_filter": _apply_delete_filter,
    "add_filteraction": _apply_add_filteraction, "set_filteraction": _apply_set_filteraction,
    "delete_filteraction": _apply_delete_filteraction,
    "add_rule": _apply_add_rule, "set_rule": _apply_set_rule, "delete_rule": _apply_delete_rule,
    "add_dynamic": _apply_add_dynamic, "delete_dynamic": _apply_delete_dynamic,
}


# ---------------------------------------------------------------------------------------------
# Comparing states

def state_key(state: HostState) -> tuple:
    """A comparable key of `state`: what matters, independent of order, name case and GUIDs (equal keys,
    same store). host.canonical differs: it returns the HostState itself, its collections in a fixed order."""
    policies = sorted((name_key(p.name), p.description, p.polling_interval,
                       tuple(sorted((_rule_shape(r) for r in p.rules), key=repr))) for p in state.policies)
    lists = sorted((name_key(fl.name), fl.description, tuple(sorted((f.key() for f in fl.filters), key=repr)))
                   for fl in state.filterlists)
    actions = sorted((name_key(a.name),) + _action_settings(a) + (a.description,) for a in state.filteractions)
    dynamic = tuple(sorted(((dynamic_key(d), d.inbound, d.outbound) for d in state.dynamic), key=repr))
    return (tuple(policies), tuple(lists), tuple(actions), name_key(state.assigned), state.domain, dynamic,
            state.policyagent, state.no_default_exempt, state.os)


def converged(a: HostState, b: HostState) -> bool:
    """True when the two states are the same store (what verification after a write checks)."""
    return state_key(a) == state_key(b)


def _action_settings(a: FilterAction) -> tuple:
    return (a.action, a.inpass, a.soft, a.qmpfs, a.offers)


def _rule_shape(r: Rule) -> tuple:
    return (name_key(r.name), name_key(r.filterlist), name_key(r.filteraction), r.description, r.active,
            r.conntype, r.auth, r.tunnel, r.default_response)


# ---------------------------------------------------------------------------------------------
# Desired-state builders

def rule_objects(rule_name: str, filters: Iterable[Filter], action: str = "block", *,
                 filteraction_name: str = "", description: str = "", offers=(), inpass: bool = False,
                 soft: bool = False) -> Tuple[Rule, FilterList, FilterAction]:
    """The rule, its filter list and its filter action, named by the collection's conventions."""
    if not rule_name:
        raise ValidationError("name", rule_name, "a non-empty rule name")
    if action not in ACTIONS:
        raise ValidationError("action", action, "one of %s" % ", ".join(ACTIONS))
    if action == "negotiate" and not filteraction_name:
        raise ValidationError("filteraction", filteraction_name, "a filter action name",
                              "a negotiate action carries its own security methods, so it needs a name")
    if action != "negotiate":
        # [H] add filteraction: "Quick mode security methods are ignored if the action is not 'negotiate'"
        for option, value in (("offers", tuple(offers)), ("inpass", inpass), ("soft", soft)):
            if value:
                raise ValidationError(option, value, "no value unless action is negotiate",
                                      "it only affects negotiation")
    unique: Dict[tuple, Filter] = {}
    for f in filters:
        unique.setdefault(f.key(), f)
    if not unique:
        # netsh add rule needs a filter list with at least one filter ([E] docs/windows-tools.md "netsh behaviour")
        raise ValidationError("filters", (), "at least one filter")
    flist = FilterList(rule_name, tuple(unique.values()))
    faction = FilterAction(filteraction_name or action.capitalize(), action, inpass=inpass, soft=soft,
                           offers=tuple(offers))
    rule = Rule(rule_name, filterlist=flist.name, filteraction=faction.name, description=description)
    return rule, flist, faction


def policy_objects(policy_name: str, rules: Iterable[Tuple[Rule, FilterList, FilterAction]], *,
                   description: str = "", polling_interval: Optional[int] = None
                   ) -> Tuple[Policy, Tuple[object, ...]]:
    """A Policy holding the rules of `rule_objects` triples, and the objects `plan_policy` takes."""
    rules = tuple(rules)
    kw = {} if polling_interval is None else {"polling_interval": polling_interval}
    policy = Policy(policy_name, description=description, rules=tuple(r for r, _, _ in rules), **kw)
    return policy, tuple(o for _, fl, fa in rules for o in (fl, fa))


# ---------------------------------------------------------------------------------------------
# The builder: emits changes while keeping the state they lead to

class _Builder:
    def __init__(self, actual: HostState):
        self.state = actual
        self.changes: List[Change] = []
        self.warnings: List[str] = []
        self.notes: List[str] = []
        self.unreferenced_lists: Set[str] = set()
        self.unreferenced_actions: Set[str] = set()
        # ("filterlist" | "filteraction", name key) -> the user's option that names it, for refusals
        self.options: Dict[Tuple[str, str], str] = {}

    def name_options(self, rules: Sequence[Rule], prefix: str = "rules[%d].") -> None:
        """Refusals about a rule's filter list or action name the user's option: the list is named
        after the rule (`rules[0].name`), the action by `filteraction` or the action's default name."""
        for index, rule in enumerate(rules):
            where = prefix % index if "%d" in prefix else prefix
            self.options.setdefault(("filterlist", name_key(rule.filterlist)), where + "name")
            self.options.setdefault(("filteraction", name_key(rule.filteraction)), where + "filteraction")

    def emit(self, op, obj, parent="", old=None):
        change = with_inverse(self.state, op, obj, parent, old)
        self.state = apply(self.state, (change,))
        self.changes.append(change)

    def plan(self) -> Plan:
        return Plan(tuple(self.changes), self.state, tuple(dict.fromkeys(self.warnings)),
                    tuple(dict.fromkeys(self.notes)))

    # -- objects ---------------------------------------------------------------------------

    def ensure_policy(self, desired: Policy, settings: bool = True):
        cur = self.state.policy(desired.name)
        if cur is None:
            self.emit("add_policy", replace(desired, rules=()))
        elif settings and (cur.description, cur.polling_interval) != (desired.description,
                                                                         desired.polling_interval):
            self.emit("set_policy", replace(cur, description=desired.description,
                                            polling_interval=desired.polling_interval, rules=()),
                      old=replace(cur, rules=()))

    def ensure_filterlist(self, desired: FilterList, managed: Set[tuple]):
        cur = self.state.filterlist(desired.name)
        wanted = {}
        for f in desired.filters:
            wanted.setdefault(f.key(), f)
        if cur is None:
            self.emit("add_filterlist", replace(desired, filters=tuple(wanted.values())))
            return
        have = {f.key() for f in cur.filters}
        if have != set(wanted):
            _refuse_shared(self.options.get(("filterlist", name_key(cur.name)), "filterlist"), cur.name,
                           self.state.users_of(filterlist=cur.name), managed, "its filters differ from the ones given",
                           "filter list")
            for key, f in wanted.items():
                if key not in have:
                    self.emit("add_filter", f, cur.name)
            extra = {f.key(): f for f in cur.filters if f.key() not in wanted}
            for f in extra.values():     # one delete_filter removes every duplicate of it
                self.emit("delete_filter", f, cur.name)
        if desired.description and desired.description != cur.description:
            self.emit("set_filterlist", replace(cur, description=desired.description, filters=()),
                      old=replace(cur, filters=()))

    def ensure_filteraction(self, desired: FilterAction, managed: Set[tuple]):
        cur = self.state.filteraction(desired.name)
        if cur is None:
            self.emit("add_filteraction", desired)
            return
        new = replace(desired, name=cur.name, description=desired.description or cur.description)
        if _action_settings(new) + (new.description,) != _action_settings(cur) + (cur.description,):
            if _action_settings(new) != _action_settings(cur):
                _refuse_shared(self.options.get(("filteraction", name_key(cur.name)), "filteraction"), cur.name,
                               self.state.users_of(filteraction=cur.name), managed,
                               "it exists with other settings (%s)" % _action_text(cur), "filter action")
            self.emit("set_filteraction", new, old=cur)

    def ensure_rule(self, policy_name: str, desired: Rule):
        pol = self.state.policy(policy_name)
        cur = pol.rule(desired.name)
        if cur is None:
            self.emit("add_rule", desired, pol.name)
        elif _rule_shape(cur) != _rule_shape(desired):
            self._forget_refs(cur, desired)
            self.emit("set_rule", replace(desired, name=cur.name, guid=cur.guid), pol.name, old=cur)

    def delete_rule(self, policy_name: str, rule: Rule):
        self._forget_refs(rule, None)
        self.emit("delete_rule", rule, self.state.policy(policy_name).name)

    def _forget_refs(self, old: Rule, new: Optional[Rule]):
        """Remember lists/actions a rule stops using: deleted at the end if nobody else uses them."""
        if old.filterlist and (new is None or not _same_name(old.filterlist, new.filterlist)):
            self.unreferenced_lists.add(name_key(old.filterlist))
        if old.filteraction and (new is None or not _same_name(old.filteraction, new.filteraction)):
            self.unreferenced_actions.add(name_key(old.filteraction))

    def delete_policy(self, policy: Policy):
        pol = self.state.policy(policy.name)
        for rule in pol.rules:
            if not rule.default_response:
                self.delete_rule(pol.name, rule)
        self.emit("delete_policy", self.state.policy(pol.name))

    def collect_unused(self, keep_lists=(), keep_actions=()):
        """Delete the filter lists and actions this plan stopped using and nobody else uses."""
        keep_l = {name_key(n) for n in keep_lists}
        keep_a = {name_key(n) for n in keep_actions}
        for fl in self.state.filterlists:
            key = name_key(fl.name)
            if key in self.unreferenced_lists and key not in keep_l and not self.state.users_of(filterlist=fl.name):
                self.emit("delete_filterlist", fl)
        for fa in self.state.filteractions:
            key = name_key(fa.name)
            if key in self.unreferenced_actions and key not in keep_a and \
                    not self.state.users_of(filteraction=fa.name):
                self.emit("delete_filteraction", fa)

    # -- assignment ------------------------------------------------------------------------

    def unassign_if(self, names: Iterable[str], why: str):
        keys = {name_key(n) for n in names}
        if self.state.assigned and name_key(self.state.assigned) in keys:
            name = self.state.assigned
            self.warnings.append("policy %r is assigned; it is unassigned %s, which leaves the host with "
                                 "no assigned local policy" % (name, why))
            self.emit("unassign", self.state.policy(name))

    def assign(self, name: str):
        if self.state.assigned and _same_name(self.state.assigned, name):
            return
        if self.state.assigned:
            self.warnings.append("assigning policy %r unassigns policy %r: only one local policy can be "
                                 "assigned at a time (KB 813878)" % (name, self.state.assigned))
        self.emit("assign", self.state.policy(name), old=self.state.assigned)

    def unassign(self, name: str):
        if self.state.assigned and _same_name(self.state.assigned, name):
            self.emit("unassign", self.state.policy(name))

    def domain_warning(self):
        if self.state.domain is not None and self.changes:
            self.warnings.append("domain policy %r is assigned by Group Policy and overrides the local store: "
                                 "local changes take effect only once it is unassigned (KB 813878)"
                                 % self.state.domain.name)


def _action_text(a: FilterAction) -> str:
    text = "action=%s" % a.action
    for flag in ("inpass", "soft", "qmpfs"):
        if getattr(a, flag):
            text += " %s=yes" % flag
    if a.offers:
        text += " %d security methods" % len(a.offers)
    return text


def _refuse_shared(option: str, name: str, users, managed: Set[tuple], why: str, kind: str):
    """`option` is the user's (Builder.options), or the object's kind when the planner's caller named none."""
    others = [(p, r) for p, r in users if (name_key(p), name_key(r)) not in managed]
    if others:
        policy, rule = others[0]
        if kind == "filter list" and option.endswith("name"):
            accepted = "another rule name (a rule's filter list is named after the rule)"
        else:
            accepted = "another %s name, or the settings the host already has" % kind
        raise ValidationError(option, name, accepted, "the %s %r on the host: %s; it is also used by rule %r of "
                              "policy %r, which must not change with it" % (kind, name, why, rule, policy))


def _rule_id(policy: str, rule: str) -> tuple:
    return (name_key(policy), name_key(rule))


# ---------------------------------------------------------------------------------------------
# Rules and policies

def plan_rule(actual: HostState, policy: Union[str, Policy], rule: Rule,
              filterlist: Optional[FilterList] = None, filteraction: Optional[FilterAction] = None, *,
              state: str = "present", create_policy: bool = True) -> Plan:
    """One rule of a policy: present with exactly these filters and this action, or absent."""
    if state not in RULE_STATES:
        raise ValidationError("state", state, "one of %s" % ", ".join(RULE_STATES))
    desired_policy = policy if isinstance(policy, Policy) else Policy(policy)
    _check_dialect(actual, "policy", "policy", desired_policy.name)
    b = _Builder(actual)
    cur = actual.policy(desired_policy.name)
    if state == "absent":
        found = cur.rule(rule.name) if cur else None
        if found is not None:
            b.delete_rule(cur.name, found)
            b.collect_unused()
        b.domain_warning()
        return b.plan()
    if cur is None and not create_policy:
        raise ValidationError("policy", desired_policy.name, "an existing policy (or create_policy=true)",
                              "the host has no such policy")
    if filterlist is None or filteraction is None:
        raise ValidationError("filters", None, "a filter list and a filter action for state=present")
    if not (_same_name(rule.filterlist, filterlist.name) and _same_name(rule.filteraction, filteraction.name)):
        raise ValidationError("rule", rule.name, "a rule referring to the given filter list and filter action")
    managed = {_rule_id(desired_policy.name, rule.name)}
    b.name_options([rule], prefix="")
    b.ensure_policy(desired_policy, settings=isinstance(policy, Policy))
    b.ensure_filterlist(filterlist, managed)
    b.ensure_filteraction(filteraction, managed)
    b.ensure_rule(desired_policy.name, rule)
    b.collect_unused(keep_lists=(filterlist.name,), keep_actions=(filteraction.name,))
    b.domain_warning()
    return b.plan()


def plan_policy(actual: HostState, desired: Union[Policy, Sequence[Policy]], *,
                rules_objects: Iterable[Union[FilterList, FilterAction]] = (),
                state: str = "merged", assign: Optional[bool] = None) -> Plan:
    """Whole policies, in the sense of ansible.netcommon resource modules.

    merged      the given rules are added or updated; the policy's other rules stay
    replaced    the given policy's rules become exactly the given ones
    overridden  the given policies become the only ones on the host
    deleted     the given policies go, with their rules and the filter lists/actions nobody else uses
    Policy settings (description, polling interval) are taken as given: fill options the user left
    out from `actual` first. `assign`: True assigns (the one policy given), False unassigns, None
    leaves the assignment alone.
    """
    if state not in POLICY_STATES:
        raise ValidationError("state", state, "one of %s" % ", ".join(POLICY_STATES))
    policies = (desired,) if isinstance(desired, Policy) else tuple(desired)
    _check_unique("policy", [p.name for p in policies])
    if assign and (state == "deleted" or len(policies) != 1):
        raise ValidationError("assign", assign, "false or unset unless exactly one policy is kept",
                              "state=%s with %d policies" % (state, len(policies)))
    lists, actions = _objects_by_name(rules_objects)
    b = _Builder(actual)
    names = [p.name for p in policies]

    if state == "deleted":
        doomed = [actual.policy(n) for n in names if actual.policy(n)]
        b.unassign_if([p.name for p in doomed], "before it is deleted")
        for pol in doomed:
            b.delete_policy(pol)
        b.collect_unused()
        b.domain_warning()
        return b.plan()

    for pol in policies:
        _check_dialect(actual, "name", "policy", pol.name)
        if state != "deleted":
            _check_dialect(actual, "description", "description", pol.description)
    if assign and actual.policy(policies[0].name) is None and not policies[0].rules:
        # A mistyped name must not lift the assigned policy: creating it empty and assigning it would
        # unassign the real one (only one local policy is assigned at a time, KB 813878).
        existing = sorted((p.name for p in actual.policies), key=name_key)
        raise ValidationError("name", policies[0].name, "the name of an existing policy (the host has %s), "
                              "or rules to create this one with" % (", ".join(repr(n) for n in existing) or "none"),
                              "the host has no policy of that name, and assigned: true without rules would create "
                              "it empty and assign it%s" % (", unassigning %r" % actual.assigned if actual.assigned
                                                            else ""))
    for pol in policies:
        if any(not r.name for r in pol.rules):
            raise ValidationError("rules", "", "a name for every rule", "policy %r has an unnamed rule" % pol.name)
        _check_unique("rules", [r.name for r in pol.rules])
        for rule in pol.rules:
            _check_refs(actual, rule, lists, actions)

    # Rules this plan rewrites or deletes: their use of a list or action does not block changing it.
    managed = {_rule_id(p.name, r.name) for p in policies for r in p.rules}
    doomed_rules: List[Tuple[str, Rule]] = []
    if state in ("replaced", "overridden"):
        for pol in policies:
            cur = actual.policy(pol.name)
            wanted = {name_key(r.name) for r in pol.rules}
            for r in (cur.rules if cur else ()):
                if not r.default_response and name_key(r.name) not in wanted:
                    doomed_rules.append((cur.name, r))
    doomed_policies = []
    if state == "overridden":
        keep = {name_key(n) for n in names}
        doomed_policies = [p for p in actual.policies if name_key(p.name) not in keep]
    managed |= {_rule_id(p, r.name) for p, r in doomed_rules}
    managed |= {_rule_id(p.name, r.name) for p in doomed_policies for r in p.rules}

    if len(policies) == 1:
        b.name_options(policies[0].rules)
    if assign is False:
        for n in names:
            b.unassign(n)
    for pol in policies:
        b.ensure_policy(pol)
    used_lists = _ordered_refs(policies, "filterlist")
    used_actions = _ordered_refs(policies, "filteraction")
    for key in used_lists:
        if key in lists:
            b.ensure_filterlist(lists[key], managed)
    for key in used_actions:
        if key in actions:
            b.ensure_filteraction(actions[key], managed)
    for pol in policies:
        for rule in pol.rules:
            b.ensure_rule(pol.name, rule)
    if assign:
        # As soon as its rules exist, and before anything is deleted: assigning displaces the policy
        # assigned before, so the host is never left without one on the way.
        b.assign(policies[0].name)
    b.unassign_if([p.name for p in doomed_policies], "before it is deleted (state=overridden)")
    for pol_name, rule in doomed_rules:
        b.delete_rule(pol_name, rule)
    for pol in doomed_policies:
        b.delete_policy(pol)
    b.collect_unused(keep_lists=used_lists, keep_actions=used_actions)
    if assign and actual.domain is not None:
        b.notes.append("the local assignment is recorded but has no effect while domain policy %r applies"
                       % actual.domain.name)
    b.domain_warning()
    return b.plan()


def _check_dialect(actual: HostState, option: str, kind: str, value) -> None:
    """The host's dialect must carry the value (dialects.check_for_dialect); unknown without an os."""
    if actual.os is not None and actual.os.dialect:
        check_for_dialect(actual.os.dialect, option, kind, value)


def _check_unique(option: str, names: Sequence[str]):
    seen = set()
    for n in names:
        if name_key(n) in seen:
            raise ValidationError(option, n, "distinct names", "%r is given twice" % n)
        seen.add(name_key(n))


def _objects_by_name(objects) -> Tuple[Dict[str, FilterList], Dict[str, FilterAction]]:
    lists: Dict[str, FilterList] = {}
    actions: Dict[str, FilterAction] = {}
    for obj in objects:
        if isinstance(obj, FilterList):
            table, option = lists, "filterlist"
        elif isinstance(obj, FilterAction):
            table, option = actions, "filteraction"
        else:
            raise TypeError("rules_objects holds FilterList and FilterAction objects, not %r" % (obj,))
        prev = table.setdefault(name_key(obj.name), obj)
        if prev != obj and not (isinstance(obj, FilterList) and
                                {f.key() for f in prev.filters} == {f.key() for f in obj.filters}
                                and prev.description == obj.description):
            raise ValidationError(option, obj.name, "one definition per name", "given twice, differently")
    return lists, actions


def _check_refs(actual: HostState, rule: Rule, lists, actions):
    for attr, table, getter, kind in (("filterlist", lists, actual.filterlist, "filter list"),
                                      ("filteraction", actions, actual.filteraction, "filter action")):
        name = getattr(rule, attr)
        if name_key(name) not in table and getter(name) is None:
            raise ValidationError("rules", rule.name, "a %s given with the rule or present on the host" % kind,
                                  "%s %r does not exist" % (kind, name))


def _ordered_refs(policies, attr) -> Tuple[str, ...]:
    return tuple(dict.fromkeys(name_key(getattr(r, attr)) for p in policies for r in p.rules))


# ---------------------------------------------------------------------------------------------
# Dynamic rules

def plan_dynamic(actual: HostState, desired: Sequence[DynamicRule] = (), *, state: str = "present") -> Plan:
    """Volatile rules: present (added or their actions corrected), absent, or cleared (all deleted).

    Every rule added names the main-mode policy it will have on the host, so that the planned state
    equals the one read back: a rule whose actions are corrected keeps its own (whoever made it);
    a new one gets winsec's (`NETSH_MMPOLICY` when the host's dialect is netsh, else none). Desired
    rules' own `mmpolicy` is ignored. Rules of other tools' main-mode policies are deleted only when
    asked for (absent names them, cleared deletes every rule); their main-mode policies stay, and a
    note says so. The main-mode policies (`HostState.mmpolicies`) are predicted as the netsh dialect
    leaves them: winsec's exists after the plan exactly while a rule uses it (an orphan is used again
    or deleted, and a note says which).
    """
    if state not in DYNAMIC_STATES:
        raise ValidationError("state", state, "one of %s" % ", ".join(DYNAMIC_STATES))
    desired = tuple(desired)
    if state == "cleared" and desired:
        raise ValidationError("rules", desired, "no rules with state=cleared", "cleared deletes every dynamic rule")
    keys = [dynamic_key(d) for d in desired]
    if len(set(keys)) != len(keys):
        raise ValidationError("rules", desired, "distinct filters", "the same filter is given twice")
    if state == "present":
        for index, d in enumerate(desired):
            for side in ("src", "dst"):
                _check_dialect(actual, "filters[%d].%s" % (index, side), "address", getattr(d.filter, side))
    own = NETSH_MMPOLICY if actual.os is not None and actual.os.dialect == "netsh" else ""
    b = _Builder(actual)
    current = {dynamic_key(d): d for d in actual.dynamic}
    if state == "cleared":
        for d in actual.dynamic:
            b.emit("delete_dynamic", d)
    for d in desired:
        have = current.get(dynamic_key(d))
        if state == "absent":
            if have is not None:
                b.emit("delete_dynamic", have)
        elif have is None:
            b.emit("add_dynamic", replace(d, mmpolicy=own))
        elif (have.inbound, have.outbound) != (d.inbound, d.outbound):
            b.emit("delete_dynamic", have)      # no set op: netsh set rule exists, ipseccmd has none
            b.emit("add_dynamic", replace(d, mmpolicy=have.mmpolicy))
            if foreign_mmpolicy(have):
                b.notes.append("dynamic rule %s keeps main-mode policy %r, which winsec.ipsec did not make, "
                               "while its actions change" % (filter_text(have.filter), have.mmpolicy))
        elif foreign_mmpolicy(have):
            b.notes.append("dynamic rule %s already exists with main-mode policy %r, which winsec.ipsec did not "
                           "make; it is left as it is" % (filter_text(have.filter), have.mmpolicy))
    _note_foreign_deletions(b, actual)
    _note_orphaned_mmpolicy(b, actual)
    if any(c.op == "add_dynamic" for c in b.changes):
        b.notes.append(DYNAMIC_NOTE)
        if actual.policyagent == "stopped":
            b.warnings.append("the PolicyAgent service is stopped: dynamic rules need it running")
    return b.plan()


def foreign_mmpolicy(rule: DynamicRule) -> bool:
    """Whether the rule names a main-mode policy other than winsec's (so another tool made it)."""
    return bool(rule.mmpolicy) and name_key(rule.mmpolicy) != name_key(NETSH_MMPOLICY)


def _note_orphaned_mmpolicy(b: "_Builder", actual: HostState) -> None:
    """Say what becomes of winsec's main-mode policy when the host holds it with no rule using it."""
    own = name_key(NETSH_MMPOLICY)
    if (not b.changes or own not in {name_key(m) for m in actual.mmpolicies}
            or any(name_key(d.mmpolicy) == own for d in actual.dynamic)):
        return
    kept = own in {name_key(m) for m in b.state.mmpolicies}
    b.notes.append("main-mode policy %s was on the host with no rule using it (left by an earlier run or a hand "
                   "deletion); %s" % (NETSH_MMPOLICY, "the new rules use it" if kept else "it is deleted"))


def _note_foreign_deletions(b: "_Builder", actual: HostState) -> None:
    """Say which other tools' rules a plan deletes, and that their main-mode policies stay (winsec
    neither reads their settings nor could restore them on undo)."""
    deleted = [c.obj for c in b.changes if c.op == "delete_dynamic" and foreign_mmpolicy(c.obj)
               and not any(a.op == "add_dynamic" and dynamic_key(a.obj) == dynamic_key(c.obj) for a in b.changes)]
    if not deleted:
        return
    b.notes.append("deleted dynamic rules that winsec.ipsec did not make: %s" % "; ".join(
        "%s (main-mode policy %r)" % (filter_text(d.filter), d.mmpolicy) for d in deleted))
    still_used = {name_key(d.mmpolicy) for d in b.state.dynamic}
    unused: Dict[str, str] = {}
    for d in deleted:
        if name_key(d.mmpolicy) not in still_used:
            unused.setdefault(name_key(d.mmpolicy), d.mmpolicy)
    if unused:
        b.notes.append("main-mode policies left in place with no rule using them (another tool's; delete them "
                       "with `netsh ipsec dynamic delete mmpolicy name=NAME` if nothing needs them): %s"
                       % ", ".join(unused[k] for k in sorted(unused)))


__all__ = [
    "Plan", "apply", "undo", "with_inverse", "state_key", "converged", "dynamic_key",
    "rule_objects", "policy_objects", "plan_rule", "plan_policy", "plan_dynamic",
    "RULE_STATES", "POLICY_STATES", "DYNAMIC_STATES", "NETSH_MMPOLICY", "foreign_mmpolicy",
]
