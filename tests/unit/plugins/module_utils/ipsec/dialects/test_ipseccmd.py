"""ipseccmd and ipsecpol dialects: the KB 813878 commands, per-rule rendering from before/after, undo,
and what the grammar cannot express."""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import dialects, plan
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import MASK
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, KERBEROS, ME, Address, AuthMethod, Change, DynamicRule, Filter, FilterAction, FilterList, HostState,
    Policy, QmOffer, Rule, ValidationError)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.quoting import split_command_line

# KB 813878 (reference/KB813878-ipsec-block-ports.txt), the Slammer example and its removal, verbatim.
KB_IPSECCMD_CREATE = [
    'IPSeccmd.exe -w REG -p "Block UDP 1434 Filter" -r "Block Inbound UDP 1434 Rule" -f *=0:1434:UDP -n BLOCK -x',
    'IPSeccmd.exe -w REG -p "Block UDP 1434 Filter" -r "Block Outbound UDP 1434 Rule" -f 0=*:1434:UDP -n BLOCK',
]
KB_IPSECCMD_REMOVE = [
    'IPSeccmd.exe -w REG -p "Block UDP 1434 Filter" -y',
    'IPSeccmd.exe -w REG -p "Block UDP 1434 Filter" -r "Block Inbound UDP 1434 Rule" '
    '-r "Block Outbound UDP 1434 Rule" -o',
]
KB_IPSECPOL_CREATE = [
    'ipsecpol -w REG -p "Block UDP 1434 Filter" -r "Block Inbound UDP 1434 Rule" -f *=0:1434:UDP -n BLOCK -x',
    'ipsecpol -w REG -p "Block UDP 1434 Filter" -r "Block Outbound UDP 1434 Rule" -f 0=*:1434:UDP -n BLOCK',
]
KB_IPSECPOL_REMOVE = [
    'ipsecpol -w REG -p "Block UDP 1434 Filter" -y',
    'ipsecpol -w REG -p "Block UDP 1434 Filter" -r "Block Inbound UDP 1434 Rule" -r "Block Outbound UDP 1434 Rule" -o',
]
KB_IPSECCMD_DYNAMIC = "IPSeccmd.exe -f [*=0:1434:UDP]"     # the KB's -f [*=0:PortNumber:Protocol] for Slammer
KB_IPSECCMD_CLEAR = "IPSeccmd.exe -u"

IN = Filter(ANY, ME, 17, 0, 1434, mirrored=False)
OUT = Filter(ME, ANY, 17, 0, 1434, mirrored=False)
TCP80 = Filter(ANY, ME, 6, 0, 80, mirrored=False)


def slammer():
    rules = [plan.rule_objects("Block Inbound UDP 1434 Rule", [IN]),
             plan.rule_objects("Block Outbound UDP 1434 Rule", [OUT])]
    return plan.policy_objects("Block UDP 1434 Filter", rules)


def kb_argv(line, tool):
    argv = split_command_line(line)
    return (tool,) + tuple(argv[1:])


def render(p, dialect, before, **kw):
    return dialects.render(p.changes, dialect, before=before, after=p.after, **kw)


@pytest.mark.parametrize("dialect, create, remove", [
    ("ipseccmd", KB_IPSECCMD_CREATE, KB_IPSECCMD_REMOVE),
    ("ipsecpol", KB_IPSECPOL_CREATE, KB_IPSECPOL_REMOVE),
])
def test_kb_slammer_plan_renders_the_kb_commands(dialect, create, remove):
    policy, objects = slammer()
    created = plan.plan_policy(HostState(), policy, rules_objects=objects, assign=True)
    commands = render(created, dialect, HostState())
    assert [c.argv for c in commands] == [kb_argv(line, dialect) for line in create]
    for command in commands:
        assert split_command_line(command.display) == list(command.argv)
    removed = plan.plan_policy(created.after, policy, rules_objects=objects, state="deleted")
    assert [c.argv for c in render(removed, dialect, created.after)] == [kb_argv(line, dialect) for line in remove]


