"""netsh dialect: every change op renders the argv the grammar ([D] "netsh ipsec", learn.microsoft.com) says."""
from dataclasses import replace

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import dialects, plan, remote
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import MASK, SCRIPT_FILE, netsh
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, KERBEROS, ME, Address, AuthMethod, Change, DynamicRule, Filter, FilterAction, FilterList, HostState,
    OsInfo, Policy, QmOffer, Rule, ValidationError)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.quoting import split_command_line
from tests.unit.hostile_corpus import HOSTILE_NAMES

S = ("netsh", "ipsec", "static")
D = ("netsh", "ipsec", "dynamic")
TCP445 = Filter(Address("ip", "10.1.0.0", "255.255.0.0"), ME, 6, 0, 445, True)
UDP1434_IN = Filter(ANY, ME, 17, 0, 1434, mirrored=False)
ICMP = Filter(ANY, ME, 1)
LIST = FilterList("L", (TCP445,))
BLOCK = FilterAction("Block")
RULE = Rule("R", "L", "Block")
POLICY = Policy("P", polling_interval=30, rules=(RULE,))
STATE = HostState(policies=(POLICY,), filterlists=(LIST,), filteractions=(BLOCK,))
DYN = DynamicRule(UDP1434_IN, "block", "block", "all")

FILTER_ARGS = ("srcaddr=10.1.0.0", "dstaddr=me", "srcmask=255.255.0.0", "protocol=TCP", "srcport=0",
               "dstport=445", "mirrored=yes")


def render(*changes, before=STATE, after=STATE, **kw):
    return dialects.render(list(changes), "netsh", before=before, after=after, **kw)


def argvs(commands):
    return [c.argv for c in commands]


