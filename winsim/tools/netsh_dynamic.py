"""`netsh ipsec dynamic`: rules and main-mode policies in the PolicyAgent's memory (the SPD).

Grammar: [D] learn.microsoft.com "netsh ipsec" (Windows Commands) and the tool's own usage text [H].
Dynamic settings exist only while the service runs ([D] cc739550);
`show rule|all` prints exactly the layout of tests/fixtures/toolout/netsh_dynamic_show_rule.txt,
which the engine's toolout parser reads (that layout is itself [I]: no real capture is public).
Labels and headings are printed in the host's display language (personalities.NETSH_LABELS).
`show all` ends with an IPsec statistics part, printed also when there is no dynamic policy; its
counters are named after the main-mode statistics of IP Security Monitor ([D] "Viewing main mode and
quick mode statistics in IP Security Monitor", technet cc737334); heading, wording, order and layout
are [I], and winsim's counters are all 0 (it negotiates nothing).
"""
from dataclasses import replace
from typing import Dict, Sequence

from ..state.model import DynamicRule, Filter, name_key
from ..state.spd import DynamicEntry, MmPolicy
from .netsh_params import (
    BAD_SYNTAX, NetshError, Tag, address, auth_methods, check_generation, check_ports, choice, integer,
    ipsec_error, lookup, parse_tags, port, protocol, yesno)

# [I] error numbers invented for winsim; no dynamic-context error text or number is attested.
SERVICE_DOWN, RULE_EXISTS, RULE_MISSING, MM_EXISTS, MM_MISSING, MM_IN_USE, NOT_EMULATED = (
    5088, 5089, 5090, 5091, 5092, 5093, 5099)

ADD_MMPOLICY = tuple(Tag(n) for n in ("name", "qmpermm", "mmlifetime", "softsaexpirationtime", "mmsecmethods"))
DELETE_MMPOLICY = (Tag("name"),)
SHOW_MMPOLICY = (Tag("name"),)
RULE = tuple(Tag(n, repeat=n == "rootca") for n in (
    "srcaddr", "dstaddr", "mmpolicy", "qmpolicy", "protocol", "srcport", "dstport", "mirrored", "conntype",
    "actioninbound", "actionoutbound", "srcmask", "dstmask", "tunneldstaddress", "kerberos", "psk", "rootca"))
DELETE_RULE = tuple(Tag(n) for n in (
    "srcaddr", "dstaddr", "protocol", "srcport", "dstport", "mirrored", "conntype", "srcmask", "dstmask",
    "tunneldstaddress"))
SHOW_RULE = tuple(Tag(n) for n in ("type", "srcaddr", "dstaddr", "srcmask", "dstmask", "protocol", "srcport",
                                   "dstport", "actioninbound", "actionoutbound", "resolvedns"))
SET_CONFIG = (Tag("property"), Tag("value"))
ACTIONS = ("permit", "block", "negotiate")


