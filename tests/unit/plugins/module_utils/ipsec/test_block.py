"""The emergency block: the names it owns and its planner (placement, exact undo, idempotence)."""
import functools

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import block as B


@pytest.mark.parametrize("name, owned", [
    ("winsec-emergency UDP 1434", True),
    ("WINSEC-EMERGENCY UDP 1434 in", True),          # Windows compares names case-insensitively
    ("Winsec-Emergency x", True),
    ("winsec-emergency", False),                     # the prefix includes the space
    ("winsec-emergencyX", False),
    (" winsec-emergency x", False),
    ("Corp Baseline", False),
    ("", False),
    (None, False),
])
def test_is_emergency_name(name, owned):
    assert B.is_emergency_name(name) is owned


# ---------------------------------------------------------------------------------------------
# Options -> the block
# ---------------------------------------------------------------------------------------------

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import dialects  # noqa: E402
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import plan as P  # noqa: E402
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.args import filters_option  # noqa: E402
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import parse_filterspec  # noqa: E402
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (  # noqa: E402
    DomainAssignment, DynamicRule, HostState, OsInfo, Policy, ValidationError,
)

NETSH = HostState(os=OsInfo("modern", dialect="netsh"), policyagent="running")
XP = HostState(os=OsInfo("xp", dialect="ipseccmd"), policyagent="running")
TELNET = "Corp Baseline"
PARSE = functools.partial(filters_option, dynamic=True)     # block filters: [ ] brackets welcome


def slammer(mode="both", state="present", **kw):
    return B.block_from_options(ports=[{"protocol": "UDP", "port": 1434}], mode=mode, state=state,
                                parse_filters=PARSE, **kw)


def with_baseline(host):
    """A host whose own policy blocks TCP 23 and is assigned (the issue's reproduction)."""
    rule, flist, faction = P.rule_objects("Block Telnet", [parse_filterspec("*=0:23:TCP", "f").filter])
    plan = P.plan_policy(host, Policy(TELNET, rules=(rule,)), rules_objects=(flist, faction), assign=True)
    return plan.after


def with_domain(host):
    return P.replace(host, domain=DomainAssignment("Corp Domain", "LDAP://CN=ipsecPolicy{1},CN=IP Security"))


def ops(plan):
    return [(c.op, P._label(c.obj), c.parent) for c in plan.changes]


def test_ports_become_the_kb_filters_and_the_default_name():
    block = slammer()
    kb = [parse_filterspec(s, "f").filter for s in ("*=0:1434:UDP", "0=*:1434:UDP")]
    assert [f.key() for f in block.filters] == [f.key() for f in kb]
    assert block.name == "UDP 1434" and block.object_name == "winsec-emergency UDP 1434"
    assert B.is_emergency_name(block.object_name)
    mixed = B.block_from_options(ports=[{"protocol": "udp", "port": "1434", "direction": "both"},
                                        {"protocol": 6, "port": 445, "direction": "in"}],
                                 filters=["*=0:1434:UDP", "[0=*:135:TCP]"], parse_filters=PARSE)
    assert mixed.name == "UDP 1434, TCP 445 in, TCP 135"
    assert len(mixed.filters) == 4          # the filterspec twin of the UDP port entry counts once


