"""netdiag /test:ipsec text: the KB 813878 samples parse to their concrete values; rendering the
KB's Slammer state reads back to the same filters; random states survive render -> parse."""
import os
import random
from dataclasses import replace

import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import netdiag as N
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import plan as P
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, ME, Address, DomainAssignment, DynamicRule, Filter, FilterAction, FilterList, HostState, Policy, Rule,
)

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "..", "..", "..", "fixtures", "netdiag")
SLAMMER = "Block UDP 1434 Filter"
IN_1434 = Filter(ANY, ME, 17, 0, 1434, mirrored=False)
OUT_1434 = Filter(ME, ANY, 17, 0, 1434, mirrored=False)


def sample(name):
    """The text between the fixture's begin/end sample markers, exactly as the KB prints it."""
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as handle:
        text = handle.read()
    assert text.startswith("# SOURCE:")
    body = text.split("# --- begin sample", 1)[1].split("\n", 1)[1]
    return body.split("# --- end sample", 1)[0]


def slammer_state():
    """The KB's finished procedure: both rules in the assigned policy (ipseccmd ... -x, then the twin)."""
    policy, objects = P.policy_objects(SLAMMER, [P.rule_objects("Block Inbound UDP 1434 Rule", [IN_1434]),
                                                 P.rule_objects("Block Outbound UDP 1434 Rule", [OUT_1434])])
    return P.plan_policy(HostState(), policy, rules_objects=objects, assign=True).after


# ---------------------------------------------------------------------------------------------
# The KB's samples

def test_kb_no_policy_sample_collapsed_on_one_line():
    report = N.parse(sample("netdiag_ipsec_no_policy_1.txt"))
    assert (report.status, report.service_active, report.store, report.policy) == ("Passed", True, "", "")
    assert report.filter_count is None and report.filters == ()
    assert N.parse("IP Security test . . . . . . . . . : Passed\n"
                   "    IPSec policy service is active, but no policy is assigned.\n") == report
    assert P.converged(report.host_state(), HostState(policyagent="running"))


def test_kb_policy_active_sample():
    report = N.parse(sample("netdiag_ipsec_local_policy_active_1.txt"))
    assert (report.status, report.store, report.policy, report.path) == ("Passed", "local", SLAMMER, "")
    assert report.filter_count is None
    assert report.host_state().assigned == SLAMMER


def test_kb_debug_sample_with_two_filters():
    report = N.parse(sample("netdiag_ipsec_debug_local_policy_2filters_1.txt"))
    assert report.store == "local" and report.policy == SLAMMER
    assert report.path == ("SOFTWARE\\Policies\\Microsoft\\Windows\\IPSec\\Policy\\Local\\"
                           "ipsecPolicy{D239C599-F945-47A3-A4E3-B37BC12826B9}")
    assert report.policy_guid == "{D239C599-F945-47A3-A4E3-B37BC12826B9}"
    assert report.filter_count == 2
    inbound, outbound = report.filters
    assert inbound == N.NetdiagFilter(
        name="", filter_id="{5EC1FD53-EA98-4C1B-A99F-6D2A0FF94592}",
        policy_id="{509492EA-1214-4F50-BF43-9CAC2B538518}", src_addr="0.0.0.0", src_mask="0.0.0.0",
        dst_addr="192.168.1.1", dst_mask="255.255.255.255", tunnel_addr="0.0.0.0", src_port=0, dst_port=1434,
        protocol=17, tunnel=False, direction="Inbound", action="block")
    assert outbound == N.NetdiagFilter(
        name="", filter_id="{9B4144A6-774F-4AE5-B23A-51331E67BAB2}",
        policy_id="{2DEB01BD-9830-4067-B58A-AADFC8659BE5}", src_addr="192.168.1.1", src_mask="255.255.255.255",
        dst_addr="0.0.0.0", dst_mask="0.0.0.0", tunnel_addr="0.0.0.0", src_port=0, dst_port=1434,
        protocol=17, tunnel=False, direction="Outbound", action="block")
    # Read back as the model: *=0:1434:UDP and 0=*:1434:UDP, one-way, blocking, in the assigned policy.
    state = report.host_state()
    assert state.assigned == SLAMMER and state.policy(SLAMMER).guid == report.policy_guid
    got = [(state.filterlist(r.filterlist).filters, state.filteraction(r.filteraction).action)
           for r in state.policy(SLAMMER).rules]
    assert got == [((IN_1434,), "block"), ((OUT_1434,), "block")]


