"""The planner: exact change lists for the KB 813878 procedure, the semantics of every change op,
the shared naming conventions, conflicts, and seeded random properties (apply reaches the desired
state, a second plan is empty, inverses restore the original state)."""
import dataclasses
import random

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import plan as P
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, CHANGE_OPS, ME, Address, Change, DomainAssignment, DynamicRule, Filter, FilterAction, FilterList, HostState,
    IPsecError, OsInfo, Policy, QmOffer, Rule, ValidationError, name_key, replace,
)

SLAMMER = "Block UDP 1434 Filter"
IN_1434 = Filter(ANY, ME, 17, 0, 1434, mirrored=False)      # ipseccmd -f *=0:1434:UDP
OUT_1434 = Filter(ME, ANY, 17, 0, 1434, mirrored=False)     # ipseccmd -f 0=*:1434:UDP
IN_80 = Filter(ANY, ME, 6, 0, 80, mirrored=False)           # ipseccmd -f *=0:80:TCP


def ops(plan):
    """(op, object name, parent) per change: what the assertions compare."""
    return [(c.op, P._label(c.obj), c.parent) for c in plan.changes]


def assignment(state, name, assign):
    """What ipsec_policy plans for a task giving only a policy's name and `assigned` (its settings
    are taken from the host, as plugins/action/ipsec_policy.py does)."""
    return P.plan_policy(state, replace(state.policy(name), rules=()), assign=assign)


def assert_undo_restores(before, plan):
    assert P.converged(P.apply(plan.after, P.undo(plan.changes)), before)


# ---------------------------------------------------------------------------------------------
# The KB 813878 procedure, step by step

def slammer_inbound():
    return P.policy_objects(SLAMMER, [P.rule_objects("Block Inbound UDP 1434 Rule", [IN_1434])])


def test_kb_procedure_as_a_sequence_of_plans():
    empty = HostState()
    # 1. ipseccmd -w REG -p "Block UDP 1434 Filter" -r "Block Inbound UDP 1434 Rule" -f *=0:1434:UDP -n BLOCK -x
    policy, objects = slammer_inbound()
    step1 = P.plan_policy(empty, policy, rules_objects=objects, assign=True)
    assert ops(step1) == [
        ("add_policy", SLAMMER, ""),
        ("add_filterlist", "Block Inbound UDP 1434 Rule", ""),
        ("add_filteraction", "Block", ""),
        ("add_rule", "Block Inbound UDP 1434 Rule", SLAMMER),
        ("assign", SLAMMER, ""),
    ]
    assert step1.changes[0].obj.rules == ()                 # rules come later, by add_rule
    assert step1.changes[1].obj.filters == (IN_1434,)
    assert step1.changes[2].obj == FilterAction("Block", "block")
    assert step1.warnings == ()
    s1 = step1.after
    assert s1.assigned == SLAMMER
    assert P.plan_policy(s1, policy, rules_objects=objects, assign=True).changes == ()

    # 2. ... -r "Block Outbound UDP 1434 Rule" -f 0=*:1434:UDP -n BLOCK (same policy, shared Block action)
    out_rule = P.rule_objects("Block Outbound UDP 1434 Rule", [OUT_1434])
    step2 = P.plan_rule(s1, SLAMMER, *out_rule, create_policy=False)
    assert ops(step2) == [
        ("add_filterlist", "Block Outbound UDP 1434 Rule", ""),
        ("add_rule", "Block Outbound UDP 1434 Rule", SLAMMER),
    ]
    s2 = step2.after
    assert P.plan_rule(s2, SLAMMER, *out_rule, create_policy=False).changes == ()

    # 3. ipseccmd -p "Block UDP 1434 Filter" -w REG -r "Block Inbound TCP 80 Rule" -f *=0:80:TCP -n BLOCK
    tcp80 = P.rule_objects("Block Inbound TCP 80 Rule", [IN_80])
    step3 = P.plan_rule(s2, SLAMMER, *tcp80, create_policy=False)
    assert ops(step3) == [
        ("add_filterlist", "Block Inbound TCP 80 Rule", ""),
        ("add_rule", "Block Inbound TCP 80 Rule", SLAMMER),
    ]
    s3 = step3.after
    assert [r.name for r in s3.policy(SLAMMER).rules] == [
        "Block Inbound UDP 1434 Rule", "Block Outbound UDP 1434 Rule", "Block Inbound TCP 80 Rule"]
    assert s3.users_of(filteraction="Block") == tuple((SLAMMER, r.name) for r in s3.policy(SLAMMER).rules)
    assert P.plan_rule(s3, SLAMMER, *tcp80, create_policy=False).changes == ()

    # 4. ipseccmd -w REG -p "Block UDP 1434 Filter" -y
    step4 = assignment(s3, SLAMMER, False)
    assert ops(step4) == [("unassign", SLAMMER, "")]
    s4 = step4.after
    assert s4.assigned == "" and s4.policy(SLAMMER) == s3.policy(SLAMMER)
    assert assignment(s4, SLAMMER, False).changes == ()

    # 5. ipseccmd -w REG -p "Block UDP 1434 Filter" -r ... -r ... -o  (and its now unused list/action)
    step5 = P.plan_policy(s4, Policy(SLAMMER), state="deleted")
    assert ops(step5) == [
        ("delete_rule", "Block Inbound UDP 1434 Rule", SLAMMER),
        ("delete_rule", "Block Outbound UDP 1434 Rule", SLAMMER),
        ("delete_rule", "Block Inbound TCP 80 Rule", SLAMMER),
        ("delete_policy", SLAMMER, ""),
        ("delete_filterlist", "Block Inbound UDP 1434 Rule", ""),
        ("delete_filterlist", "Block Outbound UDP 1434 Rule", ""),
        ("delete_filterlist", "Block Inbound TCP 80 Rule", ""),
        ("delete_filteraction", "Block", ""),
    ]
    assert P.converged(step5.after, empty)
    assert P.plan_policy(step5.after, Policy(SLAMMER), state="deleted").changes == ()

    # The whole procedure undone in reverse returns to the empty host.
    done = step1.changes + step2.changes + step3.changes + step4.changes + step5.changes
    assert P.converged(P.apply(HostState(), done), empty)
    assert P.converged(P.apply(step5.after, P.undo(done)), empty)
    for before, step in ((empty, step1), (s1, step2), (s2, step3), (s3, step4), (s4, step5)):
        assert_undo_restores(before, step)