def test_kb_slammer_undo():
    policy, objects = slammer()
    created = plan.plan_policy(HostState(), policy, rules_objects=objects, assign=True)
    inbound, outbound = render(created, "ipseccmd", HostState())
    base = ("ipseccmd", "-w", "REG", "-p", "Block UDP 1434 Filter")
    assert [u.argv for u in inbound.undo] == [base + ("-y",), base + ("-r", "Block Inbound UDP 1434 Rule", "-o")]
    assert [u.argv for u in outbound.undo] == [base + ("-r", "Block Outbound UDP 1434 Rule", "-o")]
    unassign, delete = render(plan.plan_policy(created.after, policy, rules_objects=objects, state="deleted"),
                              "ipseccmd", created.after)
    assert [u.argv for u in unassign.undo] == [base + ("-x",)]
    # the deletion's undo recreates both rules (the assignment is the unassign's undo): the KB lines minus -x
    assert [u.argv for u in delete.undo] == [inbound.argv[:-1], outbound.argv]


def test_kb_dynamic_block_and_clear():
    rule = DynamicRule(IN)
    added = plan.plan_dynamic(HostState(), [rule])
    command, = render(added, "ipseccmd", HostState())
    assert command.argv == kb_argv(KB_IPSECCMD_DYNAMIC, "ipseccmd")
    assert [u.argv for u in command.undo] == [kb_argv(KB_IPSECCMD_CLEAR, "ipseccmd")]
    cleared = plan.plan_dynamic(added.after, state="cleared")
    clear, = render(cleared, "ipseccmd", added.after)
    assert clear.argv == kb_argv(KB_IPSECCMD_CLEAR, "ipseccmd")
    assert [u.argv for u in clear.undo] == [command.argv]


def test_deleting_one_dynamic_rule_clears_and_readds_the_rest():
    keep = DynamicRule(TCP80, "permit", "permit", "lan")
    drop = DynamicRule(IN)
    before = HostState(dynamic=(drop, keep))
    p = plan.plan_dynamic(before, [drop], state="absent")
    clear, readd = render(p, "ipseccmd", before)
    assert clear.argv == ("ipseccmd", "-u")
    assert [u.argv for u in clear.undo] == [("ipseccmd", "-f", "[*=0:1434:UDP]"),
                                             ("ipseccmd", "-f", "(*=0:80:TCP)", "-lan")]
    assert readd.argv == ("ipseccmd", "-f", "(*=0:80:TCP)", "-lan")
    assert [u.argv for u in readd.undo] == [("ipseccmd", "-u")]


def test_second_dynamic_add_undo_restores_the_first():
    a, b = DynamicRule(IN), DynamicRule(Filter(ANY, ME, 6, 0, 445, True))
    p = plan.plan_dynamic(HostState(), [a, b])
    first, second = render(p, "ipseccmd", HostState())
    assert second.argv == ("ipseccmd", "-f", "[*+0:445:TCP]")
    assert [u.argv for u in second.undo] == [("ipseccmd", "-u"), first.argv]


def test_kb_add_rule_to_existing_policy():
    policy, objects = slammer()
    existing = plan.plan_policy(HostState(), policy, rules_objects=objects, assign=True).after
    rule, flist, faction = plan.rule_objects("Block Inbound TCP 80 Rule", [TCP80])
    p = plan.plan_rule(existing, "Block UDP 1434 Filter", rule, flist, faction)
    command, = render(p, "ipseccmd", existing)
    # KB: IPSeccmd.exe -p "Block UDP 1434 Filter" -w REG -r "Block Inbound TCP 80 Rule" -f *=0:80:TCP -n BLOCK
    assert command.argv == ("ipseccmd", "-w", "REG", "-p", "Block UDP 1434 Filter", "-r", "Block Inbound TCP 80 Rule",
                            "-f", "*=0:80:TCP", "-n", "BLOCK")
    assert [u.argv for u in command.undo] == [("ipseccmd", "-w", "REG", "-p", "Block UDP 1434 Filter", "-r",
                                               "Block Inbound TCP 80 Rule", "-o")]


# ---- per-rule rendering from before/after ---------------------------------------------------------------