def test_the_windows_2003_copy_with_doubled_backslashes_reads_the_same():
    text = sample("netdiag_ipsec_debug_local_policy_2filters_1.txt").replace("\\", "\\\\")
    assert N.parse(text) == N.parse(sample("netdiag_ipsec_debug_local_policy_2filters_1.txt"))


def test_render_of_the_kb_state_reads_back_to_the_kb_filters():
    state = slammer_state()
    text = N.render(state)
    lines = text.splitlines()
    assert lines[0] == "IP Security test . . . . . . . . . : Passed"
    assert lines[1].strip() == "Local IPSec Policy Active: 'Block UDP 1434 Filter'"
    assert lines[2].strip().startswith("IP Security Policy Path: " + N.LOCAL_STORE_PATH + "{")
    assert "There are 2 filters" in text
    assert [ln.strip() for ln in lines if ln.strip().startswith("Flags")] == \
        ["Flags : Inbound Block", "Flags : Outbound Block"]
    ours = N.parse(text)
    kb = N.parse(sample("netdiag_ipsec_debug_local_policy_2filters_1.txt"))
    strip_ids = lambda e: e.__class__(**dict(e.__dict__, filter_id="", policy_id=""))  # noqa: E731
    assert [strip_ids(e) for e in ours.filters] == [strip_ids(e) for e in kb.filters]
    assert ours.filters == N.entries(state)
    assert N.render(HostState()) == ("IP Security test . . . . . . . . . : Passed\n"
                                     "    IPSec policy service is active, but no policy is assigned.\n")


def test_render_prints_store_guids_and_placeholders_for_planned_objects():
    state = slammer_state()
    guided = HostState(
        policies=(Policy(SLAMMER, rules=state.policy(SLAMMER).rules, guid="d239c599-f945-47a3-a4e3-b37bc12826b9"),),
        filterlists=tuple(FilterList(fl.name, tuple(Filter(f.src, f.dst, f.protocol, f.src_port, f.dst_port,
                                                           f.mirrored, guid=g) for f in fl.filters))
                          for fl, g in zip(state.filterlists, ("{5EC1FD53-EA98-4C1B-A99F-6D2A0FF94592}",
                                                                "{9B4144A6-774F-4AE5-B23A-51331E67BAB2}"))),
        filteractions=(FilterAction("Block", guid="{509492EA-1214-4F50-BF43-9CAC2B538518}"),), assigned=SLAMMER)
    text = N.render(guided)
    assert "ipsecPolicy{D239C599-F945-47A3-A4E3-B37BC12826B9}" in text
    assert "Filter Id: {5EC1FD53-EA98-4C1B-A99F-6D2A0FF94592}" in text
    assert text.count("Policy Id: {509492EA-1214-4F50-BF43-9CAC2B538518}") == 2
    planned = N.render(state)
    assert planned.count("{00000000-0000-0000-") == 5 and planned == N.render(state)


def test_mirrored_filters_show_both_directions_and_fold_back():
    mirrored = Filter(ANY, ME, 6, 0, 445, mirrored=True)
    policy, objects = P.policy_objects("SMB", [P.rule_objects("Block SMB", [mirrored])])
    state = P.plan_policy(HostState(), policy, rules_objects=objects, assign=True).after
    listed = N.entries(state, "10.0.0.5")
    assert [(e.direction, e.src_addr, e.src_port, e.dst_addr, e.dst_port) for e in listed] == [
        ("Inbound", "0.0.0.0", 0, "10.0.0.5", 445), ("Outbound", "10.0.0.5", 445, "0.0.0.0", 0)]
    assert listed[0].filter_id == listed[1].filter_id
    folded = N.fold(N.parse(N.render(state, local_address="10.0.0.5")).filters, "10.0.0.5")
    assert [(f, inbound, outbound) for f, inbound, outbound, _ in folded] == [(mirrored, "block", "block")]