CASES = [
    (Change("add_policy", Policy("P", "why", 30)),
     [S + ("add", "policy", "name=P", "description=why", "pollinginterval=30", "activatedefaultrule=no")]),
    (Change("add_policy", Policy("P", rules=(Rule("", default_response=True), RULE))),
     [S + ("add", "policy", "name=P", "pollinginterval=180", "activatedefaultrule=yes"),
      S + ("add", "rule", "name=R", "policy=P", "filterlist=L", "filteraction=Block", "conntype=all",
           "activate=yes", "kerberos=yes")]),
    (Change("set_policy", Policy("P2", "new", 60), old=Policy("P", "old", 30)),
     [S + ("set", "policy", "name=P", "newname=P2", "description=new", "pollinginterval=60")]),
    (Change("set_policy", Policy("P", "", 60), old=Policy("P", "", 30)),
     [S + ("set", "policy", "name=P", "pollinginterval=60")]),
    (Change("delete_policy", POLICY), [S + ("delete", "policy", "name=P")]),
    (Change("assign", POLICY, old=""), [S + ("set", "policy", "name=P", "assign=yes")]),
    (Change("unassign", POLICY), [S + ("set", "policy", "name=P", "assign=no")]),
    (Change("add_filterlist", FilterList("L2", (TCP445, ICMP), "two")),
     [S + ("add", "filterlist", "name=L2", "description=two"),
      S + ("add", "filter", "filterlist=L2") + FILTER_ARGS,
      S + ("add", "filter", "filterlist=L2", "srcaddr=any", "dstaddr=me", "protocol=ICMP", "mirrored=yes")]),
    (Change("set_filterlist", FilterList("L", description="d"), old=LIST),
     [S + ("set", "filterlist", "name=L", "description=d")]),
    (Change("delete_filterlist", LIST), [S + ("delete", "filterlist", "name=L")]),
    (Change("add_filter", Filter(Address("range", "10.0.0.1", end="10.0.0.9"), Address("server", "DNS"), 17,
                                 53, 0, False, description="dns"), "L"),
     [S + ("add", "filter", "filterlist=L", "srcaddr=10.0.0.1-10.0.0.9", "dstaddr=DNS", "protocol=UDP",
           "srcport=53", "dstport=0", "mirrored=no", "description=dns")]),
    (Change("add_filter", Filter(Address("ip", "fe80::1", "64"), Address("dns", "db.example.com"), 47), "L"),
     [S + ("add", "filter", "filterlist=L", "srcaddr=fe80::1", "dstaddr=db.example.com", "srcmask=64",
           "protocol=47", "mirrored=yes")]),
    (Change("delete_filter", TCP445, "L"), [S + ("delete", "filter", "filterlist=L") + FILTER_ARGS]),
    (Change("add_filteraction", FilterAction("Secure", "negotiate", "d", inpass=True, soft=True, qmpfs=True,
                                             offers=(QmOffer("", "3DES", "SHA1", 100000, 3600), QmOffer("MD5")))),
     [S + ("add", "filteraction", "name=Secure", "description=d", "qmpfs=yes", "inpass=yes", "soft=yes",
           "action=negotiate", "qmsecmethods=ESP[3DES,SHA1]:100000k/3600s AH[MD5]")]),
    (Change("set_filteraction", FilterAction("Permit", "permit"), old=BLOCK),
     [S + ("set", "filteraction", "name=Block", "newname=Permit", "qmpfs=no", "inpass=no", "soft=no",
           "action=permit")]),
    (Change("set_filteraction", FilterAction("Block", "block"), old=FilterAction("Block", description="old")),
     [S + ("set", "filteraction", "name=Block", "description=", "qmpfs=no", "inpass=no", "soft=no",
           "action=block")]),
    (Change("delete_filteraction", BLOCK), [S + ("delete", "filteraction", "name=Block")]),
    (Change("add_rule", Rule("R2", "L", "Block", "d", False, "lan", (KERBEROS, AuthMethod("cert", "CN=Root CA")),
                             tunnel="10.9.9.9"), "P"),
     [S + ("add", "rule", "name=R2", "policy=P", "filterlist=L", "filteraction=Block", "tunnel=10.9.9.9",
           "conntype=lan", "activate=no", "description=d", "kerberos=yes",
           "rootca=CN=Root CA certmap:no excludecaname:no")]),
    (Change("set_rule", Rule("R", "L", "Permit"), "P", old=RULE),
     [S + ("set", "rule", "name=R", "policy=P", "filteraction=Permit")]),
    (Change("set_rule", Rule("R3", "L", "Block", auth=()), "P", old=RULE),
     [S + ("set", "rule", "name=R", "policy=P", "newname=R3")]),
    (Change("delete_rule", RULE, "P"), [S + ("delete", "rule", "name=R", "policy=P")]),
    (Change("add_rule", Rule("", active=False, default_response=True, auth=()), "P"),
     [S + ("set", "defaultrule", "policy=P", "activate=no")]),
]


@pytest.mark.parametrize("change, expected", CASES, ids=[c.op for c, _ in CASES])
def test_static_op(change, expected):
    commands = render(change)
    assert argvs(commands) == expected
    assert all(c.change is change for c in commands)
    for command in commands:
        assert split_command_line(command.display) == list(command.argv)


@pytest.mark.parametrize("change, _expected", CASES, ids=[c.op for c, _ in CASES])
def test_undo_is_the_rendered_inverse(change, _expected):
    inverse = plan.with_inverse(STATE, change.op, change.obj, change.parent, change.old).inverse
    first, *rest = render(change)
    # the inverse carries the change as its own inverse, so rendering it needs no state
    assert argvs(first.undo) == argvs(render(replace(inverse, inverse=change)))
    assert all(c.undo == () for c in rest)


def test_planner_inverse_is_preferred():
    change = Change("assign", POLICY, old="Q", inverse=Change("assign", Policy("Q"), old="P"))
    assert argvs(render(change)[0].undo) == [S + ("set", "policy", "name=Q", "assign=yes")]


