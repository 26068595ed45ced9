"""`netsh ipsec static`: the stored policy (local registry store or the domain store).

Grammar: [D] "netsh ipsec" (learn.microsoft.com) and cc739550, [H]; behaviour: docs/windows-tools.md "netsh behaviour" [E] (success prints nothing; errors print
`ERR IPsec[NNNNN]`; `add filter` creates its list and accepts duplicates; `delete filter` matches the
given parameters; `delete policy` keeps filter lists and actions); assigning a policy unassigns the
previous one (KB 813878). Each command works on the store as a model.HostState: decode, derive the
new state with dataclasses.replace, encode back (the store object does the codec work).
"""
import time
import uuid
from dataclasses import replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..state.domain import DEFAULT_DOMAIN_POLICY
from ..state.model import (
    KERBEROS, Filter, FilterAction, FilterList, HostState, Policy, QmOffer, Rule, name_key)
from ..state.blobs import read_isakmp
from ..state.registry import LOCAL_ROOT
from .netsh_params import (
    NetshError, Tag, address, auth_methods, bad_value, canonical, check_generation, check_ports, choice,
    given_order, integer, ipsec_error, lookup, match_word, parse_tags, port, protocol, qm_offers,
    server_sides, yesno)

# Error numbers. Attested (netsh_static_errors_EVIDENCE.txt): 05005 05010 05014 05020 05049 05067
# 05068 05072 05073. The rest are [I]: invented for winsim, not seen on real Windows.
POLICY_EXISTS, FILTERLIST_EXISTS, FILTERACTION_EXISTS, RULE_EXISTS = 5005, 5010, 5014, 5020
FILTERLIST_MISSING, NO_FILTERLISTS, NO_FILTERACTIONS, NO_POLICIES, STORE_FAILED = 5049, 5067, 5068, 5072, 5073
POLICY_MISSING, FILTERACTION_MISSING, RULE_MISSING, NO_SUCH_FILTER = 5081, 5082, 5083, 5084   # [I]
FILTERLIST_IN_USE, FILTERACTION_IN_USE, FILTERLIST_EMPTY, NOT_EMULATED = 5085, 5086, 5087, 5099  # [I]
GPO_MISSING, GPO_LOCAL_STORE = 5088, 5089                                                        # [I]


def new_guid() -> str:
    """Windows tools write object GUIDs in lower case (docs/policy-store.md 2.1)."""
    return "{%s}" % uuid.uuid4()


# -- parameter tables ([D] "netsh ipsec") ----------------------------------------------------------

def _tags(*names: str, repeat: Tuple[str, ...] = ()) -> Tuple[Tag, ...]:
    return tuple(Tag(n, repeat=n in repeat) for n in names)


ADD_POLICY = _tags("name", "description", "mmpfs", "qmpermm", "mmlifetime", "activatedefaultrule",
                   "pollinginterval", "assign", "mmsecmethods")
SET_POLICY = _tags("name", "guid", "newname", "description", "mmpfs", "qmpermm", "mmlifetime",
                   "activatedefaultrule", "pollinginterval", "assign", "gponame", "mmsecmethods")
ADD_FILTERLIST = _tags("name", "description")
SET_FILTERLIST = _tags("name", "guid", "newname", "description")
FILTER = _tags("filterlist", "srcaddr", "dstaddr", "description", "protocol", "mirrored", "srcmask",
               "dstmask", "srcport", "dstport")
DELETE_FILTER = _tags("filterlist", "srcaddr", "dstaddr", "protocol", "mirrored", "srcmask", "dstmask",
                      "srcport", "dstport")
ADD_FILTERACTION = _tags("name", "description", "qmpfs", "inpass", "soft", "action", "qmsecmethods")
SET_FILTERACTION = _tags("name", "guid", "newname", "description", "qmpfs", "inpass", "soft", "action",
                         "qmsecmethods")
ADD_RULE = _tags("name", "policy", "filterlist", "filteraction", "tunnel", "conntype", "activate",
                 "description", "kerberos", "psk", "rootca", repeat=("rootca",))
SET_RULE = _tags("name", "id", "policy", "newname", "description", "filterlist", "filteraction", "tunnel",
                 "conntype", "activate", "kerberos", "psk", "rootca", repeat=("rootca",))
DELETE_BY_NAME = _tags("name")
DELETE_RULE = _tags("name", "id", "policy")
SET_STORE = _tags("location", "domain")
SET_BATCH = _tags("mode")
SHOW_POLICY = _tags("name", "level", "format", "wide")
SHOW_FILTERLIST = _tags("name", "rule", "level", "format", "resolvedns", "wide")
SHOW_FILTERACTION = _tags("name", "rule", "level", "format", "wide")
SHOW_RULE = _tags("name", "id", "policy", "type", "level", "format", "wide")
SHOW_ALL = _tags("format", "wide")
SHOW_GPO = _tags("name")

MUTATORS = ("add", "set", "delete")