def test_non_debug_output_and_other_states():
    state = slammer_state()
    assert N.render(state, debug=False) == ("IP Security test . . . . . . . . . : Passed\n"
                                            "    Local IPSec Policy Active: 'Block UDP 1434 Filter'\n")
    stopped = N.render(state, service_running=False)
    assert N.parse(stopped).service_active is False and N.parse(stopped).status == "Skipped"
    assert N.parse(N.render(HostState(policyagent="stopped"))).service_active is False
    domain = HostState(domain=DomainAssignment("Corp", "LDAP://CN=ipsecPolicy{11111111-2222-3333-4444-555555555555},"
                                                       "CN=IP Security,CN=System,DC=corp,DC=example"))
    report = N.parse(N.render(domain))
    assert (report.store, report.policy, report.policy_guid) == ("domain", "Corp",
                                                                 "{11111111-2222-3333-4444-555555555555}")
    assert report.path == domain.domain.path and report.filters == ()
    assert report.host_state().domain == domain.domain


def test_dynamic_filters_are_listed_and_read_back_as_dynamic_without_a_policy():
    rule = DynamicRule(Filter(ANY, ME, 17, 0, 1434), "block", "permit")
    state = HostState(dynamic=(rule,))
    text = N.render(state)
    assert "no policy is assigned" in text and "There are 2 filters" in text
    assert "Flags : Inbound Block" in text and "Flags : Outbound Permit" in text
    assert N.parse(text).host_state().dynamic == (rule,)


def test_unknown_dynamic_filters_are_said_to_be_unknown_not_shown_as_none():
    # A host whose dynamic listing could not be read (dynamic=None): the view lists the static filters
    # it knows and says the dynamic ones are unknown; before, callers turned None into () and the view
    # read as "no dynamic filters". The diff summary says so too, instead of failing on None.
    known = slammer_state()
    unknown = replace(known, dynamic=None)
    text = N.render(unknown)
    assert "There are 2 filters" in text and N.DYNAMIC_UNKNOWN in text
    assert N.DYNAMIC_UNKNOWN not in N.render(known)
    alone = N.render(HostState(dynamic=None))
    assert "no policy is assigned" in alone and "There are 0 filters" in alone and N.DYNAMIC_UNKNOWN in alone
    assert N.summary(known, unknown) == [N.SUMMARY_DYNAMIC_UNKNOWN]
    assert N.summary(unknown, unknown) == [N.SUMMARY_DYNAMIC_UNKNOWN]


@pytest.mark.parametrize("text, message", [
    ("IP Security test . . . : Passed\n    Local IPSec Policy Active: 'P'\n    Weight : 5\n", "end of the IP"),
    ("Nothing here\n", "no 'IP Security test'"),
    ("IP Security test . . . : Passed\n    Something else happened.\n", "no policy is assigned"),
])
def test_parse_refuses_what_it_does_not_know(text, message):
    with pytest.raises(N.NetdiagParseError, match=message):
        N.parse(text)


def test_unknown_labels_inside_a_filter_block_are_errors():
    good = N.render(slammer_state())
    with pytest.raises(N.NetdiagParseError, match="Src Mask"):
        N.parse(good.replace("Src Mask", "Source Mask", 1))
    with pytest.raises(N.NetdiagParseError, match="unknown label"):
        N.parse(good.replace("    No Name\n", "    Weight : 3\n", 1))
    with pytest.raises(N.NetdiagParseError, match="Flags"):
        N.parse(good.replace("Inbound Block", "Inbound Drop"))
    with pytest.raises(N.NetdiagParseError, match="there are 3 filters but lists 2"):
        N.parse(good.replace("There are 2 filters", "There are 3 filters"))


def test_output_of_other_netdiag_tests_before_the_ipsec_test_is_skipped():
    text = ("Computer Name: HOST1\nDNS Host Name: host1.example\n\n" + N.render(slammer_state())
            + "\nThe command completed successfully\n")
    assert N.parse(text).filters == N.entries(slammer_state())


# ---------------------------------------------------------------------------------------------
# diff mode and summaries

def test_diff_reads_like_the_kb_verification_step():
    before = HostState()
    after = slammer_state()
    d = N.diff(before, after)
    assert d["before"] == N.render(before) and d["after"] == N.render(after)
    assert "no policy is assigned" in d["before"] and "Local IPSec Policy Active" in d["after"]


