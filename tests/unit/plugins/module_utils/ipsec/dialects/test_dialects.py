"""dialects: dispatch, Command display and secrets, and the hostile-name corpus for every dialect."""
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import dialects, plan, remote
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import MASK, Args, Command
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, DIALECTS, ME, AuthMethod, Filter, HostState, ValidationError)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.quoting import (
    VARIANTS, cmd_safe, emulate_ps51_native_command_line, powershell_native_args, split_command_line)
from tests.unit.plugins.module_utils.ipsec.winsim_side import powershell_argument_values

from tests.unit.hostile_corpus import HOSTILE_NAMES, PS51_UNDELIVERABLE, UNREPRESENTABLE

IN = Filter(ANY, ME, 17, 0, 1434, mirrored=False)
OUT = Filter(ME, ANY, 17, 0, 1434, mirrored=False)
S = ("netsh", "ipsec", "static")


def slammer_plan(policy="Block UDP 1434 Filter", rules=("Block Inbound UDP 1434 Rule", "Block Outbound UDP 1434 Rule"),
                 auth=None):
    triples = []
    for name, filt in zip(rules, (IN, OUT)):
        rule, flist, faction = plan.rule_objects(name, [filt])
        if auth:
            rule = plan.replace(rule, auth=auth)
        triples.append((rule, flist, faction))
    pol, objects = plan.policy_objects(policy, triples)
    return plan.plan_policy(HostState(), pol, rules_objects=objects, assign=True)


def render(p, dialect, **kw):
    return dialects.render(p.changes, dialect, before=HostState(), after=p.after, **kw)


def test_kb_slammer_plan_for_netsh():
    commands = render(slammer_plan(), "netsh")
    assert [c.argv for c in commands] == [
        S + ("add", "policy", "name=Block UDP 1434 Filter", "pollinginterval=180", "activatedefaultrule=no"),
        S + ("add", "filterlist", "name=Block Inbound UDP 1434 Rule"),
        S + ("add", "filter", "filterlist=Block Inbound UDP 1434 Rule", "srcaddr=any", "dstaddr=me", "protocol=UDP",
             "srcport=0", "dstport=1434", "mirrored=no"),
        S + ("add", "filterlist", "name=Block Outbound UDP 1434 Rule"),
        S + ("add", "filter", "filterlist=Block Outbound UDP 1434 Rule", "srcaddr=me", "dstaddr=any",
             "protocol=UDP", "srcport=0", "dstport=1434", "mirrored=no"),
        S + ("add", "filteraction", "name=Block", "qmpfs=no", "inpass=no", "soft=no", "action=block"),
        S + ("add", "rule", "name=Block Inbound UDP 1434 Rule", "policy=Block UDP 1434 Filter",
             "filterlist=Block Inbound UDP 1434 Rule", "filteraction=Block", "conntype=all", "activate=yes",
             "kerberos=yes"),
        S + ("add", "rule", "name=Block Outbound UDP 1434 Rule", "policy=Block UDP 1434 Filter",
             "filterlist=Block Outbound UDP 1434 Rule", "filteraction=Block", "conntype=all", "activate=yes",
             "kerberos=yes"),
        S + ("set", "policy", "name=Block UDP 1434 Filter", "assign=yes"),
    ]
    assert commands[1].display == 'netsh ipsec static add filterlist name="Block Inbound UDP 1434 Rule"'


@pytest.mark.parametrize("kwargs, option", [
    ({"dialect": "powershell"}, "dialect"),
    ({"dialect": "netsh", "store": "persistent"}, "store"),
    ({"dialect": "netsh", "domain": "corp.example"}, "domain"),
    ({"dialect": "netsh", "store": "domain", "domain": "corp example"}, "domain"),
    ({"dialect": "ipseccmd", "store": "domain", "domain": "10.0.0.1"}, "domain"),
])
def test_render_arguments(kwargs, option):
    with pytest.raises(ValidationError) as err:
        dialects.render([], before=HostState(), after=HostState(), **kwargs)
    assert err.value.option == option


def test_a_batch_is_undone_newest_command_first():
    commands = render(slammer_plan(), "ipseccmd")
    assert remote.undo_steps(commands) == list(commands[1].undo) + list(commands[0].undo)


def test_command_masks_only_the_secret_argument():
    args = Args("tool", "name=a").add_secret("psk=a", "psk=" + MASK)
    command = args.command()
    assert command.argv == ("tool", "name=a", "psk=a")
    assert command.display == "tool name=a psk=" + MASK == command.redacted_display
    assert Command(("tool", "x")).display == "tool x"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_psk_never_displayed(dialect):
    key = "Sup3r s3cret"
    commands = render(slammer_plan(auth=(AuthMethod("psk", key),)), dialect)
    everything = [c for c in commands] + [u for c in commands for u in c.undo]
    assert any(key in " ".join(c.argv) for c in everything)
    for command in everything:
        assert key not in command.display and key not in command.redacted_display and key not in repr(command)
        assert key not in command.redacted_script


def _delivered_by_powershell(argv):
    values = powershell_argument_values(powershell_native_args(argv))
    line = emulate_ps51_native_command_line(values)
    return all(split_command_line(line, first_is_program=False, variant=v) == list(argv) for v in VARIANTS)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("name", HOSTILE_NAMES + UNREPRESENTABLE + PS51_UNDELIVERABLE)
def test_hostile_names_are_delivered_exactly_or_rejected(dialect, name):
    try:
        commands = render(slammer_plan(policy=name, rules=(name + " in", name + " out")), dialect)
    except ValidationError as err:
        assert err.option in ("policy", "rule", "filterlist", "name")
        return
    assert ("name=" + name if dialect == "netsh" else name) in commands[0].argv
    for command in commands:
        for variant in VARIANTS:
            assert split_command_line(command.display, variant=variant) == list(command.argv)
        if dialect == "ipsecpol":       # offline .cmd script: every argument must be cmd.exe-safe
            assert all(cmd_safe("arg", a) == a for a in command.argv)
        else:                           # run through the remote layer's PowerShell
            assert _delivered_by_powershell(command.argv[1:])


# Any text, weighted towards what quoting trips on.
_TRICKY = st.text(alphabet=st.sampled_from(list(' \t"\\^&|%!<>()=:-[]*+\'x\u00e9\u3000\n')), max_size=12)


@settings(max_examples=60, deadline=None)
@given(name=st.one_of(_TRICKY, st.text(max_size=12)), dialect=st.sampled_from(DIALECTS))
def test_any_name_is_delivered_exactly_or_rejected(name, dialect):
    try:
        commands = render(slammer_plan(policy=name, rules=(name + " in", name + " out")), dialect)
    except ValidationError:
        return
    for command in commands:
        assert split_command_line(command.display) == list(command.argv)
        if dialect == "ipsecpol":
            assert all(cmd_safe("arg", a) == a for a in command.argv)
        else:
            assert _delivered_by_powershell(command.argv[1:])