class DynamicContext:
    def __init__(self, host):
        self.host = host

    def run(self, words: Sequence[str]) -> str:
        if not words:
            raise NetshError("The following command was not found: ipsec dynamic.")
        if lookup(words, NOT_EMULATED_COMMANDS):
            raise ipsec_error(NOT_EMULATED, "ipsec dynamic %s is not emulated by winsim." % " ".join(words[:2]).lower())
        found = lookup(words, HANDLERS)
        if found is None:
            raise NetshError("The following command was not found: ipsec dynamic %s." % " ".join(words))
        handler, verb, noun = found
        if not self.host.agent_running:
            # [D] cc739550: dynamic settings take effect only while the IPsec service runs.
            raise ipsec_error(SERVICE_DOWN, "The IPsec Policy Agent service is not running.")
        if verb in ("add", "delete") or (verb, noun) == ("set", "config"):
            handler(self, words[2:], apply=False)      # validate first: only real changes count as steps
            self.host.check_fault(lambda: ipsec_error(SERVICE_DOWN, "The IPsec Policy Agent service is not running."))
            handler(self, words[2:], apply=True)
            return ""
        return handler(self, words[2:])

    # -- main mode policies -------------------------------------------------------------------
    def add_mmpolicy(self, args, apply):
        values = parse_tags(args, ADD_MMPOLICY, required=("name",))
        name = str(values["name"])
        if name_key(name) in self.host.mmpolicies:
            raise ipsec_error(MM_EXISTS, "Main mode policy \"%s\" already exists." % name)
        policy = MmPolicy(
            name=name,
            qmpermm=integer("qmpermm", str(values.get("qmpermm", 0))),
            mmlifetime=integer("mmlifetime", str(values.get("mmlifetime", 480)), 1),
            softsaexpirationtime=integer("softsaexpirationtime", str(values.get("softsaexpirationtime", 0))),
            mmsecmethods=str(values.get("mmsecmethods", "")))
        if apply:
            self.host.mmpolicies[name_key(name)] = policy
            self.host.mark_changed()

    def delete_mmpolicy(self, args, apply):
        tokens = [t for t in args if t.lower() != "all"]
        if len(tokens) != len(args):
            if tokens:
                raise NetshError(BAD_SYNTAX)
            victims = [k for k in self.host.mmpolicies if not self._mm_users(k)]
        else:
            values = parse_tags(tokens, DELETE_MMPOLICY, required=("name",))
            key = name_key(str(values["name"]))
            if key not in self.host.mmpolicies:
                raise ipsec_error(MM_MISSING, "Main mode policy \"%s\" does not exist." % values["name"])
            if self._mm_users(key):
                raise ipsec_error(MM_IN_USE, "Main mode policy \"%s\" is used by a rule." % values["name"])
            victims = [key]
        if apply:
            for key in victims:
                del self.host.mmpolicies[key]
            self.host.mark_changed()

    def _mm_users(self, key):
        return [e for e in self.host.dynamic if name_key(e.mmpolicy) == key]

    # -- rules --------------------------------------------------------------------------------
    def _rule_filter(self, values) -> Dict[str, object]:
        masks = {k: (str(values[k]) if k in values else None) for k in ("srcmask", "dstmask")}
        src = address("srcaddr", str(values["srcaddr"]), "srcmask", masks["srcmask"])
        dst = address("dstaddr", str(values["dstaddr"]), "dstmask", masks["dstmask"])
        for tag, side in (("srcaddr", src), ("dstaddr", dst)):
            check_generation(self.host, tag, str(values[tag]), side)
            if side.kind in ("dns", "server"):
                raise ipsec_error(NOT_EMULATED, "%s=%s: DNS names and server types are not emulated by winsim "
                                  "in the dynamic context." % (tag, values[tag]))
        if "tunneldstaddress" in values:
            raise ipsec_error(NOT_EMULATED, "Tunnel rules are not emulated by winsim.")
        fields = {"src": src, "dst": dst,
                  "protocol": protocol("protocol", str(values.get("protocol", "ANY"))),
                  "src_port": port("srcport", str(values.get("srcport", 0))),
                  "dst_port": port("dstport", str(values.get("dstport", 0))),
                  "mirrored": yesno("mirrored", str(values.get("mirrored", "yes"))),
                  "conntype": choice("conntype", str(values.get("conntype", "all")), ("lan", "dialup", "all"))}
        check_ports(fields["protocol"], fields["src_port"], fields["dst_port"])
        return fields

    @staticmethod
    def _identity(rule: DynamicRule):
        return rule.filter.key() + (rule.conntype,)

    def add_rule(self, args, apply):
        values = parse_tags(args, RULE, required=("srcaddr", "dstaddr", "mmpolicy"))
        fields = self._rule_filter(values)
        mm = str(values["mmpolicy"])
        if name_key(mm) not in self.host.mmpolicies:
            raise ipsec_error(MM_MISSING, "Main mode policy \"%s\" does not exist." % mm)
        if "qmpolicy" in values:
            raise ipsec_error(NOT_EMULATED, "Quick mode policies are not emulated by winsim.")
        auth_methods(values, ())        # validated; the SPD keeps them, the model does not
        conntype = fields.pop("conntype")
        rule = DynamicRule(
            filter=Filter(**fields), conntype=conntype,
            inbound=choice("actioninbound", str(values.get("actioninbound", "negotiate")), ACTIONS),
            outbound=choice("actionoutbound", str(values.get("actionoutbound", "negotiate")), ACTIONS))
        if any(self._identity(e.rule) == self._identity(rule) for e in self.host.dynamic):
            raise ipsec_error(RULE_EXISTS, "A rule with the same filter already exists.")
        if apply:
            # the rule keeps its main-mode policy (show rule prints it): SimHost.state() shows it too
            mm_name = self.host.mmpolicies[name_key(mm)].name
            self.host.dynamic.append(DynamicEntry(replace(rule, mmpolicy=mm_name), mmpolicy=mm_name))
            self.host.mark_changed()

    def delete_rule(self, args, apply):
        # The identifiers of a dynamic rule ([H] set rule usage: srcaddr dstaddr protocol srcport
        # dstport mirrored conntype are not optional); ports may be left out for protocols without
        # ports, where they can only be 0 ([H] "acceptable value is TCP or UDP") [I].
        values = parse_tags(args, DELETE_RULE, required=("srcaddr", "dstaddr", "protocol", "mirrored", "conntype"))
        fields = self._rule_filter(values)
        conntype = fields.pop("conntype")
        wanted = Filter(**fields).key() + (conntype,)
        kept = [e for e in self.host.dynamic if self._identity(e.rule) != wanted]
        if len(kept) == len(self.host.dynamic):
            raise ipsec_error(RULE_MISSING, "The specified rule does not exist.")
        if apply:
            self.host.dynamic[:] = kept
            self.host.mark_changed()

    def delete_all(self, args, apply):
        parse_tags(args, ())
        if apply:
            self.host.dynamic[:] = []
            self.host.mmpolicies.clear()
            self.host.mark_changed()

    def set_config(self, args, apply):
        """`set config ipsecexempt value=N` writes NoDefaultExempt ([D] cc756041: 0-3, reboot needed)."""
        values = parse_tags(args, SET_CONFIG, required=("property", "value"))
        prop = str(values["property"]).lower()
        if prop != "ipsecexempt":
            raise ipsec_error(NOT_EMULATED, "set config property=%s is not emulated by winsim." % prop)
        number = integer("value", str(values["value"]), 0, 3)
        if apply:
            from ..state.registry import RegValue
            self.host.hive.tree.set("HKEY_LOCAL_MACHINE\\" + self.host.profile.exempt_key, "NoDefaultExempt",
                                    RegValue("REG_DWORD", number))
            self.host.hive.save()
            self.host.mark_changed()

    # -- show ---------------------------------------------------------------------------------
    def show_rule(self, args):
        values = parse_tags(args, SHOW_RULE)
        if "type" in values and choice("type", str(values["type"]), ("tunnel", "transport")) == "tunnel":
            return ""
        if set(values) - {"type"}:
            raise ipsec_error(NOT_EMULATED, "show rule filters other than type= are not emulated by winsim.")
        return render_rules(self.host.dynamic, self.host.profile.label)

    def show_mmpolicy(self, args):
        """`show mmpolicy all|name=X`: the fixture's Main Mode Policies section ([I] layout; nothing at all when
        there is none, where real netsh may print a sentence or an error). The engine's read trip runs
        `show mmpolicy all` and reads only the name lines."""
        tokens = [t for t in args if t.lower() != "all"]
        values = parse_tags(tokens, SHOW_MMPOLICY)
        chosen = list(self.host.mmpolicies.values())
        if "name" in values:
            chosen = [p for p in chosen if name_key(p.name) == name_key(str(values["name"]))]
            if not chosen:
                raise ipsec_error(MM_MISSING, "Main mode policy \"%s\" does not exist." % values["name"])
        return render_mmpolicies(chosen, self.host.profile.label)

    def show_all(self, args):
        """Main-mode policies, rules, then the statistics part, which is there even with no policy."""
        parse_tags(args, (Tag("resolvedns"),))
        label = self.host.profile.label
        listed = render_mmpolicies(list(self.host.mmpolicies.values()), label) + render_rules(self.host.dynamic, label)
        return listed + ("\n" if listed.strip() else "") + render_statistics(label)