def test_delete_and_add_filter_repeat_the_same_parameters():
    add, = render(Change("add_filter", TCP445, "L"))
    delete, = render(Change("delete_filter", TCP445, "L"))
    assert add.argv[5:] == delete.argv[5:]
    assert argvs(add.undo) == [delete.argv] and argvs(delete.undo) == [add.argv]


def test_psk_is_in_argv_but_never_displayed():
    key = "s3cret key&x"
    rule = Rule("R", "L", "Block", auth=(AuthMethod("psk", key), KERBEROS))
    add, = render(Change("add_rule", rule, "P"))
    assert add.argv[-2:] == ("psk=" + key, "kerberos=yes")
    for shown in (add.display, add.redacted_display, repr(add)):
        assert key not in shown
    assert "psk=" + MASK in add.display
    assert split_command_line(add.display) == list(add.shown_argv)
    # the undo of deleting that rule re-adds it: masked too
    with_psk = HostState(policies=(Policy("P", rules=(rule,)),), filterlists=(LIST,), filteractions=(BLOCK,))
    delete, = render(Change("delete_rule", rule, "P"), before=with_psk)
    assert delete.undo[0].argv[-2] == "psk=" + key and key not in delete.undo[0].display


def test_psk_in_domain_script_is_masked():
    key = "s3cret"
    rule = Rule("R", "L", "Block", auth=(AuthMethod("psk", key),))
    command, = render(Change("add_rule", rule, "P"), store="domain", domain="corp.example")
    assert "psk=" + key in command.script
    assert key not in command.redacted_script and key not in command.display and key not in repr(command)
    assert "psk=" + MASK in command.redacted_display and key not in command.redacted_display


def test_domain_store_wraps_each_command_in_a_netsh_script():
    changes = [Change("add_filterlist", FilterList("L 2", (ICMP,))), Change("delete_rule", RULE, "P"),
               Change("add_dynamic", DYN)]
    local = render(*changes)
    commands = render(*changes, store="domain", domain="corp.example")
    assert len(commands) == len(local) == 5
    head = ["pushd ipsec static", "set store location=domain domain=corp.example"]
    for mine, plain in zip(commands[:3], local):
        assert mine.argv == ("netsh", "-f", SCRIPT_FILE) and mine.change is plain.change
        assert mine.script.splitlines() == head + [" ".join(netsh.script_token(a) for a in plain.argv[3:]), "popd"]
        assert [u.script for u in mine.undo] == [netsh._in_domain(u, "corp.example").script for u in plain.undo]
    assert commands[0].script.splitlines()[2] == 'add filterlist name="L 2"'
    assert commands[0].redacted_display == ("netsh -f %s # pushd ipsec static; set store location=domain "
                                            'domain=corp.example; add filterlist name="L 2"; popd' % SCRIPT_FILE)
    assert commands[2].undo[0].script.splitlines()[2] == (
        "add rule name=R policy=P filterlist=L filteraction=Block conntype=all activate=yes kerberos=yes")
    # dynamic rules live in the host's PolicyAgent, not in a store: no script
    assert commands[3].argv[:5] == D + ("add", "mmpolicy") and commands[4].argv[:5] == D + ("add", "rule")


def test_domain_store_without_domain_name():
    command, = render(Change("delete_policy", POLICY), store="domain")
    assert command.script.splitlines()[1] == "set store location=domain"