class StaticContext:
    """One netsh process's view of `ipsec static`: the store selected with `set store` lasts for
    the rest of that process only (docs/windows-tools.md "Store selection", [I])."""

    def __init__(self, host):
        self.host = host
        self.store = host.local_store()

    # -- entry ----------------------------------------------------------------------------------
    def run(self, words: Sequence[str]) -> str:
        if not words:
            raise NetshError("The following command was not found: ipsec static.")
        if match_word(words[0], ("exportpolicy", "importpolicy")) and len(words[0]) > 1:
            # Honest refusal: the .ipsec file is a binary format winsim does not write.
            raise ipsec_error(NOT_EMULATED, "%s is not emulated by winsim." % words[0].lower())
        found = lookup(words, HANDLERS)
        if found is None:
            raise NetshError("The following command was not found: ipsec static %s." % " ".join(words))
        handler, verb, noun = found
        args = list(words[2:])
        if verb in MUTATORS and (verb, noun) not in (("set", "store"), ("set", "batch")):
            state = self.store.load()
            new_state = handler(self, state, args)
            # Only a valid command counts as a state-changing step for fault injection.
            self.host.check_fault(lambda: ipsec_error(STORE_FAILED, "The policy store could not be opened."))
            if new_state is not state:
                self.store.save(new_state)
            return ""
        return handler(self, self.store.load() if noun not in ("store", "batch") else None, args) or ""

    # -- store ----------------------------------------------------------------------------------
    def set_store(self, _state, args):
        values = parse_tags(args, SET_STORE, required=("location",))
        location = choice("location", str(values["location"]), ("local", "domain", "persistent"))
        if location == "local":
            self.store = self.host.local_store()
        elif location == "domain":
            store = self.host.domain_store(values.get("domain"))
            if store is None:
                raise ipsec_error(STORE_FAILED, "The policy store could not be opened.")
            self.store = store
        else:
            raise ipsec_error(NOT_EMULATED, "The persistent store is not emulated by winsim.")
        return ""

    def set_batch(self, _state, args):
        values = parse_tags(args, SET_BATCH, required=("mode",))
        choice("mode", str(values["mode"]), ("enable", "disable"))   # writes are immediate either way
        return ""

    def show_store(self, _state, args):
        parse_tags(args, ())
        return "Current Store          : %s\n" % self.store.label


# -- policies -------------------------------------------------------------------------------------

def _find_policy(state: HostState, values) -> Policy:
    if "guid" in values:
        for pol in state.policies:
            if pol.guid.lower() == str(values["guid"]).lower():
                return pol
        raise ipsec_error(POLICY_MISSING, "Policy with GUID %s does not exist." % values["guid"])
    if "name" not in values:
        raise NetshError(
            "One or more essential parameters were not entered.\nVerify the required parameters, and reenter them.")
    pol = state.policy(str(values["name"]))
    if pol is None:
        raise ipsec_error(POLICY_MISSING, "Policy \"%s\" does not exist." % values["name"])
    return pol


def _nonempty(tag, value) -> str:
    value = str(value)
    if not value.strip():
        raise bad_value(tag, value, "a non-empty name")
    return value


def _validate_mm(values):
    """Main-mode settings are validated but not modelled (model.Policy has no fields for them)."""
    for tag in ("mmpfs",):
        if tag in values:
            yesno(tag, str(values[tag]))
    if "qmpermm" in values:
        integer("qmpermm", str(values["qmpermm"]), 0)
    if "mmlifetime" in values:
        integer("mmlifetime", str(values["mmlifetime"]), 1)


def _replace_policy(state, old: Policy, new: Policy) -> HostState:
    return replace(state, policies=tuple(new if p is old else p for p in state.policies))


def _with_assignment(state: HostState, name: str, assign: Optional[bool]) -> HostState:
    """One policy is assigned at a time: assigning one unassigns the other (KB 813878 `-x`)."""
    if assign is None:
        return state
    if assign:
        return replace(state, assigned=name)
    if name_key(state.assigned) == name_key(name):
        return replace(state, assigned="")
    return state


def add_policy(ctx, state, args):
    values = parse_tags(args, ADD_POLICY, required=("name",))
    name = _nonempty("name", values["name"])
    if state.policy(name):
        raise ipsec_error(POLICY_EXISTS, "Policy with name \"%s\" already exists." % name)
    _validate_mm(values)
    default_active = yesno("activatedefaultrule", str(values.get("activatedefaultrule", "yes")))
    if ctx.host.profile.blob_flavor == "modern":
        default_active = False      # [I] the default response rule is not supported on Vista+ (docs/policy-store.md 5.2)
    policy = Policy(
        name=name, description=str(values.get("description", "")),
        polling_interval=integer("pollinginterval", str(values.get("pollinginterval", 180)), 0), guid=new_guid())
    state, policy = with_default_response(state, policy, default_active, ctx.host.profile.blob_flavor)
    state = replace(state, policies=state.policies + (policy,))
    return _with_assignment(state, name, yesno("assign", str(values["assign"])) if "assign" in values else None)


# The default response action's offers: ESP 3DES/SHA1 then AH SHA1 in the Windows 10 capture
# (tests/fixtures/registry/gsecurity_win10_local_store.reg); ESP 3DES/SHA1, 3DES/MD5, DES/SHA1,
# DES/MD5, AH SHA1, AH MD5 in the Windows 2000 one (vpnease_win2000_l2tp_template.reg). [I] XP and
# 2003 are taken to write what Windows 2000 wrote.
DEFAULT_RESPONSE_OFFERS = {
    "modern": (QmOffer(esp_conf="3DES", esp_auth="SHA1"), QmOffer(ah="SHA1")),
    "legacy": (QmOffer(esp_conf="3DES", esp_auth="SHA1"), QmOffer(esp_conf="3DES", esp_auth="MD5"),
               QmOffer(esp_conf="DES", esp_auth="SHA1"), QmOffer(esp_conf="DES", esp_auth="MD5"),
               QmOffer(ah="SHA1"), QmOffer(ah="MD5")),
}