def test_deleting_the_assigned_policy_unassigns_it_first_with_a_warning():
    policy, objects = slammer_inbound()
    s1 = P.plan_policy(HostState(), policy, rules_objects=objects, assign=True).after
    deleted = P.plan_policy(s1, policy, state="deleted")
    assert ops(deleted)[0] == ("unassign", SLAMMER, "")
    assert [op for op, _, _ in ops(deleted)].index("delete_policy") > 0
    assert any(SLAMMER in w and "unassigned" in w for w in deleted.warnings)


def test_kb_assigning_tcp80_policy_unassigns_the_slammer_policy_and_says_so():
    # KB: "If you enter this command, the "Block UDP 1434 Filter" policy is unassigned and the
    # "Block TCP 80 Filter" is assigned."
    policy, objects = slammer_inbound()
    s1 = P.plan_policy(HostState(), policy, rules_objects=objects, assign=True).after
    tcp_policy, tcp_objects = P.policy_objects("Block TCP 80 Filter", [P.rule_objects("Block Inbound TCP 80 Rule",
                                                                                      [IN_80])])
    step = P.plan_policy(s1, tcp_policy, rules_objects=tcp_objects, assign=True)
    assert ops(step) == [
        ("add_policy", "Block TCP 80 Filter", ""),
        ("add_filterlist", "Block Inbound TCP 80 Rule", ""),
        ("add_rule", "Block Inbound TCP 80 Rule", "Block TCP 80 Filter"),   # the Block action exists
        ("assign", "Block TCP 80 Filter", ""),
    ]
    assert step.changes[-1].old == SLAMMER
    assert step.after.assigned == "Block TCP 80 Filter"
    assert len(step.warnings) == 1 and "Block TCP 80 Filter" in step.warnings[0] and SLAMMER in step.warnings[0]
    assert step.changes[-1].inverse == Change("assign", s1.policy(SLAMMER), old="Block TCP 80 Filter")
    assert P.apply(step.after, P.undo(step.changes)).assigned == SLAMMER


# ---------------------------------------------------------------------------------------------
# apply: the exact meaning of each op

BLOCK = FilterAction("Block", "block")


def one_rule_state(assigned=""):
    fl = FilterList("L", (IN_1434,))
    pol = Policy("P", rules=(Rule("R", "L", "Block"),))
    return HostState(policies=(pol,), filterlists=(fl,), filteractions=(BLOCK,), assigned=assigned)


def test_add_filter_appends_and_creates_a_missing_list_as_netsh_does():
    s = P.apply(one_rule_state(), [Change("add_filter", OUT_1434, "L"), Change("add_filter", IN_80, "New")])
    assert s.filterlist("L").filters == (IN_1434, OUT_1434)
    assert s.filterlist("new") == FilterList("New", (IN_80,))


def test_delete_filter_matches_by_parameters_and_removes_duplicates():
    dup = HostState(filterlists=(FilterList("L", (IN_1434, IN_80, Filter(ANY, ME, 17, 0, 1434, False, "x"))),))
    s = P.apply(dup, [Change("delete_filter", IN_1434, "L")])
    assert s.filterlist("L").filters == (IN_80,)
    with pytest.raises(IPsecError, match="has no filter"):
        P.apply(s, [Change("delete_filter", IN_1434, "L")])


def test_delete_policy_deletes_its_rules_but_not_lists_or_actions():
    s = P.apply(one_rule_state(), [Change("delete_policy", Policy("p"))])
    assert s.policies == () and s.filterlist("L") and s.filteraction("Block")


def test_assign_replaces_the_assigned_policy_and_unassign_clears_it():
    s = one_rule_state(assigned="P")
    s = P.apply(s, [Change("add_policy", Policy("Q")), Change("assign", Policy("q"), old="P")])
    assert s.assigned == "Q"
    assert P.apply(s, [Change("unassign", Policy("Q"))]).assigned == ""


@pytest.mark.parametrize("change, message", [
    (Change("delete_filterlist", FilterList("L")), "used by rule 'R'"),
    (Change("delete_filteraction", BLOCK), "used by rule 'R'"),
    (Change("delete_policy", Policy("P")), "unassign it first"),
    (Change("add_rule", Rule("R2", "Missing", "Block"), "P"), "filter list 'Missing' does not exist"),
    (Change("add_rule", Rule("r", "L", "Block"), "P"), "already has rule"),
    (Change("add_policy", Policy("p")), "already exists"),
    (Change("set_rule", Rule("X", "L", "Block"), "P", old=Rule("X", "L", "Block")), "rule 'X' does not exist"),
])
def test_apply_refuses_changes_out_of_order(change, message):
    with pytest.raises(IPsecError, match=message):
        P.apply(one_rule_state(assigned="P"), [change])