def test_dynamic_rules_keep_one_mmpolicy_alive():
    other = DynamicRule(TCP445, "permit", "block", "lan")
    added = render(Change("add_dynamic", DYN), Change("add_dynamic", other), before=HostState(),
                   after=HostState(dynamic=(DYN, other)))
    assert argvs(added) == [
        D + ("add", "mmpolicy", "name=" + netsh.MM_POLICY),
        D + ("add", "rule", "srcaddr=any", "dstaddr=me", "protocol=UDP", "srcport=0", "dstport=1434",
             "mirrored=no", "conntype=all", "mmpolicy=" + netsh.MM_POLICY, "actioninbound=block",
             "actionoutbound=block"),
        D + ("add", "rule") + FILTER_ARGS + ("conntype=lan", "mmpolicy=" + netsh.MM_POLICY,
                                             "actioninbound=permit", "actionoutbound=block"),
    ]
    assert argvs(added[0].undo) == [D + ("delete", "mmpolicy", "name=" + netsh.MM_POLICY)]
    assert argvs(added[1].undo) == [D + ("delete", "rule", "srcaddr=any", "dstaddr=me", "protocol=UDP",
                                         "srcport=0", "dstport=1434", "mirrored=no", "conntype=all")]
    ours, other_ours = (replace(r, mmpolicy=netsh.MM_POLICY) for r in (DYN, other))
    deleted = render(Change("delete_dynamic", ours), before=HostState(dynamic=(ours,)), after=HostState())
    assert argvs(deleted) == [added[1].undo[0].argv, added[0].undo[0].argv]
    kept = render(Change("delete_dynamic", ours), before=HostState(dynamic=(ours, other_ours)),
                  after=HostState(dynamic=(other_ours,)))
    assert len(kept) == 1


# A rule an administrator added by hand, with a main-mode policy of their own (as read back).
FOREIGN = DynamicRule(TCP445, "block", "block", "all", mmpolicy="AdminBlock")
OURS = replace(DYN, mmpolicy=netsh.MM_POLICY)
ICMP_DYN = DynamicRule(ICMP)


def test_first_own_rule_adds_the_mmpolicy_even_when_foreign_rules_exist():
    added = render(Change("add_dynamic", DYN), before=HostState(dynamic=(FOREIGN,)),
                   after=HostState(dynamic=(FOREIGN, DYN)))
    assert argvs(added)[0] == D + ("add", "mmpolicy", "name=" + netsh.MM_POLICY)
    assert "mmpolicy=" + netsh.MM_POLICY in added[1].argv
    # a second own rule finds it there
    more = render(Change("add_dynamic", ICMP_DYN), before=HostState(dynamic=(FOREIGN, OURS)),
                  after=HostState(dynamic=(FOREIGN, OURS, ICMP_DYN)))
    assert [c.argv[3:5] for c in more] == [("add", "rule")]


def test_last_own_rule_deletes_the_mmpolicy_and_foreign_ones_are_never_touched():
    gone = render(Change("delete_dynamic", OURS), before=HostState(dynamic=(FOREIGN, OURS)),
                  after=HostState(dynamic=(FOREIGN,)))
    assert [c.argv[3:5] for c in gone] == [("delete", "rule"), ("delete", "mmpolicy")]
    assert gone[1].argv[-1] == "name=" + netsh.MM_POLICY
    # the foreign rule's own deletion leaves its main-mode policy; the undo re-adds it with that policy
    foreign_gone = render(Change("delete_dynamic", FOREIGN), before=HostState(dynamic=(FOREIGN, OURS)),
                          after=HostState(dynamic=(OURS,)))
    assert argvs(foreign_gone) == [D + ("delete", "rule") + FILTER_ARGS + ("conntype=all",)]
    assert argvs(foreign_gone[0].undo) == [D + ("add", "rule") + FILTER_ARGS + (
        "conntype=all", "mmpolicy=AdminBlock", "actioninbound=block", "actionoutbound=block")]


def test_clearing_every_rule_deletes_only_the_own_mmpolicy_once_and_last():
    both = HostState(dynamic=(FOREIGN, OURS))
    changes = [plan.with_inverse(both, "delete_dynamic", FOREIGN),
               plan.with_inverse(plan.apply(both, [Change("delete_dynamic", FOREIGN)]), "delete_dynamic", OURS)]
    commands = render(*changes, before=both, after=HostState())
    assert [c.argv[3:5] for c in commands] == [("delete", "rule"), ("delete", "rule"), ("delete", "mmpolicy")]
    assert commands[-1].argv[-1] == "name=" + netsh.MM_POLICY
    # the batch undo (newest first) puts back the own policy before the rule that needs it
    assert [c.argv[3:5] for c in remote.undo_steps(commands)] == [("add", "mmpolicy"), ("add", "rule"),
                                                                   ("add", "rule")]
    assert [a for c in remote.undo_steps(commands) for a in c.argv if a.startswith("mmpolicy=")] == [
        "mmpolicy=" + netsh.MM_POLICY, "mmpolicy=AdminBlock"]