def with_default_response(state: HostState, policy: Policy, active: bool,
                          flavor: str = "modern") -> Tuple[HostState, Policy]:
    """netsh writes a default response rule (an NFA with no filter list) into every new policy,
    with its own unnamed negotiate action (docs/policy-store.md 1 and 5.4, [C]). Unnamed objects decode
    under their GUID."""
    guid = new_guid()
    action = FilterAction(name=guid, action="negotiate", offers=DEFAULT_RESPONSE_OFFERS[flavor], guid=guid)
    rule = Rule(name="", filteraction=guid, default_response=True, active=active, guid=new_guid())
    policy = replace(policy, rules=(rule,) + policy.rules)
    return replace(state, filteractions=state.filteractions + (action,)), policy


def default_response_actions(state: HostState) -> set:
    """Names of the actions that only default response rules use (hidden by `show`)."""
    used = {}
    for pol in state.policies:
        for rule in pol.rules:
            used.setdefault(name_key(rule.filteraction), set()).add(rule.default_response)
    return {key for key, kinds in used.items() if kinds == {True}}


def without_policy(state: HostState, policy: Policy) -> HostState:
    """Delete a policy with its rules and their default response actions; named filter lists and
    actions stay (docs/windows-tools.md "netsh behaviour" [E])."""
    own = default_response_actions(state)
    state = replace(state, policies=tuple(p for p in state.policies if p is not policy))
    still = default_response_actions(state) | {name_key(r.filteraction) for p in state.policies for r in p.rules}
    gone = {name_key(r.filteraction) for r in policy.rules if r.default_response} & own - still
    state = replace(state, filteractions=tuple(f for f in state.filteractions if name_key(f.name) not in gone))
    return _with_assignment(state, policy.name, False)


def _check_gpo(ctx, values) -> None:
    """`gponame` names the GPO a domain policy is assigned through ([H] set policy: domain store
    only; [MS-GPIPSEC] 2.2.1). The domain has one GPO (winsim/domain.py), so assigning through it
    is the store's assignment. Texts and numbers are [I]. Without gponame, `assign=` in the domain
    store also goes through that GPO, as winsim's older scripts and tests rely on [I]."""
    if "gponame" not in values:
        return
    gpo = str(values["gponame"])
    if ctx.store.kind != "domain":
        raise ipsec_error(GPO_LOCAL_STORE, "gponame=\"%s\" applies only to the domain store "
                                           "(set store location=domain)." % gpo)
    if ctx.store.store.gpo_guid(gpo) is None:
        raise ipsec_error(GPO_MISSING, "Group Policy object \"%s\" does not exist in domain %s; it has "
                                       "\"%s\"." % (gpo, ctx.store.store.name, DEFAULT_DOMAIN_POLICY))


def set_policy(ctx, state, args):
    values = parse_tags(args, SET_POLICY)
    pol = _find_policy(state, values)
    _check_gpo(ctx, values)
    _validate_mm(values)
    new = pol
    if "newname" in values:
        newname = _nonempty("newname", values["newname"])
        other = state.policy(newname)
        if other is not None and other is not pol:
            raise ipsec_error(POLICY_EXISTS, "Policy with name \"%s\" already exists." % newname)
        new = replace(new, name=newname)
    if "description" in values:
        new = replace(new, description=str(values["description"]))
    if "pollinginterval" in values:
        new = replace(new, polling_interval=integer("pollinginterval", str(values["pollinginterval"]), 0))
    was_assigned = name_key(state.assigned) == name_key(pol.name)
    state = _replace_policy(state, pol, new)
    if was_assigned and new.name != pol.name:
        state = replace(state, assigned=new.name)
    return _with_assignment(state, new.name, yesno("assign", str(values["assign"])) if "assign" in values else None)


def delete_policy(ctx, state, args):
    values = parse_tags(args, DELETE_BY_NAME, required=("name",))
    if str(values["name"]).lower() == "all":
        if not state.policies:
            raise ipsec_error(NO_POLICIES, "No Policies in the policy store.")
        for pol in state.policies:
            state = without_policy(state, pol)
        return state
    return without_policy(state, _find_policy(state, values))


# -- filter lists and filters ---------------------------------------------------------------------

def add_filterlist(ctx, state, args):
    values = parse_tags(args, ADD_FILTERLIST, required=("name",))
    name = _nonempty("name", values["name"])
    if state.filterlist(name):
        raise ipsec_error(FILTERLIST_EXISTS, "Filter List with name \"%s\" already exists." % name)
    flist = FilterList(name=name, description=str(values.get("description", "")), guid=new_guid())
    return replace(state, filterlists=state.filterlists + (flist,))


def _find_filterlist(state, name) -> FilterList:
    flist = state.filterlist(str(name))
    if flist is None:
        raise ipsec_error(FILTERLIST_MISSING, "Filter List \"%s\" does not exist." % name)
    return flist


