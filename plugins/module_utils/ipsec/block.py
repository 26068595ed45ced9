# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The emergency block (winsec.ipsec.ipsec_block): the objects it owns, where its static rules go,
its exact undo, and the verification of what the host enforces afterwards.

Every object the block adds to a host (its own policy when none is assigned, the rule it adds to an
assigned policy, that rule's filter list and filter action) is named `winsec-emergency <name>`, so
drift checks and baseline enforcement can tell an emergency block in place from drift
(`is_emergency_name`). The rule, its filter list and its filter action share that one name: ipseccmd
names a rule's filter action after the rule anyway (`-r Rule -n BLOCK`, KB 813878).

Placement of the static rule (KB 813878: only one local policy is assigned at a time, so assigning
another one would lift every block of the policy assigned before):
  - a local policy is assigned: the rule goes into it ("add a block rule to an existing policy");
  - none is: the block gets its own policy `winsec-emergency <name>`, and it is assigned;
  - a domain (GPO) policy is in effect: the local store has no effect (KB 813878 "IPSec filtering
    rules and Group Policy"), so nothing local is written or assigned; only the dynamic filters apply.
The undo (state=absent) removes the rule from whichever policy holds it, deletes the block's own
policy (unassigned first) once no rule is left in it, its filter list and action when nobody else
uses them, and its dynamic filters; the policy assigned before stays assigned with its own rules.

`plan_block` composes plan.py's plan_dynamic, plan_rule and plan_policy into one Plan, so that the
engine sends it as one write. Standard library only.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, List, Optional, Sequence, Tuple

from .dialects import check_for_dialect
from .model import (
    ANY, ME, MAX_NAME_LENGTH, DynamicRule, Filter, HostState, Policy, Rule, ValidationError, filter_text, name_key,
    parse_choice, parse_name, parse_port, parse_protocol, protocol_name,
)
from .plan import (
    Plan, apply, foreign_mmpolicy, plan_dynamic, plan_policy, plan_rule, rule_objects, with_inverse,
)

EMERGENCY_PREFIX = "winsec-emergency "
MODES = ("both", "dynamic", "static")
STATES = ("present", "absent")
DIRECTIONS = ("in", "out", "both")
DOMAIN_ROLLOUT = "playbooks/domain_rollout.yml"
OWN_POLICY, ASSIGNED_POLICY, NO_POLICY = "own_policy", "assigned_policy", "none"


def is_emergency_name(name) -> bool:
    """True for a name the emergency block owns. Windows tools compare object names
    case-insensitively, so 'WINSEC-EMERGENCY x' is one of ours too."""
    if not isinstance(name, str):
        return False
    return name_key(name).startswith(name_key(EMERGENCY_PREFIX))


# --------------------------------------------------------------------------------------------
# The intent, validated before any connection
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Block:
    name: str                       # the user's name, without the prefix
    filters: Tuple[Filter, ...]     # distinct, in the order given
    mode: str = "both"
    state: str = "present"

    @property
    def object_name(self) -> str:
        """The name of every static object the block adds: rule, filter list, filter action, own policy."""
        return EMERGENCY_PREFIX + self.name

    @property
    def static(self) -> bool:
        return self.mode in ("both", "static")

    @property
    def dynamic(self) -> bool:
        return self.mode in ("both", "dynamic")


def port_filters(option: str, items) -> Tuple[Tuple[Filter, ...], List[str]]:
    """`ports` -> the KB's filters (in: `*=0:PORT:PROTO`, out: `0=*:PORT:PROTO`, not mirrored) and a
    label per entry for the default name."""
    if not isinstance(items, (list, tuple)):
        raise ValidationError(option, items, "a list of {protocol, port, direction}")
    filters: List[Filter] = []
    labels: List[str] = []
    for index, item in enumerate(items):
        where = "%s[%d]" % (option, index)
        if not isinstance(item, dict):
            raise ValidationError(where, item, "a dict {protocol, port, direction}")
        unknown = sorted(set(item) - {"protocol", "port", "direction"})
        if unknown:
            raise ValidationError(where, item, "the keys protocol, port and direction",
                                  "unknown key %s" % ", ".join(unknown))
        if item.get("protocol") is None:
            raise ValidationError(where + ".protocol", None, "TCP, UDP or a protocol number 0-255")
        protocol = parse_protocol(where + ".protocol", item["protocol"])
        port = parse_port(where + ".port", item["port"] if item.get("port") is not None else 0, protocol)
        direction = parse_choice(where + ".direction", item.get("direction") or "both", DIRECTIONS)
        if direction in ("in", "both"):
            filters.append(Filter(ANY, ME, protocol, 0, port, mirrored=False))
        if direction in ("out", "both"):
            filters.append(Filter(ME, ANY, protocol, 0, port, mirrored=False))
        label = _label(protocol, port)
        labels.append(label if direction == "both" else "%s %s" % (label, direction))
    return tuple(filters), labels


def _label(protocol: int, port: int) -> str:
    text = "any protocol" if protocol == 0 else protocol_name(protocol)
    return "%s %d" % (text, port) if port else text


def default_name(labels: Sequence[str], filters: Iterable[Filter]) -> str:
    """The block's name when none is given: what it blocks, e.g. 'UDP 1434' or 'UDP 1434, TCP 445 in'."""
    parts = list(labels)
    for f in filters:
        parts.append(_label(f.protocol, f.dst_port or f.src_port))
    return ", ".join(dict.fromkeys(parts))


def block_from_options(ports=None, filters=None, name=None, mode="both", state="present",
                       parse_filters=None, dialect="") -> Block:
    """The task's options -> a Block, or a ValidationError naming the option. `parse_filters(option,
    items)` reads KB filterspecs (args.filters_option; injected so this module needs no args.py)."""
    mode = parse_choice("mode", mode or "both", MODES)
    state = parse_choice("state", state or "present", STATES)
    if not ports and not filters:
        raise ValidationError("ports", ports, "ports and/or filters: at least one filter to block")
    found, labels = port_filters("ports", ports) if ports else ((), [])
    given = tuple(parse_filters("filters", filters)) if filters else ()
    unique = {}
    for f in found + given:
        unique.setdefault(f.key(), f)
    limit = MAX_NAME_LENGTH - len(EMERGENCY_PREFIX)
    if name is None:
        name = default_name(labels, given)
        if len(name) > limit:
            raise ValidationError("name", None, "a name for the block (at most %d characters)" % limit,
                                  "the default made from the ports and filters is %d characters long" % len(name))
    name = parse_name("name", name, limit)
    if ":" in name:
        # ipseccmd (Windows XP) reads `-p Name:N` as a policy name and its polling interval (KB 813878),
        # and the name names the block's own policy.
        raise ValidationError("name", name, "a name without ':'",
                              "it names the block's policy, and ipseccmd reads ':' in a policy name as its "
                              "polling interval")
    block = Block(name, tuple(unique.values()), mode, state)
    # The name is the same on every host of a rollout: checked now, before any connection, for the tool of the
    # given dialect, or for every tool a host reached over WinRM may have.
    for tool in (dialect,) if dialect else ("netsh", "ipseccmd"):
        for kind in ("policy", "rule", "filteraction"):
            check_for_dialect(tool, "name", kind, block.object_name)
    return block


# --------------------------------------------------------------------------------------------
# Placement and the plan
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Placement:
    static: str                     # own_policy | assigned_policy | none
    policy: Optional[str] = None    # the policy that holds (present) or held (absent) the rule
    reason: str = ""                # why this placement (for none: why there is no static block)

    def as_dict(self, dynamic: int) -> dict:
        return {"static": self.static, "policy": self.policy, "reason": self.reason, "dynamic": dynamic}


def placement_for(actual: HostState, block: Block) -> Placement:
    """Where the block's static rule belongs on this host (state=present)."""
    if not block.static:
        return Placement(NO_POLICY, None, "mode=dynamic: no static block")
    if actual.domain is not None:
        return Placement(NO_POLICY, None, domain_reason(actual.domain.name))
    assigned = actual.policy(actual.assigned) if actual.assigned else None
    if assigned is None:
        return Placement(OWN_POLICY, block.object_name,
                         "no local policy was assigned: the block has its own policy, assigned")
    if name_key(assigned.name) == name_key(block.object_name):
        return Placement(OWN_POLICY, assigned.name, "the block's own policy is assigned")
    return Placement(ASSIGNED_POLICY, assigned.name,
                     "policy %r is assigned: the block's rule goes into it, so its own rules stay in force "
                     "(KB 813878: one local policy is assigned at a time)" % assigned.name)


def domain_reason(domain_policy: str) -> str:
    return ("domain (GPO) policy %r is in force and overrides the local store (KB 813878), so nothing local "
            "is written or assigned; the persistent block belongs in the domain store (%s)"
            % (domain_policy, DOMAIN_ROLLOUT))


def holders(state: HostState, block: Block) -> List[Policy]:
    """The policies that hold the block's rule."""
    return [p for p in state.policies if p.rule(block.object_name) is not None]


def _own_rules_only(policy: Policy, block: Block) -> bool:
    """An emergency policy whose only rules are this block's: it goes with them."""
    rules = [r for r in policy.rules if not r.default_response]
    return is_emergency_name(policy.name) and all(name_key(r.name) == name_key(block.object_name) for r in rules)


def _then(plans: List[Plan], plan: Plan) -> HostState:
    plans.append(plan)
    return plan.after


def _joined(actual: HostState, plans: Sequence[Plan]) -> Plan:
    changes = tuple(c for p in plans for c in p.changes)
    after = plans[-1].after if plans else actual
    return Plan(changes, after,
                tuple(dict.fromkeys(w for p in plans for w in p.warnings)),
                tuple(dict.fromkeys(n for p in plans for n in p.notes)))


def _dynamic_rules(block: Block) -> Tuple[DynamicRule, ...]:
    return tuple(DynamicRule(f) for f in block.filters)


def plan_block(actual: HostState, block: Block) -> Tuple[Plan, Placement]:
    """One Plan for the whole block (dynamic filters, static objects, assignment) and its placement."""
    if block.state == "absent":
        return _plan_absent(actual, block)
    plans: List[Plan] = []
    state = actual
    warnings: List[str] = []
    notes: List[str] = []
    if block.dynamic:
        state = _then(plans, plan_dynamic(state, _dynamic_rules(block), state="present"))
    placement = placement_for(actual, block)
    if placement.static == NO_POLICY and block.static:
        warnings.append(placement.reason + ("; only the dynamic filters apply now, and they are lost when the "
                                            "host restarts" if block.dynamic else "; mode=static blocks nothing"))
    elif placement.static != NO_POLICY:
        rule, flist, faction = rule_objects(block.object_name, block.filters, "block",
                                            filteraction_name=block.object_name)
        if placement.static == ASSIGNED_POLICY:
            state = _then(plans, plan_rule(state, placement.policy, rule, flist, faction, create_policy=False))
        else:
            policy = Policy(placement.policy, rules=(rule,))
            existing = state.policy(placement.policy)
            if existing is not None:        # its settings are its own: keep them
                policy = replace(policy, description=existing.description,
                                 polling_interval=existing.polling_interval)
            state = _then(plans, plan_policy(state, policy, rules_objects=(flist, faction), state="merged",
                                             assign=True))
        # The rule lives in the policy in force only: a copy left in another policy (placed when that one
        # was assigned) would come back into force with it.
        for stale in holders(state, block):
            if name_key(stale.name) != name_key(placement.policy):
                state = _then(plans, _remove_from(state, stale, block))
                notes.append("the block's rule was also in policy %r, which is not in force: removed from it"
                             % stale.name)
    plan = _joined(actual, plans)
    return replace(plan, warnings=plan.warnings + tuple(warnings), notes=plan.notes + tuple(notes)), placement


def _remove_from(state: HostState, policy: Policy, block: Block) -> Plan:
    if _own_rules_only(policy, block):
        plan = plan_policy(state, Policy(policy.name), state="deleted")
        # Unassigning its own policy is what the undo is for, not a surprise: a note, not a warning.
        return replace(plan, warnings=tuple(w for w in plan.warnings if policy.name not in w))
    return plan_rule(state, policy.name, Rule(block.object_name), state="absent")


def _plan_absent(actual: HostState, block: Block) -> Tuple[Plan, Placement]:
    plans: List[Plan] = []
    state = actual
    notes: List[str] = []
    if block.dynamic:
        ours = {d.filter.key() for d in actual.dynamic if not foreign_mmpolicy(d)}
        theirs = [d for d in actual.dynamic if foreign_mmpolicy(d) and d.filter.key() in
                  {f.key() for f in block.filters}]
        wanted = tuple(d for d in _dynamic_rules(block) if d.filter.key() in ours)
        if wanted:
            state = _then(plans, plan_dynamic(state, wanted, state="absent"))
        if theirs:
            notes.append("dynamic rules of another tool with the block's filters are left in place (the block did "
                         "not add them): %s" % "; ".join("%s (main-mode policy %r)" % (filter_text(d.filter),
                                                                                     d.mmpolicy) for d in theirs))
    placement = Placement(NO_POLICY, None, "mode=dynamic: the static store is left alone" if not block.static
                          else "no policy holds the block's rule")
    if block.static:
        found = holders(actual, block)
        for policy in found:
            own = _own_rules_only(policy, block)
            if own:         # it goes with the rule; a policy that keeps another block's rule stays
                placement = Placement(OWN_POLICY, policy.name, "the block's own policy")
            elif placement.static == NO_POLICY:
                placement = Placement(ASSIGNED_POLICY, policy.name,
                                      "the block's rule was in policy %r" % policy.name)
            if own and name_key(actual.assigned) == name_key(policy.name):
                notes.append("policy %r was the block's own: unassigned and deleted, which leaves no local policy "
                             "assigned, as before the block" % policy.name)
            state = _then(plans, _remove_from(state, state.policy(policy.name), block))
        if not found:
            # A filter list or action of the block without its rule (a hand edit, or a run that could not
            # undo itself): gone with the block too, unless someone else's rule uses it.
            for obj, op in ((state.filterlist(block.object_name), "delete_filterlist"),
                            (state.filteraction(block.object_name), "delete_filteraction")):
                if obj is not None and not state.users_of(**{op.split("_")[1]: obj.name}):
                    change = with_inverse(state, op, obj)
                    state = apply(state, (change,))
                    plans.append(Plan((change,), state))
    plan = _joined(actual, plans)
    return replace(plan, notes=plan.notes + tuple(notes)), placement


# --------------------------------------------------------------------------------------------
# Verification and the one-line summary
# --------------------------------------------------------------------------------------------

# The host's dynamic rules were listed in a layout the engine does not read (HostState.dynamic None).
DYNAMIC_UNKNOWN = ("the dynamic rules could not be read (the tool's listing is not in the layout the engine "
                   "reads; the display language may not be English), so the dynamic filters are not verified")


def problems(state: HostState, block: Block, placement: Placement) -> List[str]:
    """What keeps `state` (read back, or predicted in check mode) from being the block's intent:
    present: the rule in the policy in force, that policy assigned, the dynamic filters blocking both
    ways; absent: none of the block's objects left. Empty when verified."""
    found: List[str] = []
    name = block.object_name
    keys = [f.key() for f in block.filters]
    if block.state == "present":
        if block.static and placement.static == NO_POLICY and not block.dynamic:
            found.append("nothing blocks: " + placement.reason)
        if block.static and placement.static != NO_POLICY:
            found += _static_problems(state, block, placement.policy)
        if block.dynamic and state.dynamic is None:
            found.append(DYNAMIC_UNKNOWN)
        elif block.dynamic:
            have = {d.filter.key(): d for d in state.dynamic}
            for f, key in zip(block.filters, keys):
                d = have.get(key)
                if d is None:
                    found.append("dynamic filter %s is missing" % filter_text(f))
                elif (d.inbound, d.outbound) != ("block", "block"):
                    found.append("dynamic filter %s does not block (inbound %s, outbound %s)"
                                 % (filter_text(f), d.inbound, d.outbound))
        return found
    if block.static:
        found += ["policy %r still holds rule %r" % (p.name, name) for p in holders(state, block)]
        if state.filterlist(name) is not None:
            found.append("filter list %r is still there" % name)
        if state.filteraction(name) is not None:
            found.append("filter action %r is still there" % name)
        if placement.static == OWN_POLICY and state.policy(placement.policy) is not None:
            found.append("policy %r is still there" % placement.policy)
    if block.dynamic and state.dynamic is None:
        found.append(DYNAMIC_UNKNOWN)
    elif block.dynamic:
        wanted = set(keys)
        found += ["dynamic filter %s is still there" % filter_text(d.filter) for d in state.dynamic
                  if d.filter.key() in wanted and not foreign_mmpolicy(d)]
    return found


def _static_problems(state: HostState, block: Block, policy_name: str) -> List[str]:
    name = block.object_name
    found = []
    policy = state.policy(policy_name)
    rule = policy.rule(name) if policy is not None else None
    if policy is None:
        found.append("policy %r is missing" % policy_name)
    elif rule is None:
        found.append("policy %r lacks rule %r" % (policy_name, name))
    else:
        flist = state.filterlist(rule.filterlist)
        have = {f.key() for f in flist.filters} if flist is not None else set()
        missing = [filter_text(f) for f in block.filters if f.key() not in have]
        if missing:
            found.append("rule %r lacks the filters %s" % (name, ", ".join(missing)))
        wanted = {f.key() for f in block.filters}
        extra = [filter_text(f) for f in (flist.filters if flist is not None else ()) if f.key() not in wanted]
        if extra:
            found.append("rule %r also blocks %s" % (name, ", ".join(extra)))
        action = state.filteraction(rule.filteraction)
        if action is None or action.action != "block" or not rule.active:
            found.append("rule %r does not block (filter action %r%s)"
                         % (name, rule.filteraction, "" if rule.active else ", inactive"))
    if name_key(state.assigned) != name_key(policy_name):
        found.append("the assigned policy is %s, not %r" % (repr(state.assigned) if state.assigned else "none",
                                                            policy_name))
    if state.domain is not None:
        found.append("domain (GPO) policy %r overrides the local store" % state.domain.name)
    return found


def dynamic_count(state: HostState, block: Block) -> Optional[int]:
    """How many of the block's filters the host has as dynamic rules (None: the rules could not be read)."""
    if state.dynamic is None:
        return None
    wanted = {f.key() for f in block.filters}
    return len({d.filter.key() for d in state.dynamic if d.filter.key() in wanted})


def summary(block: Block, placement: Placement, plan: Plan, state: HostState, found: Sequence[str],
            check_mode: bool) -> str:
    """One line for the rollout summary, e.g. 'blocked and verified; static: 1 rule added to the assigned
    policy Corp Baseline; dynamic filters: 2'."""
    present = block.state == "present"
    done = "blocked" if present else "unblocked"
    head = ("check mode, would be " if check_mode else "") + done
    head += " and verified" if not found else ", NOT verified: %s" % "; ".join(found)
    if not plan.changes:
        head += " (nothing to change)"
    parts = [head]
    ops = [c.op for c in plan.changes]
    if block.static:
        parts.append("static: " + (_static_present(placement, ops) if present else _static_absent(placement, ops)))
    if block.dynamic:
        if present:
            count = dynamic_count(state, block)
            parts.append("dynamic filters: %s" % ("unknown" if count is None else count))
        else:
            parts.append("dynamic filters removed: %d" % ops.count("delete_dynamic"))
    return "; ".join(parts)


def _static_present(placement: Placement, ops: Sequence[str]) -> str:
    if placement.static == NO_POLICY:
        return "none, " + placement.reason
    if placement.static == OWN_POLICY:
        if "add_policy" in ops:
            return "own policy %s added and assigned" % placement.policy
        return "rule %s in the block's own policy %s%s" % (
            "updated" if "set_rule" in ops or "add_filter" in ops or "delete_filter" in ops else "in place",
            placement.policy, ", assigned now" if "assign" in ops else "")
    if "add_rule" in ops:
        return "1 rule added to the assigned policy %s" % placement.policy
    if any(op in ops for op in ("set_rule", "add_filter", "delete_filter", "set_filteraction")):
        return "1 rule updated in the assigned policy %s" % placement.policy
    return "1 rule in place in the assigned policy %s" % placement.policy


def _static_absent(placement: Placement, ops: Sequence[str]) -> str:
    if "delete_policy" in ops:
        return "policy %s removed%s" % (placement.policy, " after unassigning it" if "unassign" in ops else "")
    if "delete_rule" in ops:
        return "1 rule removed from policy %s" % placement.policy
    return "nothing of the block was left"


__all__ = ["EMERGENCY_PREFIX", "is_emergency_name", "Block", "Placement", "block_from_options", "plan_block",
           "placement_for", "problems", "summary", "dynamic_count", "holders", "MODES", "STATES", "DIRECTIONS"]
