# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The ipseccmd dialect (Windows XP SP2 Support Tools; docs/windows-tools.md "ipseccmd and ipsecpol"), also the base of ipsecpol.

ipseccmd works per rule: `-w REG -p "Policy[:poll]" -r "Rule" -f specs -n BLOCK` creates the policy
if needed and the rule with its filter list and filter action in one go ([D] KB 813878). It has no
command for one filter, one filter list or one filter action, so this dialect reads `before` and
`after` and emits, for every rule a change touches, the rule's whole content as `after` has it:

  1. `-p P -y`                      unassign ([D] KB)
  2. `-p P -r R1 -r R2 ... -o`      delete a whole policy with all its rules ([D] KB's own form)
  3. `-p P -r R -f ... -n ...`      create or replace each touched rule, in `after`'s order; the
                                    first command of a policy carries `:poll` when the polling
                                    interval is new or changed, and `-x` when it gets assigned ([D] KB)
  4. `-p P -r R -o`                 delete rules from a policy that keeps others
  5. `-p P -x`                      assign, when no rule command of that policy carried `-x`
  6. dynamic: `-f [spec]` (block) / `-f (spec)` (pass); `-u` drops *all* dynamic policy ([D] KB),
     so deleting one dynamic rule is `-u` and re-adding the others.

Assumed semantics, not verified on real Windows [I]: re-running `-r R` with new `-f`/`-n` replaces
rule R's filters and action; `-o` deletes the named rules together with their own filter lists and
filter actions when no other rule uses them, and the policy itself once it has no rule left (which
fits both `-o` examples of the KB); that is why creations (3) come before deletions (4), and why a
policy that would be left without rules, which ipseccmd cannot make, is refused. Filter lists and
actions are the rule's own, so add/delete of a filter list or action renders nothing by itself.

What ipseccmd cannot express raises ValidationError naming the option and pointing at netsh:
address ranges, IPv6, server types, descriptions, renames, inactive rules, inpass and qmpfs.

Undo: every command's `undo` restores what `before` had (rules recreated from `before`, `-y`/`-x`
for the assignment, `-u` plus re-adding for dynamic rules).
"""
from __future__ import annotations

import ipaddress
from typing import Callable, Dict, List, Sequence, Tuple

from ..model import (DEFAULT_POLLING_MINUTES, KERBEROS, Address, Change, DynamicRule, Filter, HostState,
                     Policy, QmOffer, Rule, ValidationError, name_key, parse_name)
from ..filterspec import format_filterspec
from ..quoting import join_command_line, powershell_native_args
from . import MASK, Args, Command, check_host, check_secret, check_text

TOOL = "ipseccmd"
# A value check beyond the dialect's own (ipsecpol adds cmd.exe safety): check(option, value).
Check = Callable[[str, str], object]


def deliverable_through_powershell(option: str, value: str) -> str:
    """ipseccmd runs from the remote layer's PowerShell script; refuse, naming the option, a value
    that Windows PowerShell 5.1's legacy argument passing cannot deliver intact (quoting.py)."""
    try:
        powershell_native_args([value], option)
    except ValidationError as err:
        raise ValidationError(option, value, err.accepted, err.reason) from None
    return value


def render(changes: Sequence[Change], *, before: HostState, after: HostState, store: str = "local",
           domain: str = "", tool: str = TOOL, check: Check = deliverable_through_powershell) -> List[Command]:
    return _Renderer(tool, check, before, after, store, domain).render(list(changes))


def _netsh_can(what: str) -> str:
    return "%s; the netsh dialect can express it (Windows Server 2003 and later)" % what