def set_filterlist(ctx, state, args):
    values = parse_tags(args, SET_FILTERLIST)
    if "guid" in values:
        matches = [f for f in state.filterlists if f.guid.lower() == str(values["guid"]).lower()]
        if not matches:
            raise ipsec_error(FILTERLIST_MISSING, "Filter List \"%s\" does not exist." % values["guid"])
        flist = matches[0]
    else:
        flist = _find_filterlist(state, values.get("name", ""))
    new = flist
    if "newname" in values:
        newname = _nonempty("newname", values["newname"])
        other = state.filterlist(newname)
        if other is not None and other is not flist:
            raise ipsec_error(FILTERLIST_EXISTS, "Filter List with name \"%s\" already exists." % newname)
        new = replace(new, name=newname)
        state = _rename_in_rules(state, "filterlist", flist.name, newname)
    if "description" in values:
        new = replace(new, description=str(values["description"]))
    return replace(state, filterlists=tuple(new if f is flist else f for f in state.filterlists))


def _rename_in_rules(state, field, old, new):
    policies = []
    for pol in state.policies:
        rules = tuple(replace(r, **{field: new}) if name_key(getattr(r, field)) == name_key(old) else r
                      for r in pol.rules)
        policies.append(replace(pol, rules=rules))
    return replace(state, policies=tuple(policies))


def _filter_from(ctx, values, defaults: bool) -> dict:
    """The filter fields given on the command line (all of them, with defaults, when adding)."""
    fields = {}
    mask_given = {k: (str(values[k]) if k in values else None) for k in ("srcmask", "dstmask")}
    src = address("srcaddr", str(values["srcaddr"]), "srcmask", mask_given["srcmask"])
    dst = address("dstaddr", str(values["dstaddr"]), "dstmask", mask_given["dstmask"])
    check_generation(ctx.host, "srcaddr", str(values["srcaddr"]), src)
    check_generation(ctx.host, "dstaddr", str(values["dstaddr"]), dst)
    fields["src"], fields["dst"] = server_sides(src, dst)
    if "protocol" in values or defaults:
        fields["protocol"] = protocol("protocol", str(values.get("protocol", "ANY")))
    for tag, key in (("srcport", "src_port"), ("dstport", "dst_port")):
        if tag in values or defaults:
            fields[key] = port(tag, str(values.get(tag, 0)))
    if "mirrored" in values or defaults:
        fields["mirrored"] = yesno("mirrored", str(values.get("mirrored", "yes")))   # default yes [I]
    check_ports(fields.get("protocol", 6), fields.get("src_port", 0), fields.get("dst_port", 0))
    return fields


def add_filter(ctx, state, args):
    values = parse_tags(args, FILTER, required=("filterlist", "srcaddr", "dstaddr"))
    name = _nonempty("filterlist", values["filterlist"])
    fields = _filter_from(ctx, values, defaults=True)
    new_filter = Filter(description=str(values.get("description", "")), guid=new_guid(), **fields)
    flist = state.filterlist(name)
    if flist is None:       # [H] add filter remark 1: "If the filter list does not exist it will be created."
        flist = FilterList(name=name, guid=new_guid())
        state = replace(state, filterlists=state.filterlists + (flist,))
    # Duplicates are accepted, as real netsh does (docs/windows-tools.md "netsh behaviour" [E]).
    new = replace(flist, filters=flist.filters + (new_filter,))
    return replace(state, filterlists=tuple(new if f is flist else f for f in state.filterlists))


def filter_matches(flt: Filter, fields: dict) -> bool:
    for key, value in fields.items():
        have = getattr(flt, key)
        if key in ("src", "dst"):
            have, value = canonical(have), canonical(value)
        if have != value:
            return False
    return True


def delete_filter(ctx, state, args):
    values = parse_tags(args, DELETE_FILTER, required=("filterlist", "srcaddr", "dstaddr"))
    flist = _find_filterlist(state, values["filterlist"])
    fields = _filter_from(ctx, values, defaults=False)
    kept = tuple(f for f in flist.filters if not filter_matches(f, fields))
    if len(kept) == len(flist.filters):
        raise ipsec_error(NO_SUCH_FILTER, "No filter in Filter List \"%s\" matches the given parameters." % flist.name)
    new = replace(flist, filters=kept)
    return replace(state, filterlists=tuple(new if f is flist else f for f in state.filterlists))


def delete_filterlist(ctx, state, args):
    values = parse_tags(args, DELETE_BY_NAME, required=("name",))
    if str(values["name"]).lower() == "all":
        if not state.filterlists:
            raise ipsec_error(NO_FILTERLISTS, "No Filter Lists in the policy store.")
        victims = [f for f in state.filterlists if not state.users_of(filterlist=f.name)]
    else:
        flist = _find_filterlist(state, values["name"])
        users = state.users_of(filterlist=flist.name)
        if users:   # [I] refused while a rule uses it
            raise ipsec_error(FILTERLIST_IN_USE, "Filter List \"%s\" is used by rule \"%s\" of policy \"%s\"."
                              % (flist.name, users[0][1], users[0][0]))
        victims = [flist]
    return replace(state, filterlists=tuple(f for f in state.filterlists if f not in victims))


# -- filter actions -------------------------------------------------------------------------------

def _action_fields(values) -> dict:
    fields = {}
    for tag in ("qmpfs", "inpass", "soft"):
        if tag in values:
            fields[tag] = yesno(tag, str(values[tag]))
    if "action" in values:
        fields["action"] = choice("action", str(values["action"]), ("permit", "block", "negotiate"))
    if "qmsecmethods" in values:
        fields["offers"] = qm_offers("qmsecmethods", str(values["qmsecmethods"]))
    if "description" in values:
        fields["description"] = str(values["description"])
    return fields