# -- the fixture layout ---------------------------------------------------------------------------

def _same(text: str) -> str:
    return text


def _line(label, value) -> str:
    return "%-23s: %s\n" % (label, value)


# [D] cc737334, IP Security Monitor's main-mode (IKE) statistics, in the page's order.
STATISTICS = ("Active Acquire", "Active Receive", "Acquire Failures", "Receive Failures", "Send Failures",
              "Acquire Heap Size", "Receive Heap Size", "Authentication Failures")


def render_statistics(label=_same) -> str:
    heading = label("IPsec Statistics")
    return "%s\n%s\n\n%s" % (heading, "-" * len(heading), "".join(_line(name, 0) for name in STATISTICS))


PROTOCOL_NAMES = {0: "ANY", 1: "ICMP", 6: "TCP", 17: "UDP", 255: "RAW"}


def _side(addr):
    if addr.kind == "any":
        return "<Any IP Address>", "0.0.0.0"
    if addr.kind == "me":
        return "<My IP Address>", "255.255.255.255"
    if addr.kind == "range":
        return "%s-%s" % (addr.value, addr.end), "NONE"
    return addr.value, addr.mask or "NONE"


def render_rule(entry: DynamicEntry, label=_same) -> str:
    rule, flt = entry.rule, entry.rule.filter
    src, src_mask = _side(flt.src)
    dst, dst_mask = _side(flt.dst)

    def _line(name, value):
        return "%-23s: %s\n" % (label(name), value)
    return "".join((
        _line("Rule Type", "Transport"), _line("Connection Type", rule.conntype.upper()),
        _line("Source Address", src), _line("Source Mask", src_mask),
        _line("Destination Address", dst), _line("Destination Mask", dst_mask),
        _line("Protocol", PROTOCOL_NAMES.get(flt.protocol, flt.protocol)),
        _line("Source Port", flt.src_port or "ANY"), _line("Destination Port", flt.dst_port or "ANY"),
        _line("Mirrored", "YES" if flt.mirrored else "NO"),
        _line("Main Mode Policy", entry.mmpolicy or "NONE"), _line("Quick Mode Policy", entry.qmpolicy or "NONE"),
        _line("Inbound Action", rule.inbound.upper()), _line("Outbound Action", rule.outbound.upper()),
    ))