def test_set_ops_keep_guids_and_contents():
    s = HostState(policies=(Policy("P", rules=(Rule("R", "L", "A", guid="{R}"),), guid="{P}"),),
                  filterlists=(FilterList("L", (IN_80,), guid="{L}"),),
                  filteractions=(FilterAction("A", guid="{A}"),), assigned="P")
    s2 = P.apply(s, [
        Change("set_policy", Policy("P2", "d", 60), old=Policy("P")),
        Change("set_filterlist", FilterList("L", description="d"), old=FilterList("L")),
        Change("set_filteraction", FilterAction("A", "permit"), old=FilterAction("A")),
        Change("set_rule", Rule("R", "L", "A", active=False), "P2", old=Rule("R", "L", "A")),
    ])
    pol = s2.policy("P2")
    assert (pol.guid, pol.description, pol.polling_interval, s2.assigned) == ("{P}", "d", 60, "P2")
    assert pol.rules[0].guid == "{R}" and pol.rules[0].active is False
    assert s2.filterlist("L").filters == (IN_80,) and s2.filterlist("L").guid == "{L}"
    assert s2.filteraction("A").action == "permit" and s2.filteraction("A").guid == "{A}"


def test_every_op_has_an_inverse_that_undoes_it():
    s = one_rule_state(assigned="P")
    s = P.apply(s, [Change("add_dynamic", DynamicRule(IN_80))])
    changes = [
        ("add_policy", Policy("Q"), "", None),
        ("set_policy", Policy("Q", "desc"), "", Policy("Q")),
        ("add_filterlist", FilterList("M", (IN_80,)), "", None),
        ("set_filterlist", FilterList("M", description="m"), "", FilterList("M")),
        ("add_filter", OUT_1434, "M", None),
        ("delete_filter", IN_80, "M", None),
        ("add_filteraction", FilterAction("Permit", "permit"), "", None),
        ("set_filteraction", FilterAction("Permit", "permit", soft=False, description="x"), "",
         FilterAction("Permit", "permit")),
        ("add_rule", Rule("S", "M", "Permit"), "Q", None),
        ("set_rule", Rule("S", "L", "Permit"), "Q", Rule("S", "M", "Permit")),
        ("assign", Policy("Q"), "", "P"),
        ("unassign", Policy("Q"), "", None),
        ("delete_rule", Rule("R", "L", "Block"), "P", None),
        ("delete_policy", Policy("P"), "", None),
        ("delete_filterlist", FilterList("M"), "", None),
        ("add_dynamic", DynamicRule(IN_1434, "permit"), "", None),
        ("delete_dynamic", DynamicRule(IN_80), "", None),
    ]
    assert {op for op, _, _, _ in changes} == set(CHANGE_OPS) - {"delete_filteraction"}
    state, done = s, []
    for op, obj, parent, old in changes:
        change = P.with_inverse(state, op, obj, parent, old)
        after = P.apply(state, [change])
        assert P.converged(P.apply(after, [change.inverse]), state), op
        state = after
        done.append(change)
    change = P.with_inverse(state, "delete_filteraction", FilterAction("Block"))
    state = P.apply(state, [change])
    done.append(change)
    assert P.converged(P.apply(state, P.undo(done)), s)


def test_inverses_use_the_objects_as_the_state_holds_them():
    s = HostState(policies=(Policy("P", "kept", guid="{P}"),), assigned="P",
                  filterlists=(FilterList("L", (Filter(ANY, ME, 6, 0, 80, False, "web", "{F}"),)),),
                  dynamic=(DynamicRule(IN_1434, "permit", "block"),))
    # delete by parameters only: the inverse re-adds the description, GUID and actions it had
    assert P.with_inverse(s, "delete_filter", IN_80, "L").inverse.obj.guid == "{F}"
    assert P.with_inverse(s, "delete_dynamic", DynamicRule(IN_1434)).inverse.obj == DynamicRule(IN_1434, "permit")
    # set without `old`: taken from the state
    change = P.with_inverse(s, "set_policy", Policy("P", "new"))
    assert change.old.description == "kept" and change.inverse.obj.description == "kept"
    # unassign whatever was assigned: undone by assigning that one again
    assert P.with_inverse(s, "unassign", Policy("P")).inverse == Change("assign", s.policy("P"), old="")
    with pytest.raises(IPsecError, match="does not exist"):
        P.with_inverse(s, "delete_rule", Rule("nope"), "P")


# ---------------------------------------------------------------------------------------------
# Conventions and conflicts

def test_rule_objects_names_the_list_after_the_rule_and_the_action_after_what_it_does():
    rule, fl, fa = P.rule_objects("Block Inbound UDP 1434 Rule", [IN_1434, IN_1434], description="slammer")
    assert rule == Rule("Block Inbound UDP 1434 Rule", "Block Inbound UDP 1434 Rule", "Block",
                        description="slammer")
    assert fl == FilterList("Block Inbound UDP 1434 Rule", (IN_1434,))     # duplicates dropped
    assert fa == FilterAction("Block", "block")
    assert P.rule_objects("Allow", [IN_80], "permit")[2] == FilterAction("Permit", "permit")
    offer = QmOffer(esp_conf="3DES", esp_auth="SHA1", lifetime_kb=100000, lifetime_s=3600)
    neg = P.rule_objects("Secure", [IN_80], "negotiate", filteraction_name="Require ESP", offers=[offer], soft=True)
    assert neg[2] == FilterAction("Require ESP", "negotiate", soft=True, offers=(offer,))