def add_filteraction(ctx, state, args):
    values = parse_tags(args, ADD_FILTERACTION, required=("name",))
    name = _nonempty("name", values["name"])
    if state.filteraction(name):
        raise ipsec_error(FILTERACTION_EXISTS, "Filter Action with name \"%s\" already exists." % name)
    fields = {"action": "negotiate"}        # [I] netsh's default action
    fields.update(_action_fields(values))
    if fields["action"] != "negotiate":
        fields.pop("offers", None)          # [H] remark 1: qmsecmethods ignored unless negotiate
    action = FilterAction(name=name, guid=new_guid(), **fields)
    return replace(state, filteractions=state.filteractions + (action,))


def _find_filteraction(state, values) -> FilterAction:
    if "guid" in values:
        for fa in state.filteractions:
            if fa.guid.lower() == str(values["guid"]).lower():
                return fa
        raise ipsec_error(FILTERACTION_MISSING, "Filter Action \"%s\" does not exist." % values["guid"])
    fa = state.filteraction(str(values.get("name", "")))
    if fa is None:
        raise ipsec_error(FILTERACTION_MISSING, "Filter Action \"%s\" does not exist." % values.get("name", ""))
    return fa


def set_filteraction(ctx, state, args):
    values = parse_tags(args, SET_FILTERACTION)
    fa = _find_filteraction(state, values)
    new = replace(fa, **_action_fields(values))
    if "newname" in values:
        newname = _nonempty("newname", values["newname"])
        other = state.filteraction(newname)
        if other is not None and other is not fa:
            raise ipsec_error(FILTERACTION_EXISTS, "Filter Action with name \"%s\" already exists." % newname)
        new = replace(new, name=newname)
        state = _rename_in_rules(state, "filteraction", fa.name, newname)
    if new.action != "negotiate":
        new = replace(new, offers=())
    return replace(state, filteractions=tuple(new if f is fa else f for f in state.filteractions))


def delete_filteraction(ctx, state, args):
    values = parse_tags(args, DELETE_BY_NAME, required=("name",))
    if str(values["name"]).lower() == "all":
        if not state.filteractions:
            raise ipsec_error(NO_FILTERACTIONS, "No Filter Actions in the policy store.")
        victims = [f for f in state.filteractions if not state.users_of(filteraction=f.name)]
    else:
        fa = _find_filteraction(state, values)
        users = state.users_of(filteraction=fa.name)
        if users:   # [I] refused while a rule uses it
            raise ipsec_error(FILTERACTION_IN_USE, "Filter Action \"%s\" is used by rule \"%s\" of policy \"%s\"."
                              % (fa.name, users[0][1], users[0][0]))
        victims = [fa]
    return replace(state, filteractions=tuple(f for f in state.filteractions if f not in victims))


# -- rules ----------------------------------------------------------------------------------------

def named_rules(pol: Policy) -> List[Rule]:
    """Rules as netsh numbers them (`id=`): the default response rule is not one of them [I]."""
    return [r for r in pol.rules if not r.default_response]


def _rule_fields(ctx, state, values, order) -> dict:
    fields = {}
    if "filterlist" in values:
        flist = _find_filterlist(state, values["filterlist"])
        if not flist.filters:   # [E inferred] scripts add a dummy filter before `add rule`
            raise ipsec_error(FILTERLIST_EMPTY, "Filter List \"%s\" has no filters." % flist.name)
        fields["filterlist"] = flist.name
    if "filteraction" in values:
        fields["filteraction"] = _find_filteraction(state, {"name": values["filteraction"]}).name
    if "description" in values:
        fields["description"] = str(values["description"])
    if "conntype" in values:
        fields["conntype"] = choice("conntype", str(values["conntype"]), ("lan", "dialup", "all"))
    if "activate" in values:
        fields["active"] = yesno("activate", str(values["activate"]))
    if "tunnel" in values:
        fields["tunnel"] = str(values["tunnel"])
    auth = auth_methods(values, order)
    if auth is not None:
        fields["auth"] = auth
    return fields


def add_rule(ctx, state, args):
    values = parse_tags(args, ADD_RULE, required=("name", "policy", "filterlist", "filteraction"))
    name = _nonempty("name", values["name"])
    pol = _find_policy(state, {"name": values["policy"]})
    if pol.rule(name):
        raise ipsec_error(RULE_EXISTS, "Rule with name \"%s\" already exists in policy \"%s\"." % (name, pol.name))
    fields = {"auth": (KERBEROS,)}   # "If no auth methods are stated, dynamic defaults are used" [H]
    fields.update(_rule_fields(ctx, state, values, given_order(args, ADD_RULE)))
    rule = Rule(name=name, guid=new_guid(), **fields)
    return _replace_policy(state, pol, replace(pol, rules=pol.rules + (rule,)))


def _find_rule(pol: Policy, values) -> Rule:
    if "id" in values:
        number = integer("id", str(values["id"]), 1)
        rules = named_rules(pol)
        if number > len(rules):
            raise ipsec_error(RULE_MISSING, "Rule with ID %d does not exist in policy \"%s\"." % (number, pol.name))
        return rules[number - 1]
    rule = pol.rule(str(values.get("name", "")))
    if rule is None or rule.default_response:
        raise ipsec_error(RULE_MISSING, "Rule \"%s\" does not exist in policy \"%s\"." % (values.get("name", ""), pol.name))
    return rule


