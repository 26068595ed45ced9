"""ipseccmd.exe (XP SP2 Support Tools) and ipsecpol.exe (Windows 2000 Resource Kit).

Grammar: docs/windows-tools.md "ipseccmd and ipsecpol" ([D] W2K Resource Kit "IPSecPol Syntax", KB 813878). `-w` selects static mode
(`REG` local registry, `DS[:domain]` the directory); without it the command is dynamic and lives in
the PolicyAgent's memory. Filterspecs are read by winsim's own parser (tools/filterspec.py).

Assumed semantics [I], as the engine's ipseccmd dialect assumes them: `-p P -r R -f ... -n ...`
creates policy P when missing and creates or replaces rule R with its own filter list and its own
filter action, both named after the rule (the KB's netdiag sample [V] shows a different Policy Id
for each of its two `-n BLOCK` rules, so each rule got its own negotiation policy); `-o` deletes
the named rules with their own lists and actions, and the policy once no rule is left (or when no
`-r` is given); `-x` assigns (unassigning the previous policy, KB), `-y` unassigns; `-u` drops all
dynamic policy (KB). ipseccmd's console texts were never captured: success prints nothing, errors print
`ERROR: ...` and exit 1 [I]. `show filters` prints the layout of
tests/fixtures/toolout/ipseccmd_show_filters.txt (itself [I]).

List flags: `-n NegotiationPolicyList`, `-a AuthMethodList` and `-1s SecurityMethodList` each take
"one or more ... separated by spaces" ([D] Windows XP command-line reference "Ipseccmd",
learn.microsoft.com/previous-versions/windows/it-pro/windows-xp/bb490922), like `-f`; so the items
run until the next argument that starts with `-` [I], whether they come as separate arguments or in
one quoted argument ([E] CERTitude `-n "esp[3des,sha] 3600S/100000K"`). Authentication items:
`PRESHARE:"key"` and `CERT:"CA"` ([E] a VPN dialer's generated `-a CERT:"ca1" CERT:"ca2"` and
`-a PRESHARE:"key"`), `p:"key"` ([E] CERTitude), `KERBEROS`, `K` and `C:"CA"` [I, by analogy],
case-insensitive; without `-a` a rule authenticates with Kerberos, the default method ([D] RK "All
flags except -f have defaults"; XP help: Kerberos V5 "is the default authentication technology").
"""
import re
from dataclasses import replace
from typing import Dict, List, Optional, Tuple

from ..result import Result
from ..state.model import (
    DEFAULT_POLLING_MINUTES, KERBEROS, AuthMethod, DynamicRule, FilterAction, FilterList, HostState, Policy,
    Rule, name_key)
from ..state.spd import DynamicEntry
from . import filterspec
from .netsh_params import NetshError, qm_offers
from .netsh_static import new_guid, with_default_response, without_policy

VALUE_FLAGS = ("-w", "-p", "-r", "-t", "-1k", "-1f", "-1e")
LIST_FLAGS = ("-n", "-a", "-1s")    # -1s (main mode) is read but not kept: the store model has no place for it [I]
SWITCHES = ("-x", "-y", "-o", "-u", "-soft", "-lan", "-dialup", "-confirm", "-1p")
STATIC_ONLY = ("-p", "-r", "-x", "-y", "-o")
SHOW_WORDS = ("filters", "policies", "auth", "stats", "sas", "all")


class IpseccmdError(Exception):
    def __init__(self, message: str):
        super().__init__(message)
        self.text = "ERROR: %s\n" % message        # [I] wording and prefix not verified


class Args:
    def __init__(self):
        self.values: Dict[str, str] = {}
        self.lists: Dict[str, List[str]] = {}
        self.rules: List[str] = []
        self.switches: List[str] = []
        self.specs = []
        self.auth: Optional[Tuple[AuthMethod, ...]] = None     # None: no -a given


def _items(argv: List[str], i: int, flag: str) -> Tuple[List[str], int]:
    """The items after the list flag at argv[i - 1]: every argument up to the next one that starts
    with `-` [I]."""
    start = i
    while i < len(argv) and not argv[i].startswith("-"):
        i += 1
    if i == start:
        raise IpseccmdError("%s needs at least one item." % flag)
    return argv[start:i], i


