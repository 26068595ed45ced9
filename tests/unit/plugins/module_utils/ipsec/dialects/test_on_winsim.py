"""The rendered commands, run on winsim's tools: the host ends in the planned state, and running the
undo of the commands done so far (after an injected failure) brings it back to where it was.

The engine reads the host back as it reads a Windows host: `reg query /s` of the IPsec key, the
dialect's dynamic listing and ldifde's export of the domain, run through winsim's command shell and
decoded by the engine's own readers. So the engine checks the bytes and text winsim produces; it
never receives winsim's objects.

winsim implements the tools from the same sources and the same [I] assumptions (its modules say
which), so this proves the dialects and winsim agree, not that real Windows does.
"""
import pytest

from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import dialects, directory, plan, remote, toolout
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec import host as engine_host
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.dialects import SCRIPT_FILE
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.model import (
    ANY, KERBEROS, ME, Address, AuthMethod, DynamicRule, Filter, HostState, QmOffer, name_key)
from ansible_collections.winsec.ipsec.plugins.module_utils.ipsec.toolout import parse_netsh_error
from winsim.host import SimHost
from winsim.shell.machine import execute

IN = Filter(ANY, ME, 17, 0, 1434, mirrored=False)
OUT = Filter(ME, ANY, 17, 0, 1434, mirrored=False)
TCP80 = Filter(ANY, ME, 6, 0, 80, mirrored=False)
SMB = Filter(Address("ip", "10.1.0.0", "255.255.0.0"), ME, 6, 0, 445, True)
PERSONALITY = {"netsh": "modern", "ipseccmd": "xp", "ipsecpol": "2000"}


def make_host(tmp_path, dialect, domain=False):
    return SimHost("h", "127.0.0.2", PERSONALITY[dialect], str(tmp_path / "h"),
                   domain_store=str(tmp_path / "dc") if domain else None)


def run(host, command):
    """One command as the remote layer runs it; True when it succeeded."""
    if command.script:
        host.fs[SCRIPT_FILE] = command.script
    result = host.run_tool(list(command.argv))
    return result.rc == 0 and parse_netsh_error(result.stdout) is None


def shape(state: HostState) -> tuple:
    """What the store means, whatever the tool named the filter lists and actions after: per policy
    its rules with their filters and action settings (default response rules left out: they belong
    to the policy's activatedefaultrule setting), the assignment and the dynamic rules."""
    def rule(r):
        flist, action = state.filterlist(r.filterlist), state.filteraction(r.filteraction)
        return (name_key(r.name), frozenset(f.key() for f in flist.filters), action.action, action.soft,
                action.offers, r.conntype, r.active, tuple((a.kind, a.value) for a in r.auth))
    policies = frozenset((name_key(p.name), p.polling_interval,
                          frozenset(rule(r) for r in p.rules if not r.default_response)) for p in state.policies)
    dynamic = frozenset((d.filter.key(), d.conntype, d.inbound, d.outbound) for d in state.dynamic)
    return policies, name_key(state.assigned), dynamic


def exact(state: HostState) -> tuple:
    """The store as the planner compares it: policies, lists, actions, assignment, dynamic rules."""
    return plan.state_key(HostState(policies=state.policies, filterlists=state.filterlists,
                                    filteractions=state.filteractions, assigned=state.assigned,
                                    dynamic=state.dynamic))


def shell(host, command_line):
    """One command line through the host's WinRM shell (cmd.exe first, as over winrs)."""
    result = execute(host, command_line)
    return result.rc, result.stdout, result.stderr


# The dynamic listing each tool prints, and the engine's reader of it (remote.read_lines's sections).
DYNAMIC = {"modern": ("netsh ipsec dynamic show rule", toolout.parse_netsh_dynamic_show),
           "xp": ("ipseccmd show filters", toolout.parse_ipseccmd_show_filters)}


def read(host) -> HostState:
    """The local store and the dynamic rules, as the engine reads them from this host's output."""
    rc, out, err = shell(host, 'reg query "%s" /s' % remote.IPSEC_KEY)
    assert rc == 0 or "unable to find the specified registry key" in err, err
    state = engine_host.decode_registry(out if rc == 0 else "")
    listing = DYNAMIC.get(host.personality.name)
    if listing is None:
        return state                    # Windows 2000: ipsecpol has no dynamic listing
    rc, out, err = shell(host, listing[0])
    assert rc == 0, err
    return plan.replace(state, dynamic=listing[1](out))