def set_rule(ctx, state, args):
    values = parse_tags(args, SET_RULE, required=("policy",))
    pol = _find_policy(state, {"name": values["policy"]})
    rule = _find_rule(pol, values)
    new = replace(rule, **_rule_fields(ctx, state, values, given_order(args, SET_RULE)))
    if "newname" in values:
        newname = _nonempty("newname", values["newname"])
        other = pol.rule(newname)
        if other is not None and other is not rule:
            raise ipsec_error(RULE_EXISTS, "Rule with name \"%s\" already exists in policy \"%s\"." % (newname, pol.name))
        new = replace(new, name=newname)
    return _replace_policy(state, pol, replace(pol, rules=tuple(new if r is rule else r for r in pol.rules)))


def delete_rule(ctx, state, args):
    tokens = list(args)
    delete_all = any(t.lower() == "all" for t in tokens)
    tokens = [t for t in tokens if t.lower() != "all"]
    values = parse_tags(tokens, DELETE_RULE)
    if "policy" not in values:
        raise NetshError(
            "One or more essential parameters were not entered.\nVerify the required parameters, and reenter them.")
    pol = _find_policy(state, {"name": values["policy"]})
    if delete_all:
        kept = tuple(r for r in pol.rules if r.default_response)
    else:
        rule = _find_rule(pol, values)
        kept = tuple(r for r in pol.rules if r is not rule)
    return _replace_policy(state, pol, replace(pol, rules=kept))


SET_DEFAULTRULE = _tags("policy", "qmpfs", "activate", "qmsecmethods", "kerberos", "psk", "rootca",
                        repeat=("rootca",))


def set_defaultrule(ctx, state, args):
    """The policy's default response rule and its unnamed action ([D] learn netsh-ipsec)."""
    values = parse_tags(args, SET_DEFAULTRULE, required=("policy",))
    pol = _find_policy(state, {"name": values["policy"]})
    rule = next((r for r in pol.rules if r.default_response), None)
    if rule is None:
        raise ipsec_error(RULE_MISSING, "Policy \"%s\" has no default response rule." % pol.name)
    new_rule = rule
    if "activate" in values:
        new_rule = replace(new_rule, active=yesno("activate", str(values["activate"])))
    auth = auth_methods(values, given_order(args, SET_DEFAULTRULE))
    if auth is not None:
        new_rule = replace(new_rule, auth=auth)
    state = _replace_policy(state, pol, replace(pol, rules=tuple(new_rule if r is rule else r for r in pol.rules)))
    action = state.filteraction(rule.filteraction)
    fields = {}
    if "qmpfs" in values:
        fields["qmpfs"] = yesno("qmpfs", str(values["qmpfs"]))
    if "qmsecmethods" in values:
        fields["offers"] = qm_offers("qmsecmethods", str(values["qmsecmethods"]))
    if action is not None and fields:
        new_action = replace(action, **fields)
        state = replace(state, filteractions=tuple(new_action if f is action else f for f in state.filteractions))
    return state


def delete_all(ctx, state, args):
    parse_tags(args, ())
    return replace(state, policies=(), filterlists=(), filteractions=(), assigned="")


# -- show: the filter-list block (and its filters) is held to a real Windows 10 `show all` capture
# (tests/fixtures/captures/netsh_static_show_all_filterlist_win10.txt, [V]): label padded to 23
# characters, then ": ". Policy, rule and filter-action blocks follow that style but no capture of
# them exists ([I]). ---------------------------------------------------------------------------

def _line(label: str, value) -> str:
    return "%-23s: %s\n" % (label, value)


def _yes(flag: bool) -> str:
    return "YES" if flag else "NO"


def _addr_text(addr) -> Tuple[str, str]:
    if addr.kind == "any":
        return "<Any IP Address>", "0.0.0.0"
    if addr.kind == "me":
        return "<My IP Address>", "255.255.255.255"
    if addr.kind == "range":
        return "%s-%s" % (addr.value, addr.end), ""
    if addr.kind == "server":
        return "<%s Server>" % addr.value.title(), ""
    return addr.value, addr.mask


PROTOCOL_NAMES = {0: "ANY", 1: "ICMP", 6: "TCP", 17: "UDP", 255: "RAW"}


def render_filter(flt: Filter) -> str:
    src, src_mask = _addr_text(flt.src)
    dst, dst_mask = _addr_text(flt.dst)
    # "Source/Destination DNS Name" repeat the address for <Any IP Address> ([V] capture); what
    # they show for a specific address is [I] (winsim repeats the address there too).
    return "".join((
        _line("Description", flt.description or "NONE"),
        _line("Mirrored", _yes(flt.mirrored)),
        _line("Source IP Address", src),
        _line("Source Mask", src_mask or "NONE"),
        _line("Source DNS Name", src),
        _line("Destination IP Address", dst),
        _line("Destination Mask", dst_mask or "NONE"),
        _line("Destination DNS Name", dst),
        _line("Protocol", PROTOCOL_NAMES.get(flt.protocol, flt.protocol)),
        _line("Source Port", flt.src_port or "ANY"),
        _line("Destination Port", flt.dst_port or "ANY"),
    ))