def parse_args(argv: List[str]) -> Args:
    args = Args()
    i = 0
    while i < len(argv):
        flag = argv[i].lower()
        if flag == "-f":
            items, i = _items(argv, i + 1, "-f")
            for item in items:
                try:
                    args.specs.append(filterspec.parse(item))
                except filterspec.FilterspecError as err:
                    raise IpseccmdError("invalid filter specification %r: %s" % (item, err)) from None
            continue
        if flag in LIST_FLAGS:
            if flag in args.lists:
                raise IpseccmdError("%s given twice." % flag)
            args.lists[flag], i = _items(argv, i + 1, flag)
            continue
        if flag in SWITCHES:
            if flag in ("-1p", "-soft", "-confirm", "-lan", "-dialup") or flag not in args.switches:
                args.switches.append(flag)
            i += 1
            continue
        if flag not in VALUE_FLAGS:
            raise IpseccmdError("unknown flag %r." % argv[i])
        if i + 1 >= len(argv):
            raise IpseccmdError("%s needs a value." % flag)
        if flag == "-r":
            args.rules.append(argv[i + 1])
        elif flag in args.values:
            raise IpseccmdError("%s given twice." % flag)
        else:
            args.values[flag] = argv[i + 1]
        i += 2
    if "-lan" in args.switches and "-dialup" in args.switches:
        raise IpseccmdError("-lan and -dialup cannot be combined.")
    if "-a" in args.lists:
        args.auth = tuple(_auth_method(item) for item in args.lists["-a"])
    return args


# PRESHARE:/CERT: [E], P: [E], KERBEROS, K, C: [I]; the value may keep its quotes [I]
AUTH_WORDS = {"PRESHARE": "psk", "P": "psk", "KERBEROS": "kerberos", "K": "kerberos", "CERT": "cert", "C": "cert"}
AUTH_ACCEPTED = 'PRESHARE:"key" (P:"key"), KERBEROS (K) or CERT:"CA" (C:"CA")'


def _auth_method(item: str) -> AuthMethod:
    word, colon, value = item.partition(":")
    kind = AUTH_WORDS.get(word.upper())
    if kind is None:
        # only the word before ':' is echoed: what follows may be a mistyped key
        raise IpseccmdError("unknown authentication method %r in -a: use %s." % (word, AUTH_ACCEPTED))
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if kind == "kerberos" and colon:
        raise IpseccmdError("%s takes no value: use %s." % (word, AUTH_ACCEPTED))
    if kind != "kerberos" and not value:
        raise IpseccmdError("%s needs a value after ':': use %s." % (word, AUTH_ACCEPTED))
    return AuthMethod(kind, value)


def _action(args: Args, kind: str) -> Tuple[str, tuple]:
    """(action, offers) from -n and the bracket kind of the filterspecs."""
    items = args.lists.get("-n", [])
    words = " ".join(items).upper().split()
    if kind == "block" or words == ["BLOCK"]:
        return "block", ()
    if kind == "pass" or words == ["PASS"]:
        return "permit", ()
    if {"BLOCK", "PASS"} & set(words):
        raise IpseccmdError("-n BLOCK and -n PASS stand alone, not in a list of security methods.")
    offers = ()
    if items:
        try:
            offers = qm_offers("-n", _ipsecpol_offers(" ".join(items)))
        except NetshError:
            raise IpseccmdError("invalid negotiation policy list %r." % " ".join(items)) from None
    return "negotiate", offers


LIFETIME = re.compile(r"^\d+[SK](?:/\d+[SK])?$", re.IGNORECASE)
ATTACHED_LIFETIME = re.compile(r"^(.*\])(\d+[SK](?:/\d+[SK])?)$", re.IGNORECASE)