@pytest.mark.parametrize("kwargs, option, words", [
    ({}, "ports", "at least one"),
    ({"ports": [{"protocol": "UDP", "port": 70000}]}, "ports[0].port", "0-65535"),
    ({"ports": [{"protocol": "ICMP", "port": 8}]}, "ports[0].port", "TCP or UDP"),
    ({"ports": [{"protocol": "SCTP", "port": 8}]}, "ports[0].protocol", "protocol number"),
    ({"ports": [{"protocol": "UDP", "port": 1, "direction": "sideways"}]}, "ports[0].direction", "in, out, both"),
    ({"ports": [{"protocol": "UDP", "port": 1, "dir": "in"}]}, "ports[0]", "unknown key dir"),
    ({"ports": [{"protocol": "UDP", "port": 1}], "name": "x:5"}, "name", "ipseccmd"),
    ({"ports": [{"protocol": "UDP", "port": 1}], "name": " x"}, "name", "whitespace"),
    ({"ports": [{"protocol": "UDP", "port": 1}], "name": 'a "b"'}, "name", "double quote"),     # netsh
    ({"filters": ["*0=:1434:UDP"]}, "filters[0]", ""),
    ({"ports": [{"protocol": "UDP", "port": 1}], "mode": "sometimes"}, "mode", "both, dynamic, static"),
])
def test_bad_options_name_the_option(kwargs, option, words):
    with pytest.raises(ValidationError) as err:
        B.block_from_options(parse_filters=PARSE, **kwargs)
    assert err.value.option == option and words in str(err.value), str(err.value)


def test_the_name_is_checked_for_the_given_dialect_or_for_every_tool_before_connecting():
    assert B.block_from_options(ports=[{"protocol": "UDP", "port": 1}], name='a "b"', parse_filters=PARSE,
                                dialect="ipseccmd").name == 'a "b"'     # ipseccmd takes it; netsh would not
    with pytest.raises(ValidationError, match="dialect netsh"):
        B.block_from_options(ports=[{"protocol": "UDP", "port": 1}], name='a "b"', parse_filters=PARSE)


# ---------------------------------------------------------------------------------------------
# Placement
# ---------------------------------------------------------------------------------------------

OWN = "winsec-emergency UDP 1434"


def test_no_policy_assigned_the_block_gets_its_own_policy_assigned():
    plan, placement = B.plan_block(NETSH, slammer())
    assert placement.static == "own_policy" and placement.policy == OWN
    assert ops(plan) == [
        ("add_dynamic", "any -> me:1434 UDP", ""), ("add_dynamic", "me -> any:1434 UDP", ""),
        ("add_policy", OWN, ""), ("add_filterlist", OWN, ""), ("add_filteraction", OWN, ""),
        ("add_rule", OWN, OWN), ("assign", OWN, "")]
    assert plan.after.assigned == OWN and B.problems(plan.after, slammer(), placement) == []
    assert not plan.warnings


def test_an_assigned_policy_keeps_its_rules_and_stays_assigned_with_the_block_rule_in_it():
    before = with_baseline(NETSH)
    plan, placement = B.plan_block(before, slammer())
    assert placement.static == "assigned_policy" and placement.policy == TELNET
    assert ops(plan)[2:] == [("add_filterlist", OWN, ""), ("add_filteraction", OWN, ""), ("add_rule", OWN, TELNET)]
    assert plan.after.assigned == TELNET
    assert sorted(r.name for r in plan.after.policy(TELNET).rules) == ["Block Telnet", OWN]
    assert plan.after.policy(OWN) is None and not plan.warnings
    assert B.problems(plan.after, slammer(), placement) == []
    # the baseline's own objects are untouched
    assert plan.after.filterlist("Block Telnet") == before.filterlist("Block Telnet")


def test_a_domain_policy_gets_the_dynamic_block_only_and_says_where_the_persistent_one_belongs():
    before = with_domain(with_baseline(NETSH))
    plan, placement = B.plan_block(before, slammer())
    assert placement.static == "none" and "domain_rollout.yml" in placement.reason
    assert [c.op for c in plan.changes] == ["add_dynamic", "add_dynamic"]
    assert any("'Corp Domain'" in w and "domain store" in w for w in plan.warnings), plan.warnings
    assert B.problems(plan.after, slammer(), placement) == []
    line = B.summary(slammer(), placement, plan, plan.after, [], False)
    assert line.startswith("blocked and verified; static: none, domain (GPO) policy 'Corp Domain'"), line
    assert line.endswith("dynamic filters: 2")
    # mode=static blocks nothing there: not verified, nothing planned
    plan, placement = B.plan_block(before, slammer(mode="static"))
    assert not plan.changes
    assert B.problems(plan.after, slammer(mode="static"), placement)[0].startswith("nothing blocks: domain")


