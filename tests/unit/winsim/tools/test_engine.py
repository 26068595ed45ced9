"""The engine's plans, rendered by its dialects and run on winsim, land where the engine predicted.

This is the contract between the two halves: what the dialects write is what winsim's tools accept,
and winsim's registry decodes to the planned state.
"""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import dialects, plan, toolout
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.filterspec import parse_filterspec
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import DynamicRule, HostState
from winsim.host import SimHost

RULES = (("Block Inbound UDP 1434 Rule", "*=0:1434:UDP"), ("Block Outbound UDP 1434 Rule", "0=*:1434:UDP"),
         ("Block ICMP", "0+*::ICMP"))


def static_view(state: HostState):
    """What both sides must agree on: policies, rules and the filters and actions they use."""
    view = {}
    for policy in state.policies:
        for rule in policy.rules:
            if rule.default_response:
                continue
            flist = state.filterlist(rule.filterlist)
            action = state.filteraction(rule.filteraction)
            view[(policy.name, rule.name)] = (tuple(f.key() for f in flist.filters), action.action, rule.active)
    return view, state.assigned


def keys(rules):
    return sorted(repr(plan.dynamic_key(r)) for r in rules)


def run_all(host, commands):
    for command in commands:
        assert not command.script, "local store commands only"
        result = host.run_tool(list(command.argv))
        assert (result.rc, result.stdout.strip(), result.stderr) == (0, "", ""), command.argv


@pytest.mark.parametrize("personality, dialect", [("modern", "netsh"), ("2003", "netsh"), ("2003", "ipseccmd"),
                                                  ("xp", "ipseccmd")])
def test_planned_policy_lands_as_planned(tmp_path, personality, dialect):
    host = SimHost("h", "127.0.0.7", personality, str(tmp_path / "h"))
    triples = [plan.rule_objects(name, [parse_filterspec(spec).filter]) for name, spec in RULES]
    policy, objects = plan.policy_objects("Block UDP 1434 Filter", triples)
    before = host.state()
    wanted = plan.plan_policy(before, policy, rules_objects=objects, assign=True)
    run_all(host, dialects.render(wanted.changes, dialect, before=before, after=wanted.after))
    assert static_view(host.state()) == static_view(wanted.after)
    # Dropping one rule again, from what the host now holds.
    now = host.state()
    smaller, objects = plan.policy_objects("Block UDP 1434 Filter", triples[:2])
    second = plan.plan_policy(now, smaller, rules_objects=objects, state="replaced")
    assert second.changes
    run_all(host, dialects.render(second.changes, dialect, before=now, after=second.after))
    assert static_view(host.state()) == static_view(second.after)


@pytest.mark.parametrize("personality, dialect", [("modern", "netsh"), ("xp", "ipseccmd")])
def test_planned_dynamic_rules_land_and_read_back(tmp_path, personality, dialect):
    host = SimHost("h", "127.0.0.8", personality, str(tmp_path / "h"))
    rules = [DynamicRule(parse_filterspec(spec).filter) for _, spec in RULES]
    before = host.state()
    wanted = plan.plan_dynamic(before, rules)
    run_all(host, dialects.render(wanted.changes, dialect, before=before, after=wanted.after))
    show = ["netsh", "ipsec", "dynamic", "show", "rule"] if dialect == "netsh" else ["ipseccmd", "show", "filters"]
    text = host.run_tool(show).stdout
    parse = toolout.parse_netsh_dynamic_show if dialect == "netsh" else toolout.parse_ipseccmd_show_filters
    assert keys(parse(text)) == keys(wanted.after.dynamic)
    now = host.state()
    gone = plan.plan_dynamic(now, rules[:1], state="absent")
    run_all(host, dialects.render(gone.changes, dialect, before=now, after=gone.after))
    assert keys(host.state().dynamic) == keys(gone.after.dynamic)


def test_planned_domain_policy_reaches_a_member(tmp_path):
    directory = str(tmp_path / "domain")
    admin = SimHost("admin", "127.0.0.30", "modern", str(tmp_path / "admin"), domain_store=directory)
    member = SimHost("member", "127.0.0.31", "2003", str(tmp_path / "member"), domain_store=directory)
    triples = [plan.rule_objects(name, [parse_filterspec(spec).filter]) for name, spec in RULES[:2]]
    policy, objects = plan.policy_objects("Domain Slammer", triples)
    before = admin.domain.load()
    wanted = plan.plan_policy(before, policy, rules_objects=objects, assign=True)
    for command in dialects.render(wanted.changes, "netsh", before=before, after=wanted.after,
                                   store="domain", domain="winsim.test", gpo="Default Domain Policy"):
        admin.fs[command.argv[-1]] = command.script
        result = admin.run_tool(list(command.argv))
        assert (result.rc, result.stdout.strip()) == (0, ""), command.script
    assert static_view(admin.domain.load()) == static_view(wanted.after)
    assert admin.state().policies == ()                       # the local store was not touched
    assert member.run_tool(["gpupdate", "/target:computer"]).rc == 0
    assert member.state().domain.name == "Domain Slammer"