def _ipsecpol_offers(text: str) -> str:
    """ipsecpol writes an offer as `ESP[3DES,SHA] 3600S/100000K` ([E] CERTitude), the lifetimes
    also attached, `ESP[..]3600S/100000K` ([E] VPN dialer), or one of them alone [I]; netsh as
    `ESP[3DES,SHA1]:100000k/3600s`, which `qm_offers` reads."""
    offers: List[List[str]] = []
    for word in text.upper().split():
        if LIFETIME.match(word):
            if not offers or offers[-1][1]:
                raise NetshError("a lifetime %r without its security method" % word)
            offers[-1][1] = word
            continue
        attached = ATTACHED_LIFETIME.match(word)
        body, life = attached.groups() if attached else (word, "")
        offers.append([body.replace("SHA]", "SHA1]").replace("SHA,", "SHA1,"), life])
    return " ".join(body + _netsh_lifetime(life) for body, life in offers)


def _netsh_lifetime(life: str) -> str:
    if not life:
        return ""
    parts = dict((part[-1], part) for part in life.lower().split("/"))
    return ":%s/%s" % (parts.get("k", ""), parts.get("s", ""))


def _conntype(args: Args) -> str:
    return "lan" if "-lan" in args.switches else "dialup" if "-dialup" in args.switches else "all"


# -- static mode ------------------------------------------------------------------------------------

def _store(host, args: Args):
    kind, _, domain = args.values["-w"].partition(":")
    kind = kind.upper()
    if kind == "REG" and not domain:
        return host.local_store()
    if kind == "DS":
        store = host.domain_store(domain or None)
        if store is None:
            raise IpseccmdError("could not open the directory policy store%s."
                                % (" of %s" % domain if domain else ""))
        return store
    raise IpseccmdError("-w takes REG or DS[:domain], not %r." % args.values["-w"])


def _policy_arg(args: Args) -> Tuple[str, Optional[int]]:
    if "-p" not in args.values:
        raise IpseccmdError("static mode (-w) needs a policy name (-p).")
    name, colon, poll = args.values["-p"].rpartition(":")
    if colon and poll.isdigit():
        return name, int(poll)
    return args.values["-p"], None


def _unused(state: HostState, name: str, kind: str) -> bool:
    return not state.users_of(**{kind: name})


def _delete_rules(state: HostState, policy: Policy, names: List[str]) -> HostState:
    doomed = []
    for rule_name in names:
        rule = policy.rule(rule_name)
        if rule is None or rule.default_response:
            raise IpseccmdError("rule %r does not exist in policy %r." % (rule_name, policy.name))
        doomed.append(rule)
    kept = tuple(r for r in policy.rules if r not in doomed)
    if not names or not [r for r in kept if not r.default_response]:
        state = without_policy(state, policy)
        doomed = [r for r in policy.rules if not r.default_response]
    else:
        state = replace(state, policies=tuple(replace(p, rules=kept) if p is policy else p for p in state.policies))
    for rule in doomed:
        if rule.filterlist and _unused(state, rule.filterlist, "filterlist"):
            state = replace(state, filterlists=tuple(f for f in state.filterlists
                                                     if name_key(f.name) != name_key(rule.filterlist)))
        if rule.filteraction and _unused(state, rule.filteraction, "filteraction"):
            state = replace(state, filteractions=tuple(f for f in state.filteractions
                                                       if name_key(f.name) != name_key(rule.filteraction)))
    return state


def _put_named(state: HostState, field: str, obj) -> HostState:
    """Add `obj` to the state's filter lists or actions, or replace the one of that name in place
    (keeping its GUID)."""
    items = getattr(state, field)
    old = next((item for item in items if name_key(item.name) == name_key(obj.name)), None)
    if old is None:
        return replace(state, **{field: items + (obj,)})
    return replace(state, **{field: tuple(replace(obj, name=old.name, guid=old.guid) if item is old else item
                                          for item in items)})