def test_summary_lines():
    s1 = slammer_state()
    assert N.summary(s1, s1) == []
    assert N.summary(HostState(), s1) == [
        "+ policy 'Block UDP 1434 Filter'",
        "+ rule 'Block Inbound UDP 1434 Rule' in policy 'Block UDP 1434 Filter'",
        "+ rule 'Block Outbound UDP 1434 Rule' in policy 'Block UDP 1434 Filter'",
        "+ filter list 'Block Inbound UDP 1434 Rule' (any -> me:1434 UDP)",
        "+ filter list 'Block Outbound UDP 1434 Rule' (me -> any:1434 UDP)",
        "+ filter action 'Block'",
        "assigned policy: none -> 'Block UDP 1434 Filter'",
    ]
    tcp = Filter(ANY, ME, 6, 0, 80, mirrored=False)
    s2 = P.plan_rule(s1, SLAMMER, Rule("Block Inbound UDP 1434 Rule", "Block Inbound UDP 1434 Rule", "Permit"),
                     FilterList("Block Inbound UDP 1434 Rule", (IN_1434, tcp)), FilterAction("Permit", "permit")).after
    s2 = P.plan_dynamic(s2, [DynamicRule(tcp)]).after
    assert N.summary(s1, s2) == [
        "~ rule 'Block Inbound UDP 1434 Rule' in policy 'Block UDP 1434 Filter' (filter action)",
        "+ filter any -> me:80 TCP in filter list 'Block Inbound UDP 1434 Rule'",
        "+ filter action 'Permit'",
        "+ dynamic rule any -> me:80 TCP (inbound block, outbound block)",
    ]
    s3 = P.plan_policy(s2, Policy(SLAMMER), state="deleted").after
    assert N.summary(s2, s3)[:4] == [
        "- policy 'Block UDP 1434 Filter'",
        "- rule 'Block Inbound UDP 1434 Rule' in policy 'Block UDP 1434 Filter'",
        "- rule 'Block Outbound UDP 1434 Rule' in policy 'Block UDP 1434 Filter'",
        "- filter list 'Block Inbound UDP 1434 Rule'",
    ]
    assert "assigned policy: 'Block UDP 1434 Filter' -> none" in N.summary(s2, s3)


# ---------------------------------------------------------------------------------------------
# Random states: render -> parse -> the same entries, folded back to the same filters

LOCAL = "192.168.1.1"
ADDRESSES = (ANY, ME, Address("ip", "10.0.0.1", "255.255.255.255"), Address("ip", "10.1.0.0", "255.255.0.0"),
             Address("ip", "fe80::1", "64"), Address("range", "10.0.0.1", end="10.0.0.9"), Address("dns", "db.example"),
             Address("server", "DNS"))


def random_filter(rng, with_name=True):
    protocol = rng.choice((0, 1, 6, 17, 47))
    ports = protocol in (6, 17)
    src, dst = rng.choice(ADDRESSES), rng.choice(ADDRESSES)
    return Filter(src, dst, protocol, rng.choice((0, 1434)) if ports else 0, rng.choice((0, 80)) if ports else 0,
                  rng.random() < 0.5, description=rng.choice(("", "web", "Slammer worm")) if with_name else "")


def random_state(rng):
    lists, actions, rules = [], [], []
    for i in range(rng.randint(0, 4)):
        unique = {}
        for _ in range(rng.randint(1, 3)):
            f = random_filter(rng)
            unique.setdefault(f.key(), f)
        lists.append(FilterList("L%d" % i, tuple(unique.values())))
        action = rng.choice(("block", "permit", "negotiate"))
        actions.append(FilterAction("A%d" % i, action, guid=rng.choice(("", "{%08X-0000-4000-8000-000000000000}" % i))))
        rules.append(Rule("R%d" % i, "L%d" % i, "A%d" % i, active=rng.random() < 0.8,
                          tunnel=rng.choice(("", "", "10.9.9.9"))))
    policy = Policy("Policy %d" % rng.randint(0, 9), rules=tuple(rules))
    dynamic = tuple({P.dynamic_key(d): d for d in (DynamicRule(random_filter(rng, False),
                                                               rng.choice(("block", "permit")),
                                                               rng.choice(("block", "permit")))
                                                   for _ in range(rng.randint(0, 2)))}.values())
    return HostState(policies=(policy,), filterlists=tuple(lists), filteractions=tuple(actions),
                     assigned=rng.choice((policy.name, "")), dynamic=dynamic)