def test_a_rule_kept_under_a_foreign_mmpolicy_is_added_back_with_it():
    # correcting a foreign rule's actions: delete, then add with the same foreign main-mode policy
    permit = replace(FOREIGN, inbound="permit")
    commands = render(Change("delete_dynamic", FOREIGN), Change("add_dynamic", permit),
                      before=HostState(dynamic=(FOREIGN,)), after=HostState(dynamic=(permit,)))
    assert [c.argv[3:5] for c in commands] == [("delete", "rule"), ("add", "rule")]
    assert "mmpolicy=AdminBlock" in commands[1].argv


def test_rules_that_name_no_mmpolicy_do_not_keep_the_own_one():
    # read back as NONE (or from a listing without the line): not ours, so the own policy is added
    unknown = replace(FOREIGN, mmpolicy="")
    added = render(Change("add_dynamic", DYN), before=HostState(dynamic=(unknown,)),
                   after=HostState(dynamic=(unknown, DYN)))
    assert argvs(added)[0] == D + ("add", "mmpolicy", "name=" + netsh.MM_POLICY)


def test_own_mmpolicy_is_matched_without_regard_to_case():
    upper = replace(DYN, mmpolicy=netsh.MM_POLICY.upper())
    gone = render(Change("delete_dynamic", upper), before=HostState(dynamic=(upper,)), after=HostState())
    assert [c.argv[3:5] for c in gone] == [("delete", "rule"), ("delete", "mmpolicy")]


# winsec's own main-mode policy listed with no rule using it (hand deletion, PolicyAgent quirk, older run)
ORPHANED = (netsh.MM_POLICY,)


def test_an_orphaned_own_mmpolicy_is_used_not_added_again():
    added = render(Change("add_dynamic", DYN), before=HostState(mmpolicies=ORPHANED),
                   after=HostState(dynamic=(OURS,)))
    assert [c.argv[3:5] for c in added] == [("add", "rule")]      # `add mmpolicy` would fail: it exists
    assert "mmpolicy=" + netsh.MM_POLICY in added[0].argv
    assert [c.argv[3:5] for c in added[0].undo] == [("delete", "rule")]   # the orphan stays on undo
    # listed under another case: the same policy
    assert len(render(Change("add_dynamic", DYN), before=HostState(mmpolicies=(netsh.MM_POLICY.upper(),)),
                      after=HostState(dynamic=(OURS,)))) == 1


def test_an_orphaned_own_mmpolicy_is_deleted_when_a_dynamic_batch_ends_without_own_rules():
    before = HostState(dynamic=(FOREIGN,), mmpolicies=("AdminBlock",) + ORPHANED)
    commands = render(Change("delete_dynamic", FOREIGN), before=before, after=HostState())
    assert argvs(commands) == [D + ("delete", "rule") + FILTER_ARGS + ("conntype=all",),
                               D + ("delete", "mmpolicy", "name=" + netsh.MM_POLICY)]
    # undone newest first: the orphan comes back as winsec makes it, then the administrator's rule
    assert [c.argv[3:] for c in remote.undo_steps(commands)] == [
        ("add", "mmpolicy", "name=" + netsh.MM_POLICY),
        ("add", "rule") + FILTER_ARGS + ("conntype=all", "mmpolicy=AdminBlock", "actioninbound=block",
                                         "actionoutbound=block")]


def test_a_batch_without_dynamic_changes_leaves_an_orphaned_mmpolicy_alone():
    before = replace(STATE, mmpolicies=ORPHANED)
    commands = render(Change("delete_policy", POLICY), before=before, after=HostState(mmpolicies=ORPHANED))
    assert argvs(commands) == [S + ("delete", "policy", "name=P")]