@pytest.mark.parametrize("kwargs, option", [
    (dict(action="negotiate"), "filteraction"),
    (dict(action="drop"), "action"),
    (dict(offers=[QmOffer(ah="MD5")]), "offers"),
    (dict(soft=True), "soft"),
    (dict(filters=[]), "filters"),
    (dict(rule_name=""), "name"),
])
def test_rule_objects_rejects_with_the_option_named(kwargs, option):
    args = dict(rule_name="R", filters=[IN_80])
    args.update(kwargs)
    with pytest.raises(ValidationError) as err:
        P.rule_objects(**args)
    assert err.value.option == option


def test_a_block_action_with_other_settings_used_elsewhere_is_a_conflict():
    soft_block = FilterAction("Block", "block", soft=True)
    host = HostState(policies=(Policy("Other", rules=(Rule("O", "OL", "Block"),)),),
                     filterlists=(FilterList("OL", (IN_80,)),), filteractions=(soft_block,))
    with pytest.raises(ValidationError) as err:
        P.plan_rule(host, SLAMMER, *P.rule_objects("In", [IN_1434]))
    assert err.value.option == "filteraction" and err.value.value == "Block"
    assert "'O'" in str(err.value) and "'Other'" in str(err.value)
    # Used by nobody else (only by the rule being planned): the action is corrected instead.
    own = HostState(policies=(Policy(SLAMMER, rules=(Rule("In", "In", "Block"),)),),
                    filterlists=(FilterList("In", (IN_1434,)),), filteractions=(soft_block,))
    fixed = P.plan_rule(own, SLAMMER, *P.rule_objects("In", [IN_1434]))
    assert ops(fixed) == [("set_filteraction", "Block", "")]
    assert fixed.after.filteraction("Block") == BLOCK


def test_a_filter_list_shared_with_another_rule_is_not_changed_under_it():
    host = HostState(policies=(Policy("A", rules=(Rule("R", "R", "Block"),)),
                               Policy("B", rules=(Rule("R", "R", "Block"),))),
                     filterlists=(FilterList("R", (IN_80,)),), filteractions=(BLOCK,))
    with pytest.raises(ValidationError) as err:
        P.plan_rule(host, "A", *P.rule_objects("R", [IN_1434]))
    # issue 12.8: named as the user's option (the list is named after the rule), not `filterlist`
    assert err.value.option == "name" and "'B'" in str(err.value) and "named after the rule" in str(err.value)
    policy, objects = P.policy_objects("A", [P.rule_objects("S", [IN_80]), P.rule_objects("R", [IN_1434])])
    with pytest.raises(ValidationError) as err:
        P.plan_policy(host, policy, rules_objects=objects)
    assert err.value.option == "rules[1].name" and "filter list 'R' on the host" in str(err.value)
    # The same filters: shared, nothing to do.
    assert P.plan_rule(host, "A", *P.rule_objects("R", [IN_80])).changes == ()


def test_filter_lists_change_filter_by_filter_and_never_gain_duplicates():
    host = one_rule_state()
    rule = Rule("R", "L", "Block")
    step = P.plan_rule(host, "P", rule, FilterList("L", (IN_80, IN_1434, IN_80)), BLOCK)
    assert ops(step) == [("add_filter", "any -> me:80 TCP", "L")]
    assert step.changes[0].obj == IN_80
    assert step.after.filterlist("L").filters == (IN_1434, IN_80)
    step2 = P.plan_rule(step.after, "P", rule, FilterList("L", (OUT_1434, IN_80)), BLOCK)
    assert [(c.op, c.obj) for c in step2.changes] == [("add_filter", OUT_1434), ("delete_filter", IN_1434)]


def test_a_rule_moving_to_another_action_leaves_the_old_one_if_used_and_deletes_it_if_not():
    host = HostState(policies=(Policy("P", rules=(Rule("R", "R", "Permit"), Rule("S", "S", "Permit"))),),
                     filterlists=(FilterList("R", (IN_80,)), FilterList("S", (IN_1434,))),
                     filteractions=(FilterAction("Permit", "permit"),))
    step = P.plan_rule(host, "P", *P.rule_objects("R", [IN_80]))
    assert ops(step) == [("add_filteraction", "Block", ""), ("set_rule", "R", "P")]
    step2 = P.plan_rule(step.after, "P", *P.rule_objects("S", [IN_1434]))
    assert ops(step2) == [("set_rule", "S", "P"), ("delete_filteraction", "Permit", "")]


def test_rule_absent_keeps_lists_and_actions_still_used_elsewhere():
    policy, objects = slammer_inbound()
    s = P.plan_policy(HostState(), policy, rules_objects=objects).after
    s = P.plan_rule(s, SLAMMER, *P.rule_objects("Out", [OUT_1434])).after
    gone = P.plan_rule(s, SLAMMER, Rule("Out"), state="absent")
    assert ops(gone) == [("delete_rule", "Out", SLAMMER), ("delete_filterlist", "Out", "")]
    assert P.plan_rule(gone.after, SLAMMER, Rule("Out"), state="absent").changes == ()
    assert P.plan_rule(HostState(), "Nope", Rule("Out"), state="absent").changes == ()


def test_plan_rule_without_the_policy_and_create_policy_false_is_an_error():
    with pytest.raises(ValidationError) as err:
        P.plan_rule(HostState(), SLAMMER, *P.rule_objects("In", [IN_1434]), create_policy=False)
    assert err.value.option == "policy"


# ---------------------------------------------------------------------------------------------
# Resource-module states

def two_policy_host():
    """Policy A (rules a1, a2) assigned; policy B (rule b1) sharing a2's list; all Block."""
    lists = (FilterList("a1", (IN_80,)), FilterList("a2", (IN_1434,)), FilterList("b1", (OUT_1434,)))
    pols = (Policy("A", rules=(Rule("a1", "a1", "Block"), Rule("a2", "a2", "Block"))),
            Policy("B", rules=(Rule("b1", "b1", "Block"), Rule("b2", "a2", "Block"))))
    return HostState(policies=pols, filterlists=lists, filteractions=(BLOCK,), assigned="A")