@pytest.mark.parametrize("host", [NETSH, with_baseline(NETSH), with_domain(NETSH), with_baseline(XP), XP])
@pytest.mark.parametrize("mode", B.MODES)
def test_replanning_is_empty_and_absent_restores_exactly(host, mode):
    block = slammer(mode=mode)
    plan, placement = B.plan_block(host, block)
    again, _ = B.plan_block(plan.after, block)
    assert not again.changes, ops(again)
    assert P.converged(P.apply(plan.after, P.undo(plan.changes)), host)   # the write's own undo
    undo, held = B.plan_block(plan.after, slammer(mode=mode, state="absent"))
    assert P.converged(undo.after, host), ops(undo)
    assert held.static == placement.static and held.policy == placement.policy
    assert B.problems(undo.after, slammer(mode=mode, state="absent"), held) == []
    gone, _ = B.plan_block(undo.after, slammer(mode=mode, state="absent"))
    assert not gone.changes


def test_the_undo_leaves_the_baseline_assigned_and_unassigns_only_its_own_policy():
    base = with_baseline(NETSH)
    placed, _ = B.plan_block(base, slammer())
    undo, placement = B.plan_block(placed.after, slammer(state="absent"))
    assert [c.op for c in undo.changes] == ["delete_dynamic", "delete_dynamic", "delete_rule", "delete_filterlist",
                                            "delete_filteraction"]
    assert undo.after.assigned == TELNET
    assert B.summary(slammer(state="absent"), placement, undo, undo.after, [], False) == (
        "unblocked and verified; static: 1 rule removed from policy Corp Baseline; dynamic filters removed: 2")
    own, _ = B.plan_block(NETSH, slammer())
    undo, placement = B.plan_block(own.after, slammer(state="absent"))
    assert ("unassign", OWN, "") in ops(undo) and ("delete_policy", OWN, "") in ops(undo)
    assert undo.after.assigned == "" and not undo.warnings
    assert any("was the block's own" in n for n in undo.notes)


def test_two_blocks_share_the_emergency_policy_and_each_undo_removes_only_its_own():
    first = slammer()
    second = B.block_from_options(ports=[{"protocol": "TCP", "port": 445}], parse_filters=PARSE)
    a, _ = B.plan_block(NETSH, first)
    b, placement = B.plan_block(a.after, second)
    assert placement.static == "assigned_policy" and placement.policy == OWN     # the first block's policy
    undo_a, held = B.plan_block(b.after, B.replace(first, state="absent"))
    assert held.static == "assigned_policy" and held.policy == OWN      # it keeps the second block's rule
    assert B.problems(undo_a.after, B.replace(first, state="absent"), held) == []
    assert undo_a.after.assigned == OWN
    assert [r.name for r in undo_a.after.policy(OWN).rules] == ["winsec-emergency TCP 445"]
    assert B.problems(undo_a.after, second, placement) == []
    undo_b, _ = B.plan_block(undo_a.after, B.replace(second, state="absent"))
    assert P.converged(undo_b.after, NETSH), ops(undo_b)


def test_a_rule_left_in_a_policy_no_longer_in_force_moves_to_the_policy_in_force():
    placed, _ = B.plan_block(with_baseline(NETSH), slammer())
    unassigned = P.replace(placed.after, assigned="")
    plan, placement = B.plan_block(unassigned, slammer())
    assert placement.static == "own_policy"
    assert ("delete_rule", OWN, TELNET) in ops(plan)
    assert [p.name for p in B.holders(plan.after, slammer())] == [OWN]
    assert any("not in force" in n for n in plan.notes)