class _Renderer:
    def __init__(self, tool, check, before, after, store, domain):
        self.tool = tool
        self.check = check
        self.before = before
        self.after = after
        if store == "domain":
            # -w DS[:domain] is the directory store ([D] RK "-w TYPE:DOMAIN"; DS form [I])
            self.store = "DS:" + self._value("domain", domain) if domain else "DS"
        else:
            self.store = "REG"          # [D] KB 813878

    # -- values ---------------------------------------------------------------------------------

    def _value(self, option: str, value: str) -> str:
        check_text(option, value)
        self.check(option, value)
        return value

    def _name(self, option: str, value: str) -> str:
        self._value(option, parse_name(option, value))
        if value.startswith("-"):
            # [I] a leading '-' would read as one of ipseccmd's flags
            raise ValidationError(option, value, "a name that does not start with '-'",
                                  "%s would take it for a flag" % self.tool)
        return value

    def _policy(self, name: str) -> str:
        self._name("policy", name)
        if ":" in name:
            raise ValidationError("policy", name, "a policy name without ':'",
                                  _netsh_can("%s reads -p as Name:PollInterval" % self.tool))
        return name

    def _policy_arg(self, policy: Policy, poll: bool) -> str:
        name = self._policy(policy.name)
        if policy.description:
            raise ValidationError("description", policy.description, "no description",
                                  _netsh_can("%s has no option for a policy description" % self.tool))
        if poll:
            interval = policy.polling_interval
            if isinstance(interval, bool) or not isinstance(interval, int) or interval < 1:
                raise ValidationError("polling_interval", interval, "a whole number of minutes, at least 1")
            return "%s:%d" % (name, interval)
        return name

    def _base(self, *args: str) -> Args:
        return Args(self.tool, "-w", self.store, *args)

    # -- one rule -----------------------------------------------------------------------------------

    def rule_args(self, state: HostState, policy: Policy, rule: Rule, poll: bool, assign: bool) -> Args:
        """`-p P -r R -f specs -n ...`: rule R of `policy` as `state` has it."""
        if not rule.active:
            raise ValidationError("active", False, "true", _netsh_can("%s cannot store an inactive rule" % self.tool))
        if rule.description:
            raise ValidationError("description", rule.description, "no description",
                                  _netsh_can("%s has no option for a rule description" % self.tool))
        flist = state.filterlist(rule.filterlist)
        action = state.filteraction(rule.filteraction)
        if flist is None or action is None:
            raise ValidationError("rule", rule.name, "a rule whose filter list and filter action exist")
        if not flist.filters:
            raise ValidationError("filters", (), "at least one filter",
                                  "%s makes a rule only together with its filters (-f)" % self.tool)
        if flist.description or action.description:
            raise ValidationError("description", flist.description or action.description, "no description",
                                  _netsh_can("%s has no option for filter list or action descriptions" % self.tool))
        args = self._base("-p", self._policy_arg(policy, poll), "-r", self._name("rule", rule.name), "-f")
        args.add(*(self.spec("filters[%d]" % i, f) for i, f in enumerate(flist.filters)))
        args.add(*self.negotiation(action))
        self.auth(args, rule)
        if rule.tunnel:
            args.add("-t", self._value("tunnel", check_host("tunnel", rule.tunnel)))
        args.add(*self.conntype(rule.conntype))
        if action.soft:
            args.add("-soft")
        if assign:
            args.add("-x")
        try:
            join_command_line(args.argv)
        except ValidationError as err:
            # every filter of the rule travels in this one command line (CreateProcess limit)
            raise ValidationError("filters", len(flist.filters), "fewer filters in rule %r" % rule.name,
                                  _netsh_can("the %s command line is too long: %s" % (self.tool, err.reason))
                                  ) from None
        return args

    def spec(self, option: str, filt: Filter, kind: str = "") -> str:
        for side, address in (("src", filt.src), ("dst", filt.dst)):
            self.expressible("%s.%s" % (option, side), address)
        return self._value(option, format_filterspec(filt, kind))

    def expressible(self, option: str, address: Address) -> None:
        """The filterspec knows 0 (me), * (any), an IPv4 address with mask, and a DNS name ([D] RK,
        KB 813878); nothing else."""
        if address.kind == "range":
            raise ValidationError(option, str(address), "me, any, an IPv4 address or subnet, or a DNS name",
                                  _netsh_can("the %s filterspec has no address ranges" % self.tool))
        if address.kind == "server":
            raise ValidationError(option, str(address), "me, any, an IPv4 address or subnet, or a DNS name",
                                  _netsh_can("the %s filterspec has no server types" % self.tool))
        if address.kind == "ip" and ipaddress.ip_address(address.value).version == 6:
            raise ValidationError(option, str(address), "me, any, an IPv4 address or subnet, or a DNS name",
                                  _netsh_can("%s predates IPv6 filters" % self.tool))

    def negotiation(self, action) -> List[str]:
        """-n: BLOCK, PASS ([D] KB, [E] SEC505) or the offers, "one or more security methods, separated
        by spaces" ([D] XP "Ipseccmd", bb490922), all after one `-n`, each one argument with its
        lifetimes ([E] CERTitude `-n "esp[3des,sha] 3600S/100000K"`)."""
        if action.inpass:
            raise ValidationError("inpass", True, "false",
                                  _netsh_can("%s has no inbound-passthrough option" % self.tool))
        if action.qmpfs:
            raise ValidationError("qmpfs", True, "false", _netsh_can("%s has no quick-mode PFS option" % self.tool))
        if action.action == "block":
            return ["-n", "BLOCK"]
        if action.action == "permit":
            return ["-n", "PASS"]
        if not action.offers:
            return []                   # "All flags except -f have defaults" ([D] RK)
        return ["-n"] + [self.offer(i, offer) for i, offer in enumerate(action.offers)]

    def offer(self, index: int, offer: QmOffer) -> str:
        """One offer, ipsecpol style: ESP[3DES,SHA], AH[MD5], AH[SHA]+ESP[DES,SHA], then the rekey
        lifetimes `3600S/100000K` ([E] CERTitude script; combined AH+ESP and single lifetimes [I]).
        "References to SHA in IPSecPol refer to the SHA1 algorithm" ([D] RK)."""
        def alg(name):
            return {"SHA1": "SHA", "None": "NONE"}.get(name, name)
        parts = []
        if offer.ah:
            parts.append("AH[%s]" % alg(offer.ah))
        if offer.esp_conf or offer.esp_auth:
            parts.append("ESP[%s,%s]" % (alg(offer.esp_conf or "None"), alg(offer.esp_auth or "None")))
        if not parts:
            raise ValidationError("offers[%d]" % index, offer, "an offer with an AH or an ESP part")
        text = "+".join(parts)
        lifetimes = "/".join(part for part in (
            "%dS" % offer.lifetime_s if offer.lifetime_s else "",
            "%dK" % offer.lifetime_kb if offer.lifetime_kb else "") if part)
        return text + (" " + lifetimes if lifetimes else "")

    def auth(self, args: Args, rule: Rule) -> None:
        """-a AuthMethodList: "one or more authentication methods, separated by spaces" ([D] XP
        command-line reference "Ipseccmd", bb490922), all after one `-a`, in the rule's order of
        preference. Kerberos alone is the default and is left out ([D] RK "All flags except -f have
        defaults"). A pre-shared key is `P:"key"` ([E] CERTitude `-a p:"<psk>"`), masked in what is
        displayed; a certificate authority `CERT:"CA"` ([E] a VPN dialer's `-a CERT:"ca1" CERT:"ca2"`);
        Kerberos inside a list `K` [I, the one-letter form of KERBEROS as P is of PRESHARE]."""
        if rule.auth in ((KERBEROS,), ()):
            return
        args.add("-a")
        for method in rule.auth:
            if method.kind == "kerberos":
                args.add("K")
            elif method.kind == "psk":
                if not method.value:
                    raise ValidationError("psk", "", "a non-empty pre-shared key")
                args.add_secret("P:" + check_secret("auth.value", method.value, self._value), "P:" + MASK)
            elif method.kind == "cert":
                if not method.value:
                    raise ValidationError("rootca", "", "the name of a certificate authority")
                args.add("CERT:" + self._value("rootca", method.value))
            else:
                raise ValidationError("auth", method.kind, "kerberos, psk or cert")

    @staticmethod
    def conntype(conntype: str) -> List[str]:
        # [{-dialup | -lan}], default all ([D] RK)
        if conntype not in ("all", "lan", "dialup"):
            raise ValidationError("conntype", conntype, "one of all, lan, dialup")
        return [] if conntype == "all" else ["-" + conntype]

    # -- the plan ---------------------------------------------------------------------------------

    def render(self, changes: List[Change]) -> List[Command]:
        intents = _Intents(self.before, self.after)
        for change in changes:
            intents.read(change)
        commands: List[Command] = []
        for change, name in intents.unassign:
            policy = self._policy(name)
            commands.append(self._base("-p", policy, "-y").command(change, [self._base("-p", policy, "-x").command()]))
        for change, policy in intents.deleted_policies.values():
            commands.append(self.delete_rules(change, policy, policy.rules))
        commands += self.creations(intents)
        for key, items in intents.deleted_rules.items():
            if key in intents.deleted_policies:
                continue                # the policy's own `-o` names all its rules
            policy = self.before.policy(key)
            if self.after.policy(key) is not None:
                remaining = [r for r in self.after.policy(key).rules if not r.default_response]
                if not remaining:
                    raise ValidationError("rules", policy.name, "at least one rule left in the policy",
                                          _netsh_can("%s cannot keep a policy without rules" % self.tool))
            commands.append(self.delete_rules(items[0][0], policy, [rule for _, rule in items]))
        for change, name in intents.assign.values():
            policy = self._policy(name)
            commands.append(self._base("-p", policy, "-x").command(change, self.assign_undo(change, name)))
        commands += self.dynamic(intents.dynamic)
        return commands

    def creations(self, intents: "_Intents") -> List[Command]:
        commands = []
        for policy in self.after.policies:
            key = name_key(policy.name)
            rules = [r for r in policy.rules if not r.default_response]
            touched = [r for r in rules if (key, name_key(r.name)) in intents.rules]
            poll = key in intents.poll
            if not touched and (poll or key in intents.new_policies):
                if not rules:
                    raise ValidationError("rules", policy.name, "a policy with at least one rule",
                                          _netsh_can("%s creates a policy only together with a rule" % self.tool))
                touched = rules[:1]     # the polling interval travels with a rule command
            old_policy = self.before.policy(policy.name)
            for index, rule in enumerate(touched):
                change = intents.rules.get((key, name_key(rule.name))) or intents.poll.get(key)
                first = index == 0
                with_poll = first and (poll or (old_policy is None
                                                and policy.polling_interval != DEFAULT_POLLING_MINUTES))
                assign = intents.assign.pop(key, None) if first else None
                args = self.rule_args(self.after, policy, rule, with_poll, assign is not None)
                undo = self.assign_undo(assign[0], policy.name) if assign else []
                old_rule = old_policy.rule(rule.name) if old_policy else None
                if old_rule is not None:
                    undo.append(self.rule_args(self.before, old_policy, old_rule, with_poll, False).command())
                else:
                    undo.append(self._base("-p", policy.name, "-r", rule.name, "-o").command())
                commands.append(args.command(change, undo))
        return commands

    def delete_rules(self, change: Change, policy: Policy, rules: Sequence[Rule]) -> Command:
        """`-p P -r R... -o` ([D] KB); its undo recreates each rule as `before` had it."""
        rules = [r for r in rules if not r.default_response]
        args = self._base("-p", self._policy(policy.name))
        for rule in rules:
            args.add("-r", self._name("rule", rule.name))
        old = self.before.policy(policy.name)
        undo = [self.rule_args(self.before, old, old.rule(rule.name),
                               i == 0 and old.polling_interval != DEFAULT_POLLING_MINUTES, False).command()
                for i, rule in enumerate(rules)]
        return args.add("-o").command(change, undo)

    def assign_undo(self, change: Change, name: str) -> List[Command]:
        displaced = change.old if isinstance(change.old, str) else self.before.assigned
        if displaced and name_key(displaced) != name_key(name):
            return [self._base("-p", self._policy(displaced), "-x").command()]
        return [self._base("-p", self._policy(name), "-y").command()]

    # -- dynamic ----------------------------------------------------------------------------------

    def dynamic_args(self, rule: DynamicRule) -> Args:
        """`-f [spec]` blocks, `-f (spec)` passes ([D] KB for [ ], [I] for ( )); a plain spec
        negotiates with the default offers [I]."""
        if rule.inbound != rule.outbound:
            raise ValidationError("inbound", rule.inbound, "the same action as outbound (%s)" % rule.outbound,
                                  _netsh_can("%s gives a filter one action for both directions" % self.tool))
        kind = {"block": "block", "permit": "pass", "negotiate": ""}.get(rule.inbound)
        if kind is None:
            raise ValidationError("inbound", rule.inbound, "permit, block or negotiate")
        return Args(self.tool, "-f", self.spec("filter", rule.filter, kind), *self.conntype(rule.conntype))

    def dynamic(self, changes: List[Change]) -> List[Command]:
        if not changes:
            return []
        clear = Args(self.tool, "-u")
        commands = []
        present = list(self.before.dynamic)        # what the host has at this point of the batch
        adds = [c for c in changes if c.op == "add_dynamic"]
        if len(adds) != len(changes):
            # no command deletes one dynamic filter: drop them all, then add back what stays
            commands.append(clear.command(next(c for c in changes if c.op == "delete_dynamic"),
                                          [self.dynamic_args(r).command() for r in present]))
            present = []
            adds = [next((c for c in adds if c.obj == rule), changes[0]) for rule in self.after.dynamic]
            targets = list(self.after.dynamic)
        else:
            targets = [c.obj for c in adds]
        for change, rule in zip(adds, targets):
            undo = [clear.command()] + [self.dynamic_args(r).command() for r in present]
            commands.append(self.dynamic_args(rule).command(change, undo))
            present.append(rule)
        return commands