def _last_modified(ctx, key: str) -> str:
    """The object's whenChanged in the capture's format (`22/04/2021 18:47:44`, an en-GB host: the
    date follows the display locale, [V]); winsim prints it in UTC. Objects of the domain store
    show the time of the call ([I] simplification)."""
    stamp = ctx.host.now()
    if ctx.store.kind == "local":
        value = ctx.host.hive.tree.get(LOCAL_ROOT + "\\" + key, "whenChanged")
        stamp = value.data if value is not None else stamp
    return time.strftime("%d/%m/%Y %H:%M:%S", time.gmtime(stamp))


def render_filterlist(ctx, flist: FilterList, verbose: bool) -> str:
    out = [_line("FilterList Name", flist.name), _line("Description", flist.description or "NONE"),
           _line("Store", ctx.store.label),
           _line("Last Modified", _last_modified(ctx, "ipsecFilter" + flist.guid)),
           _line("GUID", flist.guid.upper()), _line("No. of Filters", len(flist.filters))]
    if verbose and flist.filters:
        out.append("Filter(s)\n---------\n")
        out.append("\n".join(render_filter(f) for f in flist.filters))
    return "".join(out)


def render_filteraction(ctx, fa: FilterAction) -> str:
    return "".join((
        _line("FilterAction Name", fa.name), _line("Description", fa.description or "NONE"),
        _line("Store", ctx.store.label), _line("GUID", fa.guid.upper()),
        _line("Action", fa.action.upper()), _line("QMPFS", _yes(fa.qmpfs)),
        _line("Inbound Passthru", _yes(fa.inpass)), _line("AllowUnsecured", _yes(fa.soft)),
        _line("No. of Security Methods", len(fa.offers)),
    ))


def render_rule(ctx, state, pol: Policy, number: int, rule: Rule, verbose: bool) -> str:
    out = [_line("Rule ID", number), _line("Rule Name", rule.name or "NONE"),
           _line("Description", rule.description or "NONE"), _line("Policy Name", pol.name),
           _line("Activated", _yes(rule.active)), _line("Connection Type", rule.conntype.upper()),
           _line("FilterList Name", rule.filterlist or "NONE"),
           _line("FilterAction Name", rule.filteraction or "NONE"),
           _line("Authentication", ", ".join(a.kind.upper() for a in rule.auth) or "NONE")]
    if verbose and rule.filterlist and state.filterlist(rule.filterlist):
        out.append("\n" + render_filterlist(ctx, state.filterlist(rule.filterlist), True))
    return "".join(out)


def _master_pfs(ctx, pol: Policy) -> str:
    """The Master-PFS-Required flag of the policy's ISAKMP blob ([MS-GPIPSEC] 2.2.1.2.1), YES or NO.
    winsim writes it 0 whatever `mmpfs` says (main-mode settings are validated, not kept); the
    domain store's policies show NO ([I] simplification)."""
    if ctx.store.kind != "local":
        return "NO"
    key = LOCAL_ROOT + "\\ipsecPolicy" + pol.guid
    ref = ctx.host.hive.tree.get(key, "ipsecISAKMPReference")
    raw = None
    if ref is not None and isinstance(ref.data, str):
        raw = ctx.host.hive.tree.get(LOCAL_ROOT + "\\" + ref.data.rsplit("\\", 1)[-1], "ipsecData")
    if raw is None or not isinstance(raw.data, bytes):
        return "NO"
    return _yes(bool(read_isakmp(raw.data).master_pfs))


def render_policy(ctx, state, pol: Policy, verbose: bool) -> str:
    """The policy block. KB 4471134 attests the order Policy Name, Description, Last Modified,
    Assigned, Master PFS, Polling Interval ([V] tests/fixtures/captures/
    netsh_static_show_policy_all_kb4471134.txt, an abridged sample); Store, GUID and No. of Rules
    are placed as in the filter list block of the Windows 10 capture ([I] for policies)."""
    rules = named_rules(pol)
    out = [_line("Policy Name", pol.name), _line("Description", pol.description or "NONE"),
           _line("Store", ctx.store.label),
           _line("Last Modified", _last_modified(ctx, "ipsecPolicy" + pol.guid)),
           _line("GUID", pol.guid.upper()),
           _line("Assigned", _yes(name_key(state.assigned) == name_key(pol.name))),
           _line("Master PFS", _master_pfs(ctx, pol)),
           _line("Polling Interval", "%d minutes" % pol.polling_interval),
           _line("No. of Rules", len(rules))]
    if verbose:
        for number, rule in enumerate(rules, 1):
            out.append("\n" + render_rule(ctx, state, pol, number, rule, True))
    return "".join(out)


def _show_options(values) -> bool:
    if "format" in values and choice("format", str(values["format"]), ("list", "table")) == "table":
        raise ipsec_error(NOT_EMULATED, "format=table is not emulated by winsim.")
    if "wide" in values:
        yesno("wide", str(values["wide"]))
    if "resolvedns" in values:
        yesno("resolvedns", str(values["resolvedns"]))
    level = choice("level", str(values.get("level", "normal")), ("verbose", "normal"))
    return level == "verbose"


def _select_all(args):
    tokens = list(args)
    everything = any(t.lower() == "all" for t in tokens)
    return everything, [t for t in tokens if t.lower() != "all"]