LIST = FilterList("R", (IN,))
BLOCK = FilterAction("Block")
RULE = Rule("R", "R", "Block")
STATE = HostState(policies=(Policy("P", rules=(RULE, Rule("S", "S", "Block"))),),
                  filterlists=(LIST, FilterList("S", (OUT,))), filteractions=(BLOCK,))
BASE = ("ipseccmd", "-w", "REG", "-p", "P")


def run(*changes, before=STATE, dialect="ipseccmd", **kw):
    after = plan.apply(before, changes)
    return dialects.render(list(changes), dialect, before=before, after=after, **kw)


def test_adding_a_filter_replaces_the_rule_with_all_its_filters():
    add = plan.with_inverse(STATE, "add_filter", TCP80, "R")
    command, = run(add)
    assert command.argv == BASE + ("-r", "R", "-f", "*=0:1434:UDP", "*=0:80:TCP", "-n", "BLOCK")
    assert command.change is add
    assert [u.argv for u in command.undo] == [BASE + ("-r", "R", "-f", "*=0:1434:UDP", "-n", "BLOCK")]


def test_changing_the_action_replaces_every_rule_using_it():
    change = plan.with_inverse(STATE, "set_filteraction", FilterAction("Block", "permit"), old=BLOCK)
    commands = run(change)
    assert [c.argv for c in commands] == [BASE + ("-r", "R", "-f", "*=0:1434:UDP", "-n", "PASS"),
                                         BASE + ("-r", "S", "-f", "0=*:1434:UDP", "-n", "PASS")]


def test_deleting_one_rule_of_a_policy_that_keeps_others():
    delete = plan.with_inverse(STATE, "delete_rule", RULE, "P")
    command, = run(delete, plan.with_inverse(plan.apply(STATE, [delete]), "delete_filterlist", LIST))
    assert command.argv == BASE + ("-r", "R", "-o")
    assert [u.argv for u in command.undo] == [BASE + ("-r", "R", "-f", "*=0:1434:UDP", "-n", "BLOCK")]


def test_a_policy_left_without_rules_is_refused():
    one = HostState(policies=(Policy("P", rules=(RULE,)),), filterlists=(LIST,), filteractions=(BLOCK,))
    with pytest.raises(ValidationError) as err:
        run(plan.with_inverse(one, "delete_rule", RULE, "P"), before=one)
    assert err.value.option == "rules" and "netsh" in str(err.value)


def test_polling_interval_travels_with_a_rule_command():
    change = plan.with_inverse(STATE, "set_policy", Policy("P", polling_interval=30), old=Policy("P"))
    command, = run(change)
    assert command.argv == ("ipseccmd", "-w", "REG", "-p", "P:30", "-r", "R", "-f", "*=0:1434:UDP", "-n", "BLOCK")
    assert command.undo[0].argv[4] == "P:180"


def test_assigning_an_existing_policy_displaces_the_assigned_one():
    before = HostState(policies=STATE.policies + (Policy("Q", rules=(Rule("T", "R", "Block"),)),),
                       filterlists=STATE.filterlists, filteractions=STATE.filteractions, assigned="Q")
    p = plan.plan_policy(before, plan.replace(before.policy("P"), rules=()), assign=True)   # ipsec_policy: name, assigned
    command, = render(p, "ipseccmd", before)
    assert command.argv == BASE + ("-x",)
    assert [u.argv for u in command.undo] == [("ipseccmd", "-w", "REG", "-p", "Q", "-x")]


def test_rule_options_conntype_soft_tunnel_psk_offers():
    key = "pre shared"
    action = FilterAction("Sec", "negotiate", soft=True,
                          offers=(QmOffer("", "3DES", "SHA1", 100000, 3600), QmOffer("MD5")))
    rule = Rule("R", "R", "Sec", conntype="lan", tunnel="10.0.0.9", auth=(AuthMethod("psk", key), KERBEROS))
    before = HostState(policies=(Policy("P", rules=(RULE,)),), filterlists=(LIST,), filteractions=(BLOCK,))
    command, = run(plan.with_inverse(before, "add_filteraction", action),
                   plan.with_inverse(plan.apply(before, [Change("add_filteraction", action)]), "set_rule", rule, "P",
                                     old=RULE), before=before)
    assert command.argv == BASE + ("-r", "R", "-f", "*=0:1434:UDP", "-n", "ESP[3DES,SHA] 3600S/100000K", "AH[MD5]",
                                   "-a", "P:" + key, "K", "-t", "10.0.0.9", "-lan", "-soft")
    assert key not in command.display and key not in repr(command)
    assert "P:" + MASK in command.display