def test_foreign_mmpolicy_name_is_validated():
    bad = replace(FOREIGN, mmpolicy='say "hi"')
    with pytest.raises(ValidationError) as err:
        render(Change("delete_dynamic", bad), before=HostState(dynamic=(bad,)), after=HostState())
    assert err.value.option == "mmpolicy"


@pytest.mark.parametrize("change, option", [
    (Change("add_policy", Policy('say "hi"')), "policy"),
    (Change("add_policy", Policy("P", description='a "quoted" word')), "description"),
    (Change("add_policy", Policy("")), "policy"),
    (Change("add_policy", Policy("P", polling_interval=0)), "pollinginterval"),
    (Change("add_filterlist", FilterList("a\nb")), "filterlist"),
    (Change("add_rule", Rule("R", "L", 'B"'), "P"), "filteraction"),
    (Change("add_rule", Rule("R", "L", "Block", auth=(AuthMethod("psk", 'a"b'),)), "P"), "auth.value"),
    (Change("add_rule", Rule("R", "L", "Block", auth=(AuthMethod("psk", ""),)), "P"), "psk"),
    (Change("add_rule", Rule("R", "L", "Block", conntype="wan"), "P"), "conntype"),
    (Change("add_rule", Rule("R", "L", "Block", tunnel="10.0.0.1; calc"), "P"), "tunnel"),
    (Change("add_rule", Rule("R", "L", "Block", tunnel="10.0.0.0/8"), "P"), "tunnel"),
    (Change("add_filter", Filter(ANY, Address("dns", 'x"y')), "L"), "dstaddr"),
    (Change("add_filter", Filter(ANY, ME, 1, 0, 80), "L"), "dstport"),
    (Change("add_filter", Filter(Address("ip", "10.0.0.300"), ME), "L"), "srcaddr"),
    (Change("add_filteraction", FilterAction("A", "block", offers=(QmOffer("MD5"),))), "qmsecmethods"),
    (Change("add_filteraction", FilterAction("A", "drop")), "action"),
    (Change("set_rule", Rule("R", "L", "Block", description="x\ry"), "P", old=RULE), "description"),
])
def test_rejected_values_name_the_option(change, option):
    with pytest.raises(ValidationError) as err:
        render(change)
    assert err.value.option == option


def test_embedded_quote_rejection_says_why():
    with pytest.raises(ValidationError, match="embedded quotes is not documented"):
        render(Change("add_policy", Policy('a"b')))


SCRIPT_VALUES = [n for n in HOSTILE_NAMES if '"' not in n] + ["trailing space\\", "a\\b c", "", "x y\\\\"]


@pytest.mark.parametrize("name", SCRIPT_VALUES)
def test_script_tokens_read_the_same_by_both_tokenizers(name):
    """netsh's script tokenizer is not documented: the token must split back to the argument whether
    a backslash escapes a quote (CommandLineToArgvW) or not (winsim's reading)."""
    from winsim.tools.netsh import split_line
    token = netsh.script_token("name=" + name)
    assert split_line(token) == ["name=" + name]
    assert split_command_line(token, first_is_program=False) == ["name=" + name]


# --- foreign dynamic rules, run on winsim's netsh ---------------------------------------------------------

def _spd(host):
    """The SPD exactly: every rule with its actions and main-mode policy, and the main-mode policies."""
    return (_rules((e.rule, e.mmpolicy) for e in host.dynamic), sorted(p.name for p in host.mmpolicies.values()))


def _rules(pairs):
    return sorted(((r.filter.key(), r.conntype, r.inbound, r.outbound, mmpolicy) for r, mmpolicy in pairs), key=repr)


