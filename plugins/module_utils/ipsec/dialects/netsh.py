# -*- coding: utf-8 -*-
# Copyright: winsec.ipsec developers; GNU General Public License v3.0+
"""The netsh dialect: `netsh ipsec static ...` and `netsh ipsec dynamic ...` ([D] "netsh ipsec", learn.microsoft.com).

One change renders as one or more netsh commands, each `tag=value` (tags spelt out in full, yes/no
for booleans). The first command of a change carries the change's undo: the rendering of its
inverse (`Change.inverse`, as the planner computed it); the change's later commands carry none,
since the first one's undo reverts the whole change (deleting a filter list deletes its filters,
deleting a policy its rules).

Values: names pass model.parse_name; every value is free of control characters; and a value may not
contain a double quote, because how netsh parses embedded quotes is not documented ([I]; the only
hint is the `\\'` convention of rootca, [H] add rule remark 1). The rejection names the option.

Domain store: `set store location=domain` holds only inside one netsh process ([I] docs/windows-tools.md "Store selection"), so
with store='domain' every static command becomes a netsh script (`pushd ipsec static`, `set store
location=domain [domain=NAME]`, the command, `popd`) in a Command whose argv is `netsh -f
SCRIPT_FILE`: the remote layer writes `script` to a temporary file and runs netsh -f on it. One
script per command rather than one for the whole batch: netsh -f stops at a failing line ([I],
winsim does so) and the remote layer undoes only the steps before a failed one, so a single script
failing midway would leave its earlier lines applied and not undone. Each script binds to the
directory once; that costs time, not round trips (all run from the same remote script).

Dynamic rules live in the host's PolicyAgent, not in a store: they render as plain commands whatever
the store. `netsh ipsec dynamic add rule` requires a main-mode policy ([H] usage line, mmpolicy
without brackets). A rule is added with the main-mode policy it names (`DynamicRule.mmpolicy`, as
the planner chose it), or winsec's own, MM_POLICY, when it names none. After a batch that changes
dynamic rules, MM_POLICY exists exactly while rules use it (read back, each rule names its main-mode
policy). It exists before the batch when a rule of `before` uses it or the host lists it
(`HostState.mmpolicies`: one left without rules by a PolicyAgent quirk, a hand deletion or an older
run, an orphan); it is added before the first command that adds a rule with it only when it does not
exist, and deleted after the batch's last dynamic command when it exists and no rule is left using
it, an orphan included: the name is winsec's, and nothing can use a main-mode policy but a rule. The
delete's undo adds it again by name, as winsec always makes it (netsh's default settings); an orphan
of that name made with other settings would come back with the defaults. A batch without dynamic
changes never touches it. Rules of other main-mode policies (other tools', an administrator's) are
added and deleted like any rule, but their main-mode policies are never added nor deleted: winsec
does not read their settings, so it could not restore them on undo. A rule that names no main-mode
policy in `before` ('' read back: NONE) counts as not using MM_POLICY.
"""
from __future__ import annotations

import ipaddress
import re
from typing import List, Optional, Sequence

from ..model import (ACTIONS, CONNTYPES, PORT_PROTOCOLS, SERVER_TYPES, Address, Change, DynamicRule, Filter,
                     FilterAction, FilterList, HostState, IPsecError, Policy, Rule, ValidationError,
                     format_qmsecmethods, name_key, parse_description, parse_name, protocol_name)
from ..plan import NETSH_MMPOLICY, dynamic_key, with_inverse
from . import MASK, SCRIPT_FILE, Args, Command, check_host, check_secret, check_text

MM_POLICY = NETSH_MMPOLICY
# The policy blob keeps the interval in seconds in a DWORD (docs/policy-store.md 4.1).
MAX_POLLING = (2 ** 32 - 1) // 60
STATIC = ("netsh", "ipsec", "static")
DYNAMIC = ("netsh", "ipsec", "dynamic")