def desired_a(*rules):
    return P.policy_objects("A", [P.rule_objects(name, filters) for name, filters in rules])


def test_merged_adds_and_keeps_other_rules():
    policy, objects = desired_a(("a3", [OUT_1434]))
    step = P.plan_policy(two_policy_host(), policy, rules_objects=objects, state="merged")
    assert ops(step) == [("add_filterlist", "a3", ""), ("add_rule", "a3", "A")]


def test_replaced_deletes_the_policys_other_rules_but_not_shared_lists():
    policy, objects = desired_a(("a3", [OUT_1434]))
    step = P.plan_policy(two_policy_host(), policy, rules_objects=objects, state="replaced")
    assert ops(step) == [
        ("add_filterlist", "a3", ""), ("add_rule", "a3", "A"),
        ("delete_rule", "a1", "A"), ("delete_rule", "a2", "A"),
        ("delete_filterlist", "a1", ""),         # a2 stays: policy B's rule b2 uses it
    ]
    assert [r.name for r in step.after.policy("A").rules] == ["a3"]
    assert step.after.policy("B") == two_policy_host().policy("B")


def test_overridden_deletes_other_policies_after_unassigning():
    host = assignment(two_policy_host(), "B", True).after
    policy, objects = desired_a(("a1", [IN_80]))
    step = P.plan_policy(host, policy, rules_objects=objects, state="overridden", assign=True)
    # A is assigned (displacing B) before anything is deleted: the host always has a policy.
    assert ops(step) == [
        ("assign", "A", ""),
        ("delete_rule", "a2", "A"),
        ("delete_rule", "b1", "B"), ("delete_rule", "b2", "B"), ("delete_policy", "B", ""),
        ("delete_filterlist", "a2", ""), ("delete_filterlist", "b1", ""),
    ]
    assert step.changes[0].old == "B" and any("unassigns policy 'B'" in w for w in step.warnings)
    assert [p.name for p in step.after.policies] == ["A"] and step.after.assigned == "A"
    assert_undo_restores(host, step)
    # without assign, B is unassigned before it is deleted
    kept = P.plan_policy(host, policy, rules_objects=objects, state="overridden")
    assert ops(kept)[:2] == [("unassign", "B", ""), ("delete_rule", "a2", "A")]
    assert kept.after.assigned == ""


def test_deleted_keeps_the_shared_action_and_lists():
    step = P.plan_policy(two_policy_host(), Policy("B"), state="deleted")
    assert ops(step) == [("delete_rule", "b1", "B"), ("delete_rule", "b2", "B"), ("delete_policy", "B", ""),
                         ("delete_filterlist", "b1", "")]


def test_policy_settings_changes_are_set_policy():
    host = two_policy_host()
    step = P.plan_policy(host, Policy("B", "new description", 30, rules=host.policy("B").rules))
    assert ops(step) == [("set_policy", "B", "")]
    assert step.after.policy("B").polling_interval == 30 and step.after.policy("B").rules == host.policy("B").rules


def test_unknown_references_and_bad_arguments_are_named():
    with pytest.raises(ValidationError) as err:
        P.plan_policy(HostState(), Policy("A", rules=(Rule("r", "nolist", "Block"),)), rules_objects=[BLOCK])
    assert err.value.option == "rules" and "nolist" in str(err.value)
    with pytest.raises(ValidationError) as err:
        P.plan_policy(HostState(), [Policy("A"), Policy("B")], assign=True)
    assert err.value.option == "assign"
    with pytest.raises(ValidationError) as err:
        P.plan_policy(HostState(), Policy("A", rules=(Rule("", "L", "Block"),)), rules_objects=[BLOCK])
    assert err.value.option == "rules" and "unnamed" in str(err.value)
    with pytest.raises(ValidationError) as err:
        P.plan_policy(HostState(), Policy("A", rules=(Rule("r", "L", "Block"), Rule("R", "L", "Block"))),
                      rules_objects=[BLOCK, FilterList("L", (IN_80,))])
    assert err.value.option == "rules" and "given twice" in str(err.value)
    with pytest.raises(ValidationError) as err:
        P.plan_policy(HostState(), Policy("A"), state="gone")
    assert err.value.option == "state"
    with pytest.raises(ValidationError) as err:
        P.plan_policy(HostState(), Policy("A"), rules_objects=[BLOCK, FilterAction("block", "permit")])
    assert err.value.option == "filteraction"


def test_a_domain_policy_is_reported():
    host = HostState(domain=DomainAssignment("Corp IPsec", "LDAP://CN=ipsecPolicy{1},CN=IP Security,DC=x"))
    policy, objects = slammer_inbound()
    step = P.plan_policy(host, policy, rules_objects=objects, assign=True)
    assert any("Corp IPsec" in w and "overrides" in w for w in step.warnings)
    assert any("Corp IPsec" in n for n in step.notes)


def test_names_compare_case_insensitively():
    policy, objects = slammer_inbound()
    s = P.plan_policy(HostState(), policy, rules_objects=objects, assign=True).after
    upper, upper_objects = P.policy_objects(SLAMMER.upper(), [P.rule_objects("BLOCK INBOUND UDP 1434 RULE",
                                                                             [IN_1434])])
    assert P.plan_policy(s, upper, rules_objects=upper_objects, assign=True).changes == ()


# ---------------------------------------------------------------------------------------------
# Dynamic rules