def expected_static(state):
    policy = state.policy(state.assigned) if state.assigned else None
    out = []
    for rule in (policy.rules if policy else ()):
        if rule.active:
            action = state.filteraction(rule.filteraction).action
            out += [(f.key(), f.description, action, action) for f in state.filterlist(rule.filterlist).filters]
    return out


@pytest.mark.parametrize("seed", range(30))
def test_random_states_round_trip(seed):
    rng = random.Random(seed)
    for _ in range(10):
        state = random_state(rng)
        debug = rng.random() < 0.8
        text = N.render(state, local_address=LOCAL, debug=debug)
        report = N.parse(text)
        assert report.policy == state.assigned
        if not debug:
            assert report.filters == () and report.filter_count is None
            continue
        assert report.filters == N.entries(state, LOCAL)
        if state.assigned or report.filters:
            assert report.filter_count == len(report.filters)
        else:   # [I] no policy and no dynamic filter: we print no filter section at all
            assert report.filter_count is None
        for e in report.filters:
            assert e.tunnel == (e.tunnel_addr != "0.0.0.0")
        folded = [(f.key(), f.description, inbound, outbound) for f, inbound, outbound, _ in
                  N.fold(report.filters, LOCAL)]
        static = expected_static(state)
        assert folded[:len(static)] == static
        dynamic = [(d.filter.key(), d.filter.description, d.inbound, d.outbound) for d in state.dynamic]
        for (key, _, inbound, outbound), (dkey, _, din, dout) in zip(folded[len(static):], dynamic):
            assert key == dkey
            assert inbound == din or not dkey[-1]       # a one-way filter shows one direction only
        # collapsed the way the KB copy is (blank lines gone, indentation lost): still the same report
        assert N.parse("\n".join(line.strip() for line in text.splitlines() if line.strip())) == report


def test_diff_shows_a_change_to_a_policy_netdiag_does_not_list():
    """netdiag lists only the policy in effect; the diff must still show an unassigned policy's rules,
    or `--check --diff` would show nothing for ipsec_rule on an unassigned policy."""
    f = Filter(ANY, ME, 17, 0, 1434, False)
    after = HostState(policies=(Policy("Block UDP 1434 Filter", rules=(Rule("In", "In", "Block"),)),),
                      filterlists=(FilterList("In", (f,)),), filteractions=(FilterAction("Block"),))
    d = N.diff(HostState(), after)
    assert d["before"] != d["after"]
    assert "no policy is assigned" in d["after"]
    assert "[winsec] Policy not in effect: 'Block UDP 1434 Filter'" in d["after"]
    assert "Dest Port : 1434" in d["after"] and "Inbound Block" in d["after"]
    assert "Policy not in effect" not in d["before"]
    # once assigned, netdiag itself lists it and it is not repeated
    assigned = N.diff(HostState(), replace(after, assigned="Block UDP 1434 Filter"))
    assert "Policy not in effect" not in assigned["after"]
    assert "Local IPSec Policy Active: 'Block UDP 1434 Filter'" in assigned["after"]


def test_the_domain_store_renders_as_a_member_under_its_gpo_sees_it():
    from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import parse_filterspec
    triples = [P.rule_objects("In", [parse_filterspec("*=0:1434:UDP").filter])]
    policy, objects = P.policy_objects("Slammer", triples)
    store = P.plan_policy(HostState(), policy, rules_objects=objects).after       # unassigned here
    other, other_objects = P.policy_objects("Spare", [P.rule_objects("T", [parse_filterspec("*=0:23:TCP").filter])])
    store = P.plan_policy(store, other, rules_objects=other_objects, state="merged").after
    text = N.render_store(store, directory="DC=corp,DC=example", assigned_by={"Default Domain Policy": "Slammer"})
    assert "Directory IPSec Policy Active: 'Slammer'" in text
    assert "IP Security Policy Path: LDAP://CN=ipsecPolicy{" in text and ",CN=IP Security,CN=System,DC=corp,DC=example" in text
    assert "There are 1 filters" in text and "[winsec] Domain policy no GPO assigns: 'Spare'" in text
    assert "Local IPSec Policy" not in text and "Policy not in effect" not in text
    two = N.render_store(store, directory="DC=corp,DC=example",
                               assigned_by={"A": "Slammer", "B": "Spare"})
    assert N.NO_POLICY in two and "[winsec] Domain policy assigned by GPO 'B': 'Spare'" in two