def render(changes: Sequence[Change], *, before: HostState, after: HostState, store: str = "local",
           domain: str = "", gpo: str = "") -> List[Command]:
    commands: List[Command] = []
    # each dynamic rule's main-mode policy at this point of the batch, by the rule's identity
    mmpolicies = {dynamic_key(d): d.mmpolicy for d in before.dynamic}
    # used by a rule, or listed without one (an orphan); once added, it stays until the batch's end
    own_exists = _uses_ours(mmpolicies.values()) or _uses_ours(before.mmpolicies)
    dynamic_batch = any(c.op in ("add_dynamic", "delete_dynamic") for c in changes)
    for change in changes:
        if change.op == "add_dynamic":
            mmpolicy = _rule_mmpolicy(change.obj)
            if _is_ours(mmpolicy) and not own_exists:
                commands.append(_mmpolicy("add"))
                own_exists = True
            commands.extend(_commands(change, before))
            mmpolicies[dynamic_key(change.obj)] = mmpolicy
        elif change.op == "delete_dynamic":
            commands.extend(_commands(change, before))
            mmpolicies.pop(dynamic_key(change.obj), None)
        elif store == "domain":
            commands.extend(_in_domain(c, domain, gpo) for c in _commands(change, before))
        else:
            commands.extend(_commands(change, before))
    if dynamic_batch and own_exists and not _uses_ours(mmpolicies.values()):
        commands.append(_mmpolicy("delete"))        # after every dynamic command: nothing uses it any more
    return commands


def _rule_mmpolicy(rule: DynamicRule) -> str:
    """The main-mode policy a rule is added with: its own, or winsec's when it names none."""
    return rule.mmpolicy or MM_POLICY


def _is_ours(mmpolicy: str) -> bool:
    return name_key(mmpolicy) == name_key(MM_POLICY)


def _uses_ours(mmpolicies) -> bool:
    return any(_is_ours(m) for m in mmpolicies)


def _commands(change: Change, before: HostState) -> List[Command]:
    """The commands of one change; the first carries the undo of all of them."""
    args = _render(change)
    inverse = change.inverse or _inverse(change, before)
    undo = [a.command(inverse) for a in _render(inverse)]
    return [a.command(change, undo if i == 0 else ()) for i, a in enumerate(args)]


def _inverse(change: Change, before: HostState) -> Change:
    """The inverse of a change built without one (the planner always sets Change.inverse)."""
    return with_inverse(before, change.op, change.obj, change.parent, change.old).inverse


def _mmpolicy(verb: str) -> Command:
    add = Args(*DYNAMIC, "add", "mmpolicy", "name=" + MM_POLICY)
    delete = Args(*DYNAMIC, "delete", "mmpolicy", "name=" + MM_POLICY)
    return (add if verb == "add" else delete).command(undo=[(delete if verb == "add" else add).command()])


def _in_domain(command: Command, domain: str, gpo: str = "") -> Command:
    """The command as a netsh script that selects the domain store first; its undo likewise.

    A domain policy is assigned through a Group Policy object ([MS-GPIPSEC] 2.2.1: the GPO holds a
    reference to the policy), so `set policy ... assign=` names it with `gponame` ([D] netsh set
    policy grammar, "netsh ipsec" on learn.microsoft.com)."""
    head = ["pushd ipsec static", "set store location=domain" + (
        " domain=" + script_token(_value("domain", domain)) if domain else "")]
    argv = tuple(command.argv)
    shown_argv = tuple(command.shown_argv) if command.shown_argv else ()
    if argv[len(STATIC):len(STATIC) + 2] == ("set", "policy") and any(a.startswith("assign=") for a in argv):
        if not gpo:
            raise ValidationError("gpo", gpo, "the name of the Group Policy object that assigns the policy "
                                  "in the domain, e.g. Default Domain Policy",
                                  "a domain policy is assigned through a GPO and netsh needs its gponame")
        argv += ("gponame=" + _value("gpo", gpo),)
        shown_argv += ("gponame=" + gpo,) if shown_argv else ()

    def lines(words):
        return "\n".join(head + [" ".join(script_token(a) for a in words[len(STATIC):]), "popd"]) + "\n"
    return Command(("netsh", "-f", SCRIPT_FILE), command.change, lines(argv),
                   tuple(_in_domain(u, domain, gpo) for u in command.undo),
                   shown_script=lines(shown_argv) if shown_argv else "")