def _heading(text: str) -> str:
    return "%s\n%s\n\n" % (text, "-" * len(text))


def render_rules(entries, label=_same) -> str:
    """Empty when there are no rules ([I], what the toolout parser reads as "none")."""
    if not entries:
        return ""
    return _heading(label("Rules")) + "\n".join(render_rule(e, label) for e in entries)


def render_mmpolicies(policies, label=_same) -> str:
    if not policies:
        return ""

    def line(name, value):
        return _line(label(name), value)
    blocks = ["".join((line("Policy Name", p.name), line("Soft SA Expiration Time", p.softsaexpirationtime),
                       line("Main Mode Life Time", p.mmlifetime), line("QM Per MM", p.qmpermm)))
              for p in policies]
    return _heading(label("Main Mode Policies")) + "\n".join(blocks) + "\n"


HANDLERS = {
    ("add", "mmpolicy"): DynamicContext.add_mmpolicy, ("delete", "mmpolicy"): DynamicContext.delete_mmpolicy,
    ("add", "rule"): DynamicContext.add_rule, ("delete", "rule"): DynamicContext.delete_rule,
    ("delete", "all"): DynamicContext.delete_all, ("set", "config"): DynamicContext.set_config,
    ("show", "rule"): DynamicContext.show_rule, ("show", "mmpolicy"): DynamicContext.show_mmpolicy,
    ("show", "all"): DynamicContext.show_all,
}

# Real commands of the dynamic context ([D] learn netsh-ipsec) that winsim does not emulate: they
# fail with a clear error instead of pretending the command does not exist.
NOT_EMULATED_COMMANDS = {(verb, noun): None for verb, noun in (
    ("add", "qmpolicy"), ("set", "qmpolicy"), ("delete", "qmpolicy"), ("set", "mmpolicy"), ("set", "rule"),
    ("show", "qmpolicy"), ("show", "mmfilter"), ("show", "qmfilter"), ("show", "stats"), ("show", "mmsas"),
    ("show", "qmsas"), ("show", "config"))}
