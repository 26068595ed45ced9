"""Refusals before connecting (issue 12): pre-shared keys refused naming the option, never the key (12.2);
values a dialect cannot carry refused naming the user's option and the Windows (12.8)."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import plan
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import (
    auth_option, known_dialect, precheck, rule_spec)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import render
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, ME, Address, AuthMethod, DynamicRule, Filter, HostState, OsInfo, Policy, ValidationError, replace)

SECRET = "S3cret-Key-4242"
# Keys that are refused, each holding SECRET: a quote (netsh), the XP form of issue 12 (a quote then
# a space, which PowerShell 5.1 cannot pass), control characters, non-ASCII, too long.
REFUSED_KEYS = [SECRET + '"', '"' + SECRET, "'\" -w DS \"'" + SECRET, SECRET + "\n", SECRET + "\x00",
                SECRET + "\t", SECRET + "\u00e9", SECRET + "\u2028", SECRET * 100]


@pytest.mark.parametrize("key", REFUSED_KEYS)
def test_auth_refusals_never_show_the_key(key):
    with pytest.raises(ValidationError) as err:
        auth_option("rules[0].auth", [{"kind": "psk", "value": key}])
    assert err.value.option == "rules[0].auth[0].value"
    assert SECRET not in str(err.value) and SECRET not in repr(err.value.value)


def test_a_kerberos_value_is_not_shown_either():
    with pytest.raises(ValidationError) as err:
        auth_option("auth", [{"kind": "kerberos", "value": SECRET}])
    assert SECRET not in str(err.value)


@pytest.mark.parametrize("dialect", ["netsh", "ipseccmd", "ipsecpol"])
@pytest.mark.parametrize("key", [SECRET + '"', "'\" -w DS \"'" + SECRET, SECRET + "%", SECRET + "!"])
def test_renderers_never_show_the_key_they_refuse(dialect, key):
    rule, flist, faction = plan.rule_objects("R", [Filter(ANY, ME, 6, 0, 80)], "permit")
    policy, objects = plan.policy_objects("P", [(replace(rule, auth=(AuthMethod("psk", key),)), flist, faction)])
    p = plan.plan_policy(HostState(), policy, rules_objects=objects)
    try:
        commands = render(list(p.changes), dialect, before=HostState(), after=p.after)
    except ValidationError as err:
        assert SECRET not in str(err) and err.option == "auth.value", str(err)
    else:
        assert all(SECRET not in c.redacted_display for c in commands)


# ---- issue 12.8: dialect refusals name the user's option and the Windows, before connecting ----------

class Ctx:
    def __init__(self, params, task_vars=None):
        self.params, self.task_vars = params, task_vars or {}


def fact(dialect):
    return {"ansible_facts": {"winsec_ipsec_state": {"version": 1, "dialect": dialect}}}


def rule_item(**kw):
    item = {"name": "R", "filters": ["*=0:2000:TCP"], "action": "block", "filteraction": None,
            "description": None, "methods": None, "auth": None}
    item.update(kw)
    return item


@pytest.mark.parametrize("params, task_vars, option, windows", [
    ({"dialect": "netsh"}, None, "name", "Windows Server 2003 and later"),
    ({"dialect": None}, fact("netsh"), "name", "Windows Server 2003 and later"),
])
def test_a_quote_is_refused_for_netsh_before_connecting(params, task_vars, option, windows):
    with pytest.raises(ValidationError) as err:
        precheck(Ctx(params, task_vars), policy='say "hi"')
    assert err.value.option == option and windows in str(err.value)


@pytest.mark.parametrize("option_path, item, expected", [
    ("rules[0].", rule_item(name="-o"), "rules[0].name"),
    ("rules[2].", rule_item(filteraction="Other"), "rules[2].filteraction"),
    ("rules[0].", rule_item(description="text"), "rules[0].description"),
    ("rules[1].", rule_item(filters=["*=0:1:TCP", {"src": "10.0.0.1-10.0.0.2"}]), "rules[1].filters[1].src"),
    ("", rule_item(name="-r"), "name"),
])
def test_ipseccmd_refusals_name_the_users_option(option_path, item, expected):
    spec = rule_spec(option_path.rstrip("."), item)
    with pytest.raises(ValidationError) as err:
        precheck(Ctx({"dialect": None}, fact("ipseccmd")), [spec])
    assert err.value.option == expected and "Windows XP (dialect ipseccmd)" in str(err.value)
    assert not str(err.value).startswith(("filterlist", "rule:"))


def test_unknown_dialect_checks_nothing_before_connecting():
    assert precheck(Ctx({"dialect": None}, {"ansible_facts": {"winsec_ipsec_state": "junk"}}),
                    policy='say "hi"') == ""
    assert known_dialect({"dialect": None}, fact("ipsecpol")) == ""       # no fact ever says so


def test_the_planner_makes_the_same_refusal_once_the_host_tells_the_dialect():
    xp = HostState(os=OsInfo("xp", dialect="ipseccmd"))
    with pytest.raises(ValidationError) as before:
        precheck(Ctx({"dialect": "ipseccmd"}), policy="Web: Block")
    with pytest.raises(ValidationError) as after:
        plan.plan_policy(xp, Policy("Web: Block"))
    assert str(before.value) == str(after.value)
    with pytest.raises(ValidationError, match="^policy: "):
        plan.plan_rule(xp, "Web: Block", *plan.rule_objects("R", [Filter(ANY, ME)]))
    with pytest.raises(ValidationError, match=r"^filters\[1\].src: .*Windows XP"):
        plan.plan_dynamic(xp, [DynamicRule(Filter(ANY, ME)), DynamicRule(Filter(Address("server", "DNS"), ME))])


def test_the_same_name_on_the_other_dialect_is_fine():
    assert precheck(Ctx({"dialect": "ipseccmd"}), policy='say "hi"') == "ipseccmd"
    assert precheck(Ctx({"dialect": "netsh"}), policy="Web: Block") == "netsh"


def test_a_single_lifetime_is_refused_for_netsh_naming_the_rules_methods():
    item = rule_item(action="negotiate", filteraction="Secure", methods=["ESP[3DES,SHA1]:900s"])
    spec = rule_spec("rules[3]", item)
    with pytest.raises(ValidationError) as err:
        precheck(Ctx({"dialect": "netsh"}), [spec])
    assert err.value.option == "rules[3].methods" and "Windows Server 2003 and later" in str(err.value)
    xp_item = dict(item, filteraction="R")
    assert precheck(Ctx({"dialect": "ipseccmd"}), [rule_spec("rules[3]", xp_item)]) == "ipseccmd"