@pytest.mark.parametrize("auth, expected", [
    ((KERBEROS,), ()),                                               # the default: no -a at all
    ((AuthMethod("cert", "CN=Root CA"), KERBEROS), ("-a", "CERT:CN=Root CA", "K")),
    ((KERBEROS, AuthMethod("psk", "k3y"), AuthMethod("cert", "CN=Other")), ("-a", "K", "P:k3y", "CERT:CN=Other")),
])
def test_auth_methods_are_one_list_after_one_a_in_the_rules_order(auth, expected):
    command, = run(plan.with_inverse(STATE, "set_rule", plan.replace(RULE, auth=auth), "P", old=RULE))
    assert command.argv == BASE + ("-r", "R", "-f", "*=0:1434:UDP", "-n", "BLOCK") + expected
    assert command.argv.count("-a") == len(expected[:1])


def test_a_key_change_undo_puts_the_old_key_back_masked():
    old = plan.replace(RULE, auth=(AuthMethod("psk", "old-key"), KERBEROS))
    before = plan.apply(STATE, [Change("set_rule", old, "P")])
    command, = run(plan.with_inverse(before, "set_rule", plan.replace(RULE, auth=(AuthMethod("psk", "new-key"),)),
                                     "P", old=old), before=before)
    assert command.argv[-2:] == ("-a", "P:new-key")
    undo, = command.undo
    assert undo.argv[-3:] == ("-a", "P:old-key", "K")
    assert "old-key" not in undo.display and "P:%s K" % MASK in undo.display


@pytest.mark.parametrize("method, option", [(AuthMethod("psk", ""), "psk"), (AuthMethod("cert", ""), "rootca"),
                                            (AuthMethod("ntlm"), "auth")])
def test_an_auth_method_ipseccmd_cannot_write_names_the_option(method, option):
    with pytest.raises(ValidationError) as err:
        run(plan.with_inverse(STATE, "set_rule", plan.replace(RULE, auth=(method,)), "P", old=RULE))
    assert err.value.option == option


def test_domain_store():
    change = plan.with_inverse(STATE, "add_filter", TCP80, "R")
    command, = run(change, store="domain", domain="corp.example")
    assert command.argv[:3] == ("ipseccmd", "-w", "DS:corp.example")
    command, = run(change, store="domain")
    assert command.argv[:3] == ("ipseccmd", "-w", "DS")


@pytest.mark.parametrize("edit, option", [
    (lambda s: Change("add_filter", Filter(Address("range", "10.0.0.1", end="10.0.0.5"), ME), "R"),
     "filters[1].src"),
    (lambda s: Change("add_filter", Filter(ANY, Address("ip", "fe80::1", "128")), "R"), "filters[1].dst"),
    (lambda s: Change("add_filter", Filter(Address("server", "DNS"), ME), "R"), "filters[1].src"),
    (lambda s: Change("set_filteraction", FilterAction("Block", "negotiate", inpass=True), old=BLOCK), "inpass"),
    (lambda s: Change("set_filteraction", FilterAction("Block", "negotiate", qmpfs=True), old=BLOCK), "qmpfs"),
    (lambda s: Change("set_rule", Rule("R", "R", "Block", active=False), "P", old=RULE), "active"),
    (lambda s: Change("set_rule", Rule("R", "R", "Block", description="d"), "P", old=RULE), "description"),
    (lambda s: Change("set_policy", Policy("P2"), old=Policy("P")), "name"),
    (lambda s: Change("set_policy", Policy("P", "why"), old=Policy("P")), "description"),
])
def test_what_ipseccmd_cannot_express_names_the_option_and_netsh(edit, option):
    with pytest.raises(ValidationError) as err:
        run(edit(STATE))
    assert err.value.option == option
    assert "netsh" in str(err.value)