def read_domain(tmp_path) -> HostState:
    """The domain store from ldifde's two exports, as the engine's directory reader decodes them. XP
    has no ldifde: a Windows Server 2003 member of the same domain (ldifde built in) exports it."""
    host = SimHost("reader", "127.0.0.3", "2003", str(tmp_path / "reader"), domain_store=str(tmp_path / "dc"))
    texts = []
    for what in ("objects", "gpos"):
        path = "C:\\Windows\\TEMP\\winsec-%s.ldf" % what
        rc, _out, err = shell(host, " ".join(["ldifde", "-f", path] + ['"%s"' % a if " " in a or "," in a else a
                                                                    for a in directory.export_args("", what)]))
        assert rc == 0, err
        texts.append(host.fs.pop(path))
    return directory.decode(texts[0], texts[1]).state


def local(host):
    return managed(read(host))


def managed(state: HostState) -> HostState:
    """The store without the default response rules and the filter action only they use (the planner
    leaves those to the policy's activatedefaultrule setting)."""
    policies = tuple(plan.replace(p, rules=tuple(r for r in p.rules if not r.default_response))
                     for p in state.policies)
    used = {name_key(r.filteraction) for p in policies for r in p.rules}
    return HostState(policies=policies, filterlists=state.filterlists,
                     filteractions=tuple(a for a in state.filteractions if name_key(a.name) in used),
                     assigned=state.assigned, dynamic=state.dynamic)


def slammer(auth=None):
    triples = []
    for name, filt in (("Block Inbound UDP 1434 Rule", IN), ("Block Outbound UDP 1434 Rule", OUT)):
        rule, flist, faction = plan.rule_objects(name, [filt])
        triples.append((plan.replace(rule, auth=auth) if auth else rule, flist, faction))
    return plan.policy_objects("Block UDP 1434 Filter", triples)


def scenarios(state):
    """Plans that walk a host through the KB's procedure and some edits, each from `state` on."""
    policy, objects = slammer()
    yield lambda s: plan.plan_policy(s, policy, rules_objects=objects, assign=True)
    rule, flist, faction = plan.rule_objects("Block Inbound TCP 80 Rule", [TCP80])
    yield lambda s: plan.plan_rule(s, "Block UDP 1434 Filter", rule, flist, faction)
    rule, flist, faction = plan.rule_objects("Block Inbound TCP 80 Rule", [TCP80, SMB], "permit")
    yield lambda s: plan.plan_rule(s, "Block UDP 1434 Filter", rule, flist, faction)
    yield lambda s: plan.plan_rule(s, "Block UDP 1434 Filter", rule, state="absent")
    yield lambda s: plan.plan_policy(s, plan.replace(s.policy("Block UDP 1434 Filter"), polling_interval=30,
                                                     rules=()), rules_objects=(), assign=None)
    yield lambda s: plan.plan_dynamic(s, [DynamicRule(IN), DynamicRule(TCP80, "permit", "permit", "lan")])
    yield lambda s: plan.plan_dynamic(s, [DynamicRule(IN)], state="absent")
    yield lambda s: plan.plan_policy(s, plan.replace(s.policy("Block UDP 1434 Filter"), rules=()), assign=False)
    yield lambda s: plan.plan_policy(s, policy, rules_objects=objects, state="deleted")
    yield lambda s: plan.plan_dynamic(s, state="cleared")


@pytest.mark.parametrize("dialect", ["netsh", "ipseccmd"])
def test_plans_run_on_winsim_reach_the_planned_state(tmp_path, dialect):
    host = make_host(tmp_path, dialect)
    compare = exact if dialect == "netsh" else shape
    for step, planner in enumerate(scenarios(local(host))):
        before = local(host)
        planned = planner(before)
        assert planned.changes, "scenario step %d plans nothing" % step
        for command in dialects.render(planned.changes, dialect, before=before, after=planned.after):
            assert run(host, command), "step %d: %s failed" % (step, command.display)
        assert compare(local(host)) == compare(planned.after), "step %d" % step
        assert not planner(local(host)).changes or dialect != "netsh", "step %d is not idempotent" % step


def _batch_on_prepared_host(tmp_path, dialect):
    """A host holding KB's inbound rule (assigned), and a batch that adds a second, negotiating
    policy with a pre-shared key, assigns it and adds a dynamic block."""
    host = make_host(tmp_path, dialect)
    policy, objects = slammer()
    setup = plan.plan_policy(local(host), plan.replace(policy, rules=policy.rules[:1]),
                             rules_objects=objects[:2], assign=True)
    for command in dialects.render(setup.changes, dialect, before=local(host), after=setup.after):
        assert run(host, command)
    before = local(host)
    rule, flist, faction = plan.rule_objects("Secure 445", [SMB], "negotiate", filteraction_name="Secure",
                                             offers=(QmOffer("", "3DES", "SHA1", 100000, 3600),))
    second = plan.policy_objects("Second", [(plan.replace(rule, auth=(AuthMethod("psk", "k3y"),)), flist, faction)])
    planned = plan.plan_policy(before, second[0], rules_objects=second[1], assign=True)
    more = plan.plan_dynamic(planned.after, [DynamicRule(IN)])
    commands = dialects.render(planned.changes + more.changes, dialect, before=before, after=more.after)
    return host, before, commands