def _host_with_foreign_rule(path, own=False):
    from winsim.host import SimHost
    host = SimHost("h", "127.0.0.2", "modern", str(path))
    planted = [D + ("add", "mmpolicy", "name=AdminBlock"),
               D + ("add", "rule") + FILTER_ARGS + ("conntype=all", "mmpolicy=AdminBlock", "actioninbound=block",
                                                   "actionoutbound=block")]
    if own:
        planted += [D + ("add", "mmpolicy", "name=" + netsh.MM_POLICY),
                    D + ("add", "rule", "srcaddr=me", "dstaddr=any", "protocol=ICMP", "mirrored=yes",
                         "conntype=all", "mmpolicy=" + netsh.MM_POLICY, "actioninbound=block", "actionoutbound=block")]
    for argv in planted:
        assert host.run_tool(list(argv)).rc == 0
    return host


def _read(host):
    return HostState(dynamic=tuple(e.rule for e in host.dynamic), os=OsInfo("modern", dialect="netsh"))


FOREIGN_PLANS = {
    "present": lambda s: plan.plan_dynamic(s, [DynamicRule(UDP1434_IN), DynamicRule(ICMP)]),
    "present, foreign actions corrected": lambda s: plan.plan_dynamic(s, [DynamicRule(TCP445, "permit")]),
    "absent, foreign": lambda s: plan.plan_dynamic(s, [DynamicRule(TCP445)], state="absent"),
    "absent, own": lambda s: plan.plan_dynamic(s, [DynamicRule(Filter(ME, ANY, 1))], state="absent"),
    "cleared": lambda s: plan.plan_dynamic(s, state="cleared"),
}


@pytest.mark.parametrize("own", [False, True], ids=["foreign only", "foreign and own"])
@pytest.mark.parametrize("name", sorted(FOREIGN_PLANS))
def test_foreign_rules_on_winsim_reach_the_plan_and_undo_restores_at_every_step(tmp_path, name, own):
    host = _host_with_foreign_rule(tmp_path / "plan", own)
    before = _read(host)
    planned = FOREIGN_PLANS[name](before)
    commands = render(*planned.changes, before=before, after=planned.after)
    for command in commands:
        assert host.run_tool(list(command.argv)).rc == 0, command.display
    spd, mmpolicies = _spd(host)
    assert spd == _rules((d, d.mmpolicy) for d in planned.after.dynamic), name
    assert "AdminBlock" in mmpolicies                           # never deleted, whatever the plan
    assert (netsh.MM_POLICY in mmpolicies) == any(d.mmpolicy == netsh.MM_POLICY for d in planned.after.dynamic)
    assert not FOREIGN_PLANS[name](_read(host)).changes         # a second run changes nothing
    for fail_at in range(1, len(commands) + 1):
        host = _host_with_foreign_rule(tmp_path / str(fail_at), own)
        start = _spd(host)
        host.configure(fail_step=fail_at)
        done = []
        for command in commands:
            if host.run_tool(list(command.argv)).rc != 0:
                break
            done.append(command)
        assert len(done) == fail_at - 1
        host.configure(fail_step=0)
        for undo in remote.undo_steps(done):
            assert host.run_tool(list(undo.argv)).rc == 0, undo.display
        assert _spd(host) == start, "%s: failure at step %d" % (name, fail_at)


@pytest.mark.parametrize("lifetime", [":900s", ":50000k"])
def test_a_single_quick_mode_lifetime_is_refused_for_netsh(lifetime):
    """netsh documents only `:k/s`; a lone lifetime would be guessed ([I]), so it is refused by name."""
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import FilterAction, parse_qmsecmethods
    action = FilterAction("Secure", "negotiate", offers=parse_qmsecmethods("methods", "ESP[3DES,SHA1]" + lifetime))
    with pytest.raises(ValidationError, match="methods.*both lifetimes"):
        render(Change("add_filteraction", action))
    both = FilterAction("Secure", "negotiate", offers=parse_qmsecmethods("methods", "ESP[3DES,SHA1]:50000k/900s"))
    [command] = render(Change("add_filteraction", both))
    assert "qmsecmethods=ESP[3DES,SHA1]:50000k/900s" in command.argv