def test_dynamic_rule_with_two_actions_needs_netsh():
    rule = DynamicRule(IN, "block", "permit")
    with pytest.raises(ValidationError) as err:
        render(plan.plan_dynamic(HostState(), [rule]), "ipseccmd", HostState())
    assert err.value.option == "inbound" and "netsh" in str(err.value)


@pytest.mark.parametrize("name, option", [("P:x", "policy"), ("-x", "policy"), ("", "policy")])
def test_policy_names_ipseccmd_would_misread(name, option):
    before = HostState(policies=(Policy(name, rules=(RULE,)),), filterlists=(LIST,), filteractions=(BLOCK,))
    with pytest.raises(ValidationError) as err:
        run(Change("add_filter", TCP80, "R"), before=before)
    assert err.value.option == option


@pytest.mark.parametrize("name", ["50% off", "!bang!", 'say "hi"', "line\nbreak"])
def test_ipsecpol_refuses_what_cmd_exe_would_reinterpret(name):
    rule = Rule(name, "R", "Block")
    before = HostState(policies=(Policy("P", rules=(rule,)),), filterlists=(LIST,), filteractions=(BLOCK,))
    with pytest.raises(ValidationError) as err:
        run(Change("add_filter", TCP80, "R"), before=before, dialect="ipsecpol")
    assert err.value.option == "rule"


def test_ipseccmd_delivers_names_cmd_exe_would_not():
    rule = Rule('50% "off" & more', "R", "Block")
    before = HostState(policies=(Policy("P", rules=(rule,)),), filterlists=(LIST,), filteractions=(BLOCK,))
    command, = run(Change("add_filter", TCP80, "R"), before=before)
    assert command.argv[6] == rule.name
    assert split_command_line(command.display) == list(command.argv)