def test_absent_leaves_another_tools_dynamic_rule_with_the_same_filter():
    theirs = DynamicRule(slammer().filters[0], mmpolicy="Admin MM")
    host = P.replace(NETSH, dynamic=(theirs,), mmpolicies=("Admin MM",))
    plan, _ = B.plan_block(host, slammer(mode="dynamic"))
    assert ops(plan) == [("add_dynamic", "me -> any:1434 UDP", "")]        # theirs counts as present
    undo, placement = B.plan_block(plan.after, slammer(mode="dynamic", state="absent"))
    assert undo.after.dynamic == (theirs,)
    assert any("Admin MM" in n for n in undo.notes)
    assert B.problems(undo.after, slammer(mode="dynamic", state="absent"), placement) == []


@pytest.mark.parametrize("host", [XP, with_baseline(XP)])
def test_ipseccmd_renders_the_block_and_its_undo(host):
    plan, _ = B.plan_block(host, slammer())
    commands = [" ".join(c.argv) for c in dialects.render(list(plan.changes), "ipseccmd", before=host,
                                                           after=plan.after)]
    assert any("-r %s" % OWN in c and "-n BLOCK" in c for c in commands), commands
    undo, _ = B.plan_block(plan.after, slammer(state="absent"))
    assert dialects.render(list(undo.changes), "ipseccmd", before=plan.after, after=undo.after)


def test_problems_say_what_is_missing():
    block = slammer()
    plan, placement = B.plan_block(with_baseline(NETSH), block)
    lifted = P.replace(plan.after, assigned="", dynamic=plan.after.dynamic[:1])
    found = B.problems(lifted, block, placement)
    assert found == ["the assigned policy is none, not 'Corp Baseline'", "dynamic filter me -> any:1434 UDP is missing"]
    line = B.summary(block, placement, plan, lifted, found, True)
    assert line.startswith("check mode, would be blocked, NOT verified: the assigned policy is none")


def test_changing_a_blocks_ports_under_its_name_replaces_its_filters_and_problems_see_extra_ones():
    wide = B.block_from_options(ports=[{"protocol": "UDP", "port": 1434}, {"protocol": "TCP", "port": 445}],
                                name="worm", parse_filters=PARSE)
    narrow = B.block_from_options(ports=[{"protocol": "UDP", "port": 1434}], name="worm", parse_filters=PARSE)
    first, _ = B.plan_block(with_baseline(NETSH), wide)
    plan, placement = B.plan_block(first.after, narrow)
    # the static rule follows; dynamic filters carry no name, so the 445 ones stay until removed by filter
    assert ops(plan) == [("delete_filter", "any -> me:445 TCP", "winsec-emergency worm"),
                         ("delete_filter", "me -> any:445 TCP", "winsec-emergency worm")]
    assert B.problems(plan.after, narrow, placement) == []
    assert B.problems(first.after, narrow, placement) == [
        "rule 'winsec-emergency worm' also blocks any -> me:445 TCP, me -> any:445 TCP"]


@pytest.mark.parametrize("mode", ["both", "dynamic"])
@pytest.mark.parametrize("state", ["present", "absent"])
def test_dynamic_rules_that_could_not_be_read_are_never_verified(mode, state):
    """A read-back whose dynamic rules are unknown (HostState.dynamic None: a listing the engine could
    not read) is not verified, and the summary counts them as unknown, not as 0."""
    block = slammer(mode=mode, state=state)
    plan, placement = B.plan_block(with_baseline(NETSH), slammer(mode=mode))
    judged = P.replace(plan.after, dynamic=None)
    found = B.problems(judged, block, placement)
    assert B.DYNAMIC_UNKNOWN in found
    assert B.dynamic_count(judged, block) is None
    if state == "present":
        assert "dynamic filters: unknown" in B.summary(block, placement, plan, judged, found, False)
    assert B.problems(judged, slammer(mode="static", state=state), placement) == (
        B.problems(plan.after, slammer(mode="static", state=state), placement))