def show_policy(ctx, state, args):
    everything, tokens = _select_all(args)
    values = parse_tags(tokens, SHOW_POLICY)
    verbose = _show_options(values)
    if everything or "name" not in values:
        if not state.policies:
            raise ipsec_error(NO_POLICIES, "No Policies in the policy store.")
        chosen = list(state.policies)
    else:
        chosen = [_find_policy(state, values)]
    return "\n" + "\n".join(render_policy(ctx, state, p, verbose) for p in chosen)


def show_filterlist(ctx, state, args):
    everything, tokens = _select_all(args)
    values = parse_tags(tokens, SHOW_FILTERLIST)
    verbose = _show_options(values)
    if "rule" in values:
        names = {name_key(r.filterlist) for p in state.policies for r in p.rules
                 if name_key(r.name) == name_key(str(values["rule"])) and r.filterlist}
        chosen = [f for f in state.filterlists if name_key(f.name) in names]
        if not chosen:
            raise ipsec_error(RULE_MISSING, "Rule \"%s\" does not exist." % values["rule"])
    elif everything or "name" not in values:
        if not state.filterlists:
            raise ipsec_error(NO_FILTERLISTS, "No Filter Lists in the policy store.")
        chosen = list(state.filterlists)
    else:
        chosen = [_find_filterlist(state, values["name"])]
    return "\n" + "\n".join(render_filterlist(ctx, f, verbose) for f in chosen)


def show_filteraction(ctx, state, args):
    everything, tokens = _select_all(args)
    values = parse_tags(tokens, SHOW_FILTERACTION)
    _show_options(values)
    if "rule" in values:
        names = {name_key(r.filteraction) for p in state.policies for r in p.rules
                 if name_key(r.name) == name_key(str(values["rule"])) and r.filteraction}
        chosen = [f for f in state.filteractions if name_key(f.name) in names]
        if not chosen:
            raise ipsec_error(RULE_MISSING, "Rule \"%s\" does not exist." % values["rule"])
    elif everything or "name" not in values:
        hidden = default_response_actions(state)
        chosen = [f for f in state.filteractions if name_key(f.name) not in hidden]
        if not chosen:
            raise ipsec_error(NO_FILTERACTIONS, "No Filter Actions in the policy store.")
    else:
        chosen = [_find_filteraction(state, values)]
    return "\n" + "\n".join(render_filteraction(ctx, f) for f in chosen)


def show_rule(ctx, state, args):
    everything, tokens = _select_all(args)
    tokens = [t for t in tokens if t.lower() != "default"]
    values = parse_tags(tokens, SHOW_RULE)
    verbose = _show_options(values)
    if "type" in values:
        choice("type", str(values["type"]), ("tunnel", "transport"))
    if "policy" not in values:
        raise NetshError(
            "One or more essential parameters were not entered.\nVerify the required parameters, and reenter them.")
    pol = _find_policy(state, {"name": values["policy"]})
    rules = named_rules(pol)
    if everything or ("name" not in values and "id" not in values):
        chosen = list(enumerate(rules, 1))
    else:
        rule = _find_rule(pol, values)
        chosen = [(rules.index(rule) + 1, rule)]
    if not chosen:
        raise ipsec_error(RULE_MISSING, "No rules in policy \"%s\"." % pol.name)
    return "\n" + "\n".join(render_rule(ctx, state, pol, n, r, verbose) for n, r in chosen)


def show_all(ctx, state, args):
    values = parse_tags(args, SHOW_ALL)
    _show_options(values)
    if not (state.policies or state.filterlists or state.filteractions):
        raise ipsec_error(NO_POLICIES, "No Policies in the policy store.")
    parts = [render_policy(ctx, state, p, True) for p in state.policies]
    parts += [render_filterlist(ctx, f, True) for f in state.filterlists]
    hidden = default_response_actions(state)
    parts += [render_filteraction(ctx, f) for f in state.filteractions if name_key(f.name) not in hidden]
    return "\n" + "\n".join(parts)


def show_gpoassignedpolicy(ctx, state, args):
    parse_tags(args, SHOW_GPO)
    domain = ctx.host.domain_assignment()
    if domain is None:
        return "\nNo policy is assigned to this computer through Group Policy.\n"    # [I]
    return "\n" + _line("GPO Assigned Policy", domain.name) + _line("Policy Path", domain.path)


HANDLERS: Dict[Tuple[str, str], Callable] = {
    ("add", "policy"): add_policy, ("set", "policy"): set_policy, ("delete", "policy"): delete_policy,
    ("add", "filterlist"): add_filterlist, ("set", "filterlist"): set_filterlist,
    ("delete", "filterlist"): delete_filterlist,
    ("add", "filter"): add_filter, ("delete", "filter"): delete_filter,
    ("add", "filteraction"): add_filteraction, ("set", "filteraction"): set_filteraction,
    ("delete", "filteraction"): delete_filteraction,
    ("add", "rule"): add_rule, ("set", "rule"): set_rule, ("delete", "rule"): delete_rule,
    ("delete", "all"): delete_all,
    ("set", "store"): StaticContext.set_store, ("set", "batch"): StaticContext.set_batch,
    ("show", "store"): StaticContext.show_store,
    ("show", "policy"): show_policy, ("show", "filterlist"): show_filterlist,
    ("show", "filteraction"): show_filteraction, ("show", "rule"): show_rule, ("show", "all"): show_all,
    ("show", "gpoassignedpolicy"): show_gpoassignedpolicy, ("set", "defaultrule"): set_defaultrule,
}