def test_dynamic_present_absent_cleared():
    block = DynamicRule(IN_1434)
    step = P.plan_dynamic(HostState(), [block])
    assert [(c.op, c.obj) for c in step.changes] == [("add_dynamic", block)]
    assert P.DYNAMIC_NOTE in step.notes
    assert P.plan_dynamic(step.after, [block]).changes == ()
    permit = DynamicRule(IN_1434, inbound="permit", outbound="permit")
    changed = P.plan_dynamic(step.after, [permit])
    assert [(c.op, c.obj) for c in changed.changes] == [("delete_dynamic", block), ("add_dynamic", permit)]
    other = DynamicRule(IN_80)
    both = P.plan_dynamic(step.after, [other]).after
    gone = P.plan_dynamic(both, [DynamicRule(IN_1434, "permit")], state="absent")
    assert [(c.op, c.obj) for c in gone.changes] == [("delete_dynamic", block)]
    cleared = P.plan_dynamic(both, state="cleared")
    assert [c.obj for c in cleared.changes] == [block, other] and cleared.after.dynamic == ()
    assert_undo_restores(both, cleared)
    with pytest.raises(ValidationError):
        P.plan_dynamic(both, [block], state="cleared")
    with pytest.raises(ValidationError):
        P.plan_dynamic(both, [block, permit])
    stopped = P.plan_dynamic(HostState(policyagent="stopped"), [block])
    assert any("stopped" in w for w in stopped.warnings)


NETSH_HOST = HostState(os=OsInfo("modern", dialect="netsh"), policyagent="running")
FOREIGN = DynamicRule(IN_80, mmpolicy="AdminBlock")      # added by hand, with a main-mode policy of its own


def test_dynamic_rules_added_name_the_mmpolicy_they_will_have():
    host = replace(NETSH_HOST, dynamic=(FOREIGN,))
    step = P.plan_dynamic(host, [DynamicRule(IN_1434)])
    assert [(c.op, c.obj.mmpolicy) for c in step.changes] == [("add_dynamic", P.NETSH_MMPOLICY)]
    assert [d.mmpolicy for d in step.after.dynamic] == ["AdminBlock", P.NETSH_MMPOLICY]
    # desired rules name none: a second run against what the host reads back changes nothing
    assert P.plan_dynamic(step.after, [DynamicRule(IN_1434)]).changes == ()
    assert P.plan_dynamic(step.after, [DynamicRule(IN_1434, mmpolicy="other")]).changes == ()
    # ipseccmd has no main-mode policy to name
    xp = HostState(os=OsInfo("xp", dialect="ipseccmd"))
    assert P.plan_dynamic(xp, [DynamicRule(IN_1434)]).after.dynamic[0].mmpolicy == ""


def test_dynamic_foreign_rule_already_there_is_left_and_said():
    host = replace(NETSH_HOST, dynamic=(FOREIGN,))
    same = P.plan_dynamic(host, [DynamicRule(IN_80)])
    assert same.changes == ()
    assert any("'AdminBlock'" in n and "left as it is" in n for n in same.notes)
    # other actions: the rule is replaced and keeps its main-mode policy
    permit = P.plan_dynamic(host, [DynamicRule(IN_80, "permit", "permit")])
    assert [(c.op, c.obj.mmpolicy) for c in permit.changes] == [("delete_dynamic", "AdminBlock"),
                                                                ("add_dynamic", "AdminBlock")]
    assert any("keeps main-mode policy 'AdminBlock'" in n for n in permit.notes)
    assert_undo_restores(host, permit)
    assert P.apply(permit.after, P.undo(permit.changes)).dynamic[0].mmpolicy == "AdminBlock"


def test_dynamic_absent_and_cleared_say_which_foreign_rules_and_mmpolicies_they_leave():
    ours = DynamicRule(IN_1434, mmpolicy=P.NETSH_MMPOLICY)
    also_admin = DynamicRule(OUT_1434, mmpolicy="adminblock")
    host = replace(NETSH_HOST, dynamic=(FOREIGN, ours, also_admin))
    mine = P.plan_dynamic(host, [DynamicRule(IN_1434)], state="absent")
    assert [c.obj for c in mine.changes] == [ours] and not any("did not make" in n for n in mine.notes)
    theirs = P.plan_dynamic(host, [DynamicRule(IN_80)], state="absent")
    assert any("did not make" in n and "'AdminBlock'" in n for n in theirs.notes)
    # the other rule still uses AdminBlock (names compare without regard to case): it is not unused
    assert not any("no rule using them" in n for n in theirs.notes)
    cleared = P.plan_dynamic(host, state="cleared")
    assert cleared.after.dynamic == ()
    assert any(n.endswith(": AdminBlock") and "no rule using them" in n for n in cleared.notes)
    assert not any(P.NETSH_MMPOLICY in n for n in cleared.notes)
    assert_undo_restores(host, cleared)


def test_dynamic_plans_predict_the_main_mode_policies_the_host_will_list():
    ours = DynamicRule(IN_1434, mmpolicy=P.NETSH_MMPOLICY)
    host = replace(NETSH_HOST, dynamic=(FOREIGN,), mmpolicies=("AdminBlock",))
    block = P.plan_dynamic(host, [DynamicRule(IN_1434)])
    assert block.after.mmpolicies == ("AdminBlock", P.NETSH_MMPOLICY)
    lift = P.plan_dynamic(block.after, [DynamicRule(IN_1434)], state="absent")
    assert lift.after.mmpolicies == ("AdminBlock",)             # the administrator's stays
    cleared = P.plan_dynamic(block.after, state="cleared")
    assert cleared.after.mmpolicies == ("AdminBlock",)
    assert P.plan_dynamic(replace(NETSH_HOST, dynamic=(ours,), mmpolicies=(P.NETSH_MMPOLICY,)),
                          [DynamicRule(IN_1434)], state="absent").after.mmpolicies == ()
    # mmpolicies take no part in equality or in what counts as converged
    assert block.after == replace(block.after, mmpolicies=()) and P.converged(block.after, host) is False