def script_token(arg: str) -> str:
    """One argument of a netsh script line. netsh splits script lines itself; all that is known is
    that blanks separate and double quotes group (`name="A B"`, [E] scripts), not whether a backslash
    escapes a quote ([I]; `netsh dump` writes `\\"`, [E]). Values hold no double quote (rejected), so
    the only ambiguous spot is a backslash right before a closing quote: the quoted region is closed
    before any trailing backslashes, which both readings then take literally."""
    if arg and not any(c in " \t" for c in arg):
        return arg
    tag = re.match(r"[a-z]+=", arg)
    prefix, value = (arg[:tag.end()], arg[tag.end():]) if tag else ("", arg)
    body = value.rstrip("\\")
    return '%s"%s"%s' % (prefix, body, value[len(body):])


# --- values ------------------------------------------------------------------------------------------

def _value(option: str, value: str) -> str:
    check_text(option, value)
    if '"' in value:
        raise ValidationError(option, value, "text without double quotes",
                              "netsh's parsing of embedded quotes is not documented")
    return value


def _description(value: str) -> str:
    return _value("description", parse_description("description", value))


def _name(option: str, value: str) -> str:
    return _value(option, parse_name(option, value))


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _choice(option: str, value: str, accepted: Sequence[str]) -> str:
    if value not in accepted:
        raise ValidationError(option, value, "one of %s" % ", ".join(accepted))
    return value


def _number(option: str, value: int, low: int, high: int) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(option, value, "an integer %d-%d" % (low, high))
    return str(value)


def _address(option: str, address: Address) -> str:
    """netsh srcaddr/dstaddr ([H] add filter): me, any, an address, a range a-b, a DNS name or a
    server type."""
    if address.kind in ("me", "any"):
        return address.kind
    if address.kind == "server":
        return _choice(option, address.value.upper(), SERVER_TYPES)
    if address.kind == "range":
        return "%s-%s" % (_ip(option, address.value), _ip(option, address.end))
    if address.kind == "ip":
        return _ip(option, address.value)
    if address.kind == "dns":
        return _value(option, address.value)
    raise ValidationError(option, address.kind, "an address kind me, any, ip, range, dns or server")