def test_a_rule_too_long_for_one_command_line_points_at_netsh():
    many = tuple(Filter(Address("ip", "10.%d.%d.1" % (i // 250, i % 250)), ME, 6, 0, 445, False) for i in range(2000))
    before = HostState(policies=(Policy("P", rules=(RULE,)),), filterlists=(FilterList("R", many),),
                       filteractions=(BLOCK,))
    with pytest.raises(ValidationError) as err:
        run(Change("add_filter", TCP80, "R"), before=before)
    assert err.value.option == "filters" and "netsh" in str(err.value)


# ---- every change op, concretely ----------------------------------------------------------------

TWO = HostState(policies=(Policy("P", rules=(RULE, Rule("S", "S", "Block"))),),
                filterlists=(FilterList("R", (IN, TCP80)), FilterList("S", (OUT,))), filteractions=(BLOCK,),
                assigned="P")


def op(name, obj, parent="", old=None, before=TWO):
    return plan.with_inverse(before, name, obj, parent, old)


def rule_cmd(rule, specs, *extra, policy="P"):
    return ("ipseccmd", "-w", "REG", "-p", policy, "-r", rule, "-f") + specs + ("-n", "BLOCK") + extra


OPS = [
    ("add_policy", lambda: [op("add_policy", Policy("Q", polling_interval=45)),
                            op("add_filterlist", FilterList("Q1", (TCP80,))),
                            op("add_rule", Rule("Q1", "Q1", "Block"), "Q",
                               before=plan.apply(TWO, [Change("add_policy", Policy("Q")),
                                                       Change("add_filterlist", FilterList("Q1", (TCP80,)))]))],
     [rule_cmd("Q1", ("*=0:80:TCP",), policy="Q:45")]),
    ("set_policy", lambda: [op("set_policy", Policy("P", polling_interval=60), old=Policy("P"))],
     [rule_cmd("R", ("*=0:1434:UDP", "*=0:80:TCP"), policy="P:60")]),
    ("delete_policy", lambda: [op("unassign", TWO.policy("P")),
                               op("delete_policy", TWO.policy("P"), before=plan.replace(TWO, assigned=""))],
     [("ipseccmd", "-w", "REG", "-p", "P", "-y"), ("ipseccmd", "-w", "REG", "-p", "P", "-r", "R", "-r", "S", "-o")]),
    ("unassign", lambda: [op("unassign", TWO.policy("P"))], [("ipseccmd", "-w", "REG", "-p", "P", "-y")]),
    ("assign", lambda: [op("assign", TWO.policy("P"), old="", before=plan.replace(TWO, assigned=""))],
     [("ipseccmd", "-w", "REG", "-p", "P", "-x")]),
    ("add_filterlist", lambda: [op("add_filterlist", FilterList("Z", (TCP80,)))], []),
    ("set_filterlist", lambda: [op("set_filterlist", FilterList("R", (IN, TCP80)), old=TWO.filterlist("R"))],
     [rule_cmd("R", ("*=0:1434:UDP", "*=0:80:TCP"))]),
    ("delete_filterlist", lambda: [op("delete_filterlist", FilterList("Z"),
                                      before=plan.replace(TWO, filterlists=TWO.filterlists + (FilterList("Z"),)))],
     []),
    ("add_filter", lambda: [op("add_filter", TCP80, "S")], [rule_cmd("S", ("0=*:1434:UDP", "*=0:80:TCP"))]),
    ("delete_filter", lambda: [op("delete_filter", TCP80, "R")], [rule_cmd("R", ("*=0:1434:UDP",))]),
    ("add_filteraction", lambda: [op("add_filteraction", FilterAction("Permit", "permit"))], []),
    ("set_filteraction", lambda: [op("set_filteraction", FilterAction("Block", "block", soft=False), old=BLOCK)],
     [rule_cmd("R", ("*=0:1434:UDP", "*=0:80:TCP")), rule_cmd("S", ("0=*:1434:UDP",))]),
    ("delete_filteraction", lambda: [op("delete_filteraction", FilterAction("Permit", "permit"),
                                        before=plan.replace(TWO, filteractions=(BLOCK, FilterAction("Permit"))))],
     []),
    ("add_rule", lambda: [op("add_rule", Rule("T", "S", "Block", conntype="dialup"), "P")],
     [rule_cmd("T", ("0=*:1434:UDP",), "-dialup")]),
    ("set_rule", lambda: [op("set_rule", Rule("S", "S", "Block", conntype="lan"), "P", old=TWO.policy("P").rule("S"))],
     [rule_cmd("S", ("0=*:1434:UDP",), "-lan")]),
    ("delete_rule", lambda: [op("delete_rule", RULE, "P")], [("ipseccmd", "-w", "REG", "-p", "P", "-r", "R", "-o")]),
    ("add_dynamic", lambda: [op("add_dynamic", DynamicRule(OUT))], [("ipseccmd", "-f", "[0=*:1434:UDP]")]),
    ("delete_dynamic", lambda: [op("delete_dynamic", DynamicRule(OUT),
                                   before=plan.replace(TWO, dynamic=(DynamicRule(OUT),)))], [("ipseccmd", "-u")]),
]


@pytest.mark.parametrize("name, make, expected", OPS, ids=[o[0] for o in OPS])
def test_every_change_op(name, make, expected):
    changes = make()
    before = TWO
    if name in ("delete_filterlist", "delete_filteraction", "delete_dynamic", "assign"):
        before = plan.replace(TWO, **{"delete_filterlist": {"filterlists": TWO.filterlists + (FilterList("Z"),)},
                                      "delete_filteraction": {"filteractions": (BLOCK, FilterAction("Permit"))},
                                      "delete_dynamic": {"dynamic": (DynamicRule(OUT),)},
                                      "assign": {"assigned": ""}}[name])
    after = plan.apply(before, changes)
    commands = dialects.render(changes, "ipseccmd", before=before, after=after)
    assert [c.argv for c in commands] == expected
    for command in commands:
        assert command.undo, command.display
        assert split_command_line(command.display) == list(command.argv)


def test_unassigning_a_policy_whose_name_ipseccmd_would_misread():
    before = HostState(policies=(Policy("A:1", rules=(RULE,)),), filterlists=(LIST,), filteractions=(BLOCK,),
                       assigned="A:1")
    with pytest.raises(ValidationError) as err:
        run(Change("unassign", before.policy("A:1")), before=before)
    assert err.value.option == "policy"