def _put_rule(host, state: HostState, policy: Policy, rule_name: str, args: Args) -> Tuple[HostState, Policy]:
    kinds = {spec.kind for spec in args.specs}
    if len(kinds) > 1:
        raise IpseccmdError("block [..], pass (..) and plain filter specifications cannot be mixed in one rule.")
    action, offers = _action(args, kinds.pop())
    filters = tuple(replace(spec.filter, guid=new_guid()) for spec in args.specs)
    state = _put_named(state, "filterlists", FilterList(rule_name, filters, guid=new_guid()))
    state = _put_named(state, "filteractions", FilterAction(rule_name, action, offers=offers,
                                                            soft="-soft" in args.switches, guid=new_guid()))
    # the rule's authentication methods travel in its NFA blob (winsim/state/store.py writes Rule.auth)
    rule = Rule(rule_name, filterlist=state.filterlist(rule_name).name, filteraction=state.filteraction(rule_name).name,
                conntype=_conntype(args), auth=args.auth or (KERBEROS,), guid=new_guid())
    old = policy.rule(rule_name)
    if old is not None:
        # re-running -r R replaces the rule, its methods too (an omitted -a means the default) [I]
        rules = tuple(replace(rule, guid=old.guid) if r is old else r for r in policy.rules)
    else:
        rules = policy.rules + (rule,)
    new_policy = replace(policy, rules=rules)
    state = replace(state, policies=tuple(new_policy if p is policy else p for p in state.policies))
    return state, new_policy


def run_static(host, args: Args) -> str:
    if "-confirm" in args.switches or "-u" in args.switches:
        raise IpseccmdError("-confirm and -u belong to dynamic mode (no -w).")
    store = _store(host, args)
    name, poll = _policy_arg(args)
    state = store.load()
    policy = state.policy(name)
    if "-o" in args.switches:
        if policy is None:
            raise IpseccmdError("policy %r does not exist." % name)
        state = _delete_rules(state, policy, args.rules)
    else:
        if args.specs:
            if len(args.rules) > 1:
                raise IpseccmdError("filters (-f) belong to one rule (-r).")
            if policy is None:
                active = host.profile.blob_flavor != "modern"
                policy = Policy(name, polling_interval=poll if poll is not None else DEFAULT_POLLING_MINUTES,
                                guid=new_guid())
                state, policy = with_default_response(state, policy, active, host.profile.blob_flavor)
                state = replace(state, policies=state.policies + (policy,))
            rule_name = args.rules[0] if args.rules else "%s Rule" % name      # [I] default rule name
            state, policy = _put_rule(host, state, policy, rule_name, args)
        elif policy is None:
            raise IpseccmdError("policy %r does not exist." % name)
        elif args.rules:
            raise IpseccmdError("a rule (-r) needs filters (-f) or -o.")
        if poll is not None and poll != policy.polling_interval:
            new = replace(policy, polling_interval=poll)
            state = replace(state, policies=tuple(new if p is policy else p for p in state.policies))
            policy = new
        if "-x" in args.switches:
            state = replace(state, assigned=policy.name)
        if "-y" in args.switches and name_key(state.assigned) == name_key(policy.name):
            state = replace(state, assigned="")
        if not (args.specs or poll is not None or {"-x", "-y"} & set(args.switches)):
            raise IpseccmdError("nothing to do: give -f, -x, -y or -o.")
    host.check_fault(lambda: IpseccmdError("could not open the policy store (access is denied)."))
    store.save(state)
    return ""


# -- dynamic mode -----------------------------------------------------------------------------------

def run_dynamic(host, args: Args) -> str:
    if not host.agent_running:
        raise IpseccmdError("the IPSec Policy Agent service is not running.")
    if "-u" in args.switches:
        if args.specs:
            raise IpseccmdError("-u cannot be combined with -f.")
        host.check_fault(lambda: IpseccmdError("could not reach the IPSec Policy Agent."))
        host.dynamic[:] = []
        host.mmpolicies.clear()
        host.mark_changed()
        return ""
    if not args.specs:
        raise IpseccmdError("dynamic mode needs filters (-f) or -u.")
    new = []
    # -a and -1s are read (parse_args checks them) but not kept: winsim's SPD holds no main-mode
    # settings for dynamic rules, as DynamicRule has none [I]
    for spec in args.specs:
        action, _ = _action(args, spec.kind)
        rule = DynamicRule(filter=replace(spec.filter, guid=new_guid()), inbound=action, outbound=action,
                           conntype=_conntype(args))
        identity = rule.filter.key() + (rule.conntype,)
        if any(e.rule.filter.key() + (e.rule.conntype,) == identity for e in host.dynamic + new):
            raise IpseccmdError("the filter %s already exists." % spec.filter)
        new.append(DynamicEntry(rule))
    host.check_fault(lambda: IpseccmdError("could not reach the IPSec Policy Agent."))
    host.dynamic.extend(new)
    host.mark_changed()
    return ""