class _Intents:
    """What the changes touch, in ipseccmd's per-rule terms."""

    def __init__(self, before: HostState, after: HostState):
        self.before = before
        self.after = after
        self.unassign: List[Tuple[Change, str]] = []
        self.assign: Dict[str, Tuple[Change, str]] = {}
        self.deleted_policies: Dict[str, Tuple[Change, Policy]] = {}
        self.deleted_rules: Dict[str, List[Tuple[Change, Rule]]] = {}
        self.rules: Dict[Tuple[str, str], Change] = {}
        self.poll: Dict[str, Change] = {}
        self.new_policies: Dict[str, Change] = {}
        self.dynamic: List[Change] = []

    def read(self, change: Change) -> None:
        op, obj = change.op, change.obj
        if op == "add_policy":
            self.new_policies[name_key(obj.name)] = change
            for rule in obj.rules:
                self.rules.setdefault((name_key(obj.name), name_key(rule.name)), change)
        elif op == "set_policy":
            old = change.old or obj
            if name_key(old.name) != name_key(obj.name):
                raise ValidationError("name", obj.name, "the policy's current name %r" % old.name,
                                      _netsh_can("ipseccmd cannot rename a policy"))
            self.poll[name_key(obj.name)] = change
        elif op == "delete_policy":
            before = self.before.policy(obj.name) or obj
            self.deleted_policies[name_key(obj.name)] = (change, before)
        elif op == "assign":
            self.assign[name_key(obj.name)] = (change, obj.name)
        elif op == "unassign":
            self.unassign.append((change, obj if isinstance(obj, str) else obj.name))
        elif op in ("add_filter", "delete_filter"):
            self.touch_users(change, filterlist=change.parent)
        elif op in ("add_filterlist", "set_filterlist"):
            self.touch_users(change, filterlist=obj.name)
        elif op in ("add_filteraction", "set_filteraction"):
            self.touch_users(change, filteraction=obj.name)
        elif op in ("add_rule", "set_rule"):
            old = change.old
            if op == "set_rule" and old is not None and name_key(old.name) != name_key(obj.name):
                self.delete_rule(change, change.parent, old)
            self.rules[(name_key(change.parent), name_key(obj.name))] = change
        elif op == "delete_rule":
            self.delete_rule(change, change.parent, obj)
        elif op in ("add_dynamic", "delete_dynamic"):
            self.dynamic.append(change)
        # delete_filterlist / delete_filteraction: the rule's own objects go with `-o` [I]

    def touch_users(self, change: Change, filterlist: str = "", filteraction: str = "") -> None:
        for policy, rule in self.after.users_of(filterlist=filterlist, filteraction=filteraction):
            self.rules.setdefault((name_key(policy), name_key(rule)), change)

    def delete_rule(self, change: Change, policy: str, rule: Rule) -> None:
        key = name_key(policy)
        self.deleted_rules.setdefault(key, []).append((change, rule))