@pytest.mark.parametrize("dialect", ["netsh", "ipseccmd"])
def test_undo_after_a_failure_at_each_step_restores_the_host(tmp_path, dialect):
    compare = exact if dialect == "netsh" else shape
    count = len(_batch_on_prepared_host(tmp_path / "count", dialect)[2])
    assert count >= 2
    for fail_at in range(1, count + 1):
        host, before, commands = _batch_on_prepared_host(tmp_path / str(fail_at), dialect)
        host.configure(fail_step=fail_at)
        done = []
        for command in commands:
            if not run(host, command):
                break
            done.append(command)
        assert len(done) == fail_at - 1
        host.configure(fail_step=0)
        for undo in remote.undo_steps(done):
            assert run(host, undo), undo.display
        assert compare(local(host)) == compare(before), "failure at step %d" % fail_at


TWO_OFFERS = (QmOffer("", "3DES", "SHA1", 100000, 3600), QmOffer("MD5", lifetime_kb=50000, lifetime_s=900))


def _secure_rule(key, offers=TWO_OFFERS, name="Secure 445"):
    rule, flist, faction = plan.rule_objects(name, [SMB], "negotiate", filteraction_name=name, offers=offers)
    return plan.replace(rule, auth=(AuthMethod("psk", key), KERBEROS)), flist, faction


@pytest.mark.parametrize("dialect", ["netsh", "ipseccmd"])
def test_psk_and_kerberos_rule_with_two_offers_on_winsim(tmp_path, dialect):
    """One `-a` list and one `-n` list (ipseccmd) reach the host: the state it decodes is the plan,
    a key change is a change, and the undo of each step brings the previous state back."""
    host = make_host(tmp_path, dialect)
    compare = exact if dialect == "netsh" else shape
    policy, objects = plan.policy_objects("Partners", [_secure_rule("k3y-one")])
    history = [local(host)]
    steps = [lambda s: plan.plan_policy(s, policy, rules_objects=objects, assign=True),
             lambda s: plan.plan_rule(s, "Partners", *_secure_rule("k3y-two", TWO_OFFERS[::-1])),
             lambda s: plan.plan_rule(s, "Partners", *_secure_rule("k3y-two", name="Secure 139"))]
    done = []
    for step, planner in enumerate(steps):
        before = local(host)
        planned = planner(before)
        commands = dialects.render(planned.changes, dialect, before=before, after=planned.after)
        for command in commands:
            assert run(host, command), "step %d: %s" % (step, command.redacted_display)
            assert "k3y" not in command.display
        after = local(host)
        assert compare(after) == compare(planned.after), "step %d" % step
        rule = [r for p in after.policies for r in p.rules if r.name == planned.after.policies[0].rules[-1].name][0]
        assert [(a.kind, a.value) for a in rule.auth] == [("psk", "k3y-two" if step else "k3y-one"), ("kerberos", "")]
        assert not planner(after).changes, "step %d is not idempotent" % step
        history.append(after)
        done.append(commands)
    if dialect == "ipseccmd":
        assert any(c.argv.count("-a") == 1 and c.argv[c.argv.index("-a") + 1:][:2] == ("P:k3y-one", "K")
                   for c in done[0])
    for commands, previous in zip(done[::-1], history[-2::-1]):
        for undo in remote.undo_steps(commands):
            assert run(host, undo), undo.redacted_display
        assert compare(local(host)) == compare(previous)


@pytest.mark.parametrize("dialect", ["netsh", "ipseccmd"])
def test_domain_store_on_winsim(tmp_path, dialect):
    host = make_host(tmp_path, dialect, domain=True)
    compare = exact if dialect == "netsh" else shape
    policy, objects = slammer()
    empty = managed(read_domain(tmp_path))
    planned = plan.plan_policy(empty, policy, rules_objects=objects)
    commands = dialects.render(planned.changes, dialect, before=empty, after=planned.after, store="domain")
    assert all(c.script for c in commands) if dialect == "netsh" else all("DS" in c.argv for c in commands)
    for command in commands:
        assert run(host, command), command.redacted_display
    assert compare(managed(read_domain(tmp_path))) == compare(planned.after)
    assert exact(local(host)) == exact(HostState())          # the local store is untouched
    for undo in remote.undo_steps(commands):
        assert run(host, undo), undo.redacted_display
    assert compare(managed(read_domain(tmp_path))) == compare(empty)


def test_ipsecpol_kb_commands_on_winsim(tmp_path):
    host = make_host(tmp_path, "ipsecpol")
    policy, objects = slammer()
    planned = plan.plan_policy(HostState(), policy, rules_objects=objects, assign=True)
    for command in dialects.render(planned.changes, "ipsecpol", before=HostState(), after=planned.after):
        assert run(host, command), command.display
    assert shape(local(host)) == shape(planned.after)