# -- show ([I] layout of the toolout fixture) -------------------------------------------------------

def _line(label, value) -> str:
    return "%-17s: %s\n" % (label, value)


def _side(addr):
    if addr.kind == "any":
        return "<Any IP Address>", "0.0.0.0"
    if addr.kind == "me":
        return "<My IP Address>", "255.255.255.255"
    return addr.value, addr.mask or "255.255.255.255"


ACTION_WORDS = {"block": "Block", "permit": "Pass", "negotiate": "Negotiate"}


def render_filters(host) -> str:
    blocks = []
    for entry in host.dynamic:
        rule, flt = entry.rule, entry.rule.filter
        if flt.src.kind == "range" or flt.dst.kind == "range":
            continue        # [I] not expressible in this layout; only netsh adds ranges
        src, src_mask = _side(flt.src)
        dst, dst_mask = _side(flt.dst)
        blocks.append("".join((
            _line("Filter Type", "Transport"), _line("Src Addr", src), _line("Src Mask", src_mask),
            _line("Dest Addr", dst), _line("Dest Mask", dst_mask), _line("Src Port", flt.src_port),
            _line("Dest Port", flt.dst_port), _line("Protocol", flt.protocol),
            _line("Mirrored", "Yes" if flt.mirrored else "No"), _line("Connection Type", rule.conntype.title()),
            _line("Inbound Action", ACTION_WORDS[rule.inbound]), _line("Outbound Action", ACTION_WORDS[rule.outbound]),
        )))
    return "\nQuick Mode Filters:\n\n" + "\n".join(blocks)


def render_policies(host) -> str:
    state = host.local_store().load()
    blocks = ["".join((_line("Policy Name", p.name), _line("Assigned", "Yes" if name_key(p.name) == name_key(state.assigned) else "No"),
                       _line("Rules", len([r for r in p.rules if not r.default_response]))))
              for p in state.policies]
    return "\nPolicies:\n\n" + "\n".join(blocks)     # [I]


def run_show(host, words: List[str]) -> str:
    chosen = set()
    for word in words:
        if word.lower() not in SHOW_WORDS:
            raise IpseccmdError("show takes %s, not %r." % (", ".join(SHOW_WORDS), word))
        chosen.add(word.lower())
    if not chosen:
        raise IpseccmdError("show needs one of %s." % ", ".join(SHOW_WORDS))
    if chosen & {"auth", "stats", "sas"}:
        raise IpseccmdError("winsim does not emulate ipseccmd show auth, stats or sas.")
    if not host.agent_running:
        raise IpseccmdError("the IPSec Policy Agent service is not running.")
    out = ""
    if chosen & {"filters", "all"}:
        out += render_filters(host)
    if chosen & {"policies", "all"}:
        out += render_policies(host)
    return out


def run(host, argv: List[str], stdin: str = "") -> Result:
    args = argv[1:]
    try:
        if args and args[0].startswith("\\\\"):
            raise IpseccmdError("winsim does not emulate remote computers (%s)." % args[0])
        if args and args[0].lower() == "show":
            return Result(stdout=run_show(host, args[1:]))
        if not args or args[0] in ("-?", "/?"):
            raise IpseccmdError("winsim does not print ipseccmd's usage text; see docs/windows-tools.md (ipseccmd and ipsecpol).")
        if args[0].lower() == "-file":
            raise IpseccmdError("winsim does not emulate batch mode (-file).")
        parsed = parse_args(args)
        if "-w" in parsed.values:
            return Result(stdout=run_static(host, parsed))
        static = [f for f in STATIC_ONLY if f in parsed.values or f in parsed.switches or (f == "-r" and parsed.rules)]
        if static:
            raise IpseccmdError("%s needs static mode (-w REG or -w DS)." % static[0])
        return Result(stdout=run_dynamic(host, parsed))
    except IpseccmdError as err:
        return Result(stderr=err.text, rc=1)
