"""Refusals of pre-shared keys (issue 12.2): every path refuses naming the option, never the key."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import plan
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import auth_option
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import render
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, ME, AuthMethod, Filter, HostState, ValidationError, replace)

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