def test_an_orphaned_own_mmpolicy_is_used_again_or_deleted_and_said():
    orphan = replace(NETSH_HOST, dynamic=(FOREIGN,), mmpolicies=("AdminBlock", P.NETSH_MMPOLICY))
    block = P.plan_dynamic(orphan, [DynamicRule(IN_1434)])
    assert block.after.mmpolicies == ("AdminBlock", P.NETSH_MMPOLICY)
    assert any("no rule using it" in n and "the new rules use it" in n for n in block.notes)
    gone = P.plan_dynamic(orphan, [DynamicRule(IN_80)], state="absent")
    assert gone.after.mmpolicies == ("AdminBlock",)
    assert any("no rule using it" in n and "it is deleted" in n for n in gone.notes)
    # nothing to do: nothing is sent, so nothing is said about it either
    assert not any("no rule using it" in n for n in P.plan_dynamic(orphan, [DynamicRule(IN_80)]).notes)
    # ipseccmd hosts list none, and their rules name none
    xp = HostState(os=OsInfo("xp", dialect="ipseccmd"), policyagent="running")
    assert P.plan_dynamic(xp, [DynamicRule(IN_1434)]).after.mmpolicies == ()


# ---------------------------------------------------------------------------------------------
# Seeded random properties

ADDRESSES = (ANY, ME, Address("ip", "10.0.0.1", "255.255.255.255"), Address("ip", "10.1.0.0", "255.255.0.0"))
RULE_NAMES = ("r1", "r2", "r3", "R4", "r5")
POLICY_NAMES = ("P1", "P2", "p3")


def random_filter(rng):
    protocol = rng.choice((0, 1, 6, 17))
    ports = protocol in (6, 17)
    return Filter(rng.choice(ADDRESSES), rng.choice(ADDRESSES), protocol,
                  rng.choice((0, 1434)) if ports else 0, rng.choice((0, 80)) if ports else 0, rng.random() < 0.5)


def random_filters(rng, most=3):
    unique = {}
    for _ in range(rng.randint(1, most)):
        f = random_filter(rng)
        unique.setdefault(f.key(), f)
    return tuple(unique.values())


def random_action(rng):
    return rng.choice((FilterAction("Block"), FilterAction("Permit", "permit"),
                       FilterAction("Neg", "negotiate", offers=(QmOffer(esp_conf="3DES", esp_auth="SHA1"),))))


def random_host(rng):
    lists = tuple(FilterList(n, random_filters(rng)) for n in RULE_NAMES if rng.random() < 0.6)
    actions = tuple({a.name: a for a in (random_action(rng) for _ in range(3))}.values())
    policies = []
    for name in POLICY_NAMES:
        if rng.random() < 0.6 and lists and actions:
            rules = {}
            for _ in range(rng.randint(0, 3)):
                fl = rng.choice(lists)
                rules.setdefault(rng.choice(RULE_NAMES), Rule("", fl.name, rng.choice(actions).name))
            policies.append(Policy(name, rules=tuple(replace_name(r, n) for n, r in rules.items())))
    assigned = rng.choice([""] + [p.name for p in policies])
    dynamic = tuple({P.dynamic_key(d): d for d in (DynamicRule(random_filter(rng), rng.choice(("block", "permit")))
                                                    for _ in range(rng.randint(0, 2)))}.values())
    return HostState(tuple(policies), lists, actions, assigned, dynamic=dynamic)


def replace_name(rule, name):
    return Rule(name, rule.filterlist, rule.filteraction)


def random_desired(rng):
    triples = []
    for name in rng.sample(RULE_NAMES, rng.randint(1, 3)):
        action = rng.choice(("block", "permit", "negotiate"))
        kw = {"filteraction_name": "Neg", "offers": (QmOffer(esp_conf="3DES", esp_auth="SHA1"),)} \
            if action == "negotiate" else {}
        triples.append(P.rule_objects(name, random_filters(rng), action, **kw))
    return P.policy_objects(rng.choice(POLICY_NAMES), triples)


def fields(obj):
    """Every field of a rule or filter action but its GUID, names compared as Windows does: the
    test's own view of "the same object", independent of the planner's comparison key."""
    names = ("name", "filterlist", "filteraction")
    return {f.name: name_key(getattr(obj, f.name)) if f.name in names else getattr(obj, f.name)
            for f in dataclasses.fields(obj) if f.name != "guid"}


def reached(after, policy, objects, state):
    pol = after.policy(policy.name)
    assert pol is not None
    by_name = {name_key(o.name): o for o in objects if isinstance(o, FilterList)}
    actions = {name_key(o.name): o for o in objects if isinstance(o, FilterAction)}
    for rule in policy.rules:
        got = pol.rule(rule.name)
        assert fields(got) == fields(rule)
        assert {f.key() for f in after.filterlist(rule.filterlist).filters} == \
            {f.key() for f in by_name[name_key(rule.filterlist)].filters}
        assert fields(after.filteraction(rule.filteraction)) == fields(actions[name_key(rule.filteraction)])
    if state in ("replaced", "overridden"):
        assert {name_key(r.name) for r in pol.rules} == {name_key(r.name) for r in policy.rules}
    if state == "overridden":
        assert [p.name for p in after.policies] == [pol.name]