def _ip(option: str, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise ValidationError(option, value, "an IPv4 or IPv6 address") from None


def _mask(option: str, address: Address) -> List[str]:
    """srcmask/dstmask: a dotted mask or a prefix; only for a plain address ([H] not for ranges)."""
    if address.kind != "ip" or not address.mask:
        return []
    mask = _value(option, address.mask)
    if not (mask.isdigit() or all(p.isdigit() for p in mask.split("."))):
        raise ValidationError(option, mask, "a dotted IPv4 mask or a prefix length")
    return ["%s=%s" % (option, mask)]


def _protocol(value: int) -> str:
    _number("protocol", value, 0, 255)
    return protocol_name(value)


def _filter_args(filt: Filter) -> List[str]:
    """The identifying parameters of a filter, all written out: `delete filter` and `dynamic delete
    rule` must repeat them exactly ([E] docs/windows-tools.md "netsh behaviour"), so add and delete share this one rendering."""
    args = ["srcaddr=" + _address("srcaddr", filt.src), "dstaddr=" + _address("dstaddr", filt.dst)]
    args += _mask("srcmask", filt.src) + _mask("dstmask", filt.dst)
    args.append("protocol=" + _protocol(filt.protocol))
    if filt.protocol in PORT_PROTOCOLS:
        args += ["srcport=" + _number("srcport", filt.src_port, 0, 65535),
                 "dstport=" + _number("dstport", filt.dst_port, 0, 65535)]
    elif filt.src_port or filt.dst_port:
        # [H] dynamic add rule: "If you specify a port, acceptable value is TCP or UDP"
        raise ValidationError("srcport" if filt.src_port else "dstport", filt.src_port or filt.dst_port,
                              "0 (any) unless protocol is TCP or UDP")
    args.append("mirrored=" + _yes(filt.mirrored))
    return args


def _auth(args: Args, rule: Rule) -> None:
    """kerberos/psk/rootca in the rule's order of preference ([H] add rule remark 4). The key goes
    into argv; the displayed twin shows MASK."""
    for method in rule.auth:
        if method.kind == "kerberos":
            args.add("kerberos=yes")
        elif method.kind == "psk":
            if not method.value:
                raise ValidationError("psk", "", "a non-empty pre-shared key")
            args.add_secret("psk=" + check_secret("auth.value", method.value, _value), "psk=" + MASK)
        elif method.kind == "cert":
            args.add("rootca=%s certmap:no excludecaname:no" % _value("rootca", method.value))
        else:
            raise ValidationError("auth", method.kind, "kerberos, psk or cert")


# --- static objects ------------------------------------------------------------------------------------

def _add_policy(policy: Policy) -> List[Args]:
    args = Args(*STATIC, "add", "policy", "name=" + _name("policy", policy.name))
    if policy.description:
        args.add("description=" + _description(policy.description))
    default = any(r.default_response and r.active for r in policy.rules)
    args.add("pollinginterval=" + _number("pollinginterval", policy.polling_interval, 1, MAX_POLLING),
             "activatedefaultrule=" + _yes(default))
    return [args] + [_add_rule(policy.name, r) for r in policy.rules if not r.default_response]


def _set_policy(policy: Policy, old: Optional[Policy]) -> List[Args]:
    old = old or policy
    args = Args(*STATIC, "set", "policy", "name=" + _name("policy", old.name))
    if policy.name != old.name:
        args.add("newname=" + _name("newname", policy.name))
    if policy.description != old.description or old is policy:
        args.add("description=" + _description(policy.description))
    if policy.polling_interval != old.polling_interval or old is policy:
        args.add("pollinginterval=" + _number("pollinginterval", policy.polling_interval, 1, MAX_POLLING))
    return [args]


def _assign(policy, yes: bool) -> List[Args]:
    name = policy if isinstance(policy, str) else policy.name
    return [Args(*STATIC, "set", "policy", "name=" + _name("policy", name), "assign=" + _yes(yes))]


def _add_filterlist(flist: FilterList) -> List[Args]:
    args = Args(*STATIC, "add", "filterlist", "name=" + _name("filterlist", flist.name))
    if flist.description:
        args.add("description=" + _description(flist.description))
    return [args] + [_filter("add", flist.name, f) for f in flist.filters]


def _set_filterlist(flist: FilterList, old: Optional[FilterList]) -> List[Args]:
    old = old or flist
    args = Args(*STATIC, "set", "filterlist", "name=" + _name("filterlist", old.name))
    if flist.name != old.name:
        args.add("newname=" + _name("newname", flist.name))
    return [args.add("description=" + _description(flist.description))]


def _filter(verb: str, flist: str, filt: Filter) -> Args:
    args = Args(*STATIC, verb, "filter", "filterlist=" + _name("filterlist", flist), *_filter_args(filt))
    if verb == "add" and filt.description:
        args.add("description=" + _description(filt.description))
    return args


def _filteraction(verb: str, action: FilterAction, old: Optional[FilterAction] = None) -> List[Args]:
    args = Args(*STATIC, verb, "filteraction", "name=" + _name("filteraction", (old or action).name))
    if old is not None and action.name != old.name:
        args.add("newname=" + _name("newname", action.name))
    if action.description or (old is not None and old.description != action.description):
        args.add("description=" + _description(action.description))
    args.add("qmpfs=" + _yes(action.qmpfs), "inpass=" + _yes(action.inpass), "soft=" + _yes(action.soft),
             "action=" + _choice("action", action.action, ACTIONS))
    if action.offers:
        if action.action != "negotiate":
            # [H] add filteraction remark 1: ignored unless negotiate; refuse rather than drop silently
            raise ValidationError("qmsecmethods", action.offers, "no offers unless action is negotiate")
        for offer in action.offers:
            if bool(offer.lifetime_kb) != bool(offer.lifetime_s):
                # netsh's grammar is `:k/s` ([H] add filteraction usage); a lone `:900s` is not documented ([I])
                raise ValidationError("methods", format_qmsecmethods([offer]), "both lifetimes for netsh, "
                                      "kilobytes and seconds, e.g. ESP[3DES,SHA1]:100000k/900s, or none",
                                      "netsh's qmsecmethods take a lifetime as k/s")
        args.add("qmsecmethods=" + format_qmsecmethods(action.offers))
    return [args]


def _rule_settings(args: Args, rule: Rule, old: Optional[Rule]) -> Args:
    def changed(attr):
        return old is None or getattr(rule, attr) != getattr(old, attr)
    if rule.default_response:
        return args
    if changed("filterlist"):
        args.add("filterlist=" + _name("filterlist", rule.filterlist))
    if changed("filteraction"):
        args.add("filteraction=" + _name("filteraction", rule.filteraction))
    if rule.tunnel and changed("tunnel"):
        args.add("tunnel=" + _value("tunnel", check_host("tunnel", rule.tunnel)))
    if changed("conntype"):
        args.add("conntype=" + _choice("conntype", rule.conntype, CONNTYPES))
    if changed("active"):
        args.add("activate=" + _yes(rule.active))
    if changed("description") and (rule.description or old is not None):
        args.add("description=" + _description(rule.description))
    return args


def _add_rule(policy: str, rule: Rule) -> Args:
    if rule.default_response:
        # the default response rule exists with its policy; netsh sets it ([D] set defaultrule)
        args = Args(*STATIC, "set", "defaultrule", "policy=" + _name("policy", policy),
                    "activate=" + _yes(rule.active))
    else:
        args = Args(*STATIC, "add", "rule", "name=" + _name("rule", rule.name), "policy=" + _name("policy", policy))
        _rule_settings(args, rule, None)
    _auth(args, rule)
    return args


def _set_rule(policy: str, rule: Rule, old: Optional[Rule]) -> Args:
    old = old or rule
    if rule.default_response:
        return _add_rule(policy, rule)
    args = Args(*STATIC, "set", "rule", "name=" + _name("rule", old.name), "policy=" + _name("policy", policy))
    if rule.name != old.name:
        args.add("newname=" + _name("newname", rule.name))
    _rule_settings(args, rule, old if old is not rule else None)
    if rule.auth != old.auth or old is rule:
        # [H] dynamic set rule remark 8: "All authentication methods are overwritten with the stated list"
        _auth(args, rule)
    return args


def _delete_rule(policy: str, rule: Rule) -> Args:
    if rule.default_response:
        return Args(*STATIC, "set", "defaultrule", "policy=" + _name("policy", policy), "activate=no")
    return Args(*STATIC, "delete", "rule", "name=" + _name("rule", rule.name), "policy=" + _name("policy", policy))


# --- dynamic rules -------------------------------------------------------------------------------------

def _dynamic(verb: str, rule: DynamicRule) -> Args:
    """`netsh ipsec dynamic add|delete rule` ([H] add rule; [D] delete rule takes the identifiers)."""
    args = Args(*DYNAMIC, verb, "rule", *_filter_args(rule.filter),
                "conntype=" + _choice("conntype", rule.conntype, CONNTYPES))
    if verb == "add":
        args.add("mmpolicy=" + _name("mmpolicy", _rule_mmpolicy(rule)),
                 "actioninbound=" + _choice("actioninbound", rule.inbound, ACTIONS),
                 "actionoutbound=" + _choice("actionoutbound", rule.outbound, ACTIONS))
    return args


# --- dispatch --------------------------------------------------------------------------------------------

def _render(change: Change) -> List[Args]:
    op, obj, parent, old = change.op, change.obj, change.parent, change.old
    if op == "add_policy":
        return _add_policy(obj)
    if op == "set_policy":
        return _set_policy(obj, old)
    if op == "delete_policy":
        return [Args(*STATIC, "delete", "policy", "name=" + _name("policy", obj.name))]
    if op in ("assign", "unassign"):
        return _assign(obj, op == "assign")
    if op == "add_filterlist":
        return _add_filterlist(obj)
    if op == "set_filterlist":
        return _set_filterlist(obj, old)
    if op == "delete_filterlist":
        return [Args(*STATIC, "delete", "filterlist", "name=" + _name("filterlist", obj.name))]
    if op in ("add_filter", "delete_filter"):
        return [_filter(op.split("_")[0], parent, obj)]
    if op in ("add_filteraction", "set_filteraction"):
        return _filteraction(op.split("_")[0], obj, old)
    if op == "delete_filteraction":
        return [Args(*STATIC, "delete", "filteraction", "name=" + _name("filteraction", obj.name))]
    if op == "add_rule":
        return [_add_rule(parent, obj)]
    if op == "set_rule":
        return [_set_rule(parent, obj, old)]
    if op == "delete_rule":
        return [_delete_rule(parent, obj)]
    if op in ("add_dynamic", "delete_dynamic"):
        return [_dynamic(op.split("_")[0], obj)]
    raise IPsecError("netsh: no rendering for change op %r" % op)