def no_dangling_refs(state):
    for pol in state.policies:
        for rule in pol.rules:
            assert state.filterlist(rule.filterlist) and state.filteraction(rule.filteraction)


@pytest.mark.parametrize("seed", range(40))
def test_random_policy_plans_converge_are_idempotent_and_undo(seed):
    rng = random.Random(seed)
    planned = conflicts = 0
    for _ in range(25):
        actual = random_host(rng)
        policy, objects = random_desired(rng)
        state = rng.choice(P.POLICY_STATES)
        assign = None if state == "deleted" else rng.choice((None, True, False))
        try:
            plan = P.plan_policy(actual, policy, rules_objects=objects, state=state, assign=assign)
        except ValidationError as err:
            assert err.option.endswith(("name", "filteraction")), err.option      # the user's option
            conflicts += 1
            continue
        planned += 1
        after = P.apply(actual, plan.changes)
        assert P.converged(after, plan.after)
        no_dangling_refs(after)
        if state == "deleted":
            assert after.policy(policy.name) is None
            # nothing deleted that survivors use, and nothing orphaned that only the policy used
            doomed = actual.policy(policy.name)
            for rule in (doomed.rules if doomed else ()):
                if not after.users_of(filterlist=rule.filterlist):
                    assert after.filterlist(rule.filterlist) is None
        else:
            reached(after, policy, objects, state)
            if assign:
                assert after.assigned == policy.name
            elif assign is False:
                assert name_key(after.assigned) != name_key(policy.name)
        again = P.plan_policy(after, policy, rules_objects=objects, state=state, assign=assign)
        assert again.changes == (), [c.op for c in again.changes]
        assert P.converged(P.apply(after, P.undo(plan.changes)), actual)
        # a batch that fails half way is undone by the inverses of the part that ran
        k = rng.randint(0, len(plan.changes))
        assert P.converged(P.apply(P.apply(actual, plan.changes[:k]), P.undo(plan.changes[:k])), actual)
    assert planned > conflicts


@pytest.mark.parametrize("seed", range(20))
def test_random_rule_and_dynamic_plans(seed):
    rng = random.Random(1000 + seed)
    for _ in range(25):
        actual = random_host(rng)
        rule, fl, fa = P.rule_objects(rng.choice(RULE_NAMES), random_filters(rng), rng.choice(("block", "permit")))
        policy = rng.choice(POLICY_NAMES)
        state = rng.choice(P.RULE_STATES)
        try:
            plan = P.plan_rule(actual, policy, rule, fl, fa, state=state)
        except ValidationError as err:
            assert err.option.endswith(("name", "filteraction")), err.option      # the user's option
            continue
        after = P.apply(actual, plan.changes)
        no_dangling_refs(after)
        got = after.policy(policy).rule(rule.name) if after.policy(policy) else None
        if state == "present":
            assert fields(got) == fields(rule)
            assert {f.key() for f in after.filterlist(fl.name).filters} == {f.key() for f in fl.filters}
        else:
            assert got is None
        assert P.plan_rule(after, policy, rule, fl, fa, state=state).changes == ()
        assert P.converged(P.apply(after, P.undo(plan.changes)), actual)

        desired = tuple({P.dynamic_key(d): d for d in (DynamicRule(random_filter(rng), rng.choice(("block", "permit")))
                                                        for _ in range(rng.randint(0, 3)))}.values())
        dstate = rng.choice(P.DYNAMIC_STATES)
        dplan = P.plan_dynamic(actual, () if dstate == "cleared" else desired, state=dstate)
        dafter = P.apply(actual, dplan.changes)
        keys = {P.dynamic_key(d): d for d in dafter.dynamic}
        if dstate == "cleared":
            assert dafter.dynamic == ()
        for d in desired if dstate != "cleared" else ():
            if dstate == "present":
                assert keys[P.dynamic_key(d)] == d
            else:
                assert P.dynamic_key(d) not in keys
        assert P.plan_dynamic(dafter, () if dstate == "cleared" else desired, state=dstate).changes == ()
        assert P.converged(P.apply(dafter, P.undo(dplan.changes)), actual)


# ---- issue 12.7: a mistyped name must not lift the assigned policy ----------------------------------

def _assigned_host():
    policy, objects = P.policy_objects(SLAMMER, [P.rule_objects("R", [IN_1434])])
    return P.plan_policy(HostState(), policy, rules_objects=objects, assign=True).after


@pytest.mark.parametrize("state", ["merged", "replaced", "overridden"])
def test_creating_and_assigning_an_empty_policy_is_refused_naming_the_existing_ones(state):
    host = replace(_assigned_host(), policies=_assigned_host().policies + (Policy("Other"),))
    with pytest.raises(ValidationError) as err:
        P.plan_policy(host, Policy("Blok UDP 1434 Filter"), state=state, assign=True)
    assert err.value.option == "name"
    assert "'Block UDP 1434 Filter', 'Other'" in str(err.value) and "unassigning 'Block UDP 1434 Filter'" in str(err.value)


def test_empty_host_says_it_has_none():
    with pytest.raises(ValidationError, match="the host has none"):
        P.plan_policy(HostState(), Policy("Typo"), assign=True)


def test_a_new_policy_with_rules_may_be_created_and_assigned():
    policy, objects = P.policy_objects("New", [P.rule_objects("R80", [IN_80])])
    plan = P.plan_policy(_assigned_host(), policy, rules_objects=objects, assign=True)
    assert plan.after.assigned == "New"


def test_an_existing_policy_may_be_assigned_without_rules():
    plan = P.plan_policy(replace(_assigned_host(), assigned=""), Policy(SLAMMER), assign=True)
    assert plan.after.assigned == SLAMMER
